"""SIGKILL exports at random moments: never a visible incomplete artifact, never a lost one, no scratch left.

    python benchmarks/kill_export.py [--kills 20] [--publish-kills 10] [--seed 0]

Export rounds: `python -m export <tiny preset> --formats onnx --out OUT`, each in its
own process group with a private TMPDIR, is killed (the whole group, SIGKILL) after a
random delay within 1.1 x the duration of an uninterrupted export. After every kill:
OUT/<preset>/float32 is absent only before the first completed export, and otherwise a
complete artifact that `runtime.load` verifies; the private TMPDIR holds nothing beyond
what an uninterrupted export leaves there (OpenVINO's own `.ses` file). The next
round's export cleans up what the killed one left (its owner file says what) and says
so. A final export runs to completion: only `float32` remains.

Publication rounds kill a process that republishes an artifact in a loop with the
exchange unavailable (the two-rename fallback, paused between the renames so kills
land there): after each kill the next publication restores or keeps a complete
artifact. With Linux's RENAME_EXCHANGE there is no such window at all.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PUBLISH_LOOP = """
import os, sys, time
from pathlib import Path
from export import staging
staging.exchange = lambda a, b: False
real_rename = os.rename
def slow_rename(a, b):
    real_rename(a, b)
    time.sleep(0.05)
os.rename = slow_rename
final = Path(sys.argv[1])
for round in range(10**6):
    with staging.staged_directory(final) as directory:
        (directory / "weights.bin").write_bytes(os.urandom(1 << 16))
        (directory / "manifest.json").write_text(str(round))
"""


def export_command(preset: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "export", str(preset), "--formats", "onnx", "--out", str(out)]


def start(command: list[str], tmp: Path) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmp), TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the export and anything it started
    except ProcessLookupError:
        pass
    process.wait()


def check_artifact(final: Path, must_exist: bool) -> str | None:
    """None when `final` is absent (and may be) or complete and verified; else the problem."""
    import runtime

    if not final.exists():
        return "the previous artifact was lost" if must_exist else None
    try:
        runtime.load(final, backend="onnxruntime")
    except Exception as error:  # noqa: BLE001 - any failure is the finding
        return f"visible artifact does not load: {type(error).__name__}: {error}"
    return None


def export_rounds(preset: Path, work: Path, kills: int, rng: random.Random) -> list[dict]:
    out, tmp = work / "out", work / "tmp"
    tmp.mkdir()
    final = out / preset.name / "float32"
    started = time.monotonic()
    first = start(export_command(preset, out), tmp)
    if first.wait() != 0:
        raise SystemExit(f"an uninterrupted export failed: {first.stderr.read().decode()[-2000:]}")
    duration = time.monotonic() - started
    published_once = True
    # What the engines themselves keep in TMPDIR (OpenVINO's `.ses`): not export scratch.
    baseline = {p.name for p in tmp.iterdir()}
    rows = []
    for round_ in range(kills):
        delay = rng.uniform(0, 1.1 * duration)
        process = start(export_command(preset, out), tmp)
        time.sleep(delay)
        finished = process.poll() is not None
        kill(process)
        problem = check_artifact(final, published_once)
        leftovers = sorted({p.name for p in tmp.iterdir()} - baseline)
        rows.append({"round": round_, "delay_s": round(delay, 2), "finished_before_kill": finished,
                     "problem": problem, "tmp_leftovers": leftovers,
                     "siblings": sorted(p.name for p in final.parent.iterdir())})
        print(f"kill {round_:2d} at {delay:5.1f} s: {'finished first' if finished else 'killed'}; "
              f"{problem or 'artifact ok'}; tmp {leftovers or 'empty'}; siblings {rows[-1]['siblings']}")
    last = start(export_command(preset, out), tmp)
    stderr = last.communicate()[1].decode()
    rows.append({"round": "final", "exit": last.returncode, "cleanup_lines": [l for l in stderr.splitlines() if "removing" in l or "restored" in l],
                 "siblings": sorted(p.name for p in final.parent.iterdir()),
                 "tmp_leftovers": sorted({p.name for p in tmp.iterdir()} - baseline)})
    print(f"final export: exit {last.returncode}, siblings {rows[-1]['siblings']}, tmp {rows[-1]['tmp_leftovers'] or 'empty'}")
    return rows


def publish_rounds(work: Path, kills: int, rng: random.Random) -> list[dict]:
    from export import staging

    final = work / "published" / "float32"
    rows = []
    for round_ in range(kills):
        process = start([sys.executable, "-c", PUBLISH_LOOP, str(final)], work)
        time.sleep(rng.uniform(0.3, 1.5))
        kill(process)
        visible = (final / "manifest.json").is_file()
        with staging.staged_directory(final) as directory:  # the next publication cleans up
            (directory / "manifest.json").write_text("next")
        siblings = sorted(p.name for p in final.parent.iterdir())
        rows.append({"round": round_, "visible_after_kill": visible, "siblings_after_next": siblings})
        print(f"publish kill {round_:2d}: artifact {'visible' if visible else 'MISSING (restored next)'}; after next publish {siblings}")
    return rows


def summarize(export_rows: list[dict], publish_rows: list[dict]) -> dict:
    kills = [r for r in export_rows if r["round"] != "final"]
    final = export_rows[-1]
    return {
        "export_kills": len(kills),
        "killed_mid_export": sum(not r["finished_before_kill"] for r in kills),
        "broken_or_lost": sum(r["problem"] is not None for r in kills),
        "tmp_leftovers": sum(bool(r["tmp_leftovers"]) for r in kills) + bool(final["tmp_leftovers"]),
        "final_siblings": final["siblings"],
        "publish_kills": len(publish_rows),
        "publish_missing_after_kill": sum(not r["visible_after_kill"] for r in publish_rows),
        "publish_left_over": sum(r["siblings_after_next"] != ["float32"] for r in publish_rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--publish-kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default="benchmarks/results/kill_export.jsonl")
    args = parser.parse_args(argv)
    import warnings

    from benchmarks.tiny import DEBERTA_PIECES, TINY_DEBERTA, save_preset, train_vocabulary

    warnings.simplefilter("ignore")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        vocabulary = train_vocabulary(TINY_DEBERTA["vocabulary_size"], **DEBERTA_PIECES)
        preset = save_preset(work / "presets" / "tiny_deberta", "DebertaV3Backbone", TINY_DEBERTA,
                             "DebertaV3Tokenizer", vocabulary)
        export_rows = export_rounds(preset, work, args.kills, rng)
        publish_rows = publish_rounds(work, args.publish_kills, rng)
    summary = summarize(export_rows, publish_rows)
    print(json.dumps(summary))
    with open(args.results, "a") as out:
        out.write(json.dumps({**summary, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    ok = not summary["broken_or_lost"] and not summary["tmp_leftovers"] and summary["final_siblings"] == ["float32"]
    return 0 if ok and not summary["publish_left_over"] else 1


if __name__ == "__main__":
    sys.exit(main())
