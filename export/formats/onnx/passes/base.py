"""The lifecycle every rewrite shares; a pass says only what it matches and what that becomes.

    index the graph ─▶ match ─▶ ranks the replacements need ─▶ shared initializers
        ─▶ per match: its replacement (nodes out, nodes and initializers in), counted
        ─▶ drop what nothing reads ─▶ sort the nodes topologically

Every match is found on one index of the graph built before any edit, so each
sees the graph as it was given. A replacement removes the node that produces the
pattern's output and adds the nodes that compute it anew; the nodes before it
that only the pattern read are then read by nothing and fall out with
`drop_unused`. New nodes are appended, so the graph is sorted again at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
import onnx

from export.formats.onnx.graph import GraphIndex, drop_unused, opset, sort_nodes
from export.formats.onnx.graph import ranks as tensor_ranks


@dataclass(frozen=True)
class Replacement:
    """What one match becomes."""

    remove: Sequence[onnx.NodeProto]  # the node producing the pattern's output (the rest falls out unread)
    nodes: Sequence[onnx.NodeProto] = ()  # computing the same output names
    initializers: Sequence[onnx.TensorProto] = ()
    count: int = 1  # how many times the pass applied (folded_constants: tensors folded)


@dataclass(frozen=True)
class Rewriting:
    """What a replacement may read: the graph being rewritten, its index from before any edit, its inputs."""

    model: onnx.ModelProto
    index: GraphIndex
    feeds: dict[str, np.ndarray] | None
    base_dir: Path | None
    ranks: dict[str, int]  # of the tensors the matches named in `Rewrite.ranked`


class Rewrite:
    """One rewrite of the float32 graph: `rewrite(model, sample, scratch)` applies it, returns how often."""

    name: ClassVar[str]  # its key in the manifest's rewrites record
    anchors: ClassVar[tuple[str, ...]] = ()  # the op types a match starts from
    # Runs the graph (onnxruntime, on the sample inputs) to learn ranks or values;
    # needs the scratch directory, where external weight data lives.
    evaluates: ClassVar[bool] = False
    # The ONNX opsets in which the nodes it writes mean what it intends.
    min_opset: ClassVar[int] = 1
    max_opset: ClassVar[int | None] = None

    def match(self, index: GraphIndex, node: onnx.NodeProto) -> Any | None:
        """The pattern drawn in the pass's docstring, from `node` (one of `anchors`); None when it does not match."""
        raise NotImplementedError

    def replace(self, rewriting: Rewriting, match: Any) -> Replacement | None:
        """What `match` becomes; None to leave it (a check that needed ranks or values failed)."""
        raise NotImplementedError

    def ranked(self, match: Any) -> str | None:
        """A tensor whose rank `replace` needs (evaluated once for every match), if any."""
        return None

    def shared(self) -> list[onnx.TensorProto]:
        """Initializers every replacement reads, added once when anything matched."""
        return []

    def matches(self, index: GraphIndex) -> list[Any]:
        """Every match in the graph, in graph order."""
        found = (self.match(index, node) for node in index.graph.node if node.op_type in self.anchors)
        return [match for match in found if match is not None]

    def replacements(self, rewriting: Rewriting, matches: list[Any]) -> Iterable[Replacement | None]:
        """The replacement of each match; each is applied as it comes, before the next is built."""
        return (self.replace(rewriting, match) for match in matches)

    def refusal(self, model: onnx.ModelProto, sample: dict | None, scratch: Path | None) -> str | None:
        """Why this pass cannot run on `model` with these arguments; None when it can."""
        version = opset(model)
        if version < self.min_opset or (self.max_opset is not None and version > self.max_opset):
            return f"needs ONNX opset {self.min_opset}..{self.max_opset or ''}, the graph has {version}"
        if self.evaluates and (sample is None or scratch is None):
            return "evaluates the graph: needs sample inputs and a scratch directory"
        return None

    def __call__(
        self, model: onnx.ModelProto, sample: dict[str, np.ndarray] | None = None, scratch: Path | None = None
    ) -> int:
        """Rewrite every match in `model` in place; returns how many times it applied.

        `sample`: valid inputs (only used to run the graph); `scratch`: where external
        weight data lives. A pass that does not evaluate reads neither.
        """
        graph = model.graph
        index = GraphIndex(graph, scratch if self.evaluates else None)
        found = self.matches(index)
        if not found:
            return 0
        wanted = sorted({name for match in found if (name := self.ranked(match)) is not None})
        ranks = tensor_ranks(model, wanted, sample, scratch) if wanted else {}
        graph.initializer.extend(self.shared())
        applied = 0
        for replacement in self.replacements(Rewriting(model, index, sample, scratch, ranks), found):
            if replacement is None:
                continue
            for node in replacement.remove:
                graph.node.remove(node)
            graph.node.extend(replacement.nodes)
            graph.initializer.extend(replacement.initializers)
            applied += replacement.count
        drop_unused(graph)
        sort_nodes(graph)
        return applied

