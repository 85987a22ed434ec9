# tests/fuzz/: the libFuzzer harness (configure --enable-fuzzing, CC=clang).
# Not a `make check` suite: .ci/run runs it for a fixed time budget
#     tests/fuzz/fuzz_fa2 -max_total_time=60
# and fails on any finding (an ASan/UBSan report, a crash, a hang or one of
# the harness's own properties; see the file's comment).
EXTRA_DIST += tests/fuzz/fuzz_fa2.c
if FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz_fa2
tests_fuzz_fuzz_fa2_SOURCES = tests/fuzz/fuzz_fa2.c
tests_fuzz_fuzz_fa2_LDADD = lib/libfa2.la $(OPENBLAS_LIBS) -lm
# linked against libfa2.a (the program itself, not libtool's wrapper)
tests_fuzz_fuzz_fa2_LDFLAGS = -static -fsanitize=fuzzer $(AM_LDFLAGS)
endif
