#!/bin/sh
# pkgconfig.sh — fa2.pc names OpenBLAS through Requires.private when
# OpenBLAS has a .pc file, rather than copying its -L path into
# Libs.private (which breaks when OpenBLAS moves or another BLAS variant is
# installed); `pkg-config --static --libs fa2` then still yields -lopenblas.
# SKIP (77) without pkg-config or without openblas.pc.
pc=fa2.pc
[ -f "$pc" ] || { echo "FAIL: no $pc in the build tree"; exit 1; }
command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: no pkg-config"; exit 77; }
pkg-config --exists openblas || { echo "SKIP: OpenBLAS has no .pc file here"; exit 77; }
fail=0
grep -q '^Requires.private:.*openblas' "$pc" || { echo "FAIL: $pc does not require openblas"; fail=1; }
for flag in $(pkg-config --libs-only-L openblas); do
    if grep -F -q -- "$flag" "$pc"; then echo "FAIL: $pc hard-codes $flag"; fail=1; fi
done
libs=$(PKG_CONFIG_PATH=.${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} pkg-config --static --libs fa2)
case " $libs " in
*" -lopenblas "*) echo "ok: pkg-config --static --libs fa2: $libs" ;;
*) echo "FAIL: pkg-config --static --libs fa2 lacks -lopenblas: $libs"; fail=1 ;;
esac
exit $fail
