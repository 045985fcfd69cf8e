# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# every distribution in the workspace: core, first-party plugins, contrib packages
PACKAGES := core[fast] $(sort $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml contrib/*/pyproject.toml)))
STAMP  := $(VENV)/.installed
# `make dist`: a wheel of every distribution into one folder, for `pip install --find-links dist/
# triogate-jwt` while nothing is on PyPI; contrib/deploy is left out (recipes, no Python code)
DIST_DIR ?= dist
DISTS    := core $(filter-out core[fast] contrib/deploy,$(PACKAGES))

.PHONY: run test install dist bench lint clean

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

# two builds at a time, without isolation (the venv's setuptools, see requirements-dev.txt); a
# distribution's build/ is removed before (no file deleted from src/ may linger in a wheel) and after
dist: $(STAMP)
	mkdir -p $(DIST_DIR)
	rm -f $(DIST_DIR)/triogate*.whl
	printf '%s\n' $(DISTS) | xargs -P 2 -I {} sh -c 'rm -rf {}/build && $(PY) -m build --quiet --wheel \
		--no-isolation --skip-dependency-check --outdir $(DIST_DIR) {} >/dev/null && rm -rf {}/build'
	@ls $(DIST_DIR)/*.whl | wc -l | xargs printf '%s wheels in $(DIST_DIR)/\n'

# BENCH_ARGS=--quick for a one-round smoke run; wrk and nginx come from apt (the script names what is missing)
bench: $(STAMP)
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) bench/proxy_bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check core plugins contrib tests

clean:
	rm -rf $(VENV) $(DIST_DIR)
