"""Fuzz every public entry point; count exceptions that are not the documented ones.

    python benchmarks/fuzz.py --cases 10000 [--entry run,generate,...] [--bound-s 5]

Entry points and what each may raise (docs/errors.md):

    run, encode, generate, generate_stream,
    classify, fill_mask                            InputError
    load (mutated manifests and files)             ArtifactError, BackendUnavailableError
    cli (random arguments; the export stubbed)     exit 0 or 2 with one line, never 1

Artifacts: tiny random DeBERTa (encoder, classifier, masked LM) and T5 exports,
made once under a temporary directory. A case slower than --bound-s counts as a
hang. `make test` runs a fixed-seed slice (tests/runtime/test_fuzz.py); this script is
the large run, recorded in the closing note.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import runtime  # noqa: E402
from runtime import ArtifactError, BackendUnavailableError, InputError  # noqa: E402
from runtime.sampling import SETTINGS as SAMPLER_SETTINGS  # noqa: E402

TEXT = st.text(max_size=200)
ODD = st.one_of(st.none(), st.integers(-5, 10**9), st.floats(allow_nan=True), st.text(max_size=20), st.booleans(),
                st.lists(st.integers(-3, 200), max_size=5))
DTYPES = st.sampled_from([np.int32, np.int64, np.int8, np.uint16, np.float32, np.float64, np.bool_])
ARRAYS = DTYPES.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40)))
TOKEN_LISTS = st.lists(st.lists(st.integers(-3, 200), min_size=0, max_size=12), max_size=4)
# Texts with mask tokens somewhere (else fill_mask only ever refuses).
MASKED_TEXTS = st.lists(st.lists(st.one_of(st.just("[MASK]"), st.sampled_from(["the", "fox", "über", "東京", ""]), TEXT),
                                 min_size=1, max_size=8).map(" ".join), min_size=1, max_size=4)
TEXTS = st.one_of(st.lists(TEXT, max_size=5), st.lists(st.one_of(TEXT, ODD), max_size=3), TEXT, ODD,
                  st.lists(st.tuples(TEXT, TEXT), max_size=3))


def _run(models, case):
    return models["deberta"].run(case)


def _generate(models, case):
    inputs, kwargs = case
    return models["t5"].generate(inputs, **kwargs)


GENERATE_KWARGS = st.fixed_dictionaries({}, optional={
    "max_new_tokens": st.one_of(st.integers(-2, 12), st.sampled_from([10**6, 10**9]), ODD),
    "num_beams": st.one_of(st.integers(-2, 4), st.sampled_from([10**6]), ODD),
    "padding_mask": st.one_of(st.none(), ARRAYS, TOKEN_LISTS),
    "length_penalty": st.floats(-2, 2),
    # The sampler and its settings (runtime/sampling.py): valid ones often, so sampling runs.
    "sampler": st.one_of(st.sampled_from(["greedy", "beam", "random", "top_k", "top_p", "contrastive"]), ODD),
    "temperature": st.one_of(st.floats(1e-30, 10), st.floats(allow_nan=True, allow_infinity=True), ODD),
    "k": st.one_of(st.integers(-2, 130), ODD),
    "p": st.one_of(st.floats(0, 1), st.floats(-1, 2), ODD),
    "alpha": st.one_of(st.floats(0, 1), st.floats(-1, 2), ODD),
    "seed": st.one_of(st.integers(-2, 2**64), ODD),
    "early_stopping": st.one_of(st.booleans(), ODD),
    "stop_token_ids": st.one_of(st.lists(st.integers(-3, 130), max_size=4), st.lists(ODD, max_size=3), ODD),
    "no_repeat_ngram_size": st.one_of(st.integers(-2, 5), ODD),
    "repetition_penalty": st.one_of(st.floats(1e-30, 1e30), st.floats(allow_nan=True, allow_infinity=True), ODD),
})

# Consistent sampler settings, mostly in range, so that the samplers themselves run often.
_IN_RANGE = {
    "temperature": st.floats(1e-6, 1e6), "k": st.integers(1, 125), "p": st.floats(1e-9, 1.0), "alpha": st.floats(0, 1),
    "seed": st.integers(0, 2**63 - 1), "num_beams": st.integers(1, 4), "length_penalty": st.floats(-3, 3),
    "early_stopping": st.booleans(),
}
SAMPLER_KWARGS = st.sampled_from(["greedy", "beam", "random", "top_k", "top_p", "contrastive"]).flatmap(
    lambda name: st.fixed_dictionaries({"sampler": st.just(name), "max_new_tokens": st.integers(1, 8)}, optional={
        **{key: _IN_RANGE[key] for key in SAMPLER_SETTINGS[name]},
        "stop_token_ids": st.lists(st.integers(0, 119), max_size=3), "no_repeat_ngram_size": st.integers(0, 4),
        "repetition_penalty": st.floats(0.01, 100),
    }))


def _generate_stream(models, case):
    """The stream consumed whole: arguments are checked at the call, the steps run after."""
    inputs, kwargs = case
    return list(models["t5"].generate_stream(inputs, **kwargs))

@st.composite
def near_valid_feeds(draw):
    """token_ids / padding_mask that are right but for a few things: ids just out of range,
    mask values, dtypes, a length past the limit, mismatched axes."""
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 70))
    ids = draw(hnp.arrays(draw(st.sampled_from([np.int32, np.int64, np.int16])), (batch, length),
                          elements=st.integers(-1, 121)))
    mask_shape = draw(st.sampled_from([(batch, length), (batch, max(length - 1, 1)), (batch + 1, length)]))
    mask = draw(hnp.arrays(np.int32, mask_shape, elements=st.integers(0, draw(st.sampled_from([1, 1, 1, 2])))))
    return {"token_ids": ids, "padding_mask": mask}


# name -> (case strategy, call(models, case), exceptions the API documents)
ENTRY_POINTS: dict[str, tuple[Any, Callable, tuple[type, ...]]] = {
    "run": (st.one_of(near_valid_feeds(), st.dictionaries(st.sampled_from(["token_ids", "padding_mask", "other"]),
                                                           st.one_of(ARRAYS, ODD), max_size=3)),
            _run, (InputError,)),
    "encode": (st.tuples(TEXTS, st.one_of(st.none(), st.integers(-3, 100), ODD)),
               lambda m, c: m["deberta"].encode(c[0], max_length=c[1]), (InputError,)),
    "generate": (st.tuples(st.one_of(TEXTS, TOKEN_LISTS, ARRAYS), st.one_of(GENERATE_KWARGS, SAMPLER_KWARGS)),
                 _generate, (InputError,)),
    "generate_stream": (st.tuples(st.one_of(TEXTS, TOKEN_LISTS), st.one_of(GENERATE_KWARGS, SAMPLER_KWARGS)),
                        _generate_stream, (InputError,)),
    "classify": (TEXTS, lambda m, c: m["classifier"].classify(c), (InputError,)),
    "fill_mask": (st.tuples(st.one_of(MASKED_TEXTS, TEXTS), st.one_of(st.integers(-2, 5), ODD)),
                  lambda m, c: m["masked_lm"].fill_mask(c[0], top_k=c[1]), (InputError,)),
}

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=False), st.text(max_size=12)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=6)
LOAD_CASES = st.tuples(st.integers(0, 10**6), st.sampled_from(["replace", "delete", "truncate", "flip", "unlist"]), JSON)


class LoadTarget:
    """One working copy of an artifact, mutated per case and restored after."""

    def __init__(self, artifact: Path, work: Path) -> None:
        self.copy = work / "float32"
        shutil.copytree(artifact, self.copy)
        self.files = sorted(p for p in self.copy.rglob("*") if p.is_file())
        self.original = {p: p.read_bytes() for p in self.files}

    def __call__(self, models, case) -> None:
        pick, action, value = case
        manifest = json.loads(self.original[self.copy / "manifest.json"])
        try:
            if action in ("replace", "delete"):
                _mutate(manifest, pick, value if action == "replace" else _DELETE)
                (self.copy / "manifest.json").write_text(json.dumps(manifest))
            elif action == "unlist":
                manifest["files"].pop(sorted(manifest["files"])[pick % len(manifest["files"])])
                (self.copy / "manifest.json").write_text(json.dumps(manifest))
            else:
                path = self.files[pick % len(self.files)]
                data = bytearray(self.original[path])
                if action == "truncate":
                    data = data[: pick % max(len(data), 1)]
                elif data:
                    data[pick % len(data)] ^= 1 << (pick % 8)
                path.write_bytes(bytes(data))
            runtime.load(self.copy, backend=("onnxruntime", "openvino", "auto")[pick % 3]).run
        finally:
            for path, data in self.original.items():
                path.write_bytes(data)


_DELETE = object()


def _mutate(manifest: dict, pick: int, value: Any) -> None:
    """Replace (or delete) one entry, chosen by `pick` among every entry of the manifest."""
    entries = []

    def walk(node, parent, key):
        entries.append((parent, key))
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, node, k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, node, i)

    walk(manifest, None, None)
    parent, key = entries[1 + pick % (len(entries) - 1)]
    if value is _DELETE:
        del parent[key]
    else:
        parent[key] = value


CLI_ARGS = st.lists(st.one_of(
    st.sampled_from(["--dtype", "--formats", "--weights", "--task", "--buckets", "--out", "--seed", "--list",
                     "float32", "int8", "bfloat16", "float8", "onnx,openvino", "onnx,", "tflite", "random",
                     "1x64", "0x0", "8x", "-1x4", "nope", "deberta_v3_extra_small_en", "t5_1.1_small"]),
    st.text(max_size=12)), max_size=8)


def _cli(models, args) -> None:
    """The CLI on random arguments, export stubbed: exit 0 or 2 (argparse's own exit 2 included),
    one line on stderr for our errors; an exit of 1 (a bug) raises."""
    import export.pipeline
    from export.cli import main

    original = export.pipeline.export_model
    export.pipeline.export_model = lambda *a, **k: Path("stubbed")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    finally:
        export.pipeline.export_model = original
    if code not in (0, 2):
        raise AssertionError(f"exit {code} for {args}: {err.getvalue()!r}")
    if code == 2 and err.getvalue().startswith("error:") and err.getvalue().count("\n") > 1:
        raise AssertionError(f"multi-line error for {args}: {err.getvalue()!r}")


def fuzz(name: str, models: dict, cases: int, seed: int, bound_s: float, load_target: LoadTarget | None = None) -> dict:
    """Run `cases` cases of one entry point; returns counts and the undocumented exceptions seen."""
    if name == "load":
        strategy, call, allowed = LOAD_CASES, load_target, (ArtifactError, BackendUnavailableError)
    elif name == "cli":
        strategy, call, allowed = CLI_ARGS, _cli, ()
    else:
        strategy, call, allowed = ENTRY_POINTS[name]
    stats = {"entry": name, "cases": 0, "ok": 0, "documented": 0, "undocumented": [], "slowest_s": 0.0}

    @settings(max_examples=cases, deadline=None, derandomize=False, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def one(case):
        stats["cases"] += 1
        started = time.monotonic()
        try:
            call(models, case)
            stats["ok"] += 1
        except allowed:
            stats["documented"] += 1
        except Exception as error:  # noqa: BLE001 - what this script counts
            where = traceback.extract_tb(error.__traceback__)[-1]
            stats["undocumented"].append(
                f"{type(error).__name__}: {str(error)[:200]} at {Path(where.filename).name}:{where.lineno} <- {case!r:.200}"
            )
        if time.monotonic() - started > stats["slowest_s"]:
            stats["slowest_s"], stats["slowest_case"] = time.monotonic() - started, f"{case!r:.300}"

    random.seed(seed)
    np.random.seed(seed)
    from hypothesis import seed as hypothesis_seed

    hypothesis_seed(seed)(one)()
    stats["hangs"] = int(stats["slowest_s"] > bound_s)
    return stats


def build_models(work: Path) -> tuple[dict, dict]:
    """Tiny random artifacts (as the tests make them): name -> loaded model, name -> path."""
    from benchmarks.tiny import tiny_artifacts

    paths = tiny_artifacts(work)
    return {name: runtime.load(path, backend="onnxruntime") for name, path in paths.items()}, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--entry", default="run,encode,generate,generate_stream,classify,fill_mask,load,cli")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound-s", type=float, default=5.0)
    parser.add_argument("--results", default="benchmarks/results/fuzz.jsonl")
    args = parser.parse_args(argv)
    import tempfile
    import warnings

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as work:
        models, paths = build_models(Path(work))
        target = LoadTarget(paths["deberta"], Path(work) / "load")
        rows = []
        for name in args.entry.split(","):
            started = time.monotonic()
            stats = fuzz(name, models, args.cases, args.seed, args.bound_s, target)
            stats["seconds"] = round(time.monotonic() - started, 1)
            rows.append(stats)
            print(f"{name:10s} cases {stats['cases']:6d}  ok {stats['ok']:6d}  documented errors {stats['documented']:6d}  "
                  f"undocumented {len(stats['undocumented'])}  slowest {stats['slowest_s']:.2f} s  ({stats['seconds']} s)")
            for line in stats["undocumented"][:5]:
                print("   ", line)
    with open(args.results, "a") as out:
        for row in rows:
            out.write(json.dumps({**row, "undocumented": row["undocumented"][:20],
                                  "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    return int(any(r["undocumented"] or r["hangs"] for r in rows))


if __name__ == "__main__":
    sys.exit(main())
