# The Node package (bindings/node, require('hark-notify')): npm ci installs the napi CLI from the npm
# registry, which builds the addon (release) and regenerates index.js/index.d.ts; those are
# committed, so a difference means they are stale. The suite runs against the Rust peer too, after
# tsc checks the type declarations against a usage file (test/types/usage.ts).
TEST_TARGETS += test-node

NODE_PKG := bindings/node
NPM ?= npm

.PHONY: test-node build-node build-node-test-addon node-test-setup
build-node:
	cd $(NODE_PKG) && $(NPM) ci --no-audit --no-fund
	cd $(NODE_PKG) && npx napi build --platform --release
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && \
	    ! git diff --quiet -- $(NODE_PKG)/index.js $(NODE_PKG)/index.d.ts; then \
	  git diff --stat -- $(NODE_PKG)/index.js $(NODE_PKG)/index.d.ts; \
	  echo "$(NODE_PKG)/index.js or index.d.ts differ from what napi generates: commit the regenerated files"; \
	  exit 1; \
	fi
	cd examples/node && $(NPM) ci --no-audit --no-fund

# strace counts a notifier's wake-up datagrams (test/wakeups.test.js). Installing needs root (as
# CI has); where it cannot be installed, that test says that it is skipped.
node-test-setup:
	@if ! command -v strace >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-node: installing strace for the wake-up test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null) \
	      || echo "test-node: could not install strace; the wake-up test will be skipped"; \
	  else \
	    echo "test-node: strace is missing and cannot be installed without root; the wake-up test will be skipped"; \
	  fi; \
	fi

# The test build of the addon, with the `test-panic` feature (a hidden method that panics, for
# test/panic.test.js), in a target directory of its own: the released addon never has the hook.
# Its index.js and index.d.ts go with it, not into the package (the napi CLI takes that directory
# relative to the package). The CLI collects the type definitions in a file under $TMPDIR named
# after the package, which a cached release build does not write again: the test build gets a
# TMPDIR of its own, or its hidden method would appear in the package's index.d.ts.
NODE_TEST_ADDON := $(abspath $(or $(CARGO_TARGET_DIR),$(CURDIR)/target))/test-panic
build-node-test-addon: build-node
	mkdir -p $(NODE_TEST_ADDON)/tmp
	cd $(NODE_PKG) && TMPDIR=$(NODE_TEST_ADDON)/tmp CARGO_TARGET_DIR=$(NODE_TEST_ADDON) npx napi build --platform --release \
	  --features test-panic --dts index.d.ts "$$(realpath -m --relative-to=. $(NODE_TEST_ADDON)/addon)"

test-node: build-node build-node-test-addon node-test-setup
	$(CARGO) build -p hark --release --example peer
	cd $(NODE_PKG) && npx tsc --noEmit -p test/types
	cd $(NODE_PKG) && node --test test/*.test.js
