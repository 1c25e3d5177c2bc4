#!/bin/sh
# check_man.sh -- render each built manual page with man(1) and check that it says what it must.
# Usage: check_man.sh SOURCE_DIR BUILD_DOC_DIR PAGE...   (PAGE like bgctl.1; BUILD_DOC_DIR holds
# PAGE.gz). Exit 0 all good, 1 a problem (each printed), 77 man(1) is not installed.
#
# Per page: `man --warnings -l` exits 0 with nothing on stderr (groff's warnings, as lintian's
# manpage-has-errors-from-man check runs it) and has the sections NAME, SYNOPSIS, DESCRIPTION,
# OPTIONS, EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES, SEE ALSO. Against the sources:
# bgctl(1) names every long option and command of controller/bgctl.c and every exit code
# (controller/bgctl.h);
# bg-agent(8), bg-controller(8) and bg-router(8) name every option of conf/cli.c, and together
# every configuration key conf/*.c accepts (their `.key = "..."` slots and the keys[] of each
# backend type of agent/backend_*.c); bg-agent(8) names every backend type (its `.name`).
set -u
src=$1 dir=$2
shift 2
if ! command -v man >/dev/null 2>&1; then
    echo "SKIP: man(1) is not installed (apt-get install man-db)"
    exit 77
fi
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

render() { # page -> $tmp/page.txt, $tmp/page.err; returns man's exit code
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$dir/$1.gz" \
        >"$tmp/$1.txt" 2>"$tmp/$1.err"
}

for page in "$@"; do
    if [ ! -s "$dir/$page.gz" ]; then
        bad "$page: $dir/$page.gz not built"
        continue
    fi
    if render "$page"; then ok "$page: man -l exits 0"; else bad "$page: man -l failed"; fi
    if [ -s "$tmp/$page.err" ]; then
        bad "$page: man --warnings said:"
        sed 's/^/    /' "$tmp/$page.err"
    else
        ok "$page: no warnings from man/groff"
    fi
    name=${page%.*} section=${page##*.}
    if head -1 "$tmp/$page.txt" | grep -q "^$name($section)"; then
        ok "$page: header $name($section)"
    else
        bad "$page: header is '$(head -1 "$tmp/$page.txt")'"
    fi
    missing=""
    for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
        grep -q "^$s\$" "$tmp/$page.txt" || missing="$missing [$s]"
    done
    if [ -z "$missing" ]; then ok "$page: every section"; else bad "$page: sections missing:$missing"; fi
    # No word split across lines (keys such as instance.endpoint must stay whole).
    if grep -q -- '‐$' "$tmp/$page.txt"; then bad "$page: hyphenated words"; else ok "$page: no hyphenation"; fi
done

has() { # page text: the rendered page contains the text
    grep -qF -- "$2" "$tmp/$1.txt"
}

if [ -s "$tmp/bgctl.1.txt" ]; then
    missing=""
    # getopt_long table: {"zookeeper", required_argument, NULL, 'z'}, ...
    for o in $(sed -n 's/.*{"\([a-z-]*\)", *\(no\|required\)_argument.*/\1/p' "$src/controller/bgctl.c"); do
        has bgctl.1 "--$o" || missing="$missing --$o"
    done
    # short options: getopt_long(argc, argv, "z:r:a:n:hV", ...)
    for o in $(sed -n 's/.*getopt_long([^"]*"\([^"]*\)".*/\1/p' "$src/controller/bgctl.c" | tr -d : | sed 's/./& /g'); do
        grep -q "^       -$o[ ,]" "$tmp/bgctl.1.txt" || missing="$missing -$o"
    done
    # commands: the command table, one entry per command: `    {"init",` (none found: the
    # table's shape changed and this check must follow it)
    cmds=$(sed -n '/^static const struct command commands\[\]/,/^};/s/^    {"\([a-z-]*\)",.*/\1/p' \
        "$src/controller/bgctl.c")
    [ -n "$cmds" ] || missing="$missing command:(no command table found in bgctl.c)"
    for c in $cmds; do
        grep -q "^       $c\b" "$tmp/bgctl.1.txt" || missing="$missing command:$c"
    done
    # exit codes: #define EXIT_BLOCKED 2 (in bgctl.h, shared by bgctl's files)
    codes=$(sed -n 's/^#define EXIT_[A-Z_]* \([0-9]*\)$/\1/p' "$src/controller/bgctl.h")
    [ -n "$codes" ] || missing="$missing exit:(no EXIT_ codes found in bgctl.h)"
    for code in $codes; do
        sed -n '/^EXIT STATUS/,/^[A-Z]/p' "$tmp/bgctl.1.txt" | grep -q "^       $code\$" ||
            missing="$missing exit:$code"
    done
    if [ -z "$missing" ]; then ok "bgctl.1: every option, command and exit code of bgctl.c"
    else bad "bgctl.1: not documented:$missing"; fi
fi

for page in bg-agent.8 bg-controller.8 bg-router.8; do
    [ -s "$tmp/$page.txt" ] || continue
    missing=""
    for o in $(sed -n 's/.*{"\([a-z-]*\)", *\(no\|required\)_argument.*/\1/p' "$src/conf/cli.c"); do
        has "$page" "--$o" || missing="$missing --$o"
    done
    if [ -z "$missing" ]; then ok "$page: every option of conf/cli.c"
    else bad "$page: options not documented:$missing"; fi
done

if [ -s "$tmp/bg-agent.8.txt" ] && [ -s "$tmp/bg-controller.8.txt" ] && [ -s "$tmp/bg-router.8.txt" ]; then
    cat "$tmp/bg-agent.8.txt" "$tmp/bg-controller.8.txt" "$tmp/bg-router.8.txt" >"$tmp/daemons.txt"
    keys=$({
        cat "$src"/conf/*.c | grep -o '\.key = "[a-z_]*"' | sed 's/.*"\(.*\)"/\1/'
        awk '/ keys\[\] = \{/ { f = 1 } f { print } f && /\};/ { f = 0 }' "$src"/agent/backend_*.c | grep -o '"[a-z_]*"' | tr -d '"'
    } | sort -u)
    n=0 missing=""
    for k in $keys; do
        n=$((n + 1))
        grep -qw -- "$k" "$tmp/daemons.txt" || missing="$missing $k"
    done
    if [ "$n" -lt 40 ]; then
        bad "only $n configuration keys found in conf/*.c: has its layout changed?"
    elif [ -z "$missing" ]; then ok "bg-agent.8 + bg-controller.8 + bg-router.8: all $n configuration keys of conf/*.c"
    else bad "configuration keys not documented:$missing"; fi
    # backend types: `    .name = "haproxy-agent",` in the descriptor of each type's file
    types=$(sed -n 's/^    \.name = "\([a-z-]*\)",$/\1/p' "$src"/agent/backend_*.c)
    n=0 missing=""
    for t in $types; do
        n=$((n + 1))
        grep -qw -- "$t" "$tmp/bg-agent.8.txt" || missing="$missing $t"
    done
    if [ "$n" -lt 4 ]; then bad "only $n backend types found in agent/backend_*.c: has its layout changed?"
    elif [ -z "$missing" ]; then ok "bg-agent.8: all $n backend types of agent/backend_*.c"
    else bad "backend types not documented:$missing"; fi
fi

echo "checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
