#!/usr/bin/env python3
"""bgctl: init, status [--json], switch --wait, rollback --wait, wait, history, and the exit
codes CI relies on (0 converged, 2 blocked, 3 timeout, 64 usage, 1 unreachable)."""

import json

import harness as h
from bgsys import System


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    t.step("usage errors")
    for args in [(), ("switch",), ("switch", "purple"), ("frobnicate",),
                 ("switch", "green", "--timeout", "soon")]:
        rc, _, err = s.bgctl(*args)
        t.check_eq(rc, 64, f"bgctl {' '.join(args)} -> 64")
        t.check(err.strip() != "", "usage error explained on stderr")
    rc, out, _ = s.bgctl("--help")
    t.check(rc == 0 and "rollback" in out and "Exit status" in out, "--help documents commands")

    t.step("init")
    rc, out, _ = s.bgctl("init")
    t.check_eq(rc, 0, "init exit code")
    t.check_eq(sorted(h.zk_ls(zk, s.root)),
               ["active_color", "blue", "election", "green", "history"], "init created nodes")
    t.check_eq(h.zk_get(zk, s.root + "/active_color"), "blue", "init set blue")
    rc, out, _ = s.bgctl("init", "--color", "green")
    t.check(rc == 0 and "already set: blue" in out, "init keeps an existing colour")

    t.step("wait with no controller running times out with exit 3")
    rc, _, err = s.bgctl("wait", "--timeout", "3s")
    t.check_eq(rc, 3, "wait timeout exit code")
    t.check("no controller is running" in err, f"says no controller runs: {err.strip()}")

    for i in (1, 2):
        s.agent(f"blue-{i}", "blue")
        s.agent(f"green-{i}", "green")
    s.controller("c1")
    rc, out, _ = s.bgctl("wait", "--timeout", "20s")
    t.check_eq(rc, 0, "wait converges on blue")

    t.step("switch --wait")
    rc, out, _ = s.bgctl("switch", "green", "--wait", "--timeout", "20s")
    t.check_eq(rc, 0, "switch green --wait exit code")
    t.check("converged on green" in out, "switch reports convergence")
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200, "blue-2": 503, "green-2": 200},
               "switched")

    t.step("status and status --json")
    rc, out, _ = s.bgctl("status", "--json")
    st = json.loads(out)
    t.check_eq((st["active_color"], st["applied"], st["leader"], st["phase"]),
               ("green", "green", "c1", "converged"), "status --json header")
    t.check_eq(sorted((i["id"], i["color"], i["status"]) for i in st["instances"]),
               [("blue-1", "blue", "OUT_OF_SERVICE"), ("blue-2", "blue", "OUT_OF_SERVICE"),
                ("green-1", "green", "UP"), ("green-2", "green", "UP")], "status --json instances")
    rc, out, _ = s.bgctl("status")
    t.check(rc == 0 and "leader:       c1" in out and "green-2" in out, "human status")

    t.step("rollback --wait")
    rc, out, _ = s.bgctl("rollback", "--wait", "--timeout", "20s")
    t.check_eq(rc, 0, "rollback exit code")
    t.check("rolling back from green to blue" in out, "rollback says what it does")
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503, "blue-2": 200, "green-2": 503},
               "rolled back")

    t.step("history")
    rc, out, _ = s.bgctl("history", "--json")
    hist = json.loads(out)
    t.check_eq([(e["from"], e["to"], e["result"]) for e in hist],
               [("none", "blue", "converged"), ("blue", "green", "converged"),
                ("green", "blue", "converged")], "history entries")
    t.check(all(set(e["instances"]) and e["ms"] >= 0 for e in hist[1:]),
            "entries have per-instance outcomes")
    t.check_eq(hist[1]["instances"].get("green/green-1"), "UP", "outcome of green-1")
    rc, out, _ = s.bgctl("history", "-n", "1")
    t.check(rc == 0 and out.count("converged") == 1, "history -n 1 shows one entry")

    t.step("blocked switch exits 2; unreachable ZooKeeper exits 1")
    rc, _, err = s.bgctl("switch", "green", "--wait", "--timeout", "20s")
    t.check_eq(rc, 0, "switch back to green")
    for a in [x for x in s.agents if x.color == "blue"]:
        a.proc.stop()
    rc, _, err = s.bgctl("switch", "blue", "--wait", "--timeout", "20s")
    t.check_eq(rc, 2, "blocked -> 2")
    t.check("blue has 0 registered instance(s)" in err, f"reason: {err.strip()}")
    r = h.run_cmd([h.bin("bgctl"), "-z", f"127.0.0.1:{h.free_port()}", "status"], timeout=30)
    t.check_eq(r.returncode, 1, "unreachable ZooKeeper -> 1")
    t.check("cannot connect" in r.stderr, f"says so: {r.stderr.strip()}")


h.run(test)
