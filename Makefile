# Two entry points set up a fresh machine: `make export` and `make test`.
# Both create .venv when it is missing and install the project into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

PRESET ?= deberta_v3_extra_small_en
DTYPE ?= float32
# Empty: every format that supports DTYPE.
FORMATS ?=
WEIGHTS ?= auto
OUT ?= graphs
# xla_aot static shapes, BATCHxSEQUENCE,...; empty: batch 1, 2, 4 x sequence 64 ... 512.
BUCKETS ?=
# xla_aot decoding-step cache lengths, N,...; empty: 32,128.
CACHE_LENGTHS ?=
TASK ?=
# Opt-in graphs, e.g. GRAPHS=backbone (T5's whole encoder-decoder pass).
GRAPHS ?=
# CALIBRATION=texts.txt: one text per line for every calibrated step (else synthetic token ids).
# EVAL=eval.tsv: examples each dtype is scored on against float32 Keras; METRIC_DROP= bounds the loss.
CALIBRATION ?=
EVAL ?=
METRIC_DROP ?=

# Quiet TensorFlow's C++ start-up chatter; errors still print.
export TF_CPP_MIN_LOG_LEVEL ?= 2

BENCH_VENV ?= .venv-bench
# Serving (serve/): Triton's server and client, Ray Serve, the runtime; no TensorFlow.
SERVE_VENV ?= .venv-serve
# make serve-repo ARTIFACT=graphs/<preset>/<dtype> [OUT=serving/<name>]
ARTIFACT ?=
# Empty: ours and every peer in benchmarks/peers.py (Optimum + onnxruntime fp32/int8/O2,
# optimum-intel f32/bf16/int8, PyTorch, Keras).
BACKENDS ?=
SHAPES ?=
# Seconds Optimum's ORTOptimizer O2 may take before its peer is recorded as not finished.
O2_LIMIT_S ?= 300

.PHONY: export test disk-check venv serve-venv serve-repo serve bench-serve list choices bench bench-dtypes bench-aot bench-export-memory fuzz kill-test clean cpp-deps aarch64-deps test-aarch64

# The stamp depends on pyproject.toml so a changed dependency reinstalls.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[export,dev]'
	touch $@

venv: $(VENV)/.installed

$(SERVE_VENV)/.installed: pyproject.toml
	test -x $(SERVE_VENV)/bin/python || $(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install --quiet -e '.[serve]'
	touch $@

serve-venv: $(SERVE_VENV)/.installed

# Triton on 127.0.0.1:8000 with the python models of a repository written from ARTIFACT, until Ctrl-C.
serve: $(SERVE_VENV)/.installed serve-repo
	$(SERVE_VENV)/bin/python -m serve.triton_server $(or $(filter-out graphs,$(OUT)),serving/$(notdir $(patsubst %/,%,$(dir $(ARTIFACT))))_$(notdir $(ARTIFACT)))

# Triton under concurrent clients against the runtime in-process (benchmarks/serve.py).
SERVE_ARTIFACTS ?= graphs/deberta_v3_base_en/float32 graphs/t5_1.1_small/float32
bench-serve: $(SERVE_VENV)/.installed
	$(SERVE_VENV)/bin/python benchmarks/serve.py $(SERVE_ARTIFACTS)

# A Triton model repository from an artifact (serve/triton_repository.py); OUT defaults to serving/<preset>_<dtype>.
serve-repo: $(VENV)/.installed
	@test -n "$(ARTIFACT)" || { echo "error: ARTIFACT=graphs/<preset>/<dtype> is required" >&2; exit 2; }
	$(PY) -m serve.triton_repository $(ARTIFACT) $(if $(filter command line,$(origin OUT)),$(OUT))

export: $(VENV)/.installed
	$(PY) -m export $(PRESET) --dtype $(DTYPE) $(if $(FORMATS),--formats $(FORMATS)) --weights $(WEIGHTS) --out $(OUT) $(if $(TASK),--task $(TASK)) $(if $(BUCKETS),--buckets $(BUCKETS)) $(if $(CACHE_LENGTHS),--cache-lengths $(CACHE_LENGTHS)) $(if $(GRAPHS),--graphs $(GRAPHS)) $(if $(CALIBRATION),--calibration $(CALIBRATION)) $(if $(EVAL),--eval $(EVAL)) $(if $(METRIC_DROP),--metric-drop $(METRIC_DROP))

list: $(VENV)/.installed
	$(PY) -m export --list

# What runtime.load(graphs/$(PRESET)) chooses on this machine, and the candidate order it uses.
choices: $(VENV)/.installed
	$(PY) -m runtime.choice $(OUT)/$(PRESET)

# The two venvs install side by side (pip's cache is safe to share), and the aarch64
# sysroot and wheels (network-bound) beside the serving venv once the project's is there.
test: cpp-deps disk-check
	$(MAKE) --no-print-directory -j2 $(VENV)/.installed $(SERVE_VENV)/.installed aarch64-deps
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15 tests

# linux-aarch64 under Debian's qemu-user: qemu-user and g++-aarch64-linux-gnu on the host, and
# in a cache outside the tree (AARCH64_CACHE, default ~/.cache/keras-aot-export/aarch64) a
# sysroot of Debian arm64 packages (CPython 3.11, sentencepiece's C++ library), the runtime's
# aarch64 wheels and OpenVINO's (aarch64/setup.sh; seconds once done). It takes the pip and
# numpy version of $(VENV), so it waits for it.
aarch64-deps: $(VENV)/.installed
	@PIP=$(VENV)/bin/pip aarch64/setup.sh

# The runtime on aarch64 (outputs recorded here, replayed under qemu) and the OpenVINO C++
# examples cross-compiled and run under qemu.
test-aarch64: aarch64-deps
	$(PY) -m pytest -q tests/embedding/test_aarch64.py tests/embedding/test_aarch64_cpp.py

# make test needs room for both venvs (~4 GiB, skipped when installed), the tests'
# temporary artifacts (~1 GiB under TMPDIR) and the aarch64 cache: refuse up front, naming what is missing,
# rather than fail half-way through pip with ENOSPC.
disk-check:
	@need=$$([ -f $(VENV)/.installed ] && [ -f $(SERVE_VENV)/.installed ] && echo 1 || echo 5); \
	for dir in . $${TMPDIR:-/tmp}; do \
		free=$$(df -Pk "$$dir" | awk 'NR==2 {printf "%.1f", $$4 / 1048576}'); \
		awk -v f=$$free -v n=$$need 'BEGIN {exit !(f < n)}' && \
			{ echo "error: $$dir has $$free GiB free; make test needs $$need GiB (venvs and test artifacts)" >&2; exit 1; }; \
	done; \
	cache=$${AARCH64_CACHE:-$$HOME/.cache/keras-aot-export/aarch64}; [ -f "$$cache/stamp" ] && exit 0; \
	dir=$$cache; while [ ! -d "$$dir" ]; do dir=$$(dirname "$$dir"); done; \
	free=$$(df -Pk "$$dir" | awk 'NR==2 {printf "%.1f", $$4 / 1048576}'); \
	awk -v f=$$free 'BEGIN {exit !(f < 1)}' && \
		{ echo "error: $$dir has $$free GiB free; the aarch64 cache (make aarch64-deps, ~0.3 GiB) needs 1 GiB" >&2; exit 1; }; \
	true

# The C++ examples (examples/cpp, run by the tests) need g++ and sentencepiece's C++
# library; Debian ships it as libsentencepiece-dev.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
cpp-deps:
	@command -v g++ >/dev/null || { echo "error: the C++ examples need g++" >&2; exit 1; }
	@pkg-config --exists sentencepiece 2>/dev/null || { echo "installing libsentencepiece-dev for the C++ examples"; \
		$(SUDO) apt-get install -y -qq --no-install-recommends libsentencepiece-dev pkg-config >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends libsentencepiece-dev pkg-config >/dev/null; }; }

