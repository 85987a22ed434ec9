# tests/: Check suites. A suite that needs a GPU exits 77 (SKIP) without one.
if HAVE_CHECK
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LDADD = lib/libfa2.la $(CHECK_LIBS) $(OPENBLAS_LIBS) -lm
endif
