#!/usr/bin/env bash
# Prepares what running the runtime and the C++ examples on linux-aarch64 under qemu-user
# needs, in a cache outside the work tree (AARCH64_CACHE, default ~/.cache/keras-aot-export/aarch64):
#   sysroot/        Debian bookworm arm64 packages unpacked with dpkg -x (never installed:
#                   python3.11:arm64 conflicts with the host's python3.11)
#   site-packages/  manylinux aarch64 wheels for CPython 3.11 (pip --platform --target)
#   openvino/       the OpenVINO aarch64 wheel (headers and libs, for the C++ cross build)
#   stamp           the versions installed; a second run with the same versions does nothing.
# Installs qemu-user and g++-aarch64-linux-gnu on the host when missing.
#
# Usage: aarch64/setup.sh        (PIP=<pip command> to use another pip than .venv's)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cache=${AARCH64_CACHE:-$HOME/.cache/keras-aot-export/aarch64}
pip=${PIP:-$repo/.venv/bin/pip}
sudo=$([ "$(id -u)" = 0 ] || echo sudo)

fail() { echo "error: aarch64 setup: $*" >&2; exit 1; }

# The runtime's wheels, at the versions pyproject.toml pins. numpy is unpinned there
# (>=1.26,<3): take the host venv's, so both sides run the same numpy.
numpy_version() {
  local py
  py=$(dirname "$pip")/python
  [ -x "$py" ] || fail "$py missing: run make venv first"
  "$py" -c 'import importlib.metadata as m; print(m.version("numpy"))'
}
wheels=("numpy==$(numpy_version)" "onnxruntime==1.31.1" "onnxruntime-extensions==0.15.2" "sentencepiece==0.2.3")
openvino_wheel="openvino==2026.4.1"
# Debian bookworm arm64: CPython 3.11 and the shared libraries it, its stdlib's extension
# modules and the wheels load (the Depends of python3.11-minimal, libpython3.11-minimal and
# libpython3.11-stdlib, resolved by hand: apt-cache depends --recurse also pulls in dpkg, tar,
# perl and mailcap), plus sentencepiece's C++ library for the cross-compiled examples
# (bookworm's carries its own protobuf: no libprotobuf-lite32).
debs=(
  libc6 libgcc-s1 libstdc++6 libgomp1 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5
  libcrypt1 libdb5.3 libncursesw6 libtinfo6 libnsl2 libtirpc3 libgssapi-krb5-2
  libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 libreadline8 libsqlite3-0
  libuuid1
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
  libsentencepiece0 libsentencepiece-dev
)
# pip does not widen a manylinux_2_x --platform to other tags, and these wheels carry
# different ones (openvino manylinux_2_35, onnxruntime 2_28, protobuf manylinux2014):
# bookworm's glibc 2.36 runs every manylinux_2_17 ... 2_36 wheel, so list each.
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
# pip compiles .pyc files with the host's CPython 3.11, whose bytecode the emulated 3.11 reads.
pip_target=(--quiet --disable-pip-version-check "${platforms[@]}"
  --python-version 3.11 --implementation cp --abi cp311 --only-binary=:all:)

