# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test install migrate demo admin token serve ci bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

admin: migrate
	$(PY) manage.py create_admin

# The demo's service account calls the prediction API with this token (printed once).
token: demo admin
	$(PY) manage.py create_api_token --user loans-service --name demo --by admin --once

serve: install
	bin/run

## Set up, migrate, seed the demo models, create the admin (password printed) and a service
## token for the prediction API (printed), serve on :8000.
run: demo admin token serve

## Set up and run the whole test suite (SQLite by default; DATABASE_URL/REDIS_URL switch it).
test: install
	$(PY) -m pytest -n auto --dist loadgroup

ci:
	bash .ci/run

bench: install
	$(PY) bench/bench_registry.py

clean:
	rm -rf $(VENV) var
