#!/usr/bin/env bash
# Runs a linux-aarch64 program under qemu-user against the sysroot aarch64/setup.sh prepared:
#   aarch64/exec.sh build/openvino_text ARTIFACT      (a cross-compiled example)
# aarch64/run.sh runs the sysroot's Python through this.
set -euo pipefail

cache=${AARCH64_CACHE:-$HOME/.cache/keras-aot-export/aarch64}
sysroot=$cache/sysroot

command -v qemu-aarch64 >/dev/null || { echo "error: qemu-aarch64 not found: run make aarch64-deps" >&2; exit 127; }
[ -f "$cache/stamp" ] && [ -x "$sysroot/usr/bin/python3.11" ] ||
  { echo "error: no aarch64 sysroot in $cache: run make aarch64-deps" >&2; exit 127; }
# Without it onnxruntime crashes on import under qemu 7.2 (setup.sh says why).
[ -f "$sysroot/proc/cpuinfo" ] ||
  { echo "error: no $sysroot/proc/cpuinfo: run make aarch64-deps" >&2; exit 127; }

# A Graviton2-class core (ARMv8.2 with the NEON dot product, no SVE), the one the sysroot's
# /proc/cpuinfo describes. AARCH64_CPU=cortex-a72 is a Raspberry Pi 4; max, every feature qemu has.
export QEMU_CPU=${AARCH64_CPU:-neoverse-n1}
# -L: the loader, libraries and any absolute path are looked up in the sysroot first.
exec qemu-aarch64 -L "$sysroot" "$@"
