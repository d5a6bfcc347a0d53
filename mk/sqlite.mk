# The SQLite extension (sqlite/, libhark_sqlite.so): its suite (sqlite/tests, pytest) runs the
# extension from Python's sqlite3 module, the sqlite3 shell, Node and C, and kills writers,
# publishers and listeners for real. The extension is built twice: released, and with its crash
# points (feature test-hooks) in a target directory of its own, so the released one never has
# them. Python needs an interpreter whose sqlite3 module can load extensions (some builds, such
# as pyenv's default, cannot): $(PYTHON) if it can, else the system's /usr/bin/python3, in a
# venv of its own with the hark wheel. The sqlite3 shell comes from Debian's package.
TEST_TARGETS += test-sqlite

SQLITE_VENV := .venv-sqlite
SQLITE_EXT := $(abspath $(or $(CARGO_TARGET_DIR),$(CURDIR)/target))/release/libhark_sqlite.so
SQLITE_HOOKS_DIR := $(abspath $(or $(CARGO_TARGET_DIR),$(CURDIR)/target))/sqlite-test-hooks
SQLITE_PYTEST_ARGS ?=
NPM ?= npm

.PHONY: test-sqlite build-sqlite sqlite-test-setup soak-sqlite demo-orders

build-sqlite:
	$(CARGO) build -q -p hark-sqlite --release
	CARGO_TARGET_DIR=$(SQLITE_HOOKS_DIR) $(CARGO) build -q -p hark-sqlite --release --features test-hooks

# The sqlite3 shell and a C compiler with SQLite's headers (Debian: sqlite3, libsqlite3-dev).
sqlite-test-setup:
	@if ! command -v sqlite3 >/dev/null 2>&1 || [ ! -f /usr/include/sqlite3.h ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-sqlite: installing sqlite3 and libsqlite3-dev"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 libsqlite3-dev >/dev/null; \
	  else \
	    echo "test-sqlite: the sqlite3 shell and libsqlite3-dev are needed (apt-get install sqlite3 libsqlite3-dev)"; exit 1; \
	  fi; \
	fi

$(SQLITE_VENV)/.tools: mk/sqlite.mk
	@py=$(PYTHON); \
	if ! $$py -c 'import sqlite3, sys; sys.exit(not hasattr(sqlite3.Connection, "enable_load_extension"))'; then \
	  echo "test-sqlite: $$py cannot load SQLite extensions; using /usr/bin/python3"; py=/usr/bin/python3; \
	  if ! $$py -c 'import venv, ensurepip' 2>/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  fi; \
	fi; \
	rm -rf $(SQLITE_VENV) && $$py -m venv $(SQLITE_VENV)
	$(SQLITE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check pytest==8.4.2
	touch $@

$(SQLITE_VENV)/.wheel: $(SQLITE_VENV)/.tools $(VENV)/.wheel
	$(SQLITE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-index --no-deps --force-reinstall target/wheels/hark_notify-*.whl
	touch $@

# better-sqlite3 (version 12: 13 crashes on Node 20) for the Node example; npm compiles it when
# no prebuilt binary fits, so it is installed again only when the lock file changes.
target/.examples-node-stamp: examples/node/package-lock.json
	cd examples/node && $(NPM) ci --no-audit --no-fund
	@mkdir -p $(@D)
	touch $@

test-sqlite: build-sqlite sqlite-test-setup $(SQLITE_VENV)/.wheel target/.examples-node-stamp
	HARK_SQLITE_EXTENSION=$(SQLITE_EXT) HARK_SQLITE_EXTENSION_HOOKS=$(SQLITE_HOOKS_DIR)/release/libhark_sqlite.so \
	  $(SQLITE_VENV)/bin/python -m pytest -q sqlite/tests $(SQLITE_PYTEST_ARGS)

# A longer SIGKILL loop than the one `make test` runs (minutes per journal mode).
soak-sqlite: build-sqlite sqlite-test-setup $(SQLITE_VENV)/.wheel
	HARK_SQLITE_CHAOS_SECS=300 HARK_SQLITE_EXTENSION=$(SQLITE_EXT) \
	  $(SQLITE_VENV)/bin/python -m pytest -q sqlite/tests/test_chaos.py

# `make demo` (mk/demo.mk): the orders application in Python, Node and C, one writer killed.
demo-orders: build-sqlite sqlite-test-setup $(SQLITE_VENV)/.wheel build-node
	@mkdir -p target/c/examples
	cc -std=c11 -Wall -Wextra -Werror -pedantic -o target/c/examples/orders examples/c/orders.c -lsqlite3
	HARK_SQLITE_EXTENSION=$(SQLITE_EXT) $(SQLITE_VENV)/bin/python examples/orders_demo.py
