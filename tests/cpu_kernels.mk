# tests/cpu_kernels.mk: the tile-product micro-kernels (issue 16), and the
# mirror suites re-run under each kernel FA2_CPU_KERNEL can force here.
if HAVE_CHECK
check_PROGRAMS += tests/test_cpu_kernels
tests_test_cpu_kernels_SOURCES = tests/test_cpu_kernels.c tests/testlib.c
tests_test_cpu_kernels_CFLAGS = $(TEST_CFLAGS)
tests_test_cpu_kernels_LDADD = $(TEST_LIBS)
dist_check_SCRIPTS = tests/cpu_kernels.sh
TESTS += tests/test_cpu_kernels tests/cpu_kernels.sh
endif
