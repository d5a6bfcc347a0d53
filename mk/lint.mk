# Lint (part of `make test`): the Rust formatter and clippy on every crate and target, with
# warnings as errors. The formatter's settings are in rustfmt.toml.
TEST_TARGETS += test-lint

.PHONY: test-lint fmt
test-lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -q -- -D warnings

# Formats every crate in place.
fmt:
	$(CARGO) fmt --all
