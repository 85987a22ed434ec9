# sim/: the memory-hierarchy simulator (issue 4; doc/io-complexity.md).
# One concept per file; sim/sim.h says which.
noinst_HEADERS += sim/sim.h sim/sweep.h
lib_libfa2_la_SOURCES += \
	sim/args.c \
	sim/device.c \
	sim/record.c \
	sim/dq_convert.c \
	sim/sched_fa2.c \
	sim/sched_fa1.c \
	sim/sched_std.c \
	sim/sched_decode.c \
	sim/warps.c \
	sim/flops.c \
	sim/l2.c \
	sim/run.c \
	sim/closed_form.c \
	sim/report.c \
	sim/sweep.c \
	sim/ring.c \
	sim/plot.c
# its notes and the figures `fa2 sim --sweep ... --plot` generated for them
dist_doc_DATA += doc/io-complexity.md
EXTRA_DIST += \
	doc/figures/hbm-vs-seqlen.svg doc/figures/hbm-vs-seqlen.dat \
	doc/figures/hbm-vs-seqlen.gp \
	doc/figures/hbm-paper-grid.svg doc/figures/hbm-paper-grid.dat \
	doc/figures/hbm-paper-grid.gp \
	doc/figures/hbm-vs-sram.svg doc/figures/hbm-vs-sram.dat \
	doc/figures/hbm-vs-sram.gp
# calibration against the CUDA kernel on a GPU host (not built by make)
EXTRA_DIST += sim/calib/calib.c sim/calib/run.sh
