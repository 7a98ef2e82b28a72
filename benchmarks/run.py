"""`make bench`: latency, memory and fidelity of our artifacts against the peers, in one run.

    python benchmarks/run.py --preset deberta_v3_base_en --weights random
        [--dtype float32[,int8,bfloat16]] [--backends onnxruntime,openvino,xla_aot,optimum_ort,optimum_intel_f32,...]
        [--shapes 1x128,8x128,1x512,8x512]

1. export time and peak RSS per format (/usr/bin/time -v, benchmarks/export_memory.py),
   then the artifact itself (all formats) unless it exists; further dtypes in --dtype
   are exported too and our backends on them appear as "<backend> <dtype>";
2. our backends on the artifact's `encoder` graph at every shape: p50/p90/p99, throughput
   (xla_aot on request: the float32 artifact is then exported with it, default buckets);
3. T5: greedy generation of 32 tokens from a 64-token input, and decode-step latency
   at positions 1, 64 and 256;
4. fidelity of every row of ours against our float32 artifact on onnxruntime on the same
   inputs (min per-token cosine, max abs diff; greedy token agreement), next to the
   export's own parity against Keras from the manifest (keras_max_abs_diff);
5. peers (benchmarks/peers.py: Keras, PyTorch, Optimum + onnxruntime fp32 / int8 / O2,
   optimum-intel f32 / bf16 / int8), each in its own process, at the same shapes and
   threads, each row with its fidelity against its own fp32 route;
6. rows to results/bench.jsonl and .csv, a Markdown summary with ratios to
   Optimum + onnxruntime and the fastest peer within each precision's bound, and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import RESULTS, ROOT, agreement, fidelity, stamp, time_call, write_rows  # noqa: E402
from benchmarks.peers import PEERS as PEER_BUILDERS, peers_for  # noqa: E402  (no peer library imported here)
from benchmarks.report import row_key, write_report  # noqa: E402

OURS = ("onnxruntime", "openvino")
# Ours on request (--backends ...,xla_aot): its float32 artifact also gets that format,
# with the default buckets (the shapes timed must fit them).
OPT_IN = ("xla_aot",)
PEERS = tuple(PEER_BUILDERS)
DEFAULT_BACKENDS = OURS + PEERS
REFERENCE_NAME = "ours onnxruntime float32"
# Fewer, longer calls for generation; more, shorter ones for a single decode step.
TIMING = {"greedy_generate": {"warmup": 1, "runs": 5}, "decoder_step": {"warmup": 2, "runs": 20}}


def parse_shapes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in item.split("x")) for item in text.split(",") if item]


def export_artifact(preset: str, dtype: str, weights: str, out: Path, extra_formats: tuple[str, ...] = ()) -> tuple[Path, str | None]:
    """The artifact directory, exported unless present with every format asked for; and the
    error line if the export failed. `extra_formats` are opt-in formats added to the defaults."""
    from export.formats.dtypes import formats_for

    name = Path(preset).resolve().name if Path(preset).is_dir() else preset
    path = out / name / dtype
    refused = _family_refusals(preset)  # asked for by name they would fail the whole dtype
    formats = [f for f in (*formats_for(dtype), *extra_formats) if (f, dtype) not in refused]
    if (path / "manifest.json").is_file() and set(formats) <= set(json.loads((path / "manifest.json").read_text())["formats"]):
        return path, None
    command = [sys.executable, "-m", "export", preset, "--dtype", dtype, "--weights", weights, "--out", str(out),
               "--formats", ",".join(formats)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if run.returncode == 0:
        return path, None
    error = next((line for line in reversed(run.stderr.splitlines()) if line.startswith("error:")), "")
    print(f"{dtype}: export refused: {error or run.stderr[-500:]}", file=sys.stderr)
    return path, error or run.stderr[-500:]


def _family_refusals(preset: str) -> set[tuple[str, str]]:
    """(format, dtype) pairs a seed preset's family refuses outright (T5: SavedModel float16);
    a local directory's are not known before it loads (none are left out)."""
    from export.errors import UnknownPresetError
    from export.families import seed_preset

    try:
        return set(seed_preset(preset)[0].refused_dtypes)
    except UnknownPresetError:
        return set()


def export_rows(preset: str, weights: str) -> list[dict]:
    from benchmarks.export_memory import measure

    rows = []
    for fmt in ("saved_model", "onnx", "openvino"):
        row = measure(preset, fmt, weights)
        rows.append({"measure": "export", "backend": fmt, "wall_seconds": row["wall_seconds"],
                     "peak_rss_gb": row["peak_rss_gb"], "max_abs_diff": row["max_abs_diff"].get(fmt)})
    return rows


