#!/usr/bin/env bash
# run.sh -- rerun the benchmarks: a release build in build/release (configured if missing,
# brought up to date otherwise), bench_core.py (switch time vs instances, failover, memory,
# CPU), bench_lb.py (failed requests and cutover under wrk load, bluegreen behind HAProxy and
# behind nginx driven by bg-router vs nginx reloads),
# bench_health.py (a bad deploy and an application that dies after the switch, bluegreen vs
# nginx), bench_cutover.py, bench_scale.py (1000 instances: 500+500 stand-in agents, switch,
# failover, /status bytes, controller memory), bench_canary.py (canary shares through HAProxy),
# then the plot.
# Results: bench/out/{core.json,lb.json,health.json,cutover.json,scale.json,canary.json,lb.png}.
#
# Usage: bench/run.sh [--flips N] [--sleep S] [--sizes LIST] [--scenarios LIST] [--rounds N]
#                     [--scale-sizes LIST] [--quick]
#   --flips N        flips per load-balancer scenario (default 50)
#   --sleep S        the fixed sleep of scenario d, seconds (default 1)
#   --sizes LIST     instances per colour for bench_core.py (default 2,20,100,200)
#   --scenarios LIST bench_lb.py scenarios (default a,b,a2,b2,r,r2,c,d,e)
#   --rounds N       rounds per bench_health.py scenario (default 5)
#   --scale-sizes L  stand-in instances per colour for bench_scale.py (default 100,250,500)
#   --quick          a smoke run: 10 flips, sizes 2,20, 2 failovers, 2 health rounds,
#                    bench_cutover.py --quick (2+2 and 8+8 at inter 1 s, 2 flips),
#                    bench_scale.py at 50+50 stand-ins and 5+5 real agents, 1 switch each
set -euo pipefail
cd "$(dirname "$0")/.."
flips=50 sleep_s=1 sizes=2,20,100,200 scenarios=a,b,a2,b2,r,r2,c,d,e core_flips=11 failovers=5
rounds=5 cut_args=() scale_args=(--sizes 100,250,500 --real 20)
while [ $# -gt 0 ]; do
    case $1 in
    --flips) flips=$2; shift ;;
    --sleep) sleep_s=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --scale-sizes) scale_args=(--sizes "$2" --real 20); shift ;;
    --quick) flips=10 sizes=2,20 core_flips=5 failovers=2 rounds=2 cut_args=(--quick)
             scale_args=(--sizes 50 --real 5 --flips 1 --failovers 1) ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 64 ;;
    esac
    shift
done

for exe in cmake wrk haproxy nginx gnuplot java; do
    command -v "$exe" >/dev/null || { echo "run.sh: $exe is not installed" >&2; exit 1; }
done

build=build/release
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$(nproc)" >/dev/null
export BG_BUILD_DIR=$PWD/$build
mkdir -p bench/out

# Many agents (200+200) and wrk's connections need descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== bench_core.py: switch time vs instances ($sizes per colour), failover, memory, CPU"
python3 bench/bench_core.py --sizes "$sizes" --flips "$core_flips" --failovers "$failovers" \
    --out bench/out/core.json | tee bench/out/core.txt
echo
echo "== bench_lb.py: failed requests and cutover under wrk -c64 ($flips flips per scenario)"
python3 bench/bench_lb.py --flips "$flips" --sleep "$sleep_s" --scenarios "$scenarios" \
    --out bench/out/lb.json --core bench/out/core.json | tee bench/out/lb.txt
echo
echo "== bench_health.py: a bad deploy and an application dying, under wrk -c64 ($rounds rounds)"
python3 bench/bench_health.py --rounds "$rounds" --out bench/out/health.json |
    tee bench/out/health.txt
echo
echo "== bench_cutover.py: cutover vs instances per colour x check interval (issue 10)"
rm -f bench/out/cutover.json
python3 bench/bench_cutover.py "${cut_args[@]}" --out bench/out/cutover.json | tee bench/out/cutover.txt
python3 bench/bench_cutover.py --report bench/cutover-before.json bench/out/cutover.json \
    --outdir bench/out | tee -a bench/out/cutover.txt
echo
echo "== bench_scale.py: 1000 instances (lightweight stand-in agents + a few real bg-agents)"
python3 bench/bench_scale.py "${scale_args[@]}" --out bench/out/scale.json | tee bench/out/scale.txt
echo
echo "== bench_canary.py: canary share observed vs requested, time to the new share (issue 13)"
python3 bench/bench_canary.py | tee bench/out/canary.txt
gnuplot -e "outdir='bench/out'" bench/plot.gp
gnuplot -e "outdir='bench/out'" bench/plot_cutover.gp
echo
echo "plot: bench/out/lb.png   tables: bench/out/core.txt bench/out/lb.txt bench/out/health.txt"
echo "       bench/out/cutover.txt bench/out/scale.txt"
