# Two commands for a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test install migrate demo admin token serve ci bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create the virtualenv $(VENV): on Debian/Ubuntu install python3-venv (apt install python3.11-venv), then run make again" >&2; exit 1; }
	@$(PY) -m pip install --quiet --upgrade pip || { echo "pip could not upgrade itself in $(VENV): check the network or the package index (PIP_INDEX_URL), then run make again" >&2; exit 1; }
	@echo "Installing the packages of requirements-dev.txt into $(VENV) (a few minutes the first time)"
	@$(PY) -m pip install --quiet -r requirements-dev.txt || { echo "pip could not install requirements-dev.txt (see above): check the network or the package index (PIP_INDEX_URL), then run make again" >&2; exit 1; }
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

## Back to the cloned state: the virtualenv, var/ (SQLite database, broker, logs, keys) and
## the demo's store content in models/ go; the files the repository commits stay.
clean:
	rm -rf $(VENV) var models/.incoming .pytest_cache
	find models -mindepth 2 -maxdepth 2 ! -name .gitkeep -exec rm -rf {} +
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	@if [ -n "$${DATABASE_URL:-}" ]; then echo "DATABASE_URL is set: its database was left as it is (drop it yourself if you mean to start over)"; fi
