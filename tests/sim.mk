# tests/sim.mk: the simulator's suites (sim/), helpers in tests/test_sim.h.
# Kept apart from tests/local.mk so the two lists are edited independently.
if HAVE_CHECK
FA2_SIM_TESTS = tests/test_sim_counts tests/test_sim_scaling tests/test_sim_l2 \
	tests/test_sim_api tests/test_sim_decode tests/test_sim_ring
check_PROGRAMS += $(FA2_SIM_TESTS)
TESTS += $(FA2_SIM_TESTS)
noinst_HEADERS += tests/test_sim.h
tests_test_sim_counts_SOURCES = tests/test_sim_counts.c
tests_test_sim_counts_CFLAGS = $(TEST_CFLAGS)
tests_test_sim_counts_LDADD = $(TEST_LIBS)
tests_test_sim_scaling_SOURCES = tests/test_sim_scaling.c
tests_test_sim_scaling_CFLAGS = $(TEST_CFLAGS)
tests_test_sim_scaling_LDADD = $(TEST_LIBS)
tests_test_sim_l2_SOURCES = tests/test_sim_l2.c
tests_test_sim_l2_CFLAGS = $(TEST_CFLAGS)
tests_test_sim_l2_LDADD = $(TEST_LIBS)
tests_test_sim_api_SOURCES = tests/test_sim_api.c
tests_test_sim_api_CFLAGS = $(TEST_CFLAGS)
tests_test_sim_api_LDADD = $(TEST_LIBS)
tests_test_sim_decode_SOURCES = tests/test_sim_decode.c
tests_test_sim_decode_CFLAGS = $(TEST_CFLAGS)
tests_test_sim_decode_LDADD = $(TEST_LIBS)
tests_test_sim_ring_SOURCES = tests/test_sim_ring.c
tests_test_sim_ring_CFLAGS = $(TEST_CFLAGS)
tests_test_sim_ring_LDADD = $(TEST_LIBS)
endif
