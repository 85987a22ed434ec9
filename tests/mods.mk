# tests/mods.mk: the score modifiers and dropout (softcap, ALiBi, sinks).
if HAVE_CHECK
check_PROGRAMS += tests/test_modifiers
TESTS += tests/test_modifiers
tests_test_modifiers_SOURCES = tests/test_modifiers.c tests/testlib.c
tests_test_modifiers_CFLAGS = $(TEST_CFLAGS)
tests_test_modifiers_LDADD = $(TEST_LIBS)
endif
