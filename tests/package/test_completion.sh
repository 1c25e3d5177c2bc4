#!/usr/bin/env bash
# test_completion.sh -- source conf/bash-completion/bgctl in bash and check what it completes:
# commands and per-command options (read from the real bgctl --help), colours, durations, and
# instance ids from `bgctl status --json` (a stand-in bgctl prints the JSON the real one prints
# for two instances and records the arguments it was given). Run twice: plain bash, and with
# Debian's bash-completion loaded (when installed), whose word splitting differs.
# Usage: test_completion.sh COMPLETION_FILE BGCTL   (ctest: unit.bash_completion)
set -uo pipefail
comp=$1 real=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# The stand-in: `status --json` prints what bgctl printed for one blue and one green instance
# (captured from the real one against a test ZooKeeper); anything else goes to the real bgctl.
mkdir "$tmp/bin"
cat >"$tmp/status.json" <<'JSON'
{
  "active_color": "blue",
  "applied": "blue",
  "leader": "c1",
  "phase": "converged",
  "reason": "blue is UP (1 instance(s)), green is out",
  "epoch": 0,
  "instances": [
    {
      "id": "blue-1",
      "color": "blue",
      "status": "UP",
      "endpoint": "http://127.0.0.1:11621",
      "last_error": "",
      "healthy": true
    },
    {
      "id": "green-1",
      "color": "green",
      "status": "OUT_OF_SERVICE",
      "endpoint": "http://127.0.0.1:32341",
      "last_error": "",
      "healthy": false,
      "check": "HTTP 503"
    }
  ]
}
JSON
cat >"$tmp/bin/bgctl" <<EOF
#!/bin/sh
case " \$* " in
*" status --json "*) echo "\$*" >>"$tmp/calls"; cat "$tmp/status.json" ;;
*) exec "$real" "\$@" ;;
esac
EOF
chmod +x "$tmp/bin/bgctl"

cat >"$tmp/run.sh" <<'EOF'
# Sourced by bash with $mode, $comp. Prints one line per case: the completions, sorted.
[ "$mode" = bash-completion ] && . /usr/share/bash-completion/bash_completion
unset BG_ZK BG_ROOT BG_ZK_AUTH
. "$comp"
complete_line() { # the line typed so far, cursor at its end
    COMP_LINE=$1 COMP_POINT=${#1} COMP_TYPE=9 COMP_KEY=9
    # Split as readline does: at white space, and at : and = (COMP_WORDBREAKS), which become
    # words of their own.
    local -a w=()
    local tok
    read -r -a toks <<<"$1"
    for tok in "${toks[@]}"; do
        while [[ $tok =~ ^([^:=]*)([:=])(.*)$ ]]; do
            [ -n "${BASH_REMATCH[1]}" ] && w+=("${BASH_REMATCH[1]}")
            w+=("${BASH_REMATCH[2]}")
            tok=${BASH_REMATCH[3]}
        done
        [ -n "$tok" ] && w+=("$tok")
    done
    [[ $1 =~ [[:space:]]$ ]] && w+=("")
    COMP_WORDS=("${w[@]}") COMP_CWORD=$((${#w[@]} - 1))
    COMPREPLY=()
    _bgctl bgctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
    echo
}
while IFS= read -r line; do complete_line "$line"; done
EOF

lines=() wants=()
case_() { # "line typed" "expected completions (sorted, space-separated)"
    lines+=("$1") wants+=("$2")
}
run_cases() { # mode: complete every queued line in one bash, compare, clear the queue
    local got i
    mapfile -t got < <(printf '%s\n' "${lines[@]}" |
        PATH="$tmp/bin:$PATH" mode=$1 comp=$comp bash "$tmp/run.sh" 2>&1)
    for i in "${!lines[@]}"; do
        if [ "${got[i]-}" = "${wants[i]}" ]; then
            pass=$((pass + 1))
            echo "ok   [$1] '${lines[i]}' -> ${got[i]}"
        else
            fail=$((fail + 1))
            echo "FAIL [$1] '${lines[i]}' -> '${got[i]-}', expected '${wants[i]}'"
        fi
    done
    [ "${#got[@]}" -le "${#lines[@]}" ] || { fail=$((fail + 1)); printf 'FAIL extra output: %s\n' "${got[@]:${#lines[@]}}"; }
    lines=() wants=()
}

# The commands as the real bgctl's --help lists them.
cmds=$("$real" --help | awk '/^Commands:/ { c = 1; next } c && /^$/ { exit } c && /^  [a-z]/ { print $1 }' |
    sort | tr '\n' ' ' | sed 's/ $//')
case " $cmds " in
*" switch "*" "*) ;;
*) echo "FAIL: no commands in $real --help: '$cmds'"; exit 1 ;;
esac

modes=plain
if [ -r /usr/share/bash-completion/bash_completion ]; then
    modes="plain bash-completion"
else
    echo "note: /usr/share/bash-completion/bash_completion not installed: plain bash only"
fi
for m in $modes; do
    : >"$tmp/calls"
    case_ "bgctl " "$cmds"
    case_ "bgctl sw" "switch"
    case_ "bgctl ro" "rollback"
    case_ "bgctl switch " "blue green"
    case_ "bgctl switch g" "green"
    case_ "bgctl switch green --w" "--wait"
    case_ "bgctl -z zk1:2181 switch --t" "--timeout"
    case_ "bgctl switch green --timeout " "10m 10s 2m 30s 5m 60s"
    case_ "bgctl history -" "--auth --help --json --root --version --zookeeper -V -a -h -n -r -z"
    case_ "bgctl init --color " "blue green"
    case_ "bgctl status --js" "--json"
    case_ "bgctl -a bg:secret -r /svc st" "status"
    case_ "bgctl -z 127.0.0.1:21" "2181" # bash replaces what follows the colon
    # Instance ids: the stand-in's JSON; the ZooKeeper options of the line are passed on.
    case_ "bgctl -z zk1:2181 -r /services/shop drain " "blue-1 green-1"
    case_ "bgctl undrain g" "green-1"
    run_cases "$m"
    calls=$(tr '\n' '|' <"$tmp/calls")
    if [ "$calls" = "-z zk1:2181 -r /services/shop status --json|status --json|" ]; then
        pass=$((pass + 1))
        echo "ok   [$m] status --json asked with the line's -z/-r: $calls"
    else
        fail=$((fail + 1))
        echo "FAIL [$m] status --json calls: '$calls'"
    fi
done
# Without jq the ids come from sed over bgctl's one-key-per-line JSON.
if command -v jq >/dev/null; then
    mkdir "$tmp/nojq"
    for t in bash sh sed awk sort tr grep timeout cat mktemp rm; do
        p=$(command -v "$t") && ln -s "$p" "$tmp/nojq/$t"
    done
    got=$(printf 'bgctl drain \n' | PATH="$tmp/bin:$tmp/nojq" mode=plain comp=$comp \
        "$(command -v bash)" "$tmp/run.sh" 2>&1)
    if [ "$got" = "blue-1 green-1" ]; then
        pass=$((pass + 1)); echo "ok   [plain, no jq] 'bgctl drain ' -> $got"
    else
        fail=$((fail + 1)); echo "FAIL [plain, no jq] 'bgctl drain ' -> '$got'"
    fi
fi
echo "checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
