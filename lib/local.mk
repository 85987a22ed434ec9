# lib/: the core every other part stands on: the public header, status
# codes, dtypes, argument defaults, validation, FLOP counts, workers, the
# shared tile logic, the shape of a backend table row, the text writer
# (JSON/CSV escaping) every report goes through. It names no backend
# (doc/design.md; tests/layers.sh checks).
noinst_HEADERS += lib/fa2_internal.h lib/fa2_tile.h lib/fa2_backend.h \
	lib/fa2_score.h lib/fa2_philox.h \
	lib/fa2_writer.h lib/fa2_kvcache.h
lib_libfa2_la_SOURCES += \
	lib/status.c \
	lib/dtype.c \
	lib/tensor.c \
	lib/args.c \
	lib/validate.c \
	lib/validate_bwd.c \
	lib/validate_kvcache.c \
	lib/modifiers.c \
	lib/flops.c \
	lib/workers.c \
	lib/writer.c
