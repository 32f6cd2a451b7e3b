# hubtide: the two commands a new user runs are `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test lint fast slow bench pins clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.txt
	$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the `hubtide` command

demo: install  ## the main job on the embedded default: simulator -> daemon -> store -> report
	$(BIN)/hubtide demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fast: install
	$(BIN)/pytest

slow: install
	$(BIN)/pytest -m slow

test: lint fast slow  ## lint, types, fast suite, slow suite

bench: install  ## every benchmark; each prints its figures
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

pins:  ## recompile requirements.txt from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.txt --python-version 3.11 -q

clean:
	rm -rf $(VENV) data demo-out .pytest_cache .mypy_cache .ruff_cache
