#!/usr/bin/env python3
"""Issue 13: canary weights through a real HAProxy (agent-check, every server weight 100).
With 2 blue + 2 green and with 3 blue + 1 green (1 canary instance beside 3 active ones),
`bgctl canary green P --wait` for P = 5, 10, 25, 50: the share of the responses HAProxy's green
servers gave, over at least 4,000 requests each (wrk), is within 3 points of P, with 0 failed
requests; `bgctl canary --abort --wait` then gives blue 100 % again."""

import harness as h
import canaryrig

PERCENTS = (5, 10, 25, 50)


def one_rig(t, zk, nb, ng, rows):
    rig = canaryrig.CanaryRig(t, zk, "agent", nb=nb, ng=ng)
    t.step(f"{rig.describe()}: canary green at {PERCENTS} %")
    rig.start()
    try:
        for p in PERCENTS:
            rc, out, err = rig.bgctl("canary", "green", p, "--wait", "--timeout", "60s")
            t.check_eq(rc, 0, f"{rig.describe()}: bgctl canary green {p} --wait exits 0 "
                              f"({(out + err).strip()[-200:]})")
            s = rig.share()
            rows.append((f"{nb}+{ng}", p, round(s["green"], 2), s["total"], s["failed"]))
            h.log(f"[{rig.label}] canary {p} %: green served {s['green']:.2f} % of "
                  f"{s['total']} requests, failed {s['failed']}; weights {rig.weights()}")
            t.check(abs(s["green"] - p) <= 3.0,
                    f"{rig.describe()}: at {p} % green served {s['green']:.2f} % "
                    f"(within 3 points) of {s['total']} requests")
            t.check(s["total"] >= 4000, f"{rig.describe()}: {s['total']} >= 4000 requests")
            t.check_eq(s["failed"], 0, f"{rig.describe()}: no failed request at {p} %")
        st = rig.sys.status()
        t.check_eq((st["canary"]["mode"], st["canary"]["percent"]), ("weights", PERCENTS[-1]),
                   "/status says a weighted canary at the last percent")
        rc, out, err = rig.bgctl("canary", "--abort", "--wait", "--timeout", "60s")
        t.check_eq(rc, 0, "bgctl canary --abort --wait exits 0")
        s = rig.share(seconds=2, min_requests=2000)
        t.check_eq(round(s["blue"], 2), 100.0, "after the abort blue serves everything")
        t.check_eq(s["failed"], 0, "no failed request after the abort")
    finally:
        rig.stop()


def test(t):
    canaryrig.need_tools()
    zk = t.zookeeper()
    rows = []
    one_rig(t, zk, 2, 2, rows)
    one_rig(t, zk, 3, 1, rows)
    t.log("instances(blue+green) requested% observed% requests failed")
    for r in rows:
        t.log("  ".join(map(str, r)))


h.run(test)
