#!/usr/bin/env python3
"""bench_health.py -- issue #8 under load: a bad deploy, and an application that dies after
the switch. Failed requests and time to recover, bluegreen (agents checking the application,
HAProxy in front) against the seed-style nginx switch (rewrite the include, nginx -s reload),
with the same load: wrk -c64 (2 threads, keep-alive) and a probe through the balancer.

Scenarios (2 blue + 2 green bg-demo-app on loopback; each repeated --rounds times):

  bad-bg     bluegreen: green's application is broken (GET /healthz 503, requests 500); the
             agents see it (check every 200 ms, fall 2); /active_color := green. Measured:
             flip -> /status blocked ("refused in"), failed requests over --window seconds,
             then the application is fixed: fix -> the switch completes by itself and the
             probe is served by green only ("recovered in"); failed requests over the round.
  bad-nginx  nginx: the include is rewritten to green and nginx reloaded, green broken. nginx
             cannot know: every request answers 500 until a human rolls back. Measured: failed
             requests over --window seconds (then rolled back by the script).
  dies-bg    bluegreen converged on green, then both green applications are killed (SIGKILL).
             Measured: kill -> the first answer by blue through HAProxy to a request sent
             after the kill ("recovered in"; a new request on a new connection every 20 ms),
             and the failed requests until then + 1 s; then green is started again (the
             switch completes by itself) for the next round.
  dies-bg-rd as dies-bg, with `option redispatch 1` and `retry-on conn-failure empty-response
             response-timeout` in HAProxy's backend: a request that finds the application
             dead is retried on another server instead of failing.
  dies-nginx nginx switched to green, both green applications killed: every request fails
             (502) until a human switches back. Measured over --window seconds.

bluegreen: agents' check {http: .../healthz, interval 200ms, timeout 500ms, rise 2, fall 2},
HAProxy `option httpchk GET /health` on the agents, inter 100 rise 1 fall 1, one controller,
settle 0. nginx: bench_lb.py's configuration (upstream blue / green, include + reload).

Figures are printed (medians over rounds) and written to bench/out/health.json, not asserted.
Usage: BG_BUILD_DIR=build/release python3 bench/bench_health.py [--rounds 5] [--window 3]
           [--scenarios bad-bg,bad-nginx,dies-bg,dies-nginx]
       python3 bench/bench_health.py --report-only
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness as h  # noqa: E402
import slow_zero_downtime as zd  # noqa: E402
from bgsys import FAST_CHECK, HealthRig, Pinger, first_answer_after  # noqa: E402
from bench_lb import NginxRig  # noqa: E402

GREEN = ("green-1", "green-2")
SCENARIOS = ("bad-bg", "bad-nginx", "dies-bg", "dies-bg-rd", "dies-nginx")
# dies-bg-rd: dies-bg with HAProxy retrying a failed connection on another server at once
REDISPATCH = ["option redispatch 1", "retry-on conn-failure empty-response response-timeout"]


class Load:
    """wrk + probe through a balancer port; stop() -> the round's figures."""

    def __init__(self, t, port, connections, name):
        self.probe = zd.Probe(port)
        self.probe.start()
        self.wrk = zd.Wrk(t, f"http://127.0.0.1:{port}/", connections=connections, threads=2,
                          name=name)
        self.t0 = time.time()

    def stop(self):
        rep = self.wrk.stop()
        self.probe.stop()
        return {"requests": rep["requests"], "non2xx": rep["non2xx"],
                "socket_errors": sum(rep["errors"].values()), "failed": rep["error_total"],
                "probe_requests": self.probe.total, "probe_failed": len(self.probe.failures),
                "seconds": rep["seconds"]}


def first_streak_start(records, t0, color, n=20):
    """Send time of the first request (sent >= t0) of n consecutive 200s by color."""
    run = []
    for r in records:
        if r[0] < t0:
            continue
        if r[2] == 200 and r[3] == color:
            run.append(r[0])
            if len(run) >= n:
                return run[0]
        else:
            run = []
    return None


def wait_for(fn, timeout, what):
    return h.wait_until(fn, timeout=timeout, interval=0.01, msg=what)


