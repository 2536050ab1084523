# `make demo` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	# torch first, pinned to the build this project is tested with (local wheels here).
	$(BIN)/pip install "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -e ".[dev,serve]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vpr demo

test: $(STAMP)
	# The layers of docs/ARCHITECTURE.md: imports point down only (pyproject.toml).
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench main.py main_ckpt.py

bench: $(STAMP)
	$(BIN)/python bench/speed.py

clean:
	rm -rf $(VENV) logs
