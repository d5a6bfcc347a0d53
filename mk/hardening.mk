# Hardening (issue 8): a chaos soak with a checker, fuzz targets with their corpus kept as
# regression tests, and tests of disk full, descriptor exhaustion, listener slots and hostile files.
#
#   make soak          SOAK_SECONDS (default 120), SOAK_NOTIFIERS, SOAK_LISTENERS
#   make fuzz          each target for FUZZ_SECONDS (default 60), cargo-fuzz installed under .tools/;
#                      new inputs go to fuzz/work/ (not kept), findings to fuzz/artifacts/; the kept
#                      seeds are fuzz/corpus/<target>/ and fixed findings fuzz/regressions/<target>/
#   make test-hardening  the regression inputs, the limit tests and a 25-second soak
TEST_TARGETS += test-hardening

SOAK_SECONDS ?= 120
SOAK_NOTIFIERS ?= 4
SOAK_LISTENERS ?= 4
SOAK_SHORT_SECONDS ?= 25
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := sql open_queue read_segment
# cargo fuzz builds with nightly-only flags (sanitizers, -Z options); this toolchain is stable.
FUZZ_ENV := RUSTC_BOOTSTRAP=1
TOOLS := $(CURDIR)/.tools
CARGO_FUZZ := $(TOOLS)/bin/cargo-fuzz

.PHONY: test-hardening soak fuzz
test-hardening:
	$(CARGO) test -p hark-hardening --release
	$(CARGO) run -q -p hark-hardening --release --bin soak -- \
	    --seconds $(SOAK_SHORT_SECONDS) --notifiers 3 --listeners 3

soak:
	$(CARGO) run -q -p hark-hardening --release --bin soak -- \
	    --seconds $(SOAK_SECONDS) --notifiers $(SOAK_NOTIFIERS) --listeners $(SOAK_LISTENERS)

$(CARGO_FUZZ):
	$(CARGO) install --locked cargo-fuzz --root $(TOOLS)

fuzz: $(CARGO_FUZZ)
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	    mkdir -p work/$$t artifacts/$$t; \
	    $(FUZZ_ENV) $(CARGO_FUZZ) fuzz run --release $$t work/$$t corpus/$$t -- \
	        -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=artifacts/$$t/ -rss_limit_mb=2048 -timeout=10 || exit 1; \
	done
