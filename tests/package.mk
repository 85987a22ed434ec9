# Tests of what the package ships rather than what it computes: the shared
# library exports exactly the public API; every code block of the docs
# compiles; every public function and status is documented; the teaching
# page renders; fa2.pc asks pkg-config for OpenBLAS instead of a fixed path.
TESTS += tests/exports.sh tests/docs.sh tests/trace_html.sh tests/pkgconfig.sh
EXTRA_DIST += tests/exports.sh tests/docs.sh tests/trace_html.sh \
	tests/pkgconfig.sh

# Shell-script tests (*.sh) run under $(SHELL), with the build's compiler,
# python and sanitizer flags in their environment.
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = env CC='$(CC)' PYTHON='$(PYTHON)' \
	FA2_SANITIZER_FLAGS='$(SANITIZER_FLAGS)' $(SHELL)

# make distcheck: the tarball holds every file its Markdown links to.
EXTRA_DIST += tests/dist-links.sh
distcheck-hook:
	$(SHELL) $(top_srcdir)/tests/dist-links.sh $(distdir)
