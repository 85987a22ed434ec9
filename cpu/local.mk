# cpu/: float64 oracle, standard attention (OpenBLAS), tiled FA2 mirror.
noinst_HEADERS += cpu/fa2_cpu.h cpu/fa2_cpu_simd.h cpu/tile_product.h
lib_libfa2_la_SOURCES += \
	cpu/backends.c \
	cpu/tile_config.c \
	cpu/tile_io.c \
	cpu/tile_product.c \
	cpu/tile_product_avx2.c \
	cpu/tile_product_avx512.c \
	cpu/oracle_fwd.c \
	cpu/standard_fwd.c \
	cpu/tiled_fwd.c \
	cpu/softmax_tile.c \
	cpu/kvcache_io.c \
	cpu/oracle_kvcache.c \
	cpu/standard_kvcache.c \
	cpu/tiled_kvcache.c \
	cpu/oracle_bwd.c \
	cpu/standard_bwd.c \
	cpu/tiled_bwd.c
# the CPU benchmark against PyTorch and its running log (issue 16): shipped,
# not built
EXTRA_DIST += bench/NOTES-cpu.md bench/cpu_compare.py bench/mirror_dump.c
