"""python -m export PRESET [--dtype] [--formats] [--weights] [--out] [format options] | --list"""

from __future__ import annotations

import argparse
import errno
import logging
import sys

from export.errors import ExportError, UnsupportedRequestError
from export.formats import FORMAT_NAMES, get_format
from export.formats.dtypes import check_dtype, formats_for
from export.presets import WEIGHTS_CHOICES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a keras_hub preset to SavedModel, ONNX and OpenVINO, validated against Keras.",
    )
    parser.add_argument(
        "preset",
        nargs="?",
        help="seed preset name (see --list), local keras_hub preset directory, or kaggle://, hf:// handle",
    )
    parser.add_argument("--list", action="store_true", help="list the seed presets and exit")
    # Read (and removed) by export/__main__.py before TensorFlow loads; listed here for --help.
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show TensorFlow's and the converters' own log lines and warnings")
    parser.add_argument(
        "--dtype", default="float32",
        help="artifact dtype: float32 (default), float16, bfloat16, int8, int4 (onnx, openvino), or all (the first four, from one load of the model)",
    )
    parser.add_argument(
        "--formats",
        default="",
        help=f"comma-separated, from {','.join(FORMAT_NAMES)} (default: every one that supports --dtype)",
    )
    parser.add_argument(
        "--weights",
        default="auto",
        choices=WEIGHTS_CHOICES,
        help="pretrained: download (fails without network); random: architecture only; "
        "auto: pretrained when the hub answers, else random with a warning",
    )
    parser.add_argument(
        "--task",
        default=None,
        help="text_classifier, masked_lm or seq2seq_lm: export that keras_hub task for a hub preset "
        "(a task preset directory brings its own)",
    )
    for name in FORMAT_NAMES:  # each format's own options (xla_aot: --buckets, --cache-lengths)
        for option in get_format(name).OPTIONS:
            parser.add_argument(f"--{option.name.replace('_', '-')}", default="", help=option.help)
    parser.add_argument(
        "--graphs", default="",
        help="opt-in graphs to add, comma-separated (T5: backbone, the whole encoder-decoder pass)",
    )
    parser.add_argument("--calibration", default="",
                        help="texts.txt: one UTF-8 text per line (T5: the encoder input), used by every "
                        "calibrated step instead of synthetic token ids (docs/formats-and-dtypes.md)")
    parser.add_argument("--eval", default="",
                        help="eval.tsv: examples each dtype is scored on against float32 Keras: classifier "
                        "text<TAB>label, masked LM text<TAB>masked word, T5 source<TAB>target, backbone one text per line")
    parser.add_argument("--metric-drop", type=float, default=None,
                        help="largest absolute drop of the --eval metric (default 0.01 for int8/int4, 0.005 otherwise)")
    parser.add_argument("--out", default="graphs", help="output root (default graphs/)")
    parser.add_argument("--seed", type=int, default=0, help="random-weight seed (default 0)")
    parser.add_argument("--traceback", action="store_true", help="show the traceback of an unexpected error")
    return parser


def parse_formats(text: str) -> list[str]:
    """'onnx, saved_model' -> ['onnx', 'saved_model'], each checked, duplicates dropped."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UnsupportedRequestError(f"FORMATS is empty; choose from {', '.join(FORMAT_NAMES)}.")
    for name in names:
        get_format(name)  # raises, naming the supported formats
    return list(dict.fromkeys(names))


def format_options(args: argparse.Namespace) -> dict[str, dict]:
    """{format: {option: value}} for the format options given on the command line, each parsed."""
    options = {}
    for name in FORMAT_NAMES:
        given = {o.name: o.parse(getattr(args, o.name)) for o in get_format(name).OPTIONS if getattr(args, o.name)}
        if given:
            options[name] = given
    return options


def list_presets() -> str:
    from export.families import seed_presets

    rows = [("preset", "family", "parameters", "fp32 weights")]
    for name, (family, preset) in seed_presets().items():
        rows.append((name, family.name, f"{preset.params:,}", f"{preset.params * 4 / 1e9:.2f} GB"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.list:
        print(list_presets())
        return 0
    if not args.preset:
        build_parser().print_usage(sys.stderr)
        print("error: PRESET is required (or --list)", file=sys.stderr)
        return 2
    try:
        formats = parse_formats(args.formats) if args.formats else None  # None: all that can
        check_dtype(formats or formats_for(args.dtype), args.dtype)  # before TensorFlow's import
        options = format_options(args)
        from export.pipeline import export_model

        path = export_model(
            args.preset,
            dtype=args.dtype,
            formats=formats,
            weights=args.weights,
            out=args.out,
            seed=args.seed,
            task=args.task or None,
            format_options=options,
            graphs=[g.strip() for g in args.graphs.split(",") if g.strip()],
            calibration=args.calibration or None,
            evaluation=args.eval or None,
            metric_drop=args.metric_drop,
        )
    except ExportError as error:
        print(f"error: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was published", file=sys.stderr)
        return 130
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _internal(error, args.traceback)
        print(f"error: OutputError: the disk under {args.out} is full ({error.strerror}); nothing was published", file=sys.stderr)
        return 2
    except Exception as error:  # a bug: still one line, the traceback on request
        return _internal(error, args.traceback)
    print(path)
    return 0


def _internal(error: Exception, traceback: bool) -> int:
    if traceback:
        raise error
    print(
        f"error: internal {type(error).__name__}: {_one_line(error)} (a bug in the exporter; "
        "rerun with --traceback for details)",
        file=sys.stderr,
    )
    return 1


def _one_line(error: BaseException) -> str:
    """The message on one line (converter output can span many)."""
    return " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
