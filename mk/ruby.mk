# The Ruby gem (bindings/ruby, require 'hark'): the ffi gem over libhark.so, its minitest suite,
# the examples (run by that suite: the Sequel listener, and the faye-websocket push checked in
# headless Chromium). Ruby and the gems come from Debian's packages, installed here when missing.
TEST_TARGETS += test-ruby

RUBY ?= ruby
RUBY_PKG := bindings/ruby
# Debian's packages: the interpreter, the ffi gem, minitest, and for the push example
# faye-websocket and the puma Rack server. No ruby-dev: the gem compiles nothing (the ffi gem
# binds libhark.so at run time; bindings/ruby/README.md says why).
RUBY_DEBS := ruby ruby-ffi ruby-minitest ruby-faye-websocket puma
RUBY_CHECK := require "ffi"; require "minitest"; require "faye/websocket"; require "puma"

.PHONY: test-ruby ruby-setup ruby-lib
ruby-setup:
	@if ! $(RUBY) -e '$(RUBY_CHECK)' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-ruby: installing $(RUBY_DEBS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(RUBY_DEBS) >/dev/null; \
	    $(RUBY) -e '$(RUBY_CHECK)' || { echo "test-ruby: $(RUBY_DEBS) installed, but Ruby still cannot load them"; exit 1; }; \
	  else \
	    echo "test-ruby: Ruby or its gems are missing; install Debian's $(RUBY_DEBS) (needs root)"; exit 1; \
	  fi; \
	fi

# The gem loads lib/hark/libhark.so when present, as a packaged gem does (hark.gemspec).
ruby-lib: ffi-libs ruby-setup
	cp -f $(FFI_LIBDIR)/libhark.so $(RUBY_PKG)/lib/hark/libhark.so

# Chromium comes from cli-test-setup (mk/cli.mk): the push example's browser test needs it. The
# hardening crate's `member`, built with the core's test hooks in a target directory of its own
# (so that no hooked library replaces the released one), parks a commit holding the writer lock.
RUBY_HOOKS_DIR := $(CURDIR)/target/fault-hooks
test-ruby: ruby-lib cli-test-setup
	CARGO_TARGET_DIR=$(RUBY_HOOKS_DIR) $(CARGO) build -q -p hark-hardening --release --bin member
	cd $(RUBY_PKG) && HARK_MEMBER=$(RUBY_HOOKS_DIR)/release/member \
	  $(RUBY) -w -Ilib -Itest -e 'ARGV.each { |f| require File.expand_path(f) }' test/*_test.rb
	mkdir -p target/ruby
	cd $(RUBY_PKG) && gem build --silent hark.gemspec -o ../../target/ruby/hark.gem
