"""Choose what runtime.load runs on this machine: dtype x format x backend, by the table in choices.json.

This is the one choice, and choices.json its one source of preference data.
runtime.load("graphs/<preset>") collects the dtypes on disk (artifact/index.py),
keeps those the requested fidelity admits (judged on the parity each recorded at
export) and this CPU can run, and takes the first of the table's candidates for
the machine's CPU class and the artifact's kind (encoder, or decoding step for
generation artifacts). Every candidate passed over is in the reason.
runtime.load("graphs/<preset>/<dtype>") ranks that one artifact's backends by the same table.
`python -m runtime.choice [preset dir]` prints what this machine would use.
"""

from __future__ import annotations

import functools
import json
import platform
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from artifact.index import collect, entry
from artifact.machine import cpu_model_and_flags
from artifact.schema import DECODING_STEP, ENCODER, MANIFEST
from runtime.backends import BACKENDS, check_backend_name
from runtime.errors import ArtifactError, BackendUnavailableError, DtypeMismatchError, InputError
from runtime.manifest import read_manifest

FIDELITIES = ("exact", "bounded", "any")


@functools.lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    """runtime/choices.json, read once (callers do not modify it)."""
    return json.loads(resources.files("runtime").joinpath("choices.json").read_text())


@dataclass(frozen=True)
class Machine:
    """What the choice depends on: CPU flags (as /proc/cpuinfo names them) and a usable GPU."""

    flags: frozenset[str]
    gpu: bool = False
    name: str = ""

    @classmethod
    def this(cls) -> "Machine":
        model, flags = cpu_model_and_flags()
        if not flags and platform.machine().lower() in ("aarch64", "arm64"):
            flags = {"asimd"}  # macOS and others without /proc/cpuinfo: NEON is baseline on arm64
        from runtime.backends.onnxruntime import cuda_available

        return cls(frozenset(flags), gpu=cuda_available(), name=model or platform.processor())


@dataclass(frozen=True)
class Choice:
    """What runtime.load runs: an artifact's dtype, the format read and the backend reading it, and why."""

    directory: Path  # the artifact chosen: graphs/<preset>/<dtype>/
    dtype: str
    backend: str
    format: str
    reason: str
    skipped: tuple[str, ...] = field(default=())


def cpu_class(machine: Machine, rules: dict[str, Any] | None = None) -> str:
    for entry in (rules or table())["cpu_classes"]:
        if set(entry.get("all_of", [])) <= machine.flags and (
            not entry.get("any_of") or set(entry["any_of"]) & machine.flags
        ):
            return entry["name"]
    return "generic"


def candidates(machine: Machine, kind: str, rules: dict[str, Any] | None = None) -> tuple[list[tuple[str, str]], str]:
    """([dtype, backend] fastest first, where the order comes from) for this machine and graph kind."""
    rules = rules or table()
    if machine.gpu:
        rule = rules["gpu"][kind]
        return [tuple(c) for c in rule["order"]], f"a GPU is usable ({rule['measured']})"
    name = cpu_class(machine, rules)
    rule, via = rules["rules"][name], name
    dropped: set[str] = set()
    while "like" in rule:  # a class without measurements borrows another's order
        dropped |= set(rule.get("without", []))
        via = rule["like"]
        rule = rules["rules"][via]
    order = [tuple(c) for c in rule[kind]["order"] if c[0] not in dropped]
    origin = f"CPU class {name}" + (f" (no measurement of its own: {via}'s order" + (f" without {sorted(dropped)}" if dropped else "") + ")" if via != name else "")
    return order, f"{origin}; order from: {rule[kind]['measured']}"


def choose(
    root: Path,
    fidelity: str = "bounded",
    dtype: str | None = None,
    backend: str = "auto",
    machine: Machine | None = None,
    rules: dict[str, Any] | None = None,
) -> Choice:
    """What to load from `root` on `machine` (default: this one): the artifact and its backend.

    `root` is a preset directory (graphs/<preset>/): each dtype on disk is a candidate,
    passed over when `fidelity` or this CPU rules it out. Or it is one artifact
    (graphs/<preset>/<dtype>/): only its backends are candidates, and, since the caller
    named it, neither its recorded parity nor the CPU passes it over (the backend
    refuses what it cannot run). Both are ranked by the same table (choices.json).
    """
    if fidelity not in FIDELITIES:
        raise InputError(f"fidelity must be one of {FIDELITIES}; received {fidelity!r}.")
    check_backend_name(backend)
    preset = is_preset_directory(root)
    dtypes = _preset_dtypes(root, dtype) if preset else _artifact_dtype(root, dtype)
    rules, machine = rules or table(), machine or Machine.this()
    skipped = []
    for each_dtype, each_backend, source in ranked(machine, dtypes, rules):
        if (dtype is not None and each_dtype != dtype) or (backend != "auto" and each_backend != backend):
            continue
        fmt = BACKENDS[each_backend].format
        if fmt not in dtypes[each_dtype]["formats"]:
            continue
        problem = _unfit(dtypes[each_dtype], fmt, each_dtype, each_backend, fidelity, machine, rules) if preset else None
        if problem:
            skipped.append(f"{each_dtype}/{each_backend}: {problem}")
            continue
        directory = root / each_dtype if preset else root
        reason = _reason(preset, each_dtype, each_backend, backend, fidelity, source, skipped)
        return Choice(directory, each_dtype, each_backend, fmt, reason, tuple(skipped))
    raise _nothing_fits(root, preset, dtypes, dtype, backend, fidelity, skipped)


