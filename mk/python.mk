# The Python package (bindings/python): a wheel built with maturin into a local .venv, its
# pytest suite, the examples (run by that suite), `mypy --strict` on the examples and the
# package, and stubtest to hold the native module's stub to what the module really has.
TEST_TARGETS += test-python

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
# Pinned so that every machine builds and checks with the same tools.
PY_TOOLS := maturin==1.16.0 pytest==8.4.2 mypy==1.19.1 ziglang==0.14.1 auditwheel==6.8.2
PY_SRC := $(shell find bindings/python/src bindings/python/python -type f) bindings/python/Cargo.toml bindings/python/pyproject.toml bindings/python/README.md $(shell find core/src -type f) core/Cargo.toml

.PHONY: test-python python-wheel

# Where the interpreter's venv module cannot install pip (Debian without python3-venv),
# virtualenv from PyPI, which brings its own pip, makes the same environment.
$(VENV)/.tools: mk/python.mk
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) && $(PYTHON) -m pip install --quiet --user virtualenv && $(PYTHON) -m virtualenv -q $(VENV); }
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check $(PY_TOOLS)
	touch $@

# The release wheel, the one `make dist` ships: abi3, so any CPython >= 3.10 takes it, and linked
# by zig against glibc 2.17's symbols (manylinux2014), so that it installs on any Linux of the last
# decade and not only on one as new as this machine; maturin refuses to tag it so otherwise. Zig is
# the venv's (PyPI's ziglang), which maturin finds as `python3 -m ziglang` on the PATH.
#
# Zig links its own static copy of LLVM's libunwind in place of libgcc_s (cargo-zigbuild rewrites
# -lgcc_s to -lunwind). glibc's pthread_exit unwinds with libgcc_s's unwinder, and CPython calls
# it in a daemon thread that returns from a wait in hark while the interpreter exits: mixing the
# two unwinders crashed it (SIGSEGV; test_interrupt.py's threaded test). The module is therefore
# linked against the system's libgcc_s.so.1 (allowed by manylinux2014) under a name zig leaves
# alone, given before the standard library so that its _Unwind_* symbols win.
ZIG_LIBGCC := target/zig-libgcc
$(VENV)/.wheel: $(VENV)/.tools $(PY_SRC)
	rm -rf target/wheels/hark_notify-*.whl
	mkdir -p $(ZIG_LIBGCC)
	ln -sfn "$$(realpath "$$($(CC) -print-file-name=libgcc_s.so.1)")" $(ZIG_LIBGCC)/libhark_gcc_s.so
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/maturin build --release --quiet -m bindings/python/Cargo.toml \
	    -i $(VENV_PY) -o target/wheels --zig --compatibility manylinux2014 \
	    -- -L native=$(CURDIR)/$(ZIG_LIBGCC) -l dylib=hark_gcc_s
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --no-index --no-deps --force-reinstall target/wheels/hark_notify-*.whl
	touch $@

python-wheel: $(VENV)/.wheel

# The Rust peer is the other side of the cross-language tests. The native module is built once
# more with its test hooks (feature fault-hooks), in a target directory of its own so that the
# two builds do not undo each other; only the tests that need a hook import it. Any pytest exit
# status but 0 fails the target, including 5 (no test collected): a suite that ran nothing did
# not pass.
test-python: $(VENV)/.wheel
	$(CARGO) build -q -p hark --release --example peer
	CARGO_TARGET_DIR=$(CURDIR)/target/fault-hooks PYO3_PYTHON=$(CURDIR)/$(VENV_PY) $(CARGO) build -q -p hark-python --release --features fault-hooks
	HARK_PEER=$(CURDIR)/target/release/examples/peer HARK_FAULT_MODULE=$(CURDIR)/target/fault-hooks/release/lib_hark.so $(VENV_PY) -m pytest -q bindings/python/tests
	$(VENV)/bin/mypy --strict --python-version 3.10 examples/python bindings/python/python/hark
	$(VENV_PY) -m mypy.stubtest hark._hark
