# The hark command (crate hark-cli in cli/): unit tests, shell transcripts checked against psql's
# output, listen/notify/stat/shell as separate processes, hark serve over raw sockets, and the
# dashboard in headless Chromium.
TEST_TARGETS += test-cli

.PHONY: test-cli cli-test-setup
test-cli: cli-test-setup
	$(CARGO) test -p hark-cli --release

# Debian's chromium for the dashboard test. Installing needs root (as CI has); where it cannot be
# installed, the dashboard test says that it is skipped.
cli-test-setup:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "test-cli: installing chromium for the dashboard test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "test-cli: could not install chromium; the dashboard test will be skipped"; \
	  else \
	    echo "test-cli: chromium is missing and cannot be installed without root; the dashboard test will be skipped"; \
	  fi; \
	fi
