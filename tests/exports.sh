#!/bin/sh
# exports.sh — the shared libfa2 exports exactly the functions lib/fa2.h
# declares: every one of them, and nothing else (no cpu/, sim/ or lib/
# internals). `nm -D` of lib/.libs/libfa2.so against the header's list.
# SKIP (77) without a shared library or nm.
src=${srcdir:-.}
so=lib/.libs/libfa2.so
[ -f "$so" ] || { echo "SKIP: no $so (--disable-shared?)"; exit 77; }
command -v nm >/dev/null 2>&1 || { echo "SKIP: no nm"; exit 77; }
tmp=${TMPDIR:-/tmp}/fa2-exports.$$
trap 'rm -f "$tmp".*' EXIT
sed -n 's/^[a-z_][a-z0-9_ ]*[ *]\(fa2_[a-z0-9_]*\)(.*/\1/p' "$src/lib/fa2.h" |
    LC_ALL=C sort -u > "$tmp.header"
nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' |
    LC_ALL=C sort -u > "$tmp.exported"
n=$(wc -l < "$tmp.header")
[ "$n" -gt 0 ] || { echo "FAIL: no function found in $src/lib/fa2.h"; exit 1; }
extra=$(LC_ALL=C comm -13 "$tmp.header" "$tmp.exported")
missing=$(LC_ALL=C comm -23 "$tmp.header" "$tmp.exported")
status=0
if [ -n "$extra" ]; then
    echo "FAIL: exported but not in lib/fa2.h:"; echo "$extra" | sed 's/^/  /'; status=1
fi
if [ -n "$missing" ]; then
    echo "FAIL: declared in lib/fa2.h but not exported:"; echo "$missing" | sed 's/^/  /'; status=1
fi
[ $status = 0 ] && echo "ok: libfa2.so exports the $n functions of lib/fa2.h and nothing else"
exit $status
