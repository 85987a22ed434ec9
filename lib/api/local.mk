# lib/api/: the public entry points that pick a backend (fa2_fwd, fa2_bwd,
# fa2_tile_config_for, ...): validate once, call through the backend table.
noinst_HEADERS += lib/api/api.h
lib_libfa2_la_SOURCES += \
	lib/api/backends.c \
	lib/api/entry.c \
	lib/api/kvcache.c
