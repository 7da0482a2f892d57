# TinyTorch: thin, memorable entry points. The logic lives in dodo.py (doit) and tito.
#   make                     set up, build every module, run every checkpoint, show the timeline
#   make test                the whole test suite
#   make complete MODULE=02_tensor

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DOIT   := TINYTORCH_REPORT=quiet $(BIN)/python -m doit  # tito.reporter: one line per task
TITO   := $(BIN)/tito

.DEFAULT_GOAL := all
.PHONY: all install build test complete release status timeline notebooks milestones bench mutants clean help

all: install  ## set up, build everything, show your progress (also when a checkpoint fails)
	@$(DOIT) --continue; status=$$?; $(TITO) checkpoint timeline --horizontal || status=$$?; exit $$status

install: $(VENV)/.installed  ## create .venv and install TinyTorch with its dependencies

# A .venv copied or moved from another folder still runs that folder's code: its `tito` script and
# its editable install point there. The stamp records the folder it was made for; another one means
# reinstalling TinyTorch here (other packages are kept: they do not depend on the folder).
MADE_FOR := $(strip $(shell cat $(VENV)/.installed 2>/dev/null))
ifneq ($(MADE_FOR),)
ifneq ($(MADE_FOR),$(CURDIR))
.PHONY: $(VENV)/.installed
endif
endif

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if [ -n "$(MADE_FOR)" ] && [ "$(MADE_FOR)" != "$(CURDIR)" ]; then \
	  echo "$(VENV) was made for $(MADE_FOR): reinstalling TinyTorch for $(CURDIR)"; \
	  $(BIN)/python -m pip install --quiet --force-reinstall --no-deps -e .; fi
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@echo "$(CURDIR)" > $@

build: install  ## export every module and run every checkpoint (doit)
	$(DOIT)

test: install  ## build everything, then run the test suite
	$(DOIT)
	@if [ -d tests ]; then $(BIN)/python -m pytest; fi  # the student edition ships no tests/

release: install  ## the student edition in build/release/ (solutions replaced by stubs)
	$(DOIT) release

complete: install  ## export a module and run its checkpoint: make complete MODULE=02_tensor
	@$(TITO) module complete "$(MODULE)"

status: install  ## where you are in the course
	@$(TITO) checkpoint status

timeline: install  ## your journey through the course as a tree
	@$(TITO) checkpoint timeline

notebooks: install  ## write the lessons as Jupyter notebooks in build/notebooks/
	$(DOIT) notebook

milestones: install  ## re-run history on your framework: every milestone, full size (doit milestone)
	$(DOIT) milestone

bench: install  ## benchmark every finished module against PyTorch (build/bench/*.json)
	@$(DOIT) --continue || true  # a failing checkpoint means fewer benchmarks, each skip says why
	$(BIN)/python -m bench

mutants: install  ## mutation testing of every module's solutions against its checkpoint (build/mutants/)
	@$(DOIT) mutants; status=$$?; $(BIN)/python -m tito.mutants table || status=$$?; exit $$status

clean:  ## remove everything generated (build/ and the exported package files)
	-@test -x $(BIN)/python && $(DOIT) clean --clean-dep >/dev/null 2>&1; true
	rm -rf build
	find tinytorch/core -name '*.py' ! -name '__init__.py' -delete

help:  ## list the targets
	@awk -F ':.*## ' '/^[a-z]+:.*## / { printf "  make %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
