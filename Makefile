# The commands of the README: `make demo`, `make lab`, `make test` (and `make screenshots`).
# Each sets everything up first (scripts/bootstrap.sh), so a fresh clone needs nothing else.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrapped

.PHONY: setup demo lab test bench lint screenshots clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $@

demo: setup
	LITELLM_LOCAL_MODEL_COST_MAP=True $(PY) examples/demo.py

# JupyterLab on the teaching notebooks (notebooks/01..03), with the DSPex panel.
lab: setup
	LITELLM_LOCAL_MODEL_COST_MAP=True $(VENV)/bin/jupyter lab notebooks/

# The README's test command: lint, format, types, the TypeScript build (strict), then the suite.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) scripts/build_labextension.py
	LITELLM_LOCAL_MODEL_COST_MAP=True $(PY) -m pytest

# The README's images (docs/*.png), taken again by the browser tests that take them.
screenshots: setup
	PY=$(PY) bash scripts/update_screenshots.sh

bench: setup
	LITELLM_LOCAL_MODEL_COST_MAP=True $(PY) bench/run_all.py

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist .pytest_cache
