# Two commands on a fresh machine:  `make run`  and  `make test`.
# Each creates .venv if missing and installs the pinned dependencies from uv.lock.
# PYTHON=/path/to/python3.13 builds and uses .venv-3.13 instead (one venv per Python, side by side).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
ifeq ($(origin PYTHON),file)
VENV ?= .venv
else
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PYTHON_VERSION),)
$(error PYTHON=$(PYTHON) does not run; name a Python 3.11, 3.12 or 3.13, e.g. PYTHON=$$(PYENV_VERSION=3.13.0 pyenv which python3.13))
endif
VENV ?= .venv-$(PYTHON_VERSION)
endif
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
# Byte-compile at install: these machines set PYTHONDONTWRITEBYTECODE, and compiling mlflow
# on every start costs seconds per process.
export UV_COMPILE_BYTECODE := 1
# nnexp's own modules and pytest's rewritten test modules are cached the same way, as Python does
# by default: with PYTHONDONTWRITEBYTECODE every process compiles them again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup run test test-fast lint docs bench browser services slurm clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --python $(PYTHON)
	touch $@

## setup: the virtual environment with the locked dependencies
setup: $(VENV)/.installed

## run: one training run on the defaults (sleep_study, hidden 3) into ./mlflow.db; ARGS="..." adds overrides
run: setup
	$(VENV)/bin/nnexp-train $(ARGS)

## browser: Debian's chromium for the MLflow UI test (installed when missing)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Two pytest-xdist workers; tests marked with one xdist_group share a worker (and its fixtures).
PARALLEL ?= -n 2 --dist loadgroup

## slurm: Debian's SLURM 22.05 with accounting (slurmdbd, MariaDB) and munge for the cluster tests (installed when missing)
SLURM_PROGRAMS := munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sacct
slurm:
	@(for p in $(SLURM_PROGRAMS); do command -v $$p >/dev/null || exit 1; done) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      slurm-wlm slurmdbd munge mariadb-server >/dev/null; }

## services: PostgreSQL and Ceph's RADOS Gateway (S3) for the store tests (installed when missing)
services:
	@{ ls /usr/lib/postgresql/*/bin/initdb && command -v ceph-mon && command -v ceph-osd \
	   && command -v radosgw; } >/dev/null 2>&1 \
	 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      postgresql ceph-mon ceph-osd radosgw >/dev/null; }

## test: the whole suite, sweeps, servers, stores, clusters and browser included
test: setup browser services slurm
	$(VENV)/bin/pytest $(PARALLEL) $(PYTEST_ARGS)

## test-fast: the suite without the slow sweep/server/browser tests (run it after every change)
test-fast: setup
	$(VENV)/bin/pytest $(PARALLEL) -m "not slow" $(PYTEST_ARGS)

## lint: ruff
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

## docs: the documentation site (docs/, mkdocs.yml) into site/; any warning fails the build
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# PyTorch, a peer in the benchmarks only: its CPU build, from a local wheel folder if there is one,
# else from PyTorch's CPU index (PyPI's torch is a CUDA build of several GB).
TORCH := torch==2.13.0
TORCH_WHEELS ?= /opt/wheels

## bench: the benchmarks of benchmarks/ (writes benchmarks/results.md), PyTorch peer included
bench: setup
	@if [ -d $(TORCH_WHEELS) ]; then from="--find-links $(TORCH_WHEELS)"; \
	 else from="--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple"; fi; \
	 $(UV) pip install --quiet --python $(VENV)/bin/python $$from "$(TORCH)" \
	 || echo "PyTorch not installed: the benchmarks leave out its rows"
	$(VENV)/bin/python -m benchmarks

clean:
	rm -rf $(VENV) .venv-3.* $(TOOLS)
