#!/bin/sh
# layers.sh — the layering rule of doc/design.md, checked: every #include
# and every call points down, never up and never sideways between two
# folders of one layer.
#
#   layer 0  lib/    the core (types, status, validation, tile logic, workers)
#   layer 1  cpu/ gpu/   the backends (one row each of the backend table)
#   layer 2  lib/api/    the entry points that pick a backend
#   layer 3  sim/        the simulator (uses the entry points, gpu/'s configs)
#            lib/check/  the numerics contract's agreement check
# (lib/ holds the library's bottom and top: its own files are the core,
# lib/api/ and lib/check/ the layers above the backends.)
#   layer 4  tools/  the fa2 program
#
# Includes are read from the sources (resolved as the compiler does: own
# folder first, then -I lib cpu gpu sim lib/check); calls from the built objects (an
# undefined symbol of an object in folder F that another folder G defines
# is a reference from F to G: nm -P). Inside sim/ the files have layers of
# their own (the event recorder below the schedules, the schedules below
# the driver), and no two files anywhere call each other. Exit 0: every
# edge points down; 1: the offending edges are listed. Run by make check
# from the build tree ($srcdir: the sources).
set -u
src=${srcdir:-.}
build=${LAYERS_BUILDDIR:-.}
folders="lib cpu gpu lib/api sim lib/check tools"

rank() {
    case $1 in
    lib) echo 0 ;; cpu | gpu) echo 1 ;; lib/api) echo 2 ;; sim | lib/check) echo 3 ;;
    tools) echo 4 ;; *) echo -1 ;;
    esac
}

# sim/'s own layers, by file stem: recorder and models, then the schedules,
# then the driver and what reads its results.
sim_rank() {
    case $1 in
    args | device | l2 | record | warps | flops) echo 0 ;;
    dq_convert | sched_*) echo 1 ;;
    run | closed_form) echo 2 ;;
    *) echo 3 ;;
    esac
}

bad=0
complain() {
    echo "layers: $*"
    bad=1
}

# An edge from (folder f, file stem a) to (folder g, file stem b).
edge() {
    f=$1 a=$2 g=$3 b=$4 what=$5
    [ "$f" = "$g" ] && [ "$a" = "$b" ] && return
    if [ "$f" = "$g" ]; then
        [ "$f" = sim ] || return
        ra=$(sim_rank "$a") rb=$(sim_rank "$b")
        [ "$rb" -le "$ra" ] && return
        [ "$rb" -eq "$ra" ] && return
        complain "sim/$a -> sim/$b ($what): points up inside sim/"
        return
    fi
    rf=$(rank "$f") rg=$(rank "$g")
    if [ "$rg" -gt "$rf" ]; then
        complain "$f/$a -> $g/$b ($what): points up (layer $rf -> $rg)"
    elif [ "$rg" -eq "$rf" ]; then
        complain "$f/$a -> $g/$b ($what): sideways between two folders of one layer"
    fi
}

stem() {
    b=$(basename "$1")
    b=${b%.*}
    echo "${b#*-}" # automake's per-target prefix (fa2-cmd_run.o)
}

# ---- includes --------------------------------------------------------------
checked_includes=0
for f in $folders; do
    for file in "$src/$f"/*.c "$src/$f"/*.h "$src/$f"/*.cu "$src/$f"/*.cuh; do
        [ -f "$file" ] || continue
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file"); do
            checked_includes=$((checked_includes + 1))
            case $inc in
            config.h) continue ;;
            */*) target="$src/$f/$inc" ;;
            *)
                target=""
                for d in "$f" lib cpu gpu sim lib/check; do
                    if [ -f "$src/$d/$inc" ]; then
                        target="$src/$d/$inc"
                        break
                    fi
                done
                ;;
            esac
            if [ -z "$target" ] || [ ! -f "$target" ]; then
                complain "$f/$(basename "$file") includes \"$inc\", found in no folder"
                continue
            fi
            g=$(dirname "${target#"$src"/}")
            [ "$g" = "$f" ] && continue # a folder's own headers: declarations
            edge "$f" "$(stem "$file")" "$g" "$(stem "$target")" "#include \"$inc\""
        done
    done
done
[ "$checked_includes" -gt 50 ] || complain "only $checked_includes includes read from $src: wrong srcdir?"

# ---- calls (symbol references of the built objects) ---------------------------
defs=$(mktemp) uses=$(mktemp)
trap 'rm -f "$defs" "$uses"' EXIT
objects=0
for f in $folders; do
    # (lib/'s own objects: not those of lib/api/ and lib/check/)
    for o in $(find "$build/$f" \( -path "$build/lib/api" -o -path "$build/lib/check" \) \
                   -prune -o -name '*.o' -print 2>/dev/null | sort); do
        objects=$((objects + 1))
        s=$(stem "$o")
        nm -P "$o" 2>/dev/null | awk -v f="$f" -v s="$s" -v defs="$defs" -v uses="$uses" '
            $2 ~ /^[TDBRVWGS]$/ { print $1, f, s >> defs }
            $2 == "U"           { print $1, f, s >> uses }'
    done
done
[ "$objects" -gt 20 ] || complain "only $objects objects found under $build: build first"
# each use resolved to its definition
sort -u "$defs" -o "$defs"
edges=$(awk 'NR == FNR { def[$1] = $2 " " $3; next }
             ($1 in def) { print $2, $3, def[$1], $1 }' "$defs" "$uses" | sort -u)
calls=0
while read -r f a g b sym; do
    [ -n "$f" ] || continue
    calls=$((calls + 1))
    edge "$f" "$a" "$g" "$b" "$sym"
done <<EDGES
$edges
EDGES
[ "$calls" -gt 50 ] || complain "only $calls cross-file references found: nm failed?"

# no two files call each other, in any folder (a circle of two files is
# one unit in two files, or a layer missing between them)
circles=$(printf '%s\n' "$edges" | awk 'NF >= 4 { e[$1 "/" $2 " " $3 "/" $4] = 1 }
    END { for (k in e) { split(k, a, " ");
          if ((a[2] " " a[1]) in e && a[1] < a[2]) print a[1] " <-> " a[2] } }')
[ -z "$circles" ] || complain "files that call each other: $circles"

if [ $bad -eq 0 ]; then
    echo "layers: $checked_includes includes and $calls cross-file references" \
         "from $objects objects, every one pointing down"
fi
exit $bad
