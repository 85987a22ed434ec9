# tools/: the fa2 command-line program, one file per subcommand (cmd_*.c)
# plus one file per concept they share.
bin_PROGRAMS += tools/fa2
noinst_HEADERS += tools/commands.h tools/args.h tools/problem.h \
	tools/device.h tools/timing.h tools/runner.h \
	tools/run_opts.h
tools_fa2_SOURCES = tools/fa2.c \
	tools/cmd_run.c tools/run_opts.c tools/cmd_trace.c tools/cmd_bench.c \
	tools/args.c tools/problem.c tools/device.c tools/timing.c \
	tools/runner.c
# the simulator's command (sim/, issue 4)
tools_fa2_SOURCES += tools/cmd_sim.c
# fa2 verify: another implementation's outputs against the oracle
tools_fa2_SOURCES += tools/cmd_verify.c
# device.c calls the CUDA runtime itself (GPU buffers for the CUDA backend);
# CUDA_CFLAGS and CUDA_LIBS are empty in a build without CUDA.
tools_fa2_CPPFLAGS = $(AM_CPPFLAGS) $(CUDA_CFLAGS)
tools_fa2_LDADD = lib/libfa2.la $(OPENBLAS_LIBS) $(CUDA_LIBS) -lm
# Linked against libfa2.a: tools/fa2 in the build tree is then the program
# itself, not libtool's wrapper script, so `valgrind tools/fa2 ...` checks
# fa2 and not the shell.
tools_fa2_LDFLAGS = -static
