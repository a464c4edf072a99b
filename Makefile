# Two commands: `make run` and `make test`. Everything else is a helper for those.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TOOLS  := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test install lint format demo-password clean backup display-link lock lock-upgrade audit

# axe-core for the browser tests' accessibility checks (package.json), when npm is here.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser tests' accessibility checks cannot run"; fi

# Dependencies come from the lock files only, every package checked against its hash; then the
# project itself, without dependencies, built by the locked setuptools (README: Dependencies).
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# The tools that write and check the locks (uv, pip-audit), locked too, in a venv of their own
# so that they and their dependencies stay out of the project's.
$(TOOLS_STAMP): requirements-tools.lock
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r requirements-tools.lock
	touch $(TOOLS_STAMP)

# `make lock` after changing a dependency in pyproject.toml: keeps every other pin as it is.
# `make lock-upgrade` moves every package to its newest allowed release;
# `make lock-upgrade PACKAGE=django` (PACKAGE="a b" for several) only those.
# One lock for every platform and Python from 3.11 up (environment markers), so the image's 3.12
# and a developer's 3.11 install the same files.
LOCK_UPGRADE ?=
COMPILE = $(TOOLS)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_UPGRADE)

lock: $(TOOLS_STAMP)
	$(COMPILE) pyproject.toml -o requirements.lock
	$(COMPILE) pyproject.toml --extra dev --group pyproject.toml:build -c requirements.lock \
		-o requirements-dev.lock
	$(COMPILE) --group pyproject.toml:tools -o requirements-tools.lock

lock-upgrade:
	$(MAKE) lock LOCK_UPGRADE="$(if $(PACKAGE),$(addprefix --upgrade-package ,$(PACKAGE)),--upgrade)"

# Every lock file against the known vulnerabilities (pip-audit; CI runs this). A vulnerable
# package fails; packages the advisory service did not answer for are listed and pass unless
# AUDIT_STRICT=1. README: Dependencies and the lock files.
audit: $(TOOLS_STAMP)
	$(TOOLS)/bin/python .ci/audit.py requirements.lock requirements-dev.lock requirements-tools.lock

.demo-password:
	$(BIN)/python -c "import secrets; print(secrets.token_urlsafe(12))" > .demo-password

run: export DEBUG ?= 1
run: install .demo-password
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --password "$$(cat .demo-password)"
	$(BIN)/python manage.py generate_synthetic --people 300 --days 400 --member director --unless-present
	@$(MAKE) --no-print-directory display-link
	@echo "Open http://127.0.0.1:8000 and sign in with a demo login above."
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# The waiting-room display links of the database `make run` serves (the same settings), the
# clinic's own site first: `make display-link`, or `make display-link SITE=riverside`.
display-link: export DEBUG ?= 1
display-link:
	@echo "Waiting-room display links (open one on the TV):"
	@$(BIN)/python manage.py display_link $(if $(SITE),--site "$(SITE)")

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
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache staticfiles node_modules