def bad_bg(t, rig, args, rnd):
    s = rig.sys
    for n in GREEN:
        rig.apps[n].admin("break")
    wait_for(lambda: all((rig.node(n) or {}).get("healthy") is False for n in GREEN), 20,
             "green agents unhealthy")
    load = Load(t, rig.fport, args.connections, f"wrk-bad-bg-{rnd}")
    time.sleep(0.5)
    t_flip = time.time()
    s.flip("green")
    wait_for(lambda: (s.status() or {}).get("phase") == "blocked", 20, "blocked")
    refused_ms = (time.time() - t_flip) * 1000
    time.sleep(args.window)
    in_window = load.probe.total
    t_fix = time.time()
    for n in GREEN:
        rig.apps[n].admin("fix")
    s.wait_converged("green", timeout=60)
    wait_for(lambda: first_streak_start(load.probe.since(t_fix), t_fix, "green"), 30,
             "probe served by green")
    recovered_ms = (first_streak_start(load.probe.since(t_fix), t_fix, "green") - t_fix) * 1000
    time.sleep(0.5)
    r = load.stop()
    # back to blue for the next round (an ordinary switch)
    s.flip("blue")
    s.wait_converged("blue", timeout=60)
    rig.wait_serving("blue")
    r.update({"refused_ms": refused_ms, "recovered_ms": recovered_ms,
              "probe_in_window": in_window})
    return r


def dies_bg(t, rig, args, rnd):
    s = rig.sys
    s.flip("green")
    s.wait_converged("green", timeout=60)
    rig.wait_serving("green")
    load = Load(t, rig.fport, args.connections, f"wrk-dies-bg-{rnd}")
    pinger = Pinger(rig.fport)
    pinger.start()
    time.sleep(1)
    t_kill = time.time()
    for n in GREEN:
        rig.apps[n].kill(signal.SIGKILL)
    # Recovered: the first request sent after the kill (a new one every 20 ms, each on its own
    # connection) that blue answers.
    wait_for(lambda: first_answer_after(pinger.since(t_kill), t_kill, "blue"), 30,
             "blue answers again")
    back_ms = (first_answer_after(pinger.since(t_kill), t_kill, "blue") - t_kill) * 1000
    time.sleep(1)
    r = load.stop()
    pinger.stop()
    # The keep-alive probe's request in flight at the dead server waits in HAProxy's retries
    # (a turn-around of min(timeout connect, 1 s) before each of 3).
    pb = first_answer_after(load.probe.since(t_kill), t_kill, "blue")
    r["probe_back_ms"] = None if pb is None else (pb - t_kill) * 1000
    pings = pinger.since(t_kill)
    r["pings"] = len(pings)
    r["pings_failed"] = sum(1 for x in pings if x[2] != 200)
    for n in GREEN:  # green comes back: the switch completes by itself
        rig.apps[n].wait(5)
        rig.apps[n].start()
        rig.apps[n].wait_listening()
    t_back = time.time()
    s.wait_converged("green", timeout=60)
    r["recompleted_ms"] = (time.time() - t_back) * 1000
    s.flip("blue")
    s.wait_converged("blue", timeout=60)
    rig.wait_serving("blue")
    r.update({"recovered_ms": back_ms})
    return r


def bad_nginx(t, rig, args, rnd):
    for n in GREEN:
        rig.apps[n].admin("break")
    load = Load(t, rig.port, args.connections, f"wrk-bad-nginx-{rnd}")
    time.sleep(0.5)
    rig.flip("green")
    time.sleep(args.window)
    r = load.stop()
    rig.flip("blue")  # the human's rollback, outside the measurement
    for n in GREEN:
        rig.apps[n].admin("fix")
    rig.wait_serving("blue")
    r["recovered_ms"] = None
    return r


def dies_nginx(t, rig, args, rnd):
    rig.flip("green")
    rig.wait_serving("green")
    load = Load(t, rig.port, args.connections, f"wrk-dies-nginx-{rnd}")
    time.sleep(1)
    for n in GREEN:
        rig.apps[n].kill(signal.SIGKILL)
    time.sleep(args.window)
    r = load.stop()
    rig.flip("blue")
    for n in GREEN:
        rig.apps[n].wait(5)
        rig.apps[n].start()
        rig.apps[n].wait_listening()
    rig.wait_serving("blue")
    r["recovered_ms"] = None
    return r


RUN = {"bad-bg": bad_bg, "dies-bg": dies_bg, "dies-bg-rd": dies_bg, "bad-nginx": bad_nginx,
       "dies-nginx": dies_nginx}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v):
    return "-" if v is None else f"{v:.0f}"


