# Two commands on a fresh machine:
#   make run    set everything up, migrate a SQLite database, serve on 127.0.0.1:8000
#   make test   set everything up and run the whole suite on SQLite and PostgreSQL, the UI in Chromium,
#               sign-in against a real OpenID provider on Node.js

# durable-rules builds for Python 3.11 and 3.12, not 3.13: take the first that is here.
PYTHON ?= $(shell for p in python3.11 python3.12; do command -v $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint check postgres chromium oidc wrk bench clean

$(BIN)/reitti: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Reitti needs Python 3.11 or 3.12 (durable-rules has no 3.13 build)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/reitti
	$(BIN)/reitti db upgrade
	$(BIN)/reitti serve --host 127.0.0.1 --port 8000

# The machine's PostgreSQL, started if it is not running (trust auth on 127.0.0.1:5432). When it
# cannot be reached nor started (no server, no cluster, no binaries), one line says what to do.
PG_READY = pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1
PG_START = v=$$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1); test -n "$$v" \
  && pg_ctlcluster --skip-systemctl-redirect "$$v" main start >/dev/null 2>&1 \
  && for i in $$(seq 1 30); do $(PG_READY) && break; sleep 1; done
PG_HELP = the tests and benchmarks need PostgreSQL answering on 127.0.0.1:5432 (trust auth, user postgres): \
  install it (apt-get install postgresql) or start it, then run make again
postgres:
	@$(if $(shell $(PG_READY) || { $(PG_START); }; $(PG_READY) && echo up),:,$(error $(PG_HELP)))

# Debian's Chromium for the browser tests: Playwright drives it and downloads no browser of its own.
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The OpenID provider the sign-in tests run (tests/oidc/provider.mjs): oidc-provider from npm, exactly as
# tests/oidc/package-lock.json pins it, on the machine's Node.js (20 or later).
OIDC_MODULES := tests/oidc/node_modules/.package-lock.json
$(OIDC_MODULES): tests/oidc/package-lock.json
	@command -v npm >/dev/null || { echo "the sign-in tests need Node.js 20 or later and npm: apt-get install nodejs npm"; exit 1; }
	cd tests/oidc && npm ci --no-audit --no-fund
oidc: $(OIDC_MODULES)

# Debian's wrk, the load generator of the HTTP benchmarks.
wrk:
	@command -v wrk >/dev/null || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }

test: $(BIN)/reitti postgres chromium oidc
	$(BIN)/pytest

lint: $(BIN)/reitti
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

bench: $(BIN)/reitti postgres wrk
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.http

clean:
	rm -rf $(VENV) var *.egg-info tests/oidc/node_modules
