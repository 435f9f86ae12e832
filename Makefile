# Quick start: `make repro` builds data, models and reports; `make test` runs the test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup setup-ray setup-export setup-passes test repro bench clean-venv

setup: $(STAMP)

# Reinstalls only when the pins change, so a second `make setup` takes well under a second.
$(STAMP): requirements.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; bpy 5.0 needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -r requirements.txt -c constraints.txt
	touch $(STAMP)

# Optional: the Ray render executor (README, "Scaling out"). `make test` installs it to test it.
RAY_STAMP := $(VENV)/.installed-ray
setup-ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(BIN)/python -m pip install -qq -r requirements-ray.txt -c constraints.txt
	touch $(RAY_STAMP)

# Optional: OpenEXR, to read ground-truth passes back (`render.passes`, docs/passes.md). `make test` installs it.
PASSES_STAMP := $(VENV)/.installed-passes
setup-passes: $(PASSES_STAMP)

$(PASSES_STAMP): $(STAMP) requirements-passes.txt
	$(BIN)/python -m pip install -qq -r requirements-passes.txt -c constraints.txt
	touch $(PASSES_STAMP)

# Optional: `python cli.py export` (docs/export.md). `make test` installs it to test it.
EXPORT_STAMP := $(VENV)/.installed-export
setup-export: $(EXPORT_STAMP)

$(EXPORT_STAMP): $(STAMP) requirements-export.txt
	$(BIN)/python -m pip install -qq -r requirements-export.txt -c constraints.txt
	touch $(EXPORT_STAMP)

test: setup setup-ray setup-passes setup-export
	DVC_NO_ANALYTICS=1 $(BIN)/python -m pytest -q

repro: setup
	DVC_NO_ANALYTICS=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

bench: setup
	$(BIN)/python bench/render.py

clean-venv:
	rm -rf $(VENV)
