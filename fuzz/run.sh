#!/usr/bin/env bash
# run.sh -- run the libFuzzer targets time-boxed, two at a time, each from a scratch copy of
# its committed corpus (new inputs stay in the build dir). A crash prints its reproducer.
# Usage: fuzz/run.sh [-d BUILD_DIR] [-t SECONDS] [-j JOBS] [TARGET...]
# Exit 0 when no target crashed. One line per target: "fuzz: TARGET ok|FAILED runs=N exec/s=N".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build/fuzz secs=45 jobs=2
while getopts d:t:j: o; do
    case $o in
    d) build=$OPTARG ;;
    t) secs=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
build=$(cd "$build" && pwd) || exit 2
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && mapfile -t targets <"$build/fuzz/targets.txt"
out=$build/fuzz-run
mkdir -p "$out"

dict_for() {
    case $1 in
    fuzz_conf_*) echo "-dict=$here/dict/yaml.dict" ;;
    fuzz_member | fuzz_page | fuzz_agent_put | fuzz_eureka | fuzz_route | fuzz_router_view) echo "-dict=$here/dict/json.dict" ;;
    fuzz_send_state) echo "-dict=$here/dict/send_state.dict" ;;
    esac
}

run_one() { # target -> writes $out/$t.log and $out/$t.result
    local t=$1 dir=$out/$t
    rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/cwd"
    cp "$here/corpus/$t"/* "$dir/corpus/" 2>/dev/null
    # cwd is a scratch dir and stdin is /dev/null: the YAML targets open whatever file names
    # the fuzzer invents for token_file, tls.cert, ...
    (cd "$dir/cwd" && ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" $(dict_for "$t") \
        "$dir/corpus" "$here/corpus/$t" </dev/null >"$out/$t.log" 2>&1)
    local rc=$?
    local runs eps
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t.log" | tail -1)
    if [ "$rc" = 0 ]; then
        echo "fuzz: $t ok runs=${runs:-?} exec/s=${eps:-?} corpus=$(ls "$dir/corpus" | wc -l)" \
            >"$out/$t.result"
    else
        {
            echo "fuzz: $t FAILED (exit $rc) runs=${runs:-?} exec/s=${eps:-?}"
            grep -aE '^==[0-9]+==ERROR|runtime error|^fuzz: |SUMMARY' "$out/$t.log" | head -6
            # The stack top: the first frames that are ours, not the sanitizer's or libFuzzer's.
            grep -aE '^ +#[0-9]+ ' "$out/$t.log" |
                grep -avE 'sanitizer|fuzzer::|libc\.so|pthread_kill|raise\.c|abort\.c' | head -8
            for a in "$dir"/artifacts/*; do
                [ -f "$a" ] || continue
                echo "reproducer: $a ($(stat -c %s "$a") bytes)"
                od -An -c "$a" | head -8
                echo "replay: $build/fuzz/$t $a"
            done
        } >"$out/$t.result"
    fi
    cat "$out/$t.result"
    return "$rc"
}

status=0 pids=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || status=1
done
exit "$status"
