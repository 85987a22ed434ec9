# python/: the fa2 Python package (ctypes over libfa2, no compiled
# extension), its pytest suites and the struct-layout probe they compare the
# ctypes structs with. `pip install ./python` installs it; so does
# `make install` when configure found python3 (then fa2/_config.py records
# where libfa2 was installed).
FA2_PY_SOURCES = python/fa2/__init__.py python/fa2/__main__.py python/fa2/_lib.py \
	python/fa2/_numpy.py python/fa2/_torch.py \
	python/fa2/flash_attn_interface.py python/fa2/testing.py \
	python/fa2/ring.py python/fa2/distributed.py
FA2_PY_TESTS = python/tests/conftest.py python/tests/test_layout.py python/tests/test_modifiers.py \
	python/tests/test_numpy.py python/tests/test_interface.py \
	python/tests/test_verify.py python/tests/test_torch.py \
	python/tests/test_modules.py python/tests/test_kvcache.py \
	python/tests/test_ring.py python/tests/test_distributed.py
EXTRA_DIST += $(FA2_PY_SOURCES) $(FA2_PY_TESTS) python/pyproject.toml \
	python/setup.py python/README.md python/test_train.py \
	python/tests/run-pytest.sh

if HAVE_PYTHON
pkgpython_PYTHON = $(FA2_PY_SOURCES)
nodist_pkgpython_PYTHON = python/fa2/_config.py
CLEANFILES += python/fa2/_config.py
python/fa2/_config.py: Makefile
	$(AM_V_GEN)$(MKDIR_P) python/fa2 && \
	printf '# written by make: where `make install` put libfa2\nLIBDIR = %s\n' \
	    "'$(libdir)'" > $@
endif

# The layout probe: sizeof/offsetof of the structs python mirrors.
check_PROGRAMS += python/tests/layout
python_tests_layout_SOURCES = python/tests/layout.c

# The pytest suites, against this build's shared libfa2 and fa2 program.
# (run under tests/package.mk's SH_LOG_COMPILER)
TESTS += python/tests/run-pytest.sh
