# The C ABI (crate hark-ffi): libhark.so, libhark.a, include/hark.h, hark.pc, the C examples.
#
#   make header            regenerate include/hark.h from ffi/src (cbindgen, installed locally)
#   make test-ffi          the whole ffi suite (part of `make test`)
#   make install PREFIX=…  install the libraries, the header and hark.pc (default /usr/local), and
#                          the hark command and its man page (mk/dist.mk); DESTDIR for staging
#
# Cargo builds the library as hark_ffi (the core crate's library is already named hark); the rules
# below give the artifacts their real names under target/c/lib: libhark.so.<version>, its soname
# link libhark.so.0 (ffi/build.rs) and the link libhark.so that `-lhark` finds, as libpq's. The
# release profile leaves debug info out of libhark.so; libhark.a holds the standard library's
# objects as shipped, with theirs, which strip --strip-debug takes out (23 MB to 14 MB).
TEST_TARGETS += test-ffi

FFI_TOOLS      := $(CURDIR)/.tools
CBINDGEN_VER   := 0.29.4
CBINDGEN       := $(FFI_TOOLS)/bin/cbindgen
FFI_OUT        := target/c
FFI_LIBDIR     := $(FFI_OUT)/lib
FFI_VERSION     = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
FFI_SONAME     := libhark.so.0
# What a program linked with libhark.a needs besides it (rustc --print native-static-libs).
HARK_LIBS_PRIVATE := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
DESTDIR     ?=

.PHONY: test-ffi ffi-libs header check-header install install-c FORCE

# cbindgen through cargo, pinned, into the work tree: nothing to install by hand.
$(CBINDGEN):
	$(CARGO) install --locked --quiet cbindgen --version $(CBINDGEN_VER) --root $(FFI_TOOLS)

# Cargo decides whether anything changed; the copies below are cheap.
ffi-libs: FORCE
	$(CARGO) build -p hark-ffi --release
	mkdir -p $(FFI_LIBDIR)
	rm -f $(FFI_LIBDIR)/libhark.so*
	cp -f target/release/libhark_ffi.so $(FFI_LIBDIR)/libhark.so.$(FFI_VERSION)
	ln -s libhark.so.$(FFI_VERSION) $(FFI_LIBDIR)/$(FFI_SONAME)
	ln -s $(FFI_SONAME) $(FFI_LIBDIR)/libhark.so
	cp -f target/release/libhark_ffi.a $(FFI_LIBDIR)/libhark.a
	strip --strip-debug $(FFI_LIBDIR)/libhark.a

$(FFI_OUT)/hark.pc: ffi/hark.pc.in FORCE
	mkdir -p $(FFI_OUT)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(FFI_VERSION)|' -e 's|@LIBS_PRIVATE@|$(HARK_LIBS_PRIVATE)|' $< > $@

header: $(CBINDGEN)
	cd ffi && $(CBINDGEN) --quiet --config cbindgen.toml --output ../include/hark.h

# The checked-in header must be exactly what cbindgen makes of the current source.
check-header: $(CBINDGEN)
	mkdir -p $(FFI_OUT)
	cd ffi && $(CBINDGEN) --quiet --config cbindgen.toml --output ../$(FFI_OUT)/hark.h
	@diff -u include/hark.h $(FFI_OUT)/hark.h || { \
	    echo "include/hark.h is out of date: run 'make header' and commit it" >&2; exit 1; }

test-ffi: check-header ffi-libs
	$(CARGO) test -p hark-ffi --release
	$(CARGO) build -p hark --release --example peer
	ROOT=$(CURDIR) HARK_LIBS_PRIVATE="$(HARK_LIBS_PRIVATE)" CC="$(CC)" MAKE="$(MAKE)" \
	    ffi/tests/c/run.sh

install: install-c
install-c: ffi-libs $(FFI_OUT)/hark.pc
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	rm -f $(DESTDIR)$(LIBDIR)/libhark.so $(DESTDIR)$(LIBDIR)/$(FFI_SONAME)
	install -m 0755 $(FFI_LIBDIR)/libhark.so.$(FFI_VERSION) $(DESTDIR)$(LIBDIR)/libhark.so.$(FFI_VERSION)
	ln -s libhark.so.$(FFI_VERSION) $(DESTDIR)$(LIBDIR)/$(FFI_SONAME)
	ln -s $(FFI_SONAME) $(DESTDIR)$(LIBDIR)/libhark.so
	install -m 0644 $(FFI_LIBDIR)/libhark.a $(DESTDIR)$(LIBDIR)/libhark.a
	install -m 0644 include/hark.h $(DESTDIR)$(INCLUDEDIR)/hark.h
	install -m 0644 $(FFI_OUT)/hark.pc $(DESTDIR)$(LIBDIR)/pkgconfig/hark.pc

FORCE:
