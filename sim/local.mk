# sim/: the memory-hierarchy simulator (issue 4; doc/io-complexity.md).
# One concept per file; sim/sim.h says which.
noinst_HEADERS += sim/sim.h
lib_libfa2_la_SOURCES += \
	sim/args.c \
	sim/device.c \
	sim/sched_fa2.c \
	sim/sched_fa1.c \
	sim/sched_std.c \
	sim/warps.c \
	sim/flops.c \
	sim/l2.c \
	sim/run.c \
	sim/closed_form.c \
	sim/report.c
