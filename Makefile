# ecspilot: `make test` runs every check, `make demo` runs the flows against a local AWS.
# Everything installs into .venv (runtime + dev tools, pinned in pyproject.toml) and
# .venv-sam (the SAM CLI, which pins its own boto3, so it lives apart).

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SAM_CLI_VERSION := 1.170.0
STAMP := $(VENV)/.installed-stamp
SAM_STAMP := $(SAM_VENV)/.installed-stamp
PYTEST_ARGS ?=
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
# `sam build` and the cold start benchmark need the runtime's Python (3.12) on PATH. pyenv's shim
# answers to python3.12 even when no 3.12 is selected, so when it does not run, put pyenv's newest
# 3.12 first on PATH (nothing changes where a python3.12 runs, or where there is none).
PY312_PREFIX := $(shell python3.12 --version >/dev/null 2>&1 || \
	pyenv prefix $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$$' | tail -1) 2>/dev/null)
ifneq ($(PY312_PREFIX),)
export PATH := $(PY312_PREFIX)/bin:$(PATH)
endif

.PHONY: help install chromium test lint types template unit functional e2e demo bench build clean

help:
	@echo "make demo   - run ecspilot's flows against a local AWS (moto), narrated"
	@echo "make test   - lint, types, template validation, unit + functional + e2e tests"
	@echo "make bench  - benchmarks (figures, not pass/fail); cold start on a sam build of this machine's arch"
	@echo "make build  - sam build (needs python3.12 on PATH; the layer: layers/ecspilot/Makefile)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

template: $(STAMP) $(SAM_STAMP)
	$(BIN)/cfn-lint template.yaml member/template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(SAM_VENV)/bin/sam validate --lint --template member/template.yaml --region us-east-1
	$(BIN)/ecspilot --config config/ecspilot.yaml validate

# the IAM checks (tests/iam_check.py) transform template.yaml with the SAM CLI's translator
unit: $(STAMP) $(SAM_STAMP)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

functional: $(STAMP) $(SAM_STAMP)
	$(BIN)/pytest tests/functional -q $(PYTEST_ARGS)

e2e: $(STAMP) $(SAM_STAMP)
	$(BIN)/pytest tests/e2e -q $(PYTEST_ARGS)

# the status page's render test prints it with headless Chromium (Debian's chromium) and reads the
# PDF with pdftotext: installed here only when missing, and only as root (elsewhere the test skips)
chromium:
	@command -v chromium >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium poppler-utils) >/dev/null 2>&1 || \
	  echo "chromium not installed (needs root and apt): the status page render test will skip"; }

test: lint types template chromium
	$(BIN)/pytest -q -n 2 $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/ecspilot demo

bench: $(STAMP) $(SAM_STAMP)
	$(PY) -m bench

# the config validated now and shipped with its compact form (config/ecspilot.yaml.compact, in the
# config layer): a cold start loads it instead of parsing and validating the YAML
build: $(STAMP) $(SAM_STAMP)
	$(PY) -m ecspilot_dev.compact config/ecspilot.yaml
	$(SAM_VENV)/bin/sam build --template template.yaml

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
