#!/usr/bin/env python3
"""bench_core.py -- controller switch time vs instances, leader failover, memory and CPU.

Prints tables (medians) and writes bench/out/core.json. Usage:
    BG_BUILD_DIR=build/release python3 bench/bench_core.py [--sizes 2,50] [--flips 7]
        [--failovers 5] [--session-ms 2000]
Figures are printed, not asserted: the machine may be shared and noisy.
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import harness as h  # noqa: E402
from bgsys import System  # noqa: E402


def proc_mem(pid):
    """(RssAnon kB, VmRSS kB) of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("RssAnon", "VmRSS"):
            out[k] = int(v.split()[0])
    return out.get("RssAnon", 0), out.get("VmRSS", 0)


def cpu_seconds(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def start_agents(s, n):
    """n blue + n green agents, started in parallel, then waited for."""
    agents = []
    for color in ("blue", "green"):
        for i in range(1, n + 1):
            agents.append(s.agent(f"{color}-{i}", color, start=False, session_timeout_ms=4000))
    for a in agents:
        a.start(wait=False)
    for a in agents:
        a.proc.wait_log(r"event=registered", timeout=60)
    return agents


def switch_times(t, s, flips):
    """Flip with bgctl switch --wait; return end-to-end ms (bgctl: set -> /status converged)
    and the controller's own switch_end ms."""
    e2e, internal = [], []
    color = s.status()["applied"]
    ctl = s.controllers[0]
    for _ in range(flips):
        color = "green" if color == "blue" else "blue"
        mark = ctl.mark()
        rc, out, err = s.bgctl("switch", color, "--wait", "--timeout", "120s")
        if rc != 0:
            raise h.HarnessError(f"switch failed: {err}")
        e2e.append(int(re.search(r"in (\d+) ms", out).group(1)))
        m = ctl.wait_log(rf"event=switch_end from=\w+ to={color} result=converged ms=(\d+)",
                         timeout=10, since=mark)
        internal.append(int(m.group(1)))
    return e2e, internal


def bench_switch(t, sizes, flips, results):
    for n in sizes:
        zk = t.zookeeper()
        s = System(t, zk)
        s.flip("blue")
        agents = start_agents(s, n)
        ctl = s.controller(f"bench{n}", resync="10m")
        s.wait_converged("blue", timeout=120)
        cpu0 = cpu_seconds(ctl.pid)
        e2e, internal = switch_times(t, s, flips)
        cpu = cpu_seconds(ctl.pid) - cpu0
        rss_anon, rss = proc_mem(ctl.pid)
        a_anon, a_rss = proc_mem(agents[0].proc.pid)
        results["switch"].append({
            "per_color": n, "flips": flips, "e2e_ms": e2e, "controller_ms": internal,
            "e2e_median_ms": statistics.median(e2e),
            "controller_median_ms": statistics.median(internal),
            "controller_cpu_s_per_100_flips": cpu / flips * 100,
            "controller_rss_anon_kb": rss_anon, "controller_rss_kb": rss,
            "agent_rss_anon_kb": a_anon, "agent_rss_kb": a_rss})
        h.log(f"{n}+{n}: e2e median {statistics.median(e2e)} ms, controller median "
              f"{statistics.median(internal)} ms")
        for p in [ctl] + [a.proc for a in agents]:
            p.stop()
        zk.stop()


def bench_failover(t, rounds, session_ms, results):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    for color in ("blue", "green"):
        s.agent(f"{color}-1", color)
    ctls = [s.controller(f"f{i}", session_timeout_ms=session_ms) for i in (1, 2)]
    s.wait_converged("blue")
    took = []
    for _ in range(rounds):
        leader = s.leader()
        standby = next(p for p in ctls if p is not leader)
        mark = standby.mark()
        t0 = time.time()
        leader.kill(signal.SIGKILL)
        leader.wait(5)
        m = standby.wait_log(r"ts=(\S+) .*event=leader_elected", timeout=30, since=mark)
        ts = m.group(1)
        when = time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + \
            int(ts[20:23]) / 1000
        took.append(round((when - t0) * 1000))
        s.wait_converged(s.status()["applied"] or "blue", timeout=30)
        leader.start()
        leader.wait_log(r"event=election_joined", timeout=10)
    results["failover"] = {"session_timeout_ms": session_ms, "ms": took,
                           "median_ms": statistics.median(took),
                           "over_session_timeout_ms": statistics.median(took) - session_ms}


def bench_idle_agent(t, results):
    zk = t.zookeeper()
    s = System(t, zk)
    a = s.agent("idle-1", "blue")
    time.sleep(2)
    anon, rss = proc_mem(a.proc.pid)
    results["idle_agent"] = {"rss_anon_kb": anon, "rss_kb": rss}


def print_tables(r):
    print("\nController switch time (flip -> /status converged), batch_size 1, settle 0")
    print(f"{'instances':>12} {'flips':>6} {'e2e median ms':>14} {'ctl median ms':>14} "
          f"{'ctl CPU s/100 flips':>20} {'ctl RssAnon kB':>15} {'ctl RSS kB':>11}")
    for x in r["switch"]:
        print(f"{str(x['per_color']) + '+' + str(x['per_color']):>12} {x['flips']:>6} "
              f"{x['e2e_median_ms']:>14} {x['controller_median_ms']:>14} "
              f"{x['controller_cpu_s_per_100_flips']:>20.2f} {x['controller_rss_anon_kb']:>15} "
              f"{x['controller_rss_kb']:>11}")
    if "failover" in r:
        f = r["failover"]
        print(f"\nLeader failover (kill -9 -> standby's leader_elected), session timeout "
              f"{f['session_timeout_ms']} ms: median {f['median_ms']} ms "
              f"(+{f['over_session_timeout_ms']} ms), all: {f['ms']}")
    if "idle_agent" in r:
        a = r["idle_agent"]
        print(f"\nIdle agent: RssAnon {a['rss_anon_kb']} kB, RSS {a['rss_kb']} kB")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2,50")
    ap.add_argument("--flips", type=int, default=7)
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--session-ms", type=int, default=2000)
    ap.add_argument("--out", default=str(HERE / "out" / "core.json"))
    args = ap.parse_args()
    results = {"switch": [], "machine": {"nproc": os.cpu_count()},
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}

    def run(t):
        bench_idle_agent(t, results)
        bench_switch(t, [int(x) for x in args.sizes.split(",")], args.flips, results)
        if args.failovers:
            bench_failover(t, args.failovers, args.session_ms, results)

    with h.Test("bench-core") as t:
        run(t)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print_tables(results)
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
