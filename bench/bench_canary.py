#!/usr/bin/env python3
"""bench_canary.py -- issue #13: canary shares through a real HAProxy, observed vs requested,
and the time from `bgctl canary` to the new share being served.

Rigs (tests/integration/canaryrig.py): N blue (active) + M green (canary) bg-demo-app on
loopback, an agent beside each, one controller, HAProxy `balance roundrobin` with every server
`weight 100`:
  agent   agent-check on each agent's haproxy-agent port (agent-inter 200 ms): weights
  health  option httpchk GET /health (inter 200 ms, rise 1, fall 1): an instance-count canary

For each requested percent, `bgctl canary green P` (no --wait) is run while HAProxy's weights
are read (show stat) every 10 ms: **served ms** is the write (bgctl started) -> HAProxy serving
every server at the weight the new share needs (for the instance-count rig: the expected
servers UP); **wait ms** is how long `bgctl canary green P --wait` takes when run right after a
change back (the same change again, measured separately). Then wrk -c16 runs until at least
--requests responses and the share HAProxy's green servers answered is the **observed %**.

Figures are printed and written to bench/out/canary.json, not asserted.
Usage: BG_BUILD_DIR=build/release python3 bench/bench_canary.py [--percents 1,5,10,25,50,75]
           [--rigs agent:2+2,agent:3+1,agent:1+3,health:2+2] [--requests 20000]
       python3 bench/bench_canary.py --report-only
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import harness as h  # noqa: E402
import canaryrig  # noqa: E402


def expected(rig, pct):
    """{server: weight} HAProxy should show for servers taking traffic, from /status."""
    st = rig.sys.status()
    c = st.get("canary") or {}
    out = {}
    for i in st.get("instances", []):
        if i.get("status") == "UP":
            out[i["id"]] = i.get("weight", 100)
    return c, out


def served_ms(rig, pct, timeout=30):
    """bgctl canary green pct (no wait); ms until HAProxy serves the weights /status asks."""
    t0 = time.monotonic()
    rc, _, _ = rig.bgctl("canary", "green", pct)
    if rc != 0:
        return None
    while time.monotonic() - t0 < timeout:
        c, want = expected(rig, pct)
        if c.get("percent") == pct and rig.sys.status().get("phase") == "converged":
            have = {k: w for k, (s, w) in rig.weights().items() if s == "UP" and w > 0}
            if have == want:
                return (time.monotonic() - t0) * 1000
        time.sleep(0.01)
    return None


def wait_ms(rig, pct):
    t0 = time.monotonic()
    rc, _, _ = rig.bgctl("canary", "green", pct, "--wait", "--timeout", "60s")
    return (time.monotonic() - t0) * 1000 if rc == 0 else None


def run_rig(t, zk, spec, percents, requests):
    mode, counts = spec.split(":")
    nb, ng = map(int, counts.split("+"))
    rig = canaryrig.CanaryRig(t, zk, mode, nb=nb, ng=ng)
    rows = []
    rig.start()
    try:
        for p in percents:
            rig.bgctl("canary", "--abort", "--wait", "--timeout", "60s")
            s_ms = served_ms(rig, p)
            rig.bgctl("canary", "--abort", "--wait", "--timeout", "60s")
            w_ms = wait_ms(rig, p)
            st = rig.sys.status().get("canary") or {}
            share = rig.share(seconds=2, min_requests=requests)
            rows.append({"rig": spec, "requested": p, "observed": round(share["green"], 2),
                         "expected": st.get("share"), "mode": st.get("mode"),
                         "weight_canary": st.get("weight_canary"),
                         "weight_active": st.get("weight_active"),
                         "canary_up": st.get("canary_up"), "requests": share["total"],
                         "failed": share["failed"], "served_ms": s_ms, "wait_ms": w_ms})
            h.log(f"{spec} {p}%: {rows[-1]}")
    finally:
        rig.stop()
    return rows


def fmt(v, d=0):
    return "-" if v is None else f"{v:.{d}f}"


def table(res):
    head = (f"{'rig (blue+green)':<16} {'mode':<9} {'req %':>5} {'weights c/a':>11} "
            f"{'expected %':>10} {'observed %':>10} {'error':>6} {'requests':>9} {'failed':>6} "
            f"{'served ms':>9} {'--wait ms':>9}")
    out = [f"HAProxy roundrobin, server weight 100, agent-inter / inter 200 ms; wrk -c16 "
           f"until >= {res['requests']} responses", head, "-" * len(head)]
    for r in res["rows"]:
        w = (f"{r['weight_canary']}/{r['weight_active']}" if r["mode"] == "weights"
             else f"{r['canary_up']} up")
        err = None if r["observed"] is None else r["observed"] - r["requested"]
        out.append(f"{r['rig']:<16} {r['mode'] or '-':<9} {r['requested']:>5} {w:>11} "
                   f"{fmt(r['expected'], 1):>10} {fmt(r['observed'], 2):>10} "
                   f"{fmt(err, 2):>6} {r['requests']:>9} {r['failed']:>6} "
                   f"{fmt(r['served_ms']):>9} {fmt(r['wait_ms']):>9}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--percents", default="1,5,10,25,50,75")
    ap.add_argument("--rigs", default="agent:2+2,agent:3+1,agent:1+3,health:2+2")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    out = HERE / "out" / "canary.json"
    if args.report_only:
        print(table(json.loads(out.read_text())))
        return
    canaryrig.need_tools()
    os.environ.setdefault("BG_BUILD_DIR", str(HERE.parent / "build" / "release"))
    percents = [int(x) for x in args.percents.split(",")]
    res = {"requests": args.requests, "rows": []}
    with h.Test("bench-canary") as t:
        zk = t.zookeeper()
        for spec in args.rigs.split(","):
            res["rows"] += run_rig(t, zk, spec, percents, args.requests)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print()
    print(table(res))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
