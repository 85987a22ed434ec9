# gpu/: CUDA sources join libfa2 through build-aux/cudalt.sh, which makes the
# .lo files libtool expects; without nvcc a stub says "not built".
NVCC_ALL_FLAGS = $(CUDA_ARCH_FLAGS) -std=c++17 -O3 -I$(top_srcdir)/lib \
	-I$(top_builddir) $(NVCCFLAGS)
CUDA_SOURCES = gpu/device_query.cu
EXTRA_DIST += $(CUDA_SOURCES)
if HAVE_CUDA
CUDA_OBJECTS = $(CUDA_SOURCES:.cu=.lo)
lib_libfa2_la_LIBADD += $(CUDA_OBJECTS)
EXTRA_lib_libfa2_la_DEPENDENCIES += $(CUDA_OBJECTS)
CLEANFILES += $(CUDA_OBJECTS) $(CUDA_SOURCES:.cu=.o)
lib_libfa2_la_SOURCES += gpu/bwd_not_yet.c
else
lib_libfa2_la_SOURCES += gpu/cuda_stub.c
endif
EXTRA_DIST += gpu/cuda_stub.c gpu/bwd_not_yet.c

SUFFIXES = .cu .lo
.cu.lo:
	$(AM_V_GEN)$(SHELL) $(top_srcdir)/build-aux/cudalt.sh $@ $(NVCC) \
		$(NVCC_ALL_FLAGS) -c $<

clean-local-cuda:
	-rm -rf gpu/.libs
