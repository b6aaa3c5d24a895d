# Two commands: `make demo` (smoke matrix on the embedded default) and `make test` (whole suite).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Every version the suite was tested with (pip-tools); `make lock` refreshes it.
LOCK    := requirements.lock
PIP     := $(BIN)/python -m pip
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: demo test install lock clean slurm-up slurm-down contract contract-venvs

$(STAMP): pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV) || { $(PY) -m pip install --user virtualenv && $(PY) -m virtualenv $(VENV); }
	$(PIP) install --quiet --upgrade pip
	# PyTorch first: 2.13.0 resolves to the CPU build here; everything after accepts it.
	$(PIP) install --quiet -c $(LOCK) torch==2.13.0
	$(PIP) install --quiet -c $(LOCK) -e '.[test,postgres,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/scaling-matrix run --profile local --matrix smoke
	$(BIN)/scaling-matrix report --last --format markdown

test: $(STAMP)
	$(BIN)/python -m pytest

# Re-resolve requirements.lock (newest versions pyproject.toml allows, torch from requirements-torch.txt).
lock: $(STAMP)
	$(PIP) install --quiet pip-tools
	$(BIN)/pip-compile --quiet --upgrade --extra test --extra postgres --extra fast --extra bench --strip-extras \
	  --no-emit-index-url --no-emit-find-links -c requirements-torch.txt -o $(LOCK) pyproject.toml

# The contract tier: the real NeMo libraries (nemo-automodel 0.7.0; nemo-toolkit 2.4.1 + NeMo-Run 0.4.0)
# check everything we render, each in its own venv under ~/.cache/scaling-matrix/contract (built once
# per lock in contract/, ~10 GB; never in .venv). `make test` runs the tier when the venvs exist
# (CI builds them first: with CI=true a missing venv fails the tier instead of skipping it).
contract-venvs:
	scripts/contract-venvs.sh build

contract: $(STAMP) contract-venvs
	$(BIN)/python -m pytest tests/contract -m contract

slurm-up:
	scripts/local-slurm.sh up

slurm-down:
	scripts/local-slurm.sh down

clean:
	rm -rf .scaling .pytest_cache
