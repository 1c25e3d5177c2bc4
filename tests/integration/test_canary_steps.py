#!/usr/bin/env python3
"""Issue 13, steps: `bgctl canary green --steps 10,50 --every 1s` walks the percents and
promotes (0 failed requests under wrk + a pinger through HAProxy, /canary gone, green serves
alone); a green application that fails its health check while a step holds stops the walk
(exit 2, /canary deleted, blue serves everything); `bgctl canary --abort` from another shell
stops it too (exit 2)."""

import subprocess
import time

import harness as h
import canaryrig

CHECK = {"interval": "200ms", "timeout": "500ms", "rise": 1, "fall": 1}


def bgctl_bg(rig, *args):
    argv = [h.bin("bgctl"), "-z", rig.zk.connect, "-r", rig.sys.root, *map(str, args)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def serving(rig):
    return {k: w for k, (st, w) in rig.weights().items() if st == "UP" and w > 0}


def test(t):
    canaryrig.need_tools()
    zk = t.zookeeper()
    rig = canaryrig.CanaryRig(t, zk, "agent", nb=2, ng=2, check=CHECK)
    t.step(f"{rig.describe()}: canary --steps")
    rig.start()
    try:
        t.step("the health gate: green-1 fails while step 10 % holds")
        p = bgctl_bg(rig, "canary", "green", "--steps", "10,50", "--every", "30s")
        h.wait_until(lambda: (rig.sys.status().get("canary") or {}).get("percent") == 10 and
                     rig.sys.status()["phase"] == "converged", timeout=30,
                     msg="step 10 % served")
        rig.apps["green-1"].admin("break")
        out, err = p.communicate(timeout=30)
        t.check_eq(p.returncode, 2, f"the walk exits 2 ({err.strip()[-300:]})")
        t.check("green-1 is unhealthy" in err, "it says which instance failed")
        t.check(not h.zk_exists(zk, rig.sys.root + "/canary"), "/canary was deleted")
        h.wait_until(lambda: sorted(serving(rig)) == ["blue-1", "blue-2"], timeout=15,
                     msg=lambda: f"blue alone serves: {rig.weights()}")
        rig.apps["green-1"].admin("fix")
        h.wait_until(lambda: all(i["healthy"] for i in rig.sys.status()["instances"]),
                     timeout=15, msg="green-1 healthy again")

        t.step("canary --abort from elsewhere stops the walk")
        p = bgctl_bg(rig, "canary", "green", "--steps", "10,50", "--every", "30s")
        h.wait_until(lambda: (rig.sys.status().get("canary") or {}).get("percent") == 10,
                     timeout=30, msg="step 10 %")
        rc, _, _ = rig.bgctl("canary", "--abort", "--wait", "--timeout", "30s")
        t.check_eq(rc, 0, "canary --abort --wait exits 0")
        out, err = p.communicate(timeout=30)
        t.check_eq(p.returncode, 2, f"the walk exits 2 ({err.strip()[-200:]})")

        t.step("10 %, 50 %, promote, under load")
        load = canaryrig.Load(t, rig)
        try:
            rc, out, err = rig.bgctl("canary", "green", "--steps", "10,50", "--every", "1s",
                                     "--timeout", "60s")
        finally:
            r = load.stop()
        t.check_eq(rc, 0, f"the walk exits 0 ({(out + err).strip()[-300:]})")
        t.check("canary step: green 10 %" in out and "canary step: green 50 %" in out
                and "promoting green" in out, f"it walked both steps:\n{out}")
        t.check(not h.zk_exists(zk, rig.sys.root + "/canary"), "/canary is gone")
        t.check_eq(h.zk_get(zk, rig.sys.root + "/active_color").strip(), "green",
                   "green is active")
        t.check_eq(sorted(serving(rig)), ["green-1", "green-2"], "green serves alone")
        t.check_eq((r["wrk_failed"], r["ping_failed"], r["ping_failures"]), (0, 0, []),
                   f"0 failed requests of {r['requests']} + {r['pings']} pings")
    finally:
        rig.stop()


h.run(test)
