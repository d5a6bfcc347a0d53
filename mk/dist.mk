# The packages, as a user installs them.
#
#   make dist              every artefact into dist/: the wheel (manylinux2014, abi3) and the sdist
#                          of hark-notify (`import hark`), the npm tarball of hark-notify with its
#                          prebuilt addon, and the C tarball (header, libhark.so.0 and links,
#                          libhark.a, hark.pc, the hark command and its man page)
#   make test-dist         installs each into a fresh, empty environment outside the work tree and
#                          runs a smoke test on the installed copy (tests/dist/run.sh)
#   make install PREFIX=…  also installs the hark command and its man page (the C part: mk/ffi.mk)
TEST_TARGETS += test-dist

DIST        := dist
DIST_ARCH   := $(shell uname -m)
C_DIST_NAME  = hark-$(FFI_VERSION)
C_DIST_STAGE = target/dist/$(C_DIST_NAME)
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
HARK_MAN    := cli/man/hark.1

.PHONY: dist dist-python dist-node dist-c test-dist install-cli hark-cli

dist: dist-python dist-node dist-c
	@ls -l $(DIST)

hark-cli:
	$(CARGO) build -p hark-cli --release

# The wheel is the one `make test-python` tests (mk/python.mk builds it for manylinux2014).
dist-python: python-wheel
	mkdir -p $(DIST)
	rm -f $(DIST)/hark_notify-*
	cp target/wheels/hark_notify-$(FFI_VERSION)-*.whl $(DIST)/
	$(VENV)/bin/maturin sdist -m bindings/python/Cargo.toml -o $(DIST)

# npm pack takes what package.json's "files" lists: lib/, the generated loader and the .node that
# build-node has just made.
dist-node: build-node
	mkdir -p $(DIST)
	rm -f $(DIST)/hark-notify-*.tgz
	cd $(NODE_PKG) && $(NPM) pack --silent --pack-destination $(CURDIR)/$(DIST) >/dev/null

# The C tarball unpacks to hark-<version>/ and works from wherever it is unpacked: its hark.pc
# finds the prefix from its own place (pkg-config's ${pcfiledir}).
dist-c: ffi-libs hark-cli
	rm -rf $(C_DIST_STAGE) && mkdir -p $(C_DIST_STAGE)/lib/pkgconfig $(C_DIST_STAGE)/include $(DIST)
	cp -P $(FFI_LIBDIR)/libhark.so $(FFI_LIBDIR)/libhark.so.* $(FFI_LIBDIR)/libhark.a $(C_DIST_STAGE)/lib/
	cp include/hark.h $(C_DIST_STAGE)/include/
	sed -e 's|@PREFIX@|$${pcfiledir}/../..|' -e 's|@LIBDIR@|$${prefix}/lib|' -e 's|@INCLUDEDIR@|$${prefix}/include|' \
	    -e 's|@VERSION@|$(FFI_VERSION)|' -e 's|@LIBS_PRIVATE@|$(HARK_LIBS_PRIVATE)|' ffi/hark.pc.in \
	    > $(C_DIST_STAGE)/lib/pkgconfig/hark.pc
	install -D -m 0755 target/release/hark $(C_DIST_STAGE)/bin/hark
	install -D -m 0644 $(HARK_MAN) $(C_DIST_STAGE)/share/man/man1/hark.1
	cp LICENSE-MIT LICENSE-APACHE $(C_DIST_STAGE)/
	rm -f $(DIST)/hark-*-linux-*.tar.gz
	tar -czf $(DIST)/$(C_DIST_NAME)-linux-$(DIST_ARCH).tar.gz -C target/dist --owner=0 --group=0 $(C_DIST_NAME)

test-dist: dist
	ROOT=$(CURDIR) DIST=$(DIST) VERSION=$(FFI_VERSION) PYTHON=$(PYTHON) NPM=$(NPM) CC="$(CC)" \
	    MAKE="$(MAKE)" tests/dist/run.sh

install: install-cli
install-cli: hark-cli
	install -D -m 0755 target/release/hark $(DESTDIR)$(BINDIR)/hark
	install -D -m 0644 $(HARK_MAN) $(DESTDIR)$(MANDIR)/man1/hark.1
