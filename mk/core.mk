# The Rust core (crate `hark`): unit, doc and multi-process tests.
TEST_TARGETS += test-core

.PHONY: test-core demo-rust
test-core:
	$(CARGO) test -p hark --release

# Two processes: one LISTENs, the other NOTIFYs inside a transaction (and rolls one back).
demo-rust:
	$(CARGO) run -q -p hark --release --example demo