def is_preset_directory(path: Path) -> bool:
    """A preset directory holds <dtype>/manifest.json artifacts and is not an artifact itself."""
    return not (path / MANIFEST).is_file() and path.is_dir() and any(path.glob(f"*/{MANIFEST}"))


def ranked(machine: Machine, dtypes: dict[str, Any], rules: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every (dtype, backend, where its rank comes from) candidate among `dtypes`, fastest first.

    The table's candidates for the machine and the artifacts' graph kind come first; then
    whatever else exists, by the table's fallback backend order, so a forced or unusual
    choice is still judged the same way.
    """
    # The choice table's graph kinds are the graph roles that set an artifact's time.
    kind = DECODING_STEP if any(d["generates"] for d in dtypes.values()) else ENCODER
    order, source = candidates(machine, kind, rules)
    fallback = rules["fallback"]["gpu" if machine.gpu else "cpu"]
    rest = [(d, b) for d in dtypes for b in fallback["order"] if (d, b) not in order]
    return [(d, b, source) for d, b in order if d in dtypes] + [
        (d, b, f"the fallback order ({fallback['measured']})") for d, b in rest
    ]


def _preset_dtypes(root: Path, dtype: str | None) -> dict[str, Any]:
    """dtype -> index record for each artifact under the preset directory `root`."""
    dtypes = collect(root)
    if not dtypes:
        raise ArtifactError(f"{root} holds no artifact (no <dtype>/manifest.json); export one with make export.")
    if dtype is not None and dtype not in dtypes:
        raise DtypeMismatchError(f"{root} has no {dtype} artifact (it has {sorted(dtypes)}); export it with DTYPE={dtype}.")
    return dtypes


def _artifact_dtype(root: Path, dtype: str | None) -> dict[str, Any]:
    """{its dtype: its index record} for the one artifact `root`."""
    manifest = read_manifest(root)
    if dtype is not None and dtype != manifest["dtype"]:
        raise DtypeMismatchError(
            f"{root} holds {manifest['dtype']} graphs; dtype={dtype!r} was requested. "
            f"Load {root.parent / dtype} instead (export it with DTYPE={dtype})."
        )
    return {manifest["dtype"]: entry(manifest)}


def _reason(preset: bool, dtype: str, backend: str, requested: str, fidelity: str, source: str, skipped: list[str]) -> str:
    if not preset:
        why = "requested explicitly" if requested != "auto" else f"the first of this artifact's backends in {source}"
        return f"the artifact directory given ({dtype}); backend {backend}: {why}"
    rank = "the first candidate" if not skipped else "the first candidate left"
    reason = f"{dtype} on {backend}: {rank} for fidelity={fidelity!r}, {source}"
    return reason + ("; skipped " + "; ".join(skipped) if skipped else "")


def _nothing_fits(root, preset, dtypes, dtype, backend, fidelity, skipped) -> BackendUnavailableError:
    if not preset:
        formats = next(iter(dtypes.values()))["formats"]
        if backend == "auto":
            return BackendUnavailableError(
                f"No runtime backend reads this artifact's formats {formats}; export onnx or openvino."
            )
        return BackendUnavailableError(
            f"Backend {backend!r} needs the {BACKENDS[backend].format} format; this artifact has {formats}."
        )
    wanted = f"dtype={dtype!r}, backend={backend!r}, fidelity={fidelity!r}"
    return BackendUnavailableError(
        f"No artifact under {root} fits {wanted} on this machine ({sorted(dtypes)} exist): "
        + ("; ".join(skipped) or "none has a format that backend reads")
    )


def _unfit(record, fmt, dtype, backend, fidelity, machine, rules) -> str | None:
    """Why this artifact cannot be used here at this fidelity, or None."""
    needs = rules["needs"].get(f"{dtype}/{backend}")
    if needs and not set(needs) & machine.flags:
        return f"needs one of the CPU features {needs}, which this CPU lacks"
    missing = [f for f in record["requires_cpu_flags"].get(fmt, []) if f not in machine.flags]
    if missing:
        return f"compiled for CPU features this CPU lacks: {missing}"
    limit, measured = rules["fidelity"][fidelity], record["parity"].get(fmt, {})
    if "dtypes" in limit and dtype not in limit["dtypes"]:
        return f"fidelity={fidelity!r} takes only {limit['dtypes']}"
    scaled = measured.get("max_scaled_diff", measured.get("max_abs_diff", float("inf")))
    if "max_abs" in limit and not scaled <= limit["max_abs"]:
        return f"max abs diff {scaled} (in units of the output's scale) against Keras exceeds {limit['max_abs']}"
    if "min_cosine" in limit and not measured.get("min_cosine", -1.0) >= limit["min_cosine"]:
        return f"min cosine {measured.get('min_cosine')} against Keras is below {limit['min_cosine']}"
    agreement = measured.get("generation_agreement")
    if "min_generation_agreement" in limit and agreement is not None and agreement < limit["min_generation_agreement"]:
        return f"greedy agreement {agreement:.1%} with Keras is below {limit['min_generation_agreement']:.0%}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Print this machine's CPU class and candidate order, and the choice for a preset directory if given."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    machine = Machine.this()
    print(f"machine: {machine.name}; CPU class {cpu_class(machine)}; GPU usable: {machine.gpu}")
    for kind in (ENCODER, DECODING_STEP):
        order, source = candidates(machine, kind)
        print(f"{kind}: " + ", ".join(f"{d}/{b}" for d, b in order) + f"  ({source})")
    for root in argv:
        for fidelity in FIDELITIES:
            try:
                print(f"{root} fidelity={fidelity}: {choose(Path(root), fidelity, machine=machine).reason}")
            except (ArtifactError, BackendUnavailableError) as error:
                print(f"{root} fidelity={fidelity}: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
