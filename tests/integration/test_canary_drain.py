#!/usr/bin/env python3
"""Issue 13: canary and rolling drain through a real HAProxy, under load (wrk + a pinger).

* agent-check weights, 2 blue + 2 green: `bgctl canary green 10 --wait`, `--abort --wait`,
  again at 25 %, promotion by `bgctl switch green --wait` (deletes /canary): 0 failed requests.
* drain: `bgctl drain green-1 --reason ... --wait` takes it out (HAProxy stops sending it
  requests; status and history say so); draining green-2 too is refused (exit 2, blocked, it
  keeps serving); `undrain --wait` puts green-1 back: 0 failed requests.
* malformed /canary ("green 200") and /drain/<id> (a control character): blocked with the
  reason, nothing changes (HAProxy's weights and states as they were); removing them recovers.
* /health only (httpchk), 2 blue + 2 green at 25 %: an instance-count canary, one green
  instance UP, said in /status."""

import time

import harness as h
import canaryrig


def serving(rig):
    """{server: weight} of the servers HAProxy sends new requests to."""
    return {k: w for k, (st, w) in rig.weights().items() if st == "UP" and w > 0}


def canary_and_promote(t, rig):
    load = canaryrig.Load(t, rig)
    try:
        for args in (("green", 10), ("--abort",), ("green", 25)):
            rc, out, err = rig.bgctl("canary", *args, "--wait", "--timeout", "60s")
            t.check_eq(rc, 0, f"bgctl canary {' '.join(map(str, args))} --wait exits 0 "
                              f"({(out + err).strip()[-200:]})")
            time.sleep(1.0)
        t.check_eq(sorted(serving(rig)), ["blue-1", "blue-2", "green-1", "green-2"],
                   "at 25 % both colours serve")
        rc, out, err = rig.bgctl("switch", "green", "--wait", "--timeout", "60s")
        t.check_eq(rc, 0, "bgctl switch green --wait (promotion) exits 0")
        t.check("canary cleared" in out, f"switch says it cleared the canary ({out.strip()})")
        time.sleep(1.0)
    finally:
        r = load.stop()
    t.check(not h.zk_exists(rig.zk, rig.sys.root + "/canary"), "/canary is gone")
    import json
    hist = json.loads(rig.bgctl("history", "--json")[1])
    canaries = [e["reason"] for e in hist if e.get("kind") == "canary"]
    t.check_eq(canaries, ["canary green 10 % set", "canary green 10 % ended",
                          "canary green 25 % set", "canary green 25 % ended"],
               "/history records each canary set and ended")
    t.check_eq(serving(rig), {"green-1": 100, "green-2": 100}, "green serves alone at 100 %")
    t.check(r["requests"] > 1000, f"wrk ran ({r['requests']} requests)")
    t.check_eq((r["wrk_failed"], r["ping_failed"], r["ping_failures"]), (0, 0, []),
               f"canary, abort, canary, promote: 0 failed requests of {r['requests']} + "
               f"{r['pings']} pings")


def drain_undrain(t, rig):
    load = canaryrig.Load(t, rig)
    try:
        rc, out, err = rig.bgctl("drain", "green-1", "--reason", "kernel 6.1 upgrade", "--wait",
                                 "--timeout", "60s")
        t.check_eq(rc, 0, f"bgctl drain green-1 --wait exits 0 ({(out + err).strip()[-200:]})")
        time.sleep(0.5)
        t.check_eq(serving(rig), {"green-2": 100}, "green-1 drained: only green-2 serves")
        rc, out, err = rig.bgctl("status")
        t.check("DRAINED: kernel 6.1 upgrade" in out and "drain:        green green-1 applied"
                in out, f"bgctl status shows the drain and its reason:\n{out}")
        rc, out, err = rig.bgctl("drain", "green-2", "--wait", "--timeout", "30s")
        t.check_eq(rc, 2, "draining the last green instance is refused (exit 2)")
        t.check("refused" in err, f"the refusal says why ({err.strip()[-300:]})")
        st = rig.sys.status()
        t.check_eq(st["phase"], "blocked", "/status is blocked while the refused drain stands")
        t.check("drain of green green-2 refused" in st["reason"], f"reason: {st['reason']}")
        t.check_eq(serving(rig), {"green-2": 100}, "green-2 keeps serving")
        rc, _, _ = rig.bgctl("undrain", "green-2")
        t.check_eq(rc, 0, "undrain green-2 (the refused drain) exits 0")
        rc, out, err = rig.bgctl("undrain", "green-1", "--wait", "--timeout", "60s")
        t.check_eq(rc, 0, f"bgctl undrain green-1 --wait exits 0 ({(out + err).strip()[-200:]})")
        time.sleep(0.5)
    finally:
        r = load.stop()
    t.check_eq(serving(rig), {"green-1": 100, "green-2": 100}, "both green serve again")
    t.check_eq((r["wrk_failed"], r["ping_failed"], r["ping_failures"]), (0, 0, []),
               f"drain, refused drain, undrain: 0 failed requests of {r['requests']} + "
               f"{r['pings']} pings")
    rc, out, err = rig.bgctl("history", "--json")
    import json
    hist = json.loads(out)
    kinds = [(e.get("kind"), e.get("result")) for e in hist if e.get("kind") == "drain"]
    t.check(("drain", "drained") in kinds and ("drain", "undrained") in kinds,
            f"/history records the drain and the undrain: {kinds}")


