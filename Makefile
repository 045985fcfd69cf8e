# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# every distribution in the workspace: core, first-party plugins, contrib packages
PACKAGES := core[fast] $(sort $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml contrib/*/pyproject.toml)))
STAMP  := $(VENV)/.installed

.PHONY: run test install bench lint clean

$(STAMP): core/pyproject.toml $(foreach p,$(filter-out core[fast],$(PACKAGES)),$(p)/pyproject.toml) requirements-dev.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(foreach p,$(PACKAGES),-e "./$(p)") -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m triogate_demo run -c gateway.toml

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# BENCH_ARGS=--quick for a one-round smoke run; wrk and nginx come from apt (the script names what is missing)
bench: $(STAMP)
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) bench/proxy_bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check core plugins contrib tests

clean:
	rm -rf $(VENV)
