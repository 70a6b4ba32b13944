# Anju — the two commands a newcomer needs: `make run` and `make test`.
# Without DATABASE_URL both provide a project-local PostGIS (.pgdata/, 127.0.0.1:55432),
# installing PostgreSQL + PostGIS from Debian's packages when missing (as root).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test check install db-start db-stop lint format bench bench-peers clean-db docs ogc-validate

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

## web/: MapLibre GL and GraphiQL (served by /map and /graphql, no CDN) and the graphql-http audit, from npm (Debian's
## nodejs/npm installed when missing, as root)
WEB_STAMP := web/node_modules/.package-lock.json
$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } \
		|| { echo "npm is missing: install Debian's nodejs and npm" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error

## the browser tests drive Debian's chromium (playwright, no browser download); installed when missing, as root
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@[ "$$(id -u)" = 0 ] || { echo "chromium is missing: apt-get install chromium (Debian), as root" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

install: $(STAMP) $(WEB_STAMP)

## run: database + migrations + demo data, then serve http://$${HOST:-127.0.0.1}:$${PORT:-8000}/graphql
run: install
	$(BIN)/anju up

## test: the static checks, then the whole test suite against a real PostGIS (a separate test database) and Debian's chromium
test: check $(CHROMIUM)
	$(BIN)/pytest

## check: formatting, lint (incl. docstrings of public code) and types; fails on the first finding
check: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

## docs: regenerate docs/schema.graphql (the SDL) from the code; tests/test_docs.py checks it is current
docs: install
	$(BIN)/anju schema print --output docs/schema.graphql

## ogc-validate: the independent OGC API Features validator (ogctests from PyPI, its own .venv-ogc) against /ogc
OGC_STAMP := .venv-ogc/.installed-stamp
$(OGC_STAMP):
	$(PYTHON) -m venv .venv-ogc
	.venv-ogc/bin/pip install --quiet 'ogctests==0.1.15'
	touch $(OGC_STAMP)

ogc-validate: install $(OGC_STAMP)
	$(BIN)/python -m tests.ogc_validate

db-start: install
	$(BIN)/anju db start

db-stop: install
	$(BIN)/anju db stop

lint: install
	$(BIN)/ruff check .

## format: rewrite the tree in the project's format (ruff format) and apply ruff's safe fixes
format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-db: install
	$(BIN)/anju db destroy

## bench-peers: Anju beside PostGraphile v4/v5 (npm, bench/peers/) and raw SQL on the Sichuan-scale database, built when
## missing (bench/peers.py; ~30 min at 10 s per cell). QUICK=1: a 3 s-per-cell smoke run; BENCH_ARGS="--duration 20"
bench-peers: install
	cd bench/peers/v4 && npm ci --no-audit --no-fund --loglevel=error
	cd bench/peers/v5 && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m bench.peers $(if $(QUICK),--quick) $(BENCH_ARGS)