def table(res):
    head = (f"{'scenario':<11} {'rounds':>6} {'s/round':>7} {'requests':>9} {'failed':>7} "
            f"{'failed/round':>12} {'failed %':>8} {'probe fail':>10} {'refused ms':>10} "
            f"{'recovered ms':>12} {'rec. max':>8} {'keep-alive ms':>13}")
    out = [f"wrk -c{res['connections']} through the balancer; per-round figures are medians "
           f"over {res['rounds']} rounds", head, "-" * len(head)]
    per_round = []
    for key in SCENARIOS:
        if key not in res["scenarios"]:
            continue
        rounds = res["scenarios"][key]
        f = [r["failed"] for r in rounds]
        req = sum(r["requests"] for r in rounds)
        rec = med([r.get("recovered_ms") for r in rounds])
        pct = 100.0 * sum(f) / max(1, req)
        out.append(f"{key:<11} {len(rounds):>6} {med([r['seconds'] for r in rounds]):>7.1f} "
                   f"{req:>9} {sum(f):>7} {med(f):>12.0f} {pct:>8.3f} "
                   f"{med([r['probe_failed'] for r in rounds]):>10.0f} "
                   f"{fmt(med([r.get('refused_ms') for r in rounds])):>10} "
                   f"{'never' if rec is None else f'{rec:.0f}':>12} "
                   f"{fmt(max([r['recovered_ms'] for r in rounds if r.get('recovered_ms')] or [None], key=lambda x: x or 0)):>8} "
                   f"{fmt(med([r.get('probe_back_ms') for r in rounds])):>13}")
        recs = [r.get("recovered_ms") for r in rounds]
        if any(recs):
            per_round.append(f"  {key} recovered ms by round: "
                             f"{', '.join(fmt(x) for x in recs)}")
        again = [r.get("recompleted_ms") for r in rounds]
        if any(again):
            per_round.append(f"  {key} green started again -> converged on green, ms by round: "
                             f"{', '.join(fmt(x) for x in again)}")
    out += per_round
    sc = res["scenarios"]
    for kind, bgk in (("bad", "bad-bg"), ("dies", "dies-bg"), ("dies", "dies-bg-rd")):
        bg, ng = sc.get(bgk), sc.get(f"{kind}-nginx")
        if bg and ng:
            fb = med([r["failed"] for r in bg])
            fn = med([r["failed"] for r in ng])
            ratio = f"nginx/bluegreen {fn / fb:.0f}x" if fb else "bluegreen lost none"
            out.append(f"{bgk}: {fb:.0f} failed per incident, recovered by itself; nginx "
                       f"{fn:.0f} in {res['window_s']:g} s and still failing ({ratio})")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=float, default=3.0,
                    help="seconds a bad deploy is watched (nginx: until the rollback)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--out", default=str(HERE / "out" / "health.json"))
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        print(table(json.loads(out.read_text())))
        return
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    bad = [k for k in keys if k not in RUN]
    if bad:
        ap.error(f"unknown scenario(s) {bad}; known: {', '.join(SCENARIOS)}")
    for exe in ("wrk", "haproxy", "nginx"):
        if not shutil.which(exe):
            sys.exit(f"bench_health.py: {exe} is not installed")
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "rounds": args.rounds,
           "window_s": args.window, "connections": args.connections,
           "machine": {"nproc": os.cpu_count(), "load_before": os.getloadavg()},
           "build_dir": str(h.build_dir()), "scenarios": {}}
    with h.Test("bench-health") as t:
        zk = t.zookeeper()
        for key in SCENARIOS:
            if key in keys:
                t.step(f"scenario {key}")
                if "-bg" in key:
                    rig = HealthRig(t, zk, inter=100, rise=1, fall=1, check=FAST_CHECK,
                                    label=key,
                                    backend_extra=REDISPATCH if key.endswith("-rd") else ()
                                    ).start()
                else:
                    rig = NginxRig(t, "reload", label=f"{key}-nginx").start()
                rounds = []
                for i in range(args.rounds):
                    r = RUN[key](t, rig, args, i)
                    h.log(f"{key} round {i + 1}: {r}")
                    rounds.append(r)
                res["scenarios"][key] = rounds
                rig.stop()
    out.write_text(json.dumps(res, indent=1))
    print()
    print(table(res))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
