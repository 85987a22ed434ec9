# examples/: programs a user starts from, installed under $(docdir)/examples.
# hello_fa2 is built and run by make check, linked against the shared
# library (no -static): it compiles only if the public API suffices.
check_PROGRAMS += examples/hello_fa2
TESTS += examples/hello_fa2
examples_hello_fa2_SOURCES = examples/hello_fa2.c
examples_hello_fa2_LDADD = lib/libfa2.la -lm
examples_hello_fa2_LDFLAGS = $(SANITIZER_FLAGS)
exampledir = $(docdir)/examples
dist_example_DATA = examples/hello_fa2.c examples/broken_kernel.py \
	examples/README.md
