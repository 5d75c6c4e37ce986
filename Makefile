# Lifeboat: `make run` serves the embedded default with a demo account; `make test` runs every test.
#
# Installs come from the hashed lock files in requirements/ (run.txt: what running needs;
# test.txt: that plus the test tools and real servers), so every machine gets the same
# versions; pyproject.toml keeps only lower bounds. `make lock` refreshes both locks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_LOCK := requirements/run.txt
TEST_LOCK := requirements/test.txt
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The lock tool lives apart from the project's packages, so `make lock` never changes what tests see.
UV_VERSION := 0.13.9
TOOLS := $(VENV)/uv-$(UV_VERSION)
UV := $(TOOLS)/bin/uv
# Python 3.11 on Linux x86_64: the machines this project runs and is tested on.
COMPILE := $(UV) pip compile pyproject.toml --quiet --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --generate-hashes --custom-compile-command "make lock" \
	-c requirements/constraints.txt $(LOCK_FLAGS)
# `make lock` keeps every pin it can and adds what pyproject.toml gained; `make lock LOCK_FLAGS=--upgrade`
# moves everything to the newest versions allowed.
LOCK_FLAGS ?=

.PHONY: run test test-fast test-browser check lint layers typecheck docs format bench clean lock system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip

# --no-deps: the lock already names every package; the project itself comes last, without resolving.
# pip check then catches a pyproject.toml that gained a dependency the lock does not have yet.
$(RUN_STAMP): $(RUN_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(RUN_LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check || { echo "$(RUN_LOCK) does not satisfy pyproject.toml: run make lock"; exit 1; }
	touch $@

$(TEST_STAMP): $(TEST_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(TEST_LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check || { echo "$(TEST_LOCK) does not satisfy pyproject.toml: run make lock"; exit 1; }
	touch $@

# Refresh both locks from pyproject.toml. run.txt first; test.txt is constrained by it, so the
# packages both share are the same versions in both (tests exercise what production runs).
lock: | $(BIN)/python
	test -x $(UV) || $(BIN)/python -m pip install -q --target $(TOOLS) uv==$(UV_VERSION)
	$(COMPILE) -o $(RUN_LOCK)
	$(COMPILE) --extra test -c $(RUN_LOCK) -o $(TEST_LOCK)

# Debian packages the tests use: Info-ZIP's zip/unzip (the archive tests re-pack with them), age, gpg
# and ssh-keygen (sealed archives are opened with the standard tools, keys made by them), and
# Chromium (the browser tests drive /usr/lib/chromium/chromium through Playwright; `playwright
# install` is never used). A no-op when they are present; needs root for apt-get, otherwise
# says what to install.
system-deps:
	@missing=""; for tool in zip unzip age; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	command -v gpg >/dev/null || missing="$$missing gnupg"; command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	test -x /usr/lib/chromium/chromium || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; \
	else \
		echo "not root: skipping apt-get; install$$missing (e.g. sudo apt-get install$$missing)"; \
	fi

# `make run PORT=8080` serves on another port (or `lifeboat serve --port N` once installed).
PORT ?= 5000
run: $(RUN_STAMP)
	$(BIN)/flask --app app db upgrade
	$(BIN)/flask --app app demo
	$(BIN)/flask --app app serve --port $(PORT)

# Hypothesis runs the long "ci" profile when CI is set (see tests/conftest.py), the short "dev" one otherwise.
# Types first: a type error fails `make test` (and so .ci/run) before the long pytest run starts.
# -n auto: one pytest worker per core (pytest-xdist); --dist loadgroup keeps the scale tests, which
# restart PostgreSQL, together on one worker (tests/conftest.py). Measured on this 2-core machine:
# 5:47 for the whole suite against 8:51 in one process.
PYTEST_PARALLEL ?= -n auto --dist loadgroup
# Tests run with Python's bytecode cache on, even where the environment sets PYTHONDONTWRITEBYTECODE
# (this machine's does): otherwise every pytest worker, and every CLI or server process a test starts,
# compiles the service's modules again and pytest rewrites every test module again (collection took
# 13 s of CPU per worker without the cache, 6 s with it). __pycache__/ is in .gitignore.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest

# --durations: the whole suite has an 8-minute budget; the slowest tests, named at the end of each run, are where to look.
test: typecheck system-deps
	$(PYTEST) -q -p no:cacheprovider $(PYTEST_PARALLEL) --durations=30

test-fast: $(TEST_STAMP) system-deps
	$(PYTEST) -q $(PYTEST_PARALLEL) -m "not server and not scale and not slow and not browser"

# The pages in Chromium: screenshots go to tests/browser/screenshots/ (or $$LIFEBOAT_SCREENSHOTS).
test-browser: $(TEST_STAMP) system-deps
	$(PYTEST) -q -m browser tests/browser

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# mypy as configured in pyproject.toml ([tool.mypy]): strict for account, exporters and store, default
# mode elsewhere, tests and bench included. Not part of test-fast, which stays quick.
typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# The import contracts in pyproject.toml ([tool.importlinter]); tests/unit/test_layers.py runs them in `make test` too.
layers: $(TEST_STAMP)
	$(BIN)/lint-imports --no-cache

# .env.example and the settings table in docs/deployment.md, generated from config.SETTINGS
# (tests/unit/test_settings.py fails while they are out of date).
docs: | $(BIN)/python
	$(BIN)/python -c "import config; [print('wrote', path) for path in config.write_docs()]"

check: lint layers typecheck test

bench: $(TEST_STAMP)
	$(BIN)/python bench/export_account.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis .mypy_cache
