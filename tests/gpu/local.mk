# tests/gpu/: suites that need a GPU (included from gpu/local.mk). Each exits
# 77 (SKIP) where there is none. Check is linked statically so that the
# binary runs on a GPU host that has no Check installed; it runs in Check's
# no-fork mode (CUDA does not survive fork()).
if HAVE_CHECK
FA2_GPU_TESTS = tests/gpu/test_cuda_fwd tests/gpu/test_cuda_bwd \
	tests/gpu/test_cuda_kvcache
noinst_HEADERS += tests/gpu/gpu_tensor.h tests/gpu/gpu_mem.h
check_PROGRAMS += $(FA2_GPU_TESTS)
TESTS += $(FA2_GPU_TESTS)
FA2_CHECK_STATIC_LIBS = -l:libcheck_pic.a -l:libsubunit.a -lrt -lm
tests_gpu_test_cuda_fwd_SOURCES = tests/gpu/test_cuda_fwd.c tests/gpu/gpu_tensor.c \
	tests/gpu/gpu_mem.c
tests_gpu_test_cuda_fwd_CPPFLAGS = $(AM_CPPFLAGS) $(CUDA_CFLAGS) -I$(top_srcdir)/gpu
tests_gpu_test_cuda_fwd_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_gpu_test_cuda_fwd_LDADD = lib/libfa2.la $(FA2_CHECK_STATIC_LIBS) \
	$(OPENBLAS_LIBS) $(CUDA_LIBS) -lm
tests_gpu_test_cuda_kvcache_SOURCES = tests/gpu/test_cuda_kvcache.c tests/kvlib.c \
	tests/testlib.c tests/gpu/gpu_mem.c
tests_gpu_test_cuda_kvcache_CPPFLAGS = $(AM_CPPFLAGS) $(CUDA_CFLAGS) -I$(top_srcdir)/gpu \
	-I$(top_srcdir)/tests
tests_gpu_test_cuda_kvcache_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_gpu_test_cuda_kvcache_LDADD = lib/libfa2.la $(FA2_CHECK_STATIC_LIBS) \
	$(OPENBLAS_LIBS) $(CUDA_LIBS) -lm
tests_gpu_test_cuda_bwd_SOURCES = tests/gpu/test_cuda_bwd.c tests/gpu/gpu_tensor.c \
	tests/gpu/gpu_mem.c
tests_gpu_test_cuda_bwd_CPPFLAGS = $(AM_CPPFLAGS) $(CUDA_CFLAGS)
tests_gpu_test_cuda_bwd_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_gpu_test_cuda_bwd_LDADD = lib/libfa2.la $(FA2_CHECK_STATIC_LIBS) \
	$(OPENBLAS_LIBS) $(CUDA_LIBS) -lm
endif
