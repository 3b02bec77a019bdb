# The same commands for people and for CI. `make help` lists them.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GRADIO_ANALYTICS_ENABLED := False
# The registry serve-model reads: the user's MLFLOW_TRACKING_URI when set, else the project's
# SQLite file (`deepfake app`/`predict` honour it too; `mlflow-ui` shows the project's store).
TRACKING_URI := $(or $(MLFLOW_TRACKING_URI),sqlite:///mlruns/mlflow.db)

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast lint typecheck audit bench flow serve prefect-ui mlflow-ui dag metrics app serve-model screenshot browser postgres

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned dependencies

demo: setup  ## set up, then run the whole pipeline on the embedded demo set (dvc repro)
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: setup  ## set up, then run the whole test suite (two pytest-xdist workers) and print coverage
	$(BIN)/pytest -n 2 --dist loadgroup --cov --cov-report=term

test-fast: setup  ## the tests that take seconds (no full pipeline runs)
	$(BIN)/pytest -m "not slow"

lint: setup  ## ruff: lint and formatting
	$(BIN)/ruff check src flows tasks tests bench
	$(BIN)/ruff format --check src flows tasks tests bench

typecheck: setup  ## mypy over src/, tasks/ and flows/ (settings in pyproject.toml)
	$(BIN)/mypy

audit: setup  ## pip-audit of the installed, pinned packages; fails if one cannot be checked
	$(BIN)/pip freeze --exclude-editable > $(VENV)/audit-requirements.txt
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off \
	  -r $(VENV)/audit-requirements.txt

bench: setup  ## benchmarks side by side with naive baselines (~15 min); rewrites BENCHMARKS.md
	$(BIN)/python -m bench

flow: setup  ## run the Prefect flow once (same stages, cached across runs)
	$(BIN)/deepfake flow

serve: setup  ## serve the scheduled Prefect deployment (see the Prefect UI)
	$(BIN)/deepfake serve

prefect-ui: setup  ## start the Prefect server and UI on 127.0.0.1:4200
	$(BIN)/prefect server start --host 127.0.0.1

mlflow-ui: setup  ## start the MLflow UI on 127.0.0.1:5000
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --workers 1

dag: setup  ## print the pipeline DAG as Mermaid
	$(BIN)/dvc dag --mermaid

app: setup  ## the web app on 127.0.0.1:7860, answering with the registry's champion
	$(BIN)/deepfake app

serve-model: setup  ## REST: the champion behind `mlflow models serve` on 127.0.0.1:5001
	MLFLOW_TRACKING_URI=$(TRACKING_URI) MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	  $(BIN)/mlflow models serve -m models:/deepfake-detector@champion --env-manager local \
	  -h 127.0.0.1 -p 5001 --workers 1

postgres:  ## install Debian's PostgreSQL (the team MLflow test starts its own cluster; needs root)
	command -v pg_ctlcluster >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } || \
	  echo "PostgreSQL could not be installed: the team MLflow tests will skip, saying so" >&2

browser:  ## install Debian's chromium and chromedriver (screenshots and their test; needs root)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

screenshot: setup  ## docs/app.png: the app with a result, in headless Chromium (after `make demo`)
	bash docs/screenshot.sh

metrics: setup  ## show test metrics and plots
	$(BIN)/dvc metrics show
	$(BIN)/dvc plots show