host_tools() {
  local missing=()
  command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
  command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
  [ ${#missing[@]} = 0 ] && return
  echo "aarch64 setup: installing ${missing[*]} on the host"
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    fail "apt-get install ${missing[*]} failed"
}

# part NAME WANT: true when NAME was built from WANT (its stamp matches).
ready() { [ -f "$cache/$1.stamp" ] && [ "$(cat "$cache/$1.stamp")" = "$2" ]; }

sysroot() {
  ready sysroot "${debs[*]}" && [ -x "$cache/sysroot/usr/bin/python3.11" ] && return
  echo "aarch64 setup: sysroot from ${#debs[@]} Debian arm64 packages"
  # The arm64 package lists are what apt-get download needs; nothing arm64 is installed.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  if ! apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1; then
    $sudo apt-get update -qq || fail "apt-get update (for the arm64 package lists) failed"
  fi
  local names=() debdir=$cache/debs
  for pkg in "${debs[@]}"; do names+=("$pkg:arm64"); done
  rm -rf "$debdir" "$cache/sysroot.new" && mkdir -p "$debdir" "$cache/sysroot.new"
  # As root apt-get download drops to the _apt user, which must be able to write there.
  chmod 777 "$debdir"
  # Lists older than the mirror name versions it no longer has: update once and retry.
  (cd "$debdir" && apt-get download -qq "${names[@]}" 2>/dev/null) ||
    { $sudo apt-get update -qq && (cd "$debdir" && apt-get download -qq "${names[@]}"); } ||
    fail "apt-get download of the arm64 packages failed: ${names[*]}"
  for deb in "$debdir"/*.deb; do
    dpkg -x "$deb" "$cache/sysroot.new"
    dpkg-deb --show --showformat='${Package}=${Version}\n' "$deb" >> "$cache/sysroot.new/.versions"
  done
  [ -x "$cache/sysroot.new/usr/bin/python3.11" ] || fail "no usr/bin/python3.11 after unpacking ${names[*]}"
  rm -rf "$cache/sysroot" && mv "$cache/sysroot.new" "$cache/sysroot"
  rm -rf "$debdir"  # unpacked: the .debs are not needed again
  echo "${debs[*]}" > "$cache/sysroot.stamp"
}

site_packages() {
  ready site-packages "${wheels[*]}" && return
  echo "aarch64 setup: aarch64 wheels ${wheels[*]}"
  rm -rf "$cache/site-packages.new"
  "$pip" install "${pip_target[@]}" --target "$cache/site-packages.new" "${wheels[@]}" ||
    fail "pip found no manylinux aarch64 cp311 wheel for one of ${wheels[*]} (see pip's message above)"
  rm -rf "$cache/site-packages" && mv "$cache/site-packages.new" "$cache/site-packages"
  echo "${wheels[*]}" > "$cache/site-packages.stamp"
}

openvino() {
  ready openvino "$openvino_wheel" && return
  echo "aarch64 setup: OpenVINO aarch64 wheel $openvino_wheel (for the C++ cross build)"
  rm -rf "$cache/openvino.new"
  "$pip" install "${pip_target[@]}" --no-deps --target "$cache/openvino.new" "$openvino_wheel" ||
    fail "pip found no manylinux aarch64 cp311 wheel for $openvino_wheel"
  [ -d "$cache/openvino.new/openvino/include" ] || fail "$openvino_wheel has no openvino/include"
  rm -rf "$cache/openvino" && mv "$cache/openvino.new" "$cache/openvino"
  echo "$openvino_wheel" > "$cache/openvino.stamp"
}

# qemu-user 7.2 (bookworm) passes the host's /proc/cpuinfo through, x86-64 fields only;
# onnxruntime's cpuinfo library then finds no ARM processor and dereferences NULL on import
# (SIGSEGV after reading /sys/devices/system/cpu/cpu1/cache/index2/shared_cpu_list). qemu -L
# looks absolute paths up in the sysroot first, so an ARM /proc/cpuinfo there is what the
# guest reads: one Neoverse-N1 entry (exec.sh's default -cpu) per host CPU, as /sys lists them.
fake_cpuinfo() {
  local n i text=""
  n=$(getconf _NPROCESSORS_CONF)
  for ((i = 0; i < n; i++)); do
    text+="processor	: $i
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1

"
  done
  mkdir -p "$cache/sysroot/proc"
  [ -f "$cache/sysroot/proc/cpuinfo" ] && [ "$(cat "$cache/sysroot/proc/cpuinfo")" = "$(printf %s "$text")" ] && return
  printf %s "$text" > "$cache/sysroot/proc/cpuinfo"
}

# What is installed, for people and for exec.sh (which refuses to run without it).
write_stamp() {
  local text
  text="qemu: $(qemu-aarch64 --version | head -1)
cross compiler: $(aarch64-linux-gnu-g++ --version | head -1)
wheels: ${wheels[*]} $openvino_wheel
debs (arm64): $(sort "$cache/sysroot/.versions" | paste -sd' ')"
  [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$text" ] && return
  echo "$text" > "$cache/stamp.new" && mv "$cache/stamp.new" "$cache/stamp"
}

host_tools
mkdir -p "$cache"
sysroot
fake_cpuinfo
site_packages
openvino
write_stamp
