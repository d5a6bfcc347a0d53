# `make demo`: the main job — a C notifier, a Python listener and a Node listener on one queue
# directory, with a rolled-back transaction whose notification never appears (examples/demo.py).
DEMO_TARGET := demo-languages

.PHONY: demo-languages
demo-languages: ffi-libs python-wheel build-node
	@mkdir -p target/c/examples
	cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude -o target/c/examples/notifier examples/c/notifier.c \
	    -L$(FFI_LIBDIR) -Wl,-rpath,$(CURDIR)/$(FFI_LIBDIR) -lhark
	python3 examples/demo.py
