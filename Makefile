# Two commands: `make run` and `make test`. Everything else is a helper for those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test install lint format demo-password clean backup

# axe-core for the browser tests' accessibility checks (package.json), when npm is here.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser tests' accessibility checks cannot run"; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

.demo-password:
	$(BIN)/python -c "import secrets; print(secrets.token_urlsafe(12))" > .demo-password

run: export DEBUG ?= 1
run: install .demo-password
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --password "$$(cat .demo-password)"
	$(BIN)/python manage.py generate_synthetic --people 300 --days 400 --member director --unless-present
	@echo "Waiting-room display:"
	@$(BIN)/python manage.py display_link
	@echo "Open http://127.0.0.1:8000 and sign in with a demo login above."
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# A backup of the database `make run` serves (the same settings), with its uploaded files:
# `make backup BACKUP_DIR=/somewhere`, default backups/. README: Backups and restore.
backup: export DEBUG ?= 1
backup: install
	$(BIN)/python manage.py backup $(if $(BACKUP_DIR),--to "$(BACKUP_DIR)")

test: install node_modules/.package-lock.json
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles node_modules
