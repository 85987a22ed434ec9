#!/bin/sh
# dist-links.sh DIR — every relative link of every Markdown file under DIR
# ([text](path) and ![alt](path)) names a file that exists under DIR. Run on
# the tarball's tree by `make distcheck` (distcheck-hook), so the dist holds
# every file its docs point to (doc/PERFORMANCE.md's charts, say).
dir=${1:?usage: dist-links.sh DIR}
fail=0
n=0
for md in $(cd "$dir" && find . -name '*.md' | sort); do
    base=$(dirname "$md")
    for link in $(grep -o '\]([^)#]*' "$dir/$md" | sed 's/^](//'); do
        case "$link" in
        http:*|https:*|mailto:*|'') continue ;;
        esac
        n=$((n + 1))
        if [ ! -e "$dir/$base/$link" ]; then
            echo "FAIL: $md links to $link, which the tarball does not contain"
            fail=1
        fi
    done
done
echo "checked $n relative links in the Markdown files of $dir"
exit $fail
