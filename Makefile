# The two commands README.md opens with. Each one creates (or reuses) the virtual
# environment .venv and installs what it needs, so both work on a fresh machine.
#   make run   - the main job: the malaria case study end to end, CPU, offline
#   make test  - the tests: lib/ in step with nbs/, every notebook, then tests/
SHELL  := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNS   ?= runs
# a reader's run writes its results beside the executed notebook (git-ignored), never into the committed results/
MEDCASES_RESULTS_DIR ?= $(abspath $(RUNS))/results
# Never let timm/huggingface wait for a download that cannot happen here.
OFFLINE := HF_HUB_OFFLINE=1 MEDCASES_OFFLINE=1

.PHONY: setup browser run test rehearse reproduce register bench clean-venv
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/python -c "import importlib.util as u, lib.data, lib.train, lib.evaluate, lib.serve, nbdev, playwright; assert u.find_spec('kaggle')"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

run: setup
	MEDCASES_MODE=smoke MEDCASES_RESULTS_DIR=$(MEDCASES_RESULTS_DIR) $(OFFLINE) $(BIN)/python tools/run_notebook.py nbs/10_malaria.ipynb $(RUNS)
	@echo "Executed notebook: $(RUNS)/10_malaria.ipynb   Results: $(MEDCASES_RESULTS_DIR)/malaria_smoke_*.json"

# The browser test (tests/test_browser.py) drives Debian's Chromium: install it when missing and root.
browser:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium is missing and this is not root: install it (sudo apt-get install chromium) or the browser test fails"; fi; }

test: setup browser
	$(BIN)/python tools/check_sources.py
	# results/ holds the committed figures: the notebooks' test runs write theirs to a scratch folder
	OMP_NUM_THREADS=1 $(OFFLINE) MEDCASES_RESULTS_DIR=$$(mktemp -d) $(BIN)/nbdev-test --n-workers 2 --timing
	$(OFFLINE) GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest tests
	$(MAKE) --no-print-directory rehearse

# Full mode, rehearsed: every case study in full mode on this CPU, offline, every cell, only sizes shrunk
# (tools/rehearse.py serves stand-in downloads on localhost and places random weights where torch hub looks).
rehearse: setup
	$(BIN)/python tools/rehearse.py $(CASES)

# One case study in full mode, headless (a GPU machine): executed notebook and results with provenance in
# runs/reproduce/<case>/, then the verdict against the article. Rerun it after an interruption: it continues.
reproduce: setup
	@test -n "$(CASE)" || { echo "usage: make reproduce CASE=malaria|pcam|idc|kvasir|actin"; exit 2; }
	$(BIN)/python tools/reproduce.py $(CASE)

# The one deliberate step that copies a finished full run into the committed results/ (and the README)
register: setup
	@test -n "$(RUN)" || { echo "usage: make register RUN=runs/reproduce/<case>/results"; exit 2; }
	$(BIN)/python tools/register_run.py $(RUN)

# CPU benchmarks (a few minutes), one summary table; on a CUDA machine also the GPU figures the preflight reads
bench: setup
	$(BIN)/python bench/run_all.py

clean-venv:
	rm -rf $(VENV)
