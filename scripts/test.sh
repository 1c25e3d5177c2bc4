#!/usr/bin/env bash
# test.sh -- install what is missing, build, and run every test: a -Werror build with all
# tests (unit, integration, slow), an ASan+UBSan build with unit and integration tests, and a
# TSan build with unit tests and the threaded daemons' integration tests, the Debian package
# (built, lintian, installed, run and purged: scripts/package.sh, tests/package/check_package.sh),
# the docker demo built and run with podman-compose, flipped and checked (tests/compose/run_compose.sh),
# and a clang build of the libFuzzer targets (fuzz/), each run time-boxed (BG_FUZZ_TIME seconds,
# default 30; a crash fails and prints its reproducer).
# Usage: scripts/test.sh [--quick]   (--quick: only the -Werror build, unit+integration)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/deps.sh --test
# Every tool the tests use is installed now: a test that would skip for want of one fails
# (tests/integration/harness.py, Skip).
export BG_STRICT=1
jobs=$(nproc)
total_pass=0 total_fail=0
summary=()

run_ctest() { # dir label-regex name
    local dir=$1 labels=$2 name=$3 log
    log=$(mktemp)
    set +e
    ctest --test-dir "$dir" -L "$labels" --output-on-failure -j "$jobs" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    local line
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    : "${failed:=0}" "${total:=0}"
    total_pass=$((total_pass + total - failed))
    total_fail=$((total_fail + failed))
    summary+=("$name: $((total - failed)) passed, $failed failed")
    rm -f "$log"
    return "$rc"
}

build() { # dir cmake-args...
    local dir=$1
    shift
    cmake -S . -B "$dir" -DBG_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

run_fuzz() { # every libFuzzer target, time-boxed, two at a time; each counts as one test
    local log rc=0 t0=$SECONDS
    # Not -Werror: clang warns differently from gcc, and this build is about crashes.
    cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DBG_FUZZ=ON -DBG_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build/fuzz -j "$jobs" >/dev/null || return 1
    log=$(mktemp)
    fuzz/run.sh -d build/fuzz -t "${BG_FUZZ_TIME:-30}" -j "$jobs" | tee "$log" || rc=1
    local passed failed
    passed=$(grep -ac '^fuzz: [a-z0-9_]* ok ' "$log" || true)
    failed=$(grep -ac '^fuzz: [a-z0-9_]* FAILED' "$log" || true)
    total_pass=$((total_pass + passed))
    total_fail=$((total_fail + failed))
    summary+=("fuzz: $passed passed, $failed failed ($((SECONDS - t0)) s)")
    rm -f "$log"
    return "$rc"
}

run_package() { # the Debian package: build + lintian, then install, run the installed binaries
    # against a test ZooKeeper and purge (tests/package/check_package.sh, root only); each of
    # the two counts as one test
    local t0=$SECONDS passed=0 failed=0 rc=0 note=""
    if scripts/package.sh --lintian; then
        passed=$((passed + 1))
        set +e
        tests/package/check_package.sh "" build/release
        local crc=$?
        set -e
        case $crc in
        0) passed=$((passed + 1)) ;;
        77) note=", install check skipped: not root" ;;
        *) failed=$((failed + 1)) rc=1 ;;
        esac
    else
        failed=$((failed + 1)) rc=1
    fi
    total_pass=$((total_pass + passed))
    total_fail=$((total_fail + failed))
    summary+=("package: $passed passed, $failed failed ($((SECONDS - t0)) s$note)")
    return "$rc"
}

run_compose() { # the docker demo: images built with podman (debootstrapped debian:12, stand-in
    # zookeeper/haproxy), podman-compose up, flip with bgctl, check who answers, down
    # (tests/compose/run_compose.sh, root only); counts as one test
    local t0=$SECONDS passed=0 failed=0 rc=0 note="" crc
    set +e
    tests/compose/run_compose.sh build/compose
    crc=$?
    set -e
    case $crc in
    0) passed=1 ;;
    77)
        if [ "$(id -u)" = 0 ]; then # root, packages installed: podman must run
            echo "compose: skipped as root: podman cannot run here, which counts as a failure"
            failed=1 rc=1
        else
            note=", skipped: not root"
        fi
        ;;
    *) failed=1 rc=1 ;;
    esac
    total_pass=$((total_pass + passed))
    total_fail=$((total_fail + failed))
    summary+=("compose: $passed passed, $failed failed ($((SECONDS - t0)) s$note)")
    return "$rc"
}

status=0
echo "== format check"
if command -v clang-format >/dev/null; then
    bad=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep -c 'warning:' || true)
    if [ "$bad" != 0 ]; then
        git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | head -20
        echo "format: $bad places differ from .clang-format"
        status=1
    fi
fi

echo "== release build (-Werror), unit + integration + slow"
build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$quick" = 1 ]; then
    run_ctest build/release 'unit|integration' release || status=1
else
    run_ctest build/release 'unit|integration|slow' release || status=1

    echo "== Debian package: build, lintian, install, run the installed binaries, purge"
    run_package || status=1

    echo "== docker demo with podman-compose: build, up, flip with bgctl, check, down"
    run_compose || status=1

    echo "== ASan+UBSan build, unit + integration"
    build build/asan -DCMAKE_BUILD_TYPE=Debug -DBG_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_ctest build/asan 'unit|integration' asan || status=1

    echo "== TSan build, unit + integration"
    build build/tsan -DCMAKE_BUILD_TYPE=Debug -DBG_TSAN=ON
    TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" \
        run_ctest build/tsan 'unit|integration' tsan || status=1

    echo "== fuzz build (clang, libFuzzer + ASan/UBSan), each target ${BG_FUZZ_TIME:-30} s"
    run_fuzz || status=1
fi

echo
printf '%s\n' "${summary[@]}"
echo "total: $total_pass passed, $total_fail failed"
exit "$status"
