#!/bin/sh
# trace_html.sh — `fa2 trace --html FILE` writes a self-contained teaching
# page that a browser renders into the expected elements. For a causal
# problem of 12 rows in 4 x 4 tiles (3 x 3 blocks):
#   - the forward's grid has 3 tiles visited in full (below the diagonal),
#     3 visited with a mask (the diagonal) and 3 skipped (above it);
#   - each of the 3 boundary tiles is drawn element by element, with the 6
#     (row, key) pairs above the diagonal masked;
#   - the backward's grid visits the same 6 and skips the same 3;
#   - one table of row states per query block (3), one backward step per
#     visited tile (6), and at least one row rescaled (alpha < 1).
# The page must load nothing from elsewhere. It is rendered by headless
# Chromium (Debian's `chromium`, installed here with apt-get when absent and
# we may; FA2_NO_BROWSER_INSTALL=1 forbids that); SKIP (77) without one.
tmp=${TMPDIR:-/tmp}/fa2-html.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT
page=$tmp/trace.html
tools/fa2 trace --html "$page" --causal --seqlen 12 --block-m 4 --block-n 4 || {
    echo "FAIL: fa2 trace --html"; exit 1; }
if grep -Eqi '(src|href) *=|https?:|@import|url\(' "$page"; then
    echo "FAIL: the page refers to something outside itself:"
    grep -Eni '(src|href) *=|https?:|@import|url\(' "$page" | head -5
    exit 1
fi

browser=
find_browser() {
    for b in chromium chromium-browser google-chrome; do
        if command -v "$b" >/dev/null 2>&1; then browser=$b; return 0; fi
    done
    return 1
}
if ! find_browser && [ -z "${FA2_NO_BROWSER_INSTALL:-}" ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    echo "installing Debian's chromium to render the page (FA2_NO_BROWSER_INSTALL=1 skips this)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        chromium > "$tmp/apt.log" 2>&1 || tail -3 "$tmp/apt.log"
    find_browser
fi
if [ -z "$browser" ]; then echo "SKIP: no headless Chromium to render the page"; exit 77; fi

# --dump-dom prints the document after the page's script has run
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$tmp/profile" --dump-dom "file://$page" > "$tmp/dom.html" 2> "$tmp/browser.err"
count() { grep -o "$1" "$tmp/dom.html" | wc -l; }
fail=0
expect() {
    got=$(count "$2")
    if [ "$got" -ne "$3" ]; then echo "FAIL: $1: $got, expected $3"; fail=1;
    else echo "ok: $1: $got"; fi
}
expect "tiles visited in full (forward grid 3 + backward grid 6)" 'class="tile visited"' 9
expect "tiles visited with a mask (forward diagonal)" 'class="tile masked"' 3
expect "tiles skipped (3 per grid)" 'class="tile skipped"' 6
expect "boundary tiles drawn element by element" 'class="masktile"' 3
expect "(row, key) pairs the causal mask removes in them (6 of 16 each)" 'class="out"' 18
expect "row-state tables, one per query block" 'class="rowstate"' 3
expect "backward steps" 'class="bwd-step"' 6
if [ "$(count 'class="rescaled"')" -lt 1 ]; then
    echo "FAIL: no row was rescaled (alpha < 1)"; fail=1
fi
if [ $fail != 0 ]; then
    echo "---- browser stderr"; tail -5 "$tmp/browser.err"
fi
exit $fail
