#!/usr/bin/env bash
# run_js_check.sh -- runs check_js_client.js (eureka-js-client) against a fresh Eureka double.
#
# usage: run_js_check.sh PATH/TO/eureka-double
# Installs the pinned npm packages (npm ci) when node_modules is missing, starts the double on
# a free loopback port, runs the check, stops the double, and exits with the check's status.
set -u

BIN=${1:?usage: run_js_check.sh PATH/TO/eureka-double}
HERE=$(cd "$(dirname "$0")" && pwd)

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run_js_check.sh: '$tool' is not installed; this test needs node and npm" \
            "(Debian packages nodejs and npm) to run eureka-js-client" >&2
        exit 1
    fi
done

if [ ! -d "$HERE/node_modules/eureka-js-client" ]; then
    echo "# installing the pinned packages (npm ci) in $HERE"
    if ! (cd "$HERE" && npm ci --no-audit --no-fund); then
        echo "run_js_check.sh: npm ci failed in $HERE" >&2
        exit 1
    fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/eureka-js-check.XXXXXX")
DPID=
cleanup() {
    if [ -n "$DPID" ]; then
        kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" --listen 127.0.0.1:0 --port-file "$WORK/port" 2>"$WORK/double.log" &
DPID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/port" ] && break
    sleep 0.05
done
if [ ! -s "$WORK/port" ]; then
    echo "run_js_check.sh: eureka-double did not start; its log:" >&2
    cat "$WORK/double.log" >&2
    exit 1
fi

node "$HERE/check_js_client.js" "http://127.0.0.1:$(cat "$WORK/port")"
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "# eureka-double's log (last 40 lines):" >&2
    tail -n 40 "$WORK/double.log" >&2
fi

kill -TERM "$DPID"
wait "$DPID"
drc=$?
DPID=
if [ "$drc" -ne 0 ]; then
    echo "run_js_check.sh: eureka-double exited $drc on SIGTERM (want 0)" >&2
    [ "$rc" -eq 0 ] && rc=1
fi
exit "$rc"
