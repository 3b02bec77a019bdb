# The same commands for people and for CI. `make help` lists them.
# The interpreter: PYTHON if given, else the first of these that is a supported Python (the range
# of pyproject.toml's requires-python). `make python` says which one, or why none.
PYTHONS       := python3.11 python3.12 python3.13 python3
PYTHON_RANGE  := (3, 11) <= sys.version_info[:2] < (3, 14)
PYTHON_CHECK   = -c 'import sys; sys.exit(not ($(PYTHON_RANGE)))'
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHONS); do $$p $(PYTHON_CHECK) 2>/dev/null && { command -v $$p; break; }; done)
endif
VENV   ?= .venv
BIN    := $(VENV)/bin
# Install sets: a hashed lock file each, written by `make lock` from pyproject.toml. `make setup`
# installs SET (demo: the pipeline and its front ends, no test tools); the test, lint, type-check,
# audit and benchmark commands install dev (everything but gpu, which goes in its own VENV).
SET    ?= demo
export PATH := $(abspath $(BIN)):$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GRADIO_ANALYTICS_ENABLED := False
# The tracking store every target uses: the user's MLFLOW_TRACKING_URI when set, else the
# project's SQLite file (the `deepfake` commands read the same variable the same way).
MLFLOW_PORT ?= 5000
TRACKING_URI := $(or $(MLFLOW_TRACKING_URI),sqlite:///mlruns/mlflow.db)

.DEFAULT_GOAL := help
.PHONY: help python setup setup-dev lock demo plots exps test test-fast reliability lint typecheck audit bench flow serve prefect-ui mlflow-ui dag metrics app serve-model screenshot browser postgres

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

CHECK_PYTHON = @$(or $(PYTHON),false) $(PYTHON_CHECK) 2>/dev/null || { \
  echo "error: no supported Python (3.11, 3.12 or 3.13): tried $(or $(PYTHON),$(PYTHONS))." >&2; \
  echo "Install one, or name it: make ... PYTHON=/path/to/python3.12" >&2; exit 1; }

python:  ## print the interpreter the venv is made with (Python 3.11 to 3.13; PYTHON=... to choose)
	$(CHECK_PYTHON)
	@command -v $(PYTHON)

$(VENV)/pyvenv.cfg:
	$(CHECK_PYTHON)
	$(or $(PYTHON),false) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A set's stamp is older than its lock file (or pyproject.toml) after `make lock` or a pull:
# the set is installed again. Exact versions and hashes from the lock, then the project itself.
$(VENV)/.installed-%: requirements/%.txt pyproject.toml | $(VENV)/pyvenv.cfg
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/$*.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed-$(SET)  ## create .venv, install the locked demo set: pipeline and front ends (SET=core|gpu|dev)

setup-dev: $(VENV)/.installed-dev  ## create .venv, install the locked dev set: demo + test and lint tools, PostgreSQL driver, Dask

UV_COMPILE = $(strip uv pip compile --quiet --universal --generate-hashes --python-version 3.11 \
  -c requirements/constraints.in $(LOCK_FLAGS))
lock:  ## rewrite requirements/*.txt from pyproject.toml (LOCK_FLAGS=--upgrade: newest allowed versions)
	@command -v uv >/dev/null || { echo "error: make lock needs uv: make setup-dev, or pip install uv" >&2; exit 1; }
	$(UV_COMPILE) pyproject.toml -o requirements/core.txt
	$(UV_COMPILE) pyproject.toml --extra train -o requirements/demo.txt
	$(UV_COMPILE) pyproject.toml --extra gpu -o requirements/gpu.txt
	$(UV_COMPILE) pyproject.toml --extra registry --extra train --extra team --extra cluster \
	  --extra dev -o requirements/dev.txt

demo: setup .dvc/plots.html  ## set up, then run the whole pipeline on the embedded demo set (dvc repro)
	$(BIN)/dvc repro
	@$(BIN)/deepfake summary

# The page `dvc plots show` fills, with Vega inside it: the interactive plots render offline.
.dvc/plots.html: | $(VENV)/.installed-$(SET)
	@$(BIN)/deepfake plots_page

plots: .dvc/plots.html  ## write the evaluation's plots (ROC, PR, confusion, reliability) to dvc_plots/index.html, offline
	$(BIN)/dvc plots show

EXP_COLUMNS = Experiment|Created|^frame\.auc$$|^video\.auc$$|^frame\.fpr$$|^frame\.tpr$$|^split\.faces_dir$$|^train\.head$$|^train\.epochs$$
exps:  ## the experiments (dvc exp show): test AUCs, operating point and the params that differ most
	@COLUMNS=$${COLUMNS:-150} $(BIN)/dvc exp show --no-pager --drop '.*' --keep '$(EXP_COLUMNS)'

test: setup-dev  ## set up, then run the whole test suite (two pytest-xdist workers) and print coverage
	$(BIN)/pytest -n 2 --dist loadgroup --cov --cov-report=term \
	  $(if $(RELIABILITY_OUT),--reliability-out $(RELIABILITY_OUT))

reliability: setup-dev  ## the bad-input, fault, load and security tests; rewrite RELIABILITY.md
	$(BIN)/pytest -n 2 --dist loadgroup -m reliability --reliability-out RELIABILITY.md

test-fast: setup-dev  ## the fast tier: every test but the whole-pipeline ones (two workers; writes nothing)
	$(BIN)/pytest -n 2 -m "not slow"

lint: setup-dev  ## ruff: lint and formatting
	$(BIN)/ruff check src flows tasks tests bench
	$(BIN)/ruff format --check src flows tasks tests bench

typecheck: setup-dev  ## mypy over src/, tasks/ and flows/ (settings in pyproject.toml)
	$(BIN)/mypy

audit: setup-dev  ## pip-audit of the installed, pinned packages; fails if one cannot be checked
	$(BIN)/pip freeze --exclude-editable > $(VENV)/audit-requirements.txt
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off \
	  -r $(VENV)/audit-requirements.txt

bench: setup-dev  ## benchmarks side by side with naive baselines (~15 min); rewrites BENCHMARKS.md
	$(BIN)/python -m bench

flow: setup  ## run the Prefect flow once (same stages, cached across runs)
	$(BIN)/deepfake flow

serve: setup  ## serve the scheduled Prefect deployment (see the Prefect UI)
	$(BIN)/deepfake serve

prefect-ui: setup  ## start the Prefect server and UI on 127.0.0.1:4200
	$(BIN)/prefect server start --host 127.0.0.1

mlflow-ui: setup  ## start the MLflow UI on 127.0.0.1:5000 (MLFLOW_PORT=...) over the tracking store (MLFLOW_TRACKING_URI or the project's)
	@case "$(TRACKING_URI)" in http://*|https://*) \
	  echo "MLFLOW_TRACKING_URI is a tracking server ($(TRACKING_URI)): it serves its own UI there"; \
	  exit 0;; esac; \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri $(TRACKING_URI) \
	  --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

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

screenshot: setup-dev  ## docs/app.png, model_card.png, app_video.png: the app, in headless Chromium (after `make demo`)
	bash docs/screenshot.sh

metrics: setup .dvc/plots.html  ## show test metrics and plots
	@$(BIN)/deepfake summary
	$(BIN)/dvc plots show
