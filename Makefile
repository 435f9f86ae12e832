# Quick start: `make repro` builds data, models and reports; `make test` runs the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test repro bench clean-venv

setup: $(STAMP)

# Reinstalls only when the pins change, so a second `make setup` takes well under a second.
$(STAMP): requirements.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; bpy 5.0 needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -r requirements.txt -c constraints.txt
	touch $(STAMP)

# Optional extras, each in requirements-<name>.txt: `ray` (the Ray render executor, README "Scaling out"),
# `passes` (OpenEXR, to read ground-truth passes back: docs/passes.md), `export` (`python cli.py export`:
# docs/export.md). `make setup-<name>` installs one; `make test` installs all three to test them.
EXTRAS := ray passes export
.PHONY: $(EXTRAS:%=setup-%)

$(EXTRAS:%=setup-%): setup-%: $(VENV)/.installed-%

$(VENV)/.installed-%: requirements-%.txt $(STAMP)
	$(BIN)/python -m pip install -qq -r $< -c constraints.txt
	touch $@

test: setup setup-ray setup-passes setup-export
	DVC_NO_ANALYTICS=1 $(BIN)/python -m pytest -q

repro: setup
	DVC_NO_ANALYTICS=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

bench: setup
	$(BIN)/python bench/render.py

clean-venv:
	rm -rf $(VENV)
