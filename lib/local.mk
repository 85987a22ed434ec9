# lib/: public header, status codes, dtypes, validation, dispatch, workers,
# the shared tile logic.
noinst_HEADERS += lib/fa2_internal.h lib/fa2_tile.h
lib_libfa2_la_SOURCES += \
	lib/status.c \
	lib/dtype.c \
	lib/tensor.c \
	lib/validate.c \
	lib/validate_bwd.c \
	lib/dispatch.c \
	lib/workers.c