# The benchmark venv holds the project plus the peers (PyTorch, transformers, Optimum, optimum-intel),
# kept out of the project's own environment.
$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements-peers.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[export]' -r benchmarks/requirements-peers.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	BENCH_O2_TIME_LIMIT_S=$(O2_LIMIT_S) $(BENCH_VENV)/bin/python benchmarks/run.py --preset $(PRESET) --dtype $(DTYPE) --weights $(WEIGHTS) --out $(OUT) \
		$(if $(BACKENDS),--backends $(BACKENDS)) $(if $(SHAPES),--shapes $(SHAPES))

# Then the EVAL= metric drop per dtype and format on the trained tiny fixtures (a few minutes;
# DROPS=0 skips it): benchmarks/dtype_drops.py, results/summary_dtype_drops.md.
bench-dtypes: $(VENV)/.installed
	$(PY) benchmarks/dtypes.py --preset $(or $(BENCH_PRESET),deberta_v3_base_en) $(if $(SHAPES),--shapes $(SHAPES))
	$(if $(filter 0,$(DROPS)),,$(PY) benchmarks/dtype_drops.py)

# XLA AOT buckets against onnxruntime: AOT_ARTIFACT (FORMATS=xla_aot), COMPARE (one with onnx/).
bench-aot: $(VENV)/.installed
	$(PY) benchmarks/xla_aot.py --artifact $(AOT_ARTIFACT) $(if $(COMPARE),--compare $(COMPARE)) $(if $(SHAPES),--shapes $(SHAPES))

bench-export-memory: $(VENV)/.installed
	$(PY) benchmarks/export_memory.py --preset $(or $(BENCH_PRESET),deberta_v3_base_en) --formats $(or $(BENCH_FORMATS),onnx)

# Every public entry point on random inputs (CASES per entry point; make test runs a slice).
CASES ?= 10000
fuzz: $(VENV)/.installed
	$(PY) benchmarks/fuzz.py --cases $(CASES)

# Exports SIGKILLed at random moments (KILLS), and publications killed mid-way.
KILLS ?= 20
kill-test: $(VENV)/.installed
	$(PY) benchmarks/kill_export.py --kills $(KILLS)

clean:
	rm -rf $(VENV) $(BENCH_VENV)
