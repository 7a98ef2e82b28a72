"""python -m export [-v|--verbose] ...: the CLI of export/cli.py, quiet unless -v (export/quiet.py)."""

import sys

from export.quiet import quiet_start_up, split_verbose

verbose, argv = split_verbose(sys.argv[1:])
if not verbose:
    quiet_start_up()  # before export.cli, which may import TensorFlow

from export.cli import main  # noqa: E402  (after the quiet set-up, on purpose)

raise SystemExit(main(argv))
