"""Find graphs and tensors by the role or kind the manifest gives them, never by name.

A family names its graphs and tensors as it likes (graphs/README.md lists the
seed families'); the runtime asks "the graph that encodes", "the input that
takes token ids", and reads the names from the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from artifact.schema import (
    CACHE_INDEX,
    CROSS_CACHE,
    CROSS_KV,
    DECODER_HIDDEN,
    DECODING_STEP,
    ENCODER,
    HIDDEN,
    LOGITS,
    NEXT_SELF_CACHE,
    PADDING_MASK,
    SELF_CACHE,
    TOKEN_IDS,
)
from runtime.errors import ArtifactError

Graphs = Mapping[str, Mapping[str, Any]]  # the manifest's `graphs`


def graph_with_role(graphs: Graphs, role: str) -> str | None:
    """The name of the first graph with `role`, or None."""
    return next((name for name, entry in graphs.items() if entry.get("role") == role), None)


def tensor(graphs: Graphs, graph: str, side: str, role: str) -> dict[str, Any]:
    """The `side` ("inputs" or "outputs") entry of `graph` whose role, or else kind, is `role`."""
    entries = graphs[graph][side]
    for key in ("role", "kind"):
        found = [e for e in entries if e.get(key) == role]
        if found:
            return found[0]
    if side == "outputs" and role == LOGITS and len(entries) == 1:
        return entries[0]
    raise ArtifactError(f"Graph {graph!r} has no {side[:-1]} with role {role!r} (its {side}: {[e['name'] for e in entries]}).")


def name_of(graphs: Graphs, graph: str, side: str, role: str) -> str:
    return tensor(graphs, graph, side, role)["name"]


@dataclass(frozen=True)
class DecodingGraphs:
    """Which graph and tensor plays each part of cached decoding.

    encoder: token ids + padding mask -> hidden states; cross cache: hidden states
    -> cross keys/values; decoding step: one token per row, the padding mask, its
    own cache, the index to write, the cross keys/values -> logits, next cache.
    """

    encoder: str
    cross_cache: str
    step: str
    encoder_ids: str
    encoder_mask: str
    encoder_hidden: str
    cross_hidden: str
    cross_kv: str
    step_ids: str
    step_mask: str
    step_cache: str
    step_index: str
    step_cross_kv: str
    logits: str
    next_cache: str
    cache_shape: tuple[Any, ...]  # symbolic: "batch", the cache axis, static sizes
    cache_axis: str  # the axis the cache index writes along
    hidden: str | None = None  # the step's decoder hidden state output (contrastive search); older artifacts lack it

    @classmethod
    def from_graphs(cls, graphs: Graphs) -> "DecodingGraphs":
        """From the manifest's graphs; ArtifactError when a part is missing."""
        names = {role: graph_with_role(graphs, role) for role in (ENCODER, CROSS_CACHE, DECODING_STEP)}
        missing = [role for role, name in names.items() if name is None]
        if missing:
            raise ArtifactError(f"No graph with role {missing} (graphs: {list(graphs)}): the artifact cannot generate.")
        encoder, cross, step = names[ENCODER], names[CROSS_CACHE], names[DECODING_STEP]
        cache = tensor(graphs, step, "inputs", SELF_CACHE)
        index = tensor(graphs, step, "inputs", CACHE_INDEX)
        return cls(
            encoder=encoder,
            cross_cache=cross,
            step=step,
            encoder_ids=name_of(graphs, encoder, "inputs", TOKEN_IDS),
            encoder_mask=name_of(graphs, encoder, "inputs", PADDING_MASK),
            encoder_hidden=name_of(graphs, encoder, "outputs", HIDDEN),
            cross_hidden=name_of(graphs, cross, "inputs", HIDDEN),
            cross_kv=name_of(graphs, cross, "outputs", CROSS_KV),
            step_ids=name_of(graphs, step, "inputs", TOKEN_IDS),
            step_mask=name_of(graphs, step, "inputs", PADDING_MASK),
            step_cache=cache["name"],
            step_index=index["name"],
            step_cross_kv=name_of(graphs, step, "inputs", CROSS_KV),
            logits=name_of(graphs, step, "outputs", LOGITS),
            next_cache=name_of(graphs, step, "outputs", NEXT_SELF_CACHE),
            cache_shape=tuple(cache["shape"]),
            cache_axis=index["bound"],
            hidden=next((o["name"] for o in graphs[step]["outputs"] if o.get("role") == DECODER_HIDDEN), None),
        )
