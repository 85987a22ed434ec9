# tests/: Check suites, one binary per concern (tests/test_NAME.c), each
# test named for the property it checks. Shared helpers: tests/testlib.[ch].
# A suite that needs a GPU exits 77 (SKIP) without one.
if HAVE_CHECK
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = lib/libfa2.la $(CHECK_LIBS) $(OPENBLAS_LIBS) -lm

endif
