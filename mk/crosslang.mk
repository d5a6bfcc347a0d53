# Every language's notifier against every language's listener (tests/crosslang): C, Rust,
# Python, Node and Ruby as separate processes on one queue.
TEST_TARGETS += test-crosslang

.PHONY: test-crosslang c-examples
c-examples: ffi-libs
	@mkdir -p target/c/examples
	for ex in listener notifier; do \
	    cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude -o target/c/examples/$$ex examples/c/$$ex.c \
	        -L$(FFI_LIBDIR) -Wl,-rpath,$(CURDIR)/$(FFI_LIBDIR) -lhark; done

test-crosslang: c-examples python-wheel build-node ruby-lib
	$(CARGO) build -q -p hark --release --example peer
	python3 tests/crosslang/run.py
