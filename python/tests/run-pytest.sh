#!/bin/sh
# run-pytest.sh — the Python package's pytest suites (python/tests), run by
# `make check` against this build: its shared libfa2, its fa2 program and
# its struct-layout probe. SKIP (77) without a python3 that has numpy and
# pytest, without a shared libfa2, and in a sanitizer build (an ASan
# library cannot be loaded into an uninstrumented python).
build=$(pwd)
src=${srcdir:-.}
if [ -n "${FA2_SANITIZER_FLAGS:-}" ]; then
    echo "SKIP: sanitizer build"; exit 77
fi
py=
for cand in "${PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$cand" ] && [ "$cand" != : ] || continue
    if "$cand" -c 'import numpy, pytest' 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
    echo "SKIP: no python3 with numpy and pytest (apt-get install python3-numpy python3-pytest)"
    exit 77
fi
lib=$build/lib/.libs/libfa2.so
if [ ! -f "$lib" ]; then echo "SKIP: no shared libfa2 in $build/lib/.libs"; exit 77; fi
FA2_LIB=$lib FA2_PROG=$build/tools/fa2 FA2_LAYOUT_PROG=$build/python/tests/layout \
PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1 \
    exec "$py" -m pytest -q -p no:cacheprovider "$src/python/tests"
