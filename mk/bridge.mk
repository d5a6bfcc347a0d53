# The bridge (crate hark-bridge in bridge/, command `hark bridge`): its unit tests, then real
# `hark bridge` processes joined through a throwaway PostgreSQL 15 cluster. PostgreSQL 15 comes
# from Debian's packages, with the openssl command for the TLS tests' throwaway certificates;
# installing needs root (as CI has), and without it the tests that need them say that they are
# skipped. TLS itself is rustls, built from crates.io: no system OpenSSL library is needed.
TEST_TARGETS += test-bridge

.PHONY: test-bridge bridge-test-setup
bridge-test-setup:
	@if ! [ -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v psql >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-bridge: installing PostgreSQL 15 (and openssl, which makes the TLS tests' certificates)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client-15 openssl >/dev/null) \
	      || echo "test-bridge: could not install PostgreSQL 15; its tests will be skipped"; \
	  else \
	    echo "test-bridge: PostgreSQL 15 is missing and cannot be installed without root; its tests will be skipped"; \
	  fi; \
	fi

test-bridge: bridge-test-setup
	$(CARGO) build -p hark-cli --release
	$(CARGO) test -p hark-bridge --release

# `make bench` measures two hosts' bridges through its PostgreSQL cluster, in the same run.
BRIDGE_BENCH := target/release/examples/bridge_bench
.PHONY: bridge-bench-build
bridge-bench-build:
	$(CARGO) build -q -p hark-bridge --release --example bridge_bench
bench: bridge-bench-build
BENCH_ARGS += --bridge-bench $(BRIDGE_BENCH)
