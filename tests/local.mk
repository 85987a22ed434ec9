# tests/: Check suites, one binary per concern (tests/test_NAME.c), each
# test named for the property it checks. Shared helpers: tests/testlib.[ch].
# A suite that needs a GPU exits 77 (SKIP) without one.
#
# The suites draw fresh random data every run; the seed is printed, and
# FA2_TEST_SEED=N reproduces a run (FA2_TEST_VERBOSE=1 prints every error
# ratio of the numerics contract).
if HAVE_CHECK
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = lib/libfa2.la $(CHECK_LIBS) $(OPENBLAS_LIBS) -lm

noinst_HEADERS += tests/testlib.h tests/kvlib.h

FA2_FWD_TESTS = \
	tests/test_dtype \
	tests/test_cpu_simd \
	tests/test_tile \
	tests/test_fwd_cases \
	tests/test_fwd_grid \
	tests/test_bad_input \
	tests/test_nonfinite \
	tests/test_limits \
	tests/test_kvcache \
	tests/test_kvcache_bad_input

check_PROGRAMS += $(FA2_FWD_TESTS)
TESTS += $(FA2_FWD_TESTS)

tests_test_dtype_SOURCES = tests/test_dtype.c tests/testlib.c
tests_test_dtype_CFLAGS = $(TEST_CFLAGS)
tests_test_dtype_LDADD = $(TEST_LIBS)

tests_test_cpu_simd_SOURCES = tests/test_cpu_simd.c tests/testlib.c
tests_test_cpu_simd_CFLAGS = $(TEST_CFLAGS)
tests_test_cpu_simd_LDADD = $(TEST_LIBS)

tests_test_tile_SOURCES = tests/test_tile.c tests/testlib.c
tests_test_tile_CFLAGS = $(TEST_CFLAGS)
tests_test_tile_LDADD = $(TEST_LIBS)

tests_test_fwd_cases_SOURCES = tests/test_fwd_cases.c tests/testlib.c
tests_test_fwd_cases_CFLAGS = $(TEST_CFLAGS)
tests_test_fwd_cases_LDADD = $(TEST_LIBS)

tests_test_fwd_grid_SOURCES = tests/test_fwd_grid.c tests/testlib.c
tests_test_fwd_grid_CFLAGS = $(TEST_CFLAGS)
tests_test_fwd_grid_LDADD = $(TEST_LIBS)

tests_test_bad_input_SOURCES = tests/test_bad_input.c tests/testlib.c
tests_test_bad_input_CFLAGS = $(TEST_CFLAGS)
tests_test_bad_input_LDADD = $(TEST_LIBS)

tests_test_nonfinite_SOURCES = tests/test_nonfinite.c tests/testlib.c
tests_test_nonfinite_CFLAGS = $(TEST_CFLAGS)
tests_test_nonfinite_LDADD = $(TEST_LIBS)

tests_test_limits_SOURCES = tests/test_limits.c tests/testlib.c
tests_test_limits_CFLAGS = $(TEST_CFLAGS)
tests_test_limits_LDADD = $(TEST_LIBS)

tests_test_kvcache_SOURCES = tests/test_kvcache.c tests/kvlib.c tests/testlib.c
tests_test_kvcache_CFLAGS = $(TEST_CFLAGS)
tests_test_kvcache_LDADD = $(TEST_LIBS)

tests_test_kvcache_bad_input_SOURCES = tests/test_kvcache_bad_input.c \
	tests/kvlib.c tests/testlib.c
tests_test_kvcache_bad_input_CFLAGS = $(TEST_CFLAGS)
tests_test_kvcache_bad_input_LDADD = $(TEST_LIBS)
endif

# The layering rule (doc/design.md): includes and calls point down only.
TESTS += tests/layers.sh
EXTRA_DIST += tests/layers.sh

# The fa2 program's behaviours (issue 17 items 4 and 5).
TESTS += tests/cli.sh
EXTRA_DIST += tests/cli.sh
