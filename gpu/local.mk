# gpu/: CUDA sources join libfa2 through build-aux/cudalt.sh, which makes the
# .lo files libtool expects; without nvcc a stub says "not built".
#
# The backward (gpu/bwd_kernel.cuh: preprocess, main, postprocess) likewise,
# once per kernel head dim 64, 128, 256 (gpu/bwd_hdNN.cu), bwd_launch.cu the
# host side.
#
# The forward kernel is one template (gpu/fwd_kernel.cuh) instantiated once
# per head dim, fp16 and bf16, in its own file (gpu/fwd_hdNN.cu), so that
# make -j compiles the eight in parallel: 8 files x 2 dtypes x 2 targets.
# -ftz=true: exp2f is one MUFU.EX2 instead of four instructions; P below
# 2^-126 becomes 0 (its share of O and l is below float32's resolution).
NVCC_ALL_FLAGS = $(CUDA_ARCH_FLAGS) -std=c++17 -O3 -ftz=true -lineinfo -I$(top_srcdir)/lib \
	-I$(top_srcdir)/gpu -I$(top_builddir) $(NVCCFLAGS)
CUDA_SOURCES = gpu/device_query.cu gpu/host_checks.cu gpu/fwd_launch.cu \
	gpu/fwd_hd32.cu gpu/fwd_hd64.cu gpu/fwd_hd96.cu gpu/fwd_hd128.cu \
	gpu/fwd_hd160.cu gpu/fwd_hd192.cu gpu/fwd_hd224.cu gpu/fwd_hd256.cu \
	gpu/bwd_launch.cu gpu/bwd_hd64.cu gpu/bwd_hd128.cu gpu/bwd_hd256.cu \
	gpu/fwd_sm90_launch.cu gpu/fwd_sm90_hd64.cu gpu/fwd_sm90_hd128.cu \
	gpu/fwd_sm90_hd256.cu gpu/kvcache_launch.cu gpu/kvcache_hd64.cu \
	gpu/kvcache_hd128.cu gpu/kvcache_hd256.cu
FA2_GPU_HDRS = gpu/fwd_config.h gpu/fwd_params.h gpu/fwd_kernel.cuh gpu/ptx.cuh \
	gpu/bwd_config.h gpu/bwd_params.h gpu/bwd_block.cuh gpu/bwd_mods.cuh gpu/bwd_kernel.cuh gpu/bwd_kernel_sm90.cuh gpu/wgmma.cuh gpu/host_checks.h \
	gpu/fwd_kernel_sm90.cuh gpu/tma.cuh gpu/wgmma_wide.cuh gpu/fa2_cuda.h \
	gpu/kvcache_kernel.cuh gpu/kvcache_params.h gpu/dq_bulk.cuh gpu/dq_staged.cuh
noinst_HEADERS += $(FA2_GPU_HDRS)
EXTRA_DIST += $(CUDA_SOURCES)
if HAVE_CUDA
CUDA_OBJECTS = $(CUDA_SOURCES:.cu=.lo)
lib_libfa2_la_LIBADD += $(CUDA_OBJECTS)
EXTRA_lib_libfa2_la_DEPENDENCIES += $(CUDA_OBJECTS)
CLEANFILES += $(CUDA_OBJECTS) $(CUDA_SOURCES:.cu=.o)
# nvcc writes no dependency files here: every CUDA object depends on every
# header it may include.
$(CUDA_OBJECTS): $(FA2_GPU_HDRS) $(top_srcdir)/lib/fa2.h \
	$(top_srcdir)/lib/fa2_internal.h $(top_srcdir)/lib/fa2_backend.h $(top_srcdir)/lib/fa2_tile.h \
	$(top_srcdir)/lib/fa2_kvcache.h $(top_srcdir)/lib/fa2_score.h $(top_srcdir)/lib/fa2_philox.h \
	config.h
else
lib_libfa2_la_SOURCES += gpu/cuda_stub.c
endif
# the backend's row of the table, the same in both builds (plain C)
lib_libfa2_la_SOURCES += gpu/backend.c
EXTRA_DIST += gpu/cuda_stub.c gpu/gen_wgmma_wide.py

SUFFIXES = .cu .lo
.cu.lo:
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/build-aux/cudalt.sh $@ $(NVCC) \
		$(NVCC_ALL_FLAGS) -c $<

clean-local-cuda:
	-rm -rf gpu/.libs

include $(top_srcdir)/tests/gpu/local.mk
