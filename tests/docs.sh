#!/bin/sh
# docs.sh — the documentation is true to the code it shows and complete:
#  1. every fenced code block of README.md, doc/*.md, python/README.md and
#     examples/README.md tagged c compiles as a C11 translation unit
#     against lib/fa2.h (no implicit declarations), every sh/bash block
#     parses (bash -n), every python block parses;
#  2. doc/api.md and the man page doc/fa2.3 name every function, type and
#     status code lib/fa2.h declares;
#  3. the man page doc/fa2.1 describes every command `fa2 --help` lists,
#     and no longer says the CUDA backward is not built;
#  4. the bug address of configure.ac is a real URL README.md gives, and
#     there is a LICENSE that README.md names.
# Run by make check (CC from the build); SKIP parts whose tool is missing.
src=${srcdir:-.}
cc=${CC:-cc}
tmp=${TMPDIR:-/tmp}/fa2-docs.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# ---- 1. code blocks ---------------------------------------------------------
n=0
for md in "$src"/README.md "$src"/doc/*.md "$src"/python/README.md "$src"/examples/README.md; do
    [ -f "$md" ] || continue
    # split into $tmp/<n>.<lang> files; each first line records where it began
    awk -v dir="$tmp" -v base="$(basename "$md")" '
        /^```/ {
            if (!inside) { inside = 1; lang = substr($0, 4); gsub(/[ \t]/, "", lang)
                           n++; file = sprintf("%s/%s.%d.%s", dir, base, n, lang == "" ? "text" : lang)
                           start = NR; printf "" > file; next }
            inside = 0; close(file); next }
        inside { print > file }
    ' "$md"
done
for f in "$tmp"/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    case "$name" in
    *.c)
        n=$((n + 1))
        cp "$f" "$tmp/block.c"
        if ! "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -Werror=implicit-function-declaration \
                -I"$src/lib" -c "$tmp/block.c" -o "$tmp/block.o" 2> "$tmp/cc.err"; then
            bad "C block $name does not compile:"; sed 's/^/    /' "$tmp/cc.err" | head -20
        fi ;;
    *.sh|*.bash)
        n=$((n + 1))
        bash -n "$f" 2> "$tmp/sh.err" || { bad "shell block $name does not parse:"; cat "$tmp/sh.err"; } ;;
    *.python|*.py)
        n=$((n + 1))
        if command -v python3 >/dev/null 2>&1; then
            python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$f" \
                2> "$tmp/py.err" || { bad "python block $name does not parse:"; tail -3 "$tmp/py.err"; }
        fi ;;
    esac
done
echo "checked $n code blocks"

# ---- 2. every public name documented ---------------------------------------
h="$src/lib/fa2.h"
sed -n 's/^[a-z_][a-z0-9_ ]*[ *]\(fa2_[a-z0-9_]*\)(.*/\1/p' "$h" | sort -u > "$tmp/functions"
sed -n 's/^} \(fa2_[a-z0-9_]*\);.*/\1/p' "$h" | sort -u > "$tmp/types"
sed -n '/^typedef enum fa2_status/,/^} fa2_status;/p' "$h" |
    sed -n 's/^ *\(FA2_[A-Z_]*\).*/\1/p' > "$tmp/statuses"
[ -s "$tmp/functions" ] && [ -s "$tmp/statuses" ] || bad "found no public names in $h"
for doc in "$src/doc/api.md" "$src/doc/fa2.3"; do
    [ -f "$doc" ] || { bad "$doc is missing"; continue; }
    for name in $(cat "$tmp/functions" "$tmp/types" "$tmp/statuses"); do
        grep -q "$name\([^a-zA-Z0-9_]\|$\)" "$doc" || bad "$(basename "$doc") does not document $name"
    done
done
echo "checked $(cat "$tmp/functions" "$tmp/types" "$tmp/statuses" | wc -l) public names in doc/api.md and doc/fa2.3"

# ---- 3. the man page fa2(1) and the program ---------------------------------
if [ -x tools/fa2 ]; then
    for cmd in $(tools/fa2 --help 2>&1 | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'); do
        grep -q "^\.B $cmd\$" "$src/doc/fa2.1" || bad "doc/fa2.1 does not describe the command $cmd"
    done
fi
# ---- 4. a real bug address, the one README gives --------------------------
url=$(sed -n 's/^AC_INIT(\[fa2\], *\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$src/configure.ac")
case "$url" in
https://*) ;;
*) bad "configure.ac's bug address '$url' is not an https URL" ;;
esac
case "$url" in
*invalid*|*example*) bad "configure.ac's bug address '$url' is a placeholder" ;;
esac
grep -qF "$url" "$src/README.md" || bad "README.md does not give the bug address $url"
[ -f "$src/LICENSE" ] || bad "no LICENSE"
grep -q "LICENSE" "$src/README.md" || bad "README.md does not name the license"
if grep -q "no CUDA backward" "$src/doc/fa2.1"; then
    bad "doc/fa2.1 still says there is no CUDA backward"
fi
exit $fail
