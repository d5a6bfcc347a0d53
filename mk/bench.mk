# Benchmarks (issue 7): `make bench` measures hark and its peers in one run and writes
# bench/RESULTS.md; `make test` runs every scenario with small counts as a functional check.
TEST_TARGETS += test-bench

BENCH_VENV := .venv-bench
HARK_BENCH := target/release/hark bench
PG_PEER := target/bench/pg_peer

.PHONY: bench test-bench bench-peers

test-bench:
	$(CARGO) build --release -q -p hark-cli
	$(HARK_BENCH) --quick

# Peers: PostgreSQL 15 and libpq from Debian's packages, honker from PyPI. Whatever cannot be
# installed is reported as missing in the results, never silently left out.
bench-peers:
	@if ! [ -x /usr/lib/postgresql/15/bin/postgres ] || ! [ -f /usr/include/postgresql/libpq-fe.h ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 libpq-dev) >/dev/null \
	            || echo "bench: could not install PostgreSQL 15"; \
	    else echo "bench: PostgreSQL 15 missing and not root: it will be reported as missing"; fi; \
	fi
	@mkdir -p target/bench
	@if [ -f /usr/include/postgresql/libpq-fe.h ]; then \
	    cc -O2 -std=c11 -Wall -Wextra -Werror -o $(PG_PEER) bench/peers/pg_peer.c -I/usr/include/postgresql -lpq; fi
	@[ -x $(BENCH_VENV)/bin/python ] || python3 -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -c 'import honker' 2>/dev/null \
	    || $(BENCH_VENV)/bin/pip install -q 'honker==0.2.4' || echo "bench: could not install honker"

# The Python and Node rows use hark's own bindings as the listener (python-wheel, build-node).
# The SQLite rows need the extension and a Python that loads it (mk/sqlite.mk), with honker.
bench: bench-peers python-wheel build-node build-sqlite .venv-sqlite/.wheel
	$(CARGO) build --release -q -p hark-cli
	HARK_SQLITE_EXTENSION=$(SQLITE_EXT) python3 bench/run_bench.py --hark-bench "$(HARK_BENCH)" \
	    $$( [ -x $(PG_PEER) ] && echo --pg-peer $(PG_PEER) ) \
	    $$( $(BENCH_VENV)/bin/python -c 'import honker' 2>/dev/null && echo --honker-python $(BENCH_VENV)/bin/python ) \
	    --python-peer $(VENV_PY) --node-peer bench/peers/hark_node_peer.js \
	    $$( $(SQLITE_VENV)/bin/pip install -q 'honker==0.2.4' && echo --sqlite-python $(SQLITE_VENV)/bin/python ) $(BENCH_ARGS)
