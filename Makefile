# citytwin — developer entry points.
#
#   make run    set up .venv, build the demo sample city if missing, serve
#               the dashboard on http://127.0.0.1:8050
#   make test   set up .venv and the system packages the tests need
#               (Chromium, PostgreSQL 15 + PostGIS, Noto CJK fonts), then run
#               the whole test suite
#   make bench  run the benchmark on the city-scale sample
#
# The Open311 tests also drive the server with an independent client, the
# PyPI package georeport, kept in its own venv (.venv-georeport) because it
# pins an old xmltodict.
#
# Nothing is downloaded except from PyPI (pip) and Debian (apt-get).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY   := $(VENV)/bin/python
GEOREPORT_VENV := .venv-georeport
# Interpreter used to create the venv: python3.11 if available, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)

# Sample city: `make sample SCALE=city DB=data/big.sqlite`
SCALE ?= demo
DB    ?= data/citytwin.sqlite
# The sample's history ends at the current hour, so that its work orders run on today's clocks (END="2026-11-20 16:00"
# rebuilds the reproducible one).
END   ?= now

# Debian packages needed by the test suite (browser tests, PostGIS tests, CJK
# glyphs in screenshots, the MQTT broker and Redis that the live-city and
# many-workers tests start on free ports).
APT_PACKAGES := chromium chromium-driver postgresql postgresql-15-postgis-3 fonts-noto-cjk fonts-liberation mosquitto redis-server
# Node.js and npm (for the OpenID Connect provider of the single sign-on tests) are installed only when missing: a
# machine may have a newer Node.js than Debian's.
NODE_PACKAGES := nodejs npm

# The single sign-on tests start a real OpenID Connect provider (the certified npm package oidc-provider, pinned by
# tests/oidc_provider/package-lock.json) with Node.js.
OIDC_PROVIDER := tests/oidc_provider

.PHONY: help venv georeport oidc-provider system-deps sample run test bench clean

# help: list the targets.
help:
	@echo "make run          set up .venv, build the $(SCALE) sample ($(DB)) and serve http://127.0.0.1:8050"
	@echo "make test         set up .venv + system packages, run the whole test suite"
	@echo "make bench        run bench/run.py --scale city and bench/orders.py (BENCH_DB=$(BENCH_DB))"
	@echo "make sample       build the sample city if missing (SCALE=$(SCALE) DB=$(DB))"
	@echo "make venv         create/update .venv from requirements*.txt"
	@echo "make georeport    create/update .venv-georeport (the independent Open311 client the tests use)"
	@echo "make oidc-provider  npm ci the OpenID Connect provider of the single sign-on tests ($(OIDC_PROVIDER))"
	@echo "make system-deps  apt-get install $(APT_PACKAGES) if missing"
	@echo "make clean        remove .venv, caches and the generated sample data"