def malformed(t, rig):
    root = rig.sys.root
    before = rig.weights()
    h.zk_create(rig.zk, root + "/canary", "green 200")
    st = rig.sys.wait_phase("blocked", timeout=10)
    t.check("/canary is invalid ('green 200')" in st["reason"], f"reason: {st['reason']}")
    rc, out, err = rig.bgctl("status")
    t.check("problem:      /canary is invalid" in out, "bgctl status shows the problem")
    time.sleep(1.0)
    t.check_eq(rig.weights(), before, "a malformed /canary changes nothing in HAProxy")
    h.zk_delete(rig.zk, root + "/canary")
    rig.sys.wait_converged("green", timeout=10)
    if not h.zk_exists(rig.zk, root + "/drain"):
        h.zk_create(rig.zk, root + "/drain", "")
    h.zk_create(rig.zk, root + "/drain/green-1", "bad\x01reason")
    st = rig.sys.wait_phase("blocked", timeout=10)
    t.check("/drain/green-1 is invalid" in st["reason"], f"reason: {st['reason']}")
    time.sleep(1.0)
    t.check_eq(rig.weights(), before, "a malformed /drain entry changes nothing in HAProxy")
    h.zk_delete(rig.zk, root + "/drain/green-1")
    rig.sys.wait_converged("green", timeout=10)


def instance_count(t, zk):
    rig = canaryrig.CanaryRig(t, zk, "health", nb=2, ng=2)
    t.step(f"{rig.describe()}: canary green 25 % is an instance-count canary")
    rig.start()
    try:
        load = canaryrig.Load(t, rig)
        try:
            rc, out, err = rig.bgctl("canary", "green", 25, "--wait", "--timeout", "60s")
            t.check_eq(rc, 0, f"bgctl canary green 25 --wait exits 0 ({(out + err)[-200:]})")
            time.sleep(1.0)
        finally:
            r = load.stop()
        st = rig.sys.status()
        t.check_eq((st["canary"]["mode"], st["canary"]["canary_up"]), ("instances", 1),
                   "/status: an instance-count canary, 1 green instance UP")
        up = sorted(k for k in serving(rig) if k.startswith("green"))
        t.check_eq(len(up), 1, f"HAProxy sends requests to one green server ({up})")
        rc, out, err = rig.bgctl("status")
        t.check("instance-count canary" in out, "bgctl status says instance-count canary")
        t.check_eq((r["wrk_failed"], r["ping_failed"]), (0, 0), "0 failed requests")
        s = rig.share(seconds=2, min_requests=4000)
        t.log(f"instance-count canary 25 %: green served {s['green']:.1f} % (1 of 3 servers)")
        t.check(abs(s["green"] - 100 / 3) <= 3, f"green serves ~1/3 ({s['green']:.1f} %)")
    finally:
        rig.stop()


def test(t):
    canaryrig.need_tools()
    zk = t.zookeeper()
    rig = canaryrig.CanaryRig(t, zk, "agent", nb=2, ng=2)
    t.step(f"{rig.describe()}: canary, abort, promote, drain, malformed entries")
    rig.start()
    try:
        canary_and_promote(t, rig)
        drain_undrain(t, rig)
        malformed(t, rig)
    finally:
        rig.stop()
    instance_count(t, zk)


h.run(test)
