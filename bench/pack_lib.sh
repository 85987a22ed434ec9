# pack_lib.sh — sourced by bench/pack_run.sh and bench/pack_variant.sh.
#
# copy_tests BUILD DEST NAME...: copy each test program tests/gpu/NAME of
# build tree BUILD into DEST. The test programs link libfa2 statically, so
# what travels is the program itself, not a libtool wrapper script; a
# .libs copy (possibly left from an older build) only where the program at
# tests/gpu/NAME is not an ELF file. A NAME that BUILD has not built is
# skipped. The test programs are check_PROGRAMS, which a plain `make` does
# not rebuild: a program older than the library it links would carry the
# old kernels (statically), so copy_tests first brings each one that BUILD
# has built before up to date.
elf() { [ "$(head -c 4 "$1" 2>/dev/null | tail -c 3)" = ELF ]; }
copy_tests() {
    _build=$1 _dest=$2
    shift 2
    for _t in "$@"; do
        if [ -e "$_build/Makefile" ] && [ -e "$_build/tests/gpu/$_t" ]; then
            make -C "$_build" "tests/gpu/$_t" >/dev/null || return 1
        fi
        if elf "$_build/tests/gpu/$_t"; then cp "$_build/tests/gpu/$_t" "$_dest/"
        elif elf "$_build/tests/gpu/.libs/$_t"; then cp "$_build/tests/gpu/.libs/$_t" "$_dest/"; fi
    done
}