def our_rows(artifact: Path, backends: list[str], shapes: list[tuple[int, int]], reference: dict | None = None,
             precision: str | None = None, generate_batches: tuple[int, ...] = (1,)) -> list[dict]:
    """Our backends on one artifact: latency, and fidelity against `reference` (outputs of our
    float32 onnxruntime artifact on the same inputs, from reference_outputs) when given.
    Greedy generation is timed at each of `generate_batches`."""
    rows = []
    for row, call, end in our_calls(artifact, backends, shapes, precision, generate_batches):
        if reference is not None:
            row.update(compare(call(), reference[row_key(row)], end), fidelity_reference=REFERENCE_NAME)
        rows.append({**row, **time_call(call, **TIMING.get(row["measure"], {}))})
    return rows


def our_calls(artifact: Path, backends: list[str], shapes: list[tuple[int, int]], precision: str | None = None,
              generate_batches: tuple[int, ...] = (1,)) -> Iterator[tuple[dict, Callable[[], Any], int]]:
    """(row fields, call, end token) for every measurement of our backends on one artifact;
    each backend's model stays loaded while its calls are held."""
    import runtime

    manifest = json.loads((artifact / "manifest.json").read_text())
    keras = keras_parity(manifest)
    # Generation is timed with the end token disabled (generation_calls); agreement stops at it.
    end = (manifest.get("generation") or {}).get("end_token_id", -1)
    for backend in backends:
        if {"onnxruntime": "onnx"}.get(backend, backend) not in manifest["formats"]:
            continue  # e.g. no ONNX graph in a bfloat16 artifact
        model = runtime.load(artifact, backend=backend, verify=False, precision=precision)
        common = {"backend": backend, "ours": True, "dtype": model.dtype, "engine_precision": model.precision,
                  "precision": precision_class(model.dtype, model.precision), **keras.get(model.engine.format, {})}
        for fields, call in calls(model, shapes, generate_batches):
            yield {**fields, **common}, call, end


def reference_outputs(artifact: Path, shapes: list[tuple[int, int]]) -> dict:
    """Outputs of our float32 artifact on onnxruntime (within 1e-4 of Keras) for every bench call."""
    import runtime

    model = runtime.load(artifact, backend="onnxruntime", verify=False)
    return {row_key(fields): call() for fields, call in calls(model, shapes)}


def calls(model, shapes: list[tuple[int, int]], generate_batches: tuple[int, ...] = (1,)) -> Iterator[tuple[dict, Callable[[], Any]]]:
    """(row fields, call returning the outputs) for every measurement on one loaded model:
    the encoder at each shape; for T5, greedy 64 -> 32 tokens at each of `generate_batches`
    and decode steps at 1, 64, 256."""
    from runtime.roles import graph_with_role

    encoder = graph_with_role(model.signature, "encoder")
    signature = model.signature[encoder]
    for batch, length in shapes:
        rng = np.random.default_rng(0)
        feeds = {}
        for spec in signature["inputs"]:
            if spec["kind"] == "token_ids":
                feeds[spec["name"]] = rng.integers(2, model.vocabulary_size, (batch, length)).astype(np.int32)
            else:
                feeds[spec["name"]] = np.ones((batch, length), np.int32)
        yield {"measure": "encoder", "batch": batch, "sequence": length}, partial(model.run, feeds, graph=encoder)
    if "generate" in model.tasks:
        yield from generation_calls(model, generate_batches)


def generation_calls(model, batches: tuple[int, ...] = (1,)) -> Iterator[tuple[dict, Callable[[], Any]]]:
    """Greedy 64 -> 32 tokens at each batch (end token disabled so every run decodes 32), and
    single steps at batch 1."""
    from runtime.generation import CachedDecoder, TokenIds, greedy
    from runtime.roles import DecodingGraphs

    rng = np.random.default_rng(0)
    prompts = rng.integers(2, model.vocabulary_size, (max(batches), 64)).astype(np.int32)
    engine, signature = model.engine.run, DecodingGraphs.from_graphs(model.signature)
    never_ends = TokenIds(decoder_start=0, end=-1, pad=0)

    for batch in batches:
        def generate(ids=prompts[:batch], batch=batch):
            return greedy(CachedDecoder(engine, signature, ids, np.ones_like(ids), 32), batch, 32, never_ends)

        yield {"measure": "greedy_generate", "batch": batch, "sequence": 64, "new_tokens": 32}, generate
    ids = prompts[:1]
    mask = np.ones_like(ids)
    decoder = CachedDecoder(engine, signature, ids, mask, 257)
    cache, token = decoder.cache, np.array([5], np.int32)
    for position in (1, 64, 256):
        def step(position=position):
            decoder.cache = cache
            return decoder.step(token, position)

        yield {"measure": "decoder_step", "batch": 1, "cache_length": 257, "position": position}, step


def compare(got: Any, want: Any, end: int) -> dict:
    """Token agreement for generated ids (each row up to the end token `end`), else min
    cosine and max abs diff."""
    if isinstance(want, np.ndarray) and np.issubdtype(want.dtype, np.integer):
        return {"token_agreement": agreement(got, want, end)}
    return fidelity(got, want)


