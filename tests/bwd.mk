# tests/bwd.mk: the backward suite (kept apart from tests/local.mk).
if HAVE_CHECK
check_PROGRAMS += tests/test_bwd
TESTS += tests/test_bwd
tests_test_bwd_SOURCES = tests/test_bwd.c tests/testlib.c
tests_test_bwd_CFLAGS = $(TEST_CFLAGS)
tests_test_bwd_LDADD = $(TEST_LIBS)
endif
