# WAMS: `make demo` runs the whole system on the embedded default; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := requirements.txt $(wildcard requirements-extra.txt)

.PHONY: install demo test lint clean system-tools

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQS))
	@touch $(STAMP)

install: $(STAMP)

var/secret-key:
	@mkdir -p var
	@$(PYTHON) -c "import secrets; print(secrets.token_urlsafe(48))" > $@

demo: install var/secret-key
	SECRET_KEY=$$(cat var/secret-key) $(PY) manage.py migrate --noinput
	SECRET_KEY=$$(cat var/secret-key) $(PY) manage.py load_demo
	@if [ -n "$$REDIS_URL" ]; then \
		echo "REDIS_URL is set: running the Procfile topology under supervisord (a process that exits is restarted)"; \
		SECRET_KEY=$$(cat var/secret-key) exec $(PY) manage.py run_topology; \
	else \
		echo "No REDIS_URL: running the embedded single process on http://127.0.0.1:8000"; \
		SECRET_KEY=$$(cat var/secret-key) exec $(PY) manage.py run_embedded; \
	fi

# System tools some tests use: installed when this is root on Debian, otherwise named before the run.
SYSTEM_TOOLS := tshark chromium

system-tools:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing (Debian packages)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	elif [ -n "$$missing" ]; then \
		echo "not installed:$$missing - the tests that need them will be skipped; fix: sudo apt-get install$$missing"; \
	fi

test: install system-tools
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

clean:
	rm -rf var/*.sqlite3 var/static
