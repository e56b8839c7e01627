# rakuten-mlops — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
RAKUTEN_HOME ?= .rakuten
SAMPLE_DIR ?= $(RAKUTEN_HOME)/sample
PYTEST_ARGS ?=
# Test processes (pytest-xdist); 0 runs the suite in this one process.
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	# torch first, pinned, with pip: it takes the CPU build (other installers fetch a CUDA build)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[all]"
	touch $@

install: $(VENV)/.installed  ## create .venv and install the project with every extra (pinned by constraints.txt)

system-deps:  ## install the Debian tools some tests use (promtool, chromium, chromedriver, shellcheck, Java 17 for Spark) when missing
	@bash scripts/system-deps.sh

sample: install  ## write the built-in sample dataset to $(SAMPLE_DIR)
	$(BIN)/rakuten-mlops data sample --out $(SAMPLE_DIR)

run: sample  ## main job: sample -> validate -> split -> train -> evaluate -> refit -> register -> promote
	$(BIN)/rakuten-mlops pipeline run --data-dir $(SAMPLE_DIR)

test: install system-deps lint  ## lint (ruff, ruff format, mypy), then the whole test suite
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-fast: install  ## fast unit and data tests only
	$(BIN)/pytest -m "not slow" tests/test_*.py tests/data tests/features tests/lifecycle tests/simulation/test_sample.py

lint: install  ## ruff lint + format check, mypy on src/, import layers (lint-imports)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

dvc-repro: install  ## run the DVC pipeline (dvc.yaml) on the sample
	$(BIN)/dvc repro

clean:  ## delete the home folder (models, runs, caches, sample)
	rm -rf $(RAKUTEN_HOME)

.PHONY: help install system-deps sample run test test-fast lint format dvc-repro clean
