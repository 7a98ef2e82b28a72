# Two entry points set up a fresh machine: `make export` and `make test`.
# Both create .venv when it is missing and install the project into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

PRESET ?= deberta_v3_extra_small_en
DTYPE ?= float32
FORMATS ?= saved_model,onnx,openvino
WEIGHTS ?= auto
OUT ?= graphs
TASK ?=

# Quiet TensorFlow's C++ start-up chatter; errors still print.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: export test venv list bench-export-memory clean

# The stamp depends on pyproject.toml so a changed dependency reinstalls.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[export,dev]'
	touch $@

venv: $(VENV)/.installed

export: $(VENV)/.installed
	$(PY) -m export $(PRESET) --dtype $(DTYPE) --formats $(FORMATS) --weights $(WEIGHTS) --out $(OUT) $(if $(TASK),--task $(TASK))

list: $(VENV)/.installed
	$(PY) -m export --list

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

bench-export-memory: $(VENV)/.installed
	$(PY) benchmarks/export_memory.py --preset $(or $(BENCH_PRESET),deberta_v3_base_en) --formats $(or $(BENCH_FORMATS),onnx)

clean:
	rm -rf $(VENV)
