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
CANARY ?=
ONLY ?=
PYTEST_ARGS ?=
TEST_WORKERS ?= 3

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
run: install  #-- run the pipeline on embedded servers (DURATION=60, REPLAY="file ..." SYMBOLS=BTCUSDT CANARY=peaks:ETHFDUSD)
	@$(RUN) depthflow --symbols $(SYMBOLS) up --duration $(DURATION) --speed $(SPEED) $(foreach f,$(REPLAY),--replay $(f)) $(if $(CANARY),--canary $(CANARY))

down: install  #-- stop a detached pipeline and its servers (data is kept in .state)
	@$(RUN) depthflow down

status: install  #-- print the live summary once
	@$(RUN) depthflow status

#== Quality
test: install  #-- run the test suite on real servers (DEPTHFLOW_SLOW=1 adds the soaks; TEST_WORKERS=0 runs it in one process)
	@$(RUN) pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

lint: install  #-- ruff and mypy (the type checker; settings in pyproject.toml)
	@$(RUN) ruff check .
	@$(RUN) mypy libs/common/src libs/devstack/src services/*/src tools/ctl/src

bench: install  #-- benchmarks: figures and ratios into bench/results/latest.json (ONLY=<group>)
	@$(RUN) python -m bench $(if $(ONLY),--only $(ONLY),)

#== Deploy (Kubernetes: deploy/helm, skaffold.yaml; see deploy/helm/README.md)
SERVICES := collector aggregator peaks ai-fusion risk
IMAGE_REPO ?= depthflow
TAG ?= dev
SERVICE ?=
DOCKER ?= docker

images:  #-- build the five images from the one Dockerfile (IMAGE_REPO=depthflow TAG=dev; needs docker)
	@for s in $(SERVICES); do $(DOCKER) build --build-arg SERVICE=$$s -t $(IMAGE_REPO)/$$s:$(TAG) . || exit 1; done

helm-lint: install  #-- Helm's lint (strict) of the chart for every service and lane, offline
	@$(RUN) pytest -q -p no:cacheprovider tests/deploy/test_helm.py -k lint

helm-test: install  #-- chart, schema, config, Dockerfile, image contents and skaffold checks, offline
	@$(RUN) pytest -q -p no:cacheprovider tests/deploy --ignore=tests/deploy/test_bootstrap_job.py

dev:  #-- skaffold dev for one service on the current cluster (SERVICE=aggregator or peaks-canary)
	@test -n "$(SERVICE)" || { echo "usage: make dev SERVICE=<service>[-canary]"; exit 2; }
	skaffold dev -m $(SERVICE)

clean:  #-- remove the venv, caches and the local state folder
	rm -rf .venv $(UV_VENV) .state .pytest_cache .ruff_cache

help:  #-- this list
	@awk 'BEGIN {FS = ":.*#--"} /^#==/ {printf "\n%s\n", substr($$0, 5)} /^[a-z-]+:.*#--/ {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install run down status test lint bench clean help
.PHONY: images helm-lint helm-test dev