def keras_parity(manifest: dict) -> dict[str, dict]:
    """Per format, the export's parity against Keras (manifest): worst max abs diff and, for
    reduced dtypes, worst cosine over every graph output and validation case."""
    parity: dict[str, dict] = {}
    for record in manifest["parity"]:
        entry = parity.setdefault(record["format"], {"keras_max_abs_diff": 0.0})
        entry["keras_max_abs_diff"] = max(entry["keras_max_abs_diff"], record["max_abs_diff"])
        if "cosine" in record:
            entry["keras_min_cosine"] = min(entry.get("keras_min_cosine", 1.0), record["cosine"])
    return parity


def precision_class(dtype: str, engine_precision: str) -> str:
    """fp32 / fp16 / bf16 / int8 / int4: what a row is compared as (int8, int4 and float16 by their weights)."""
    if dtype in ("int8", "int4"):
        return dtype
    if dtype == "bfloat16" or engine_precision in ("bf16", "bfloat16"):
        return "bf16"
    return "fp16" if dtype == "float16" else "fp32"


def peer_rows(peer: str, family: str, config: dict, shapes: list[tuple[int, int]]) -> list[dict]:
    command = [sys.executable, str(ROOT / "benchmarks" / "peers.py"), peer, "--family", family,
               "--config", json.dumps(config), "--shapes", ",".join(f"{b}x{s}" for b, s in shapes)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    rows = [json.loads(line[4:]) for line in run.stdout.splitlines() if line.startswith("ROW ")]
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        if run.returncode < 0:  # e.g. a native crash: the last stderr line is not the cause
            reason = f"killed by {signal.Signals(-run.returncode).name}; last output: {reason}"
        print(f"peer {peer} failed: {reason}", file=sys.stderr)
        rows.append({"measure": "error", "backend": peer, "error": reason[:500]})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="deberta_v3_base_en")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS))
    parser.add_argument("--shapes", default="1x128,8x128,1x512,8x512")
    parser.add_argument("--out", type=Path, default=ROOT / "graphs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--skip-export-memory", action="store_true")
    args = parser.parse_args(argv)
    backends, shapes = [b for b in args.backends.split(",") if b], parse_shapes(args.shapes)

    dtypes = args.dtype.split(",")
    ours = [b for b in backends if b in OURS + OPT_IN]
    extra = tuple(b for b in ours if b in OPT_IN) if dtypes[0] == "float32" else ()
    artifact, error = export_artifact(args.preset, dtypes[0], args.weights, args.out, extra)
    if error:
        raise SystemExit(error)
    manifest = json.loads((artifact / "manifest.json").read_text())
    rows = [] if args.skip_export_memory else export_rows(args.preset, args.weights)
    # Every row of ours is compared with our float32 artifact on onnxruntime, exported
    # here too when --dtype does not include float32.
    reference = None
    if ours:
        reference_artifact, error = export_artifact(args.preset, "float32", args.weights, args.out)
        if error:
            raise SystemExit(f"the float32 reference artifact: {error}")
        reference = reference_outputs(reference_artifact, shapes)
    rows += our_rows(artifact, ours, shapes, reference)
    for dtype in dtypes[1:]:  # the fastest paths, against the same peers in the same run
        other, error = export_artifact(args.preset, dtype, args.weights, args.out)
        if error:
            rows.append({"measure": "error", "backend": f"export {dtype}", "error": error})
            continue
        rows += [{**r, "backend": f"{r['backend']} {dtype}"} for r in our_rows(other, ours, shapes, reference)]
    config = {k: v for k, v in manifest["config"].items() if k not in ("name", "trainable", "dtype")}
    for peer in peers_for(manifest["family"], backends):
        rows += peer_rows(peer, manifest["family"], config, shapes)
    common = {"benchmark": "bench", "preset": manifest["preset"], "dtypes": args.dtype,
              "weights": manifest["weights"]["origin"], **stamp()}
    rows = [{**common, **row} for row in rows]
    write_rows(rows, "bench", args.results)
    summary = write_report(rows, args.results, manifest["preset"])
    print(summary)
    if any(g.get("role") == "decoding_step" for g in manifest["graphs"].values()) and "onnx" in manifest["formats"]:
        from benchmarks.search import main as search_rows  # the one-graph generation (onnx_text) against generate

        print("\nT5 generation in one graph (onnxruntime's BeamSearch) against runtime generate, same artifact:")
        search_rows([str(artifact), "--results", str(args.results)])
        from benchmarks.generation_sampling import main as sampling_rows  # top_k and streaming against greedy

        print("\nT5 generation: top_k (k=50) and streaming against greedy, same artifact and backend:")
        sampling_rows([str(artifact), "--results", str(args.results)])
    from runtime.choice import main as print_choices

    print("\nWhat runtime.load would choose on this machine (runtime/choices.json):")
    print_choices([str(artifact.parent)])
    return rows


if __name__ == "__main__":
    main()
