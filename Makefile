# hark: `make demo` runs the main job, `make test` builds everything and runs every test.
# Each part of the project adds its own rules in mk/<part>.mk and appends its test target to
# TEST_TARGETS, so that `make test` runs every suite and nothing is installed by hand.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

TEST_TARGETS :=
DEMO_TARGET := demo-rust

include $(sort $(wildcard mk/*.mk))

.PHONY: test demo
test: $(TEST_TARGETS)
	@echo "make test: every suite passed ($(TEST_TARGETS))"

demo: $(DEMO_TARGET)
