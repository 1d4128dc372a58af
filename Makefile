# The two commands: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi

.PHONY: run test test-sqlite test-postgres test-browser screenshots lint-imports install system-run system-test bench clean

# The payment sandbox is opted into here (the app has no default outside production).
run bench: export PAYMENT_PROVIDER ?= sandbox

run: system-run $(STAMP)
	@mkdir -p instance
	$(BIN)/flask db upgrade
	$(BIN)/flask vapid-keys > /dev/null  # the Web Push keys: instance/vapid.json, made on first run
	$(BIN)/flask seed-demo
	@echo
	@echo "  BeatMatchMe is starting on http://127.0.0.1:5000"
	@echo "  Demo logins (password beatmatch-demo): dj@example.com venue@example.com admin@example.com fan@example.com"
	@echo "  Mail (sign-up links, bookings) is caught by the mail catcher: read instance/mail/*.eml"
	@echo "  Ctrl-C stops web, worker, cron, the mail catcher and Redis."
	@echo
	@# Metrics start from zero: the files of the last run's processes go (docs/architecture.md, "Metrics").
	@d="$${PROMETHEUS_MULTIPROC_DIR:-instance/metrics}"; mkdir -p "$$d" && find "$$d" -maxdepth 1 -name '*.db' -delete
	exec $(BIN)/honcho start -f Procfile

# Three suites side by side (each has its own database, redis-server and
# ports; each one's output is printed whole when it ends): unit and
# integration tests on SQLite and on PostgreSQL, and the browser tests
# (marker `browser`), which drive the same pages whatever the database, once,
# on PostgreSQL (the production database). `make test-sqlite` or
# `make test-postgres` alone runs everything on that database.
test: system-test $(STAMP)
	$(MAKE) --no-print-directory lint-imports
	$(MAKE) --no-print-directory -j3 --output-sync=target test-sqlite test-postgres test-browser BROWSER_APART=1

# The layers: models <- services <- areas, jobs -> services (.importlinter).
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite =="
	$(BIN)/python -m pytest $(if $(BROWSER_APART),-m "not browser") $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@echo "== test suite on PostgreSQL =="
	url="$$(scripts/test-postgres.sh)" && TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest $(if $(BROWSER_APART),-m "not browser") $(PYTEST_ARGS)

# The browser tests alone, on PostgreSQL (a database of their own).
test-browser: $(STAMP)
	@echo "== browser tests on PostgreSQL =="
	url="$$(PG_TEST_DB=$${PG_TEST_DB:-bmm_test}_browser scripts/test-postgres.sh)" && TEST_DATABASE_URL="$$url" $(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

# The browser tests again, saving what each screen looks like to
# artifacts/screenshots/ (phone, tablet, desktop) for a person to open.
screenshots: system-test $(STAMP)
	BMM_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e -q $(PYTEST_ARGS)

install: $(STAMP)

# The virtualenv, rebuilt when a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq -r requirements-dev.txt
	touch $(STAMP)

system-run:
	@scripts/ensure-system.sh run

system-test:
	@scripts/ensure-system.sh test

bench: $(STAMP)
	@for b in bench/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python "$$b"; done

clean:
	rm -rf $(VENV) .pytest_cache
