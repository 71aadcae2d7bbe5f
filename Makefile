# The two commands of README.md: `make chat` runs Kigen, `make test` runs the tests.
# Only Python >= 3.11 and make are needed; everything else is installed into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: chat test lint messages system-test-deps

chat: $(VENV)/.installed
	$(BIN)/kigen chat

test: $(VENV)/.installed-test system-test-deps
	$(BIN)/ruff check .
	$(BIN)/python .ci/audit.py
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# Debian packages the browser tests need; skipped (and those tests skip) where apt-get
# cannot be used.
system-test-deps:
	@sh tests/system-deps.sh

# Re-extract interface strings into locales/kigen.pot and merge them into every catalog;
# the console's own strings (English and Japanese) go to locales/admin.pot.
messages: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ -k gettext -k ngettext:1,2 \
		--no-location --sort-output --omit-header -o locales/kigen.pot .
	$(BIN)/pybabel update -i locales/kigen.pot -d locales -D kigen --ignore-obsolete
	$(BIN)/pybabel extract -F babel-admin.cfg -k _ --no-location --sort-output --omit-header \
		-o locales/admin.pot .
	$(BIN)/pybabel update -i locales/admin.pot -d locales -D admin -l ja
