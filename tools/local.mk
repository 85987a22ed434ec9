# tools/: the fa2 command-line program.
bin_PROGRAMS += tools/fa2
tools_fa2_SOURCES = tools/fa2.c
tools_fa2_LDADD = lib/libfa2.la $(OPENBLAS_LIBS) -lm
