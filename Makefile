# depthflow — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
UV_VENV := .tools
UV := $(UV_VENV)/bin/uv
RUN := $(UV) run --frozen
DURATION ?= 0
SPEED ?= 1
REPLAY ?=
SYMBOLS ?= BTCFDUSD,ETHFDUSD
ONLY ?=
PYTEST_ARGS ?=

#== Setup
$(UV):
	@echo "[make] installing uv into $(UV_VENV) (once)"
	@$(PYTHON) -m venv $(UV_VENV) && $(UV_VENV)/bin/pip install -q uv

.venv/.synced: $(UV) pyproject.toml uv.lock $(wildcard */*/pyproject.toml) $(wildcard services/*/pyproject.toml)
	@echo "[make] installing dependencies (uv sync)"
	@$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.synced  #-- create .venv with every service, the CLI and dev tools

#== Run
run: install  #-- run the pipeline on embedded servers (DURATION=60, REPLAY="file ..." SYMBOLS=BTCUSDT)
	@$(RUN) depthflow --symbols $(SYMBOLS) up --duration $(DURATION) --speed $(SPEED) $(foreach f,$(REPLAY),--replay $(f))

down: install  #-- stop a detached pipeline and its servers (data is kept in .state)
	@$(RUN) depthflow down

status: install  #-- print the live summary once
	@$(RUN) depthflow status

#== Quality
test: install  #-- run the test suite on real servers (DEPTHFLOW_SLOW=1 adds the soaks)
	@$(RUN) pytest $(PYTEST_ARGS)

lint: install  #-- ruff and mypy (the type checker; settings in pyproject.toml)
	@$(RUN) ruff check .
	@$(RUN) mypy libs/common/src libs/devstack/src services/*/src tools/ctl/src

bench: install  #-- benchmarks: figures and ratios into bench/results/latest.json (ONLY=<group>)
	@$(RUN) python -m bench $(if $(ONLY),--only $(ONLY),)

clean:  #-- remove the venv, caches and the local state folder
	rm -rf .venv $(UV_VENV) .state .pytest_cache .ruff_cache

help:  #-- this list
	@awk 'BEGIN {FS = ":.*#--"} /^#==/ {printf "\n%s\n", substr($$0, 5)} /^[a-z-]+:.*#--/ {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install run down status test lint bench clean help
