# tools/: the fa2 command-line program, one file per subcommand.
bin_PROGRAMS += tools/fa2
noinst_HEADERS += tools/commands.h
tools_fa2_SOURCES = tools/fa2.c tools/cmd_run.c
tools_fa2_LDADD = lib/libfa2.la $(OPENBLAS_LIBS) -lm
