# The two Quick start commands are `make run` and `make test`; each creates the virtual
# environment itself from constraints.txt, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench bench-mock mock wheel clean constraints

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## The main job.
run: $(STAMP)
	$(BIN)/portal-load run $(ARGS)

## Serve the mock portal on 127.0.0.1:8080 until interrupted.
mock: $(STAMP)
	$(BIN)/portal-load mock --port 8080 $(ARGS)

## Lint, type-check and the test suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

## Side-by-side load benchmarks (need Debian's wrk and taskset); print ratios.
bench-mock: $(STAMP)
	$(BIN)/python -m benchmarks.mock_vs_hello $(ARGS)

## pytest-benchmark micro-benchmarks of hot paths; reported, never asserted.
bench: $(STAMP)
	$(BIN)/pytest benchmarks --benchmark-only -p no:cacheprovider $(ARGS)

## The wheel to install elsewhere (pip install dist/portal_load-*.whl).
wheel: $(STAMP)
	$(BIN)/python -m build --wheel --outdir dist .

## Regenerate constraints.txt from the current environment.
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sort > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