# venv: create .venv (if missing) and install requirements-dev.txt; the stamp
# file makes it reinstall whenever a requirements file changes.
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if [ ! -x "$(PY)" ]; then \
	  py="$(PYTHON)"; \
	  if [ -z "$$py" ] && [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv; \
	    py="$$(command -v python3)"; \
	  fi; \
	  if [ -z "$$py" ]; then echo "error: python3 not found; install it (apt-get install python3 python3-venv)" >&2; exit 1; fi; \
	  echo "creating $(VENV) with $$py"; \
	  if ! "$$py" -m venv $(VENV); then \
	    rm -rf $(VENV); \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv; \
	      "$$py" -m venv $(VENV); \
	    else \
	      echo "error: '$$py -m venv' failed; install python3-venv: sudo apt-get install python3-venv" >&2; exit 1; \
	    fi; \
	  fi; \
	fi
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

# georeport: the independent Open311 GeoReport v2 client (PyPI georeport) in its
# own venv: it pins xmltodict<0.15, which must not constrain .venv. tests/test_open311.py
# runs scripts with $(GEOREPORT_VENV)/bin/python against a running server.
georeport: $(GEOREPORT_VENV)/.installed

$(GEOREPORT_VENV)/.installed: requirements-georeport.txt
	@if [ ! -x "$(GEOREPORT_VENV)/bin/python" ]; then \
	  py="$(PYTHON)"; \
	  if [ -z "$$py" ]; then echo "error: python3 not found" >&2; exit 1; fi; \
	  echo "creating $(GEOREPORT_VENV) with $$py"; \
	  "$$py" -m venv $(GEOREPORT_VENV); \
	fi
	$(GEOREPORT_VENV)/bin/python -m pip install -r requirements-georeport.txt
	touch $@

# oidc-provider: install the OpenID Connect provider the single sign-on tests run (npm ci: exactly the lock file).
oidc-provider: $(OIDC_PROVIDER)/node_modules/.installed

$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package.json $(OIDC_PROVIDER)/package-lock.json | system-deps
	npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund
	touch $@

# system-deps: make sure Chromium + chromedriver, PostgreSQL 15 with PostGIS
# and the Noto CJK fonts are installed (apt-get as root, else explain & fail).
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	[ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$$missing postgresql"; \
	[ -f /usr/share/postgresql/15/extension/postgis.control ] || missing="$$missing postgresql-15-postgis-3"; \
	[ -d /usr/share/fonts/truetype/liberation ] || missing="$$missing fonts-liberation"; \
	[ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	[ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v node >/dev/null && command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if ! { command -v fc-list >/dev/null && fc-list | grep -qi "Noto Sans CJK"; } \
	   && [ ! -d /usr/share/fonts/opentype/noto ]; then missing="$$missing fonts-noto-cjk"; fi; \
	if [ -z "$$missing" ]; then echo "system-deps: all present"; exit 0; fi; \
	echo "system-deps: missing:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then \
	  apt-get update; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES) \
	    $$(command -v node >/dev/null && command -v npm >/dev/null || echo $(NODE_PACKAGES)); \
	else \
	  echo "error: the test suite needs these Debian packages:$$missing" >&2; \
	  echo "       install them as root with:" >&2; \
	  echo "         sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES)" >&2; \
	  exit 1; \
	fi

# sample: build the sample city database if it does not exist yet.
sample: $(DB)

$(DB): | $(VENV)/.installed
	mkdir -p $(dir $(DB))
	$(PY) -m sample_data build --scale $(SCALE) --db $(DB) --end "$(END)"

# run: set up everything and serve the dashboard on http://127.0.0.1:8050: a living sample city (live mode, the
# built-in simulator feeding its sensors into the store; MODE=replay shows the data as they were built).
MODE     ?= live
SIMULATE ?= 50
run: venv sample
	CITYTWIN_DATABASE_URL=sqlite:///$(DB) CITYTWIN_MODE=$(MODE) \
	  CITYTWIN_SIMULATE=$$( [ "$(MODE)" = live ] && echo $(SIMULATE) || echo 0 ) \
	  $(PY) app.py --database-url sqlite:///$(DB)

# test: set up .venv and system packages, then run the whole suite (fails if
# any test fails). The 25 slowest tests are listed at the end: the suite's time is watched (CI on a clean clone).
test: venv georeport system-deps oidc-provider
	$(PY) -m pytest -q --durations=25

# bench: run the benchmark on the city-scale sample (BENCH_DB: an existing one, e.g.
# `make bench BENCH_DB=/work/data/city.sqlite`; built there if missing). bench/run.py captures the browser's
# requests from the app (Chromium walks the pages once) into data/bench-capture.json; bench/orders.py replays them.
# BENCH_REPEAT: runs per median (3; the map and order benches take at least 5 warm runs).
BENCH_DB ?= data/bench-city.sqlite
BENCH_REPEAT ?= 3
bench: venv
	$(PY) bench/run.py --scale city --database-url sqlite:///$(abspath $(BENCH_DB)) --capture data/bench-capture.json \
	  --repeat $(BENCH_REPEAT)
	$(PY) bench/orders.py --database $(BENCH_DB) --capture data/bench-capture.json

# clean: remove the venv, caches and the generated sample database.
clean:
	rm -rf $(VENV) $(GEOREPORT_VENV) $(OIDC_PROVIDER)/node_modules .pytest_cache .hypothesis
	rm -f $(DB)
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
