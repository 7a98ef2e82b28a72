#!/usr/bin/env bash
# Runs the aarch64 CPython 3.11 of the sysroot aarch64/setup.sh prepared, under qemu-user:
#   aarch64/run.sh aarch64/check.py plan.json
#   aarch64/run.sh -c 'import platform; print(platform.machine())'   # aarch64
# PYTHONPATH: the aarch64 wheels, then the repo root (`import runtime`, `import artifact`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${AARCH64_CACHE:-$HOME/.cache/keras-aot-export/aarch64}

export PYTHONPATH=$cache/site-packages:$(dirname "$here")
# qemu -L serves a path from the sysroot when it is there and the host's file otherwise:
# -S keeps Python's site module from adding the host's /usr/lib/python3/dist-packages
# (x86-64 code), -s ~/.local. Bytecode is the same on both machines (CPython 3.11's magic
# number), so the .pyc files pip compiled on the host spare emulated compiles here.
exec "$here/exec.sh" "$cache/sysroot/usr/bin/python3.11" -S -s "$@"
