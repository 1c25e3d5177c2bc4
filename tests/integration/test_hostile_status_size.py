#!/usr/bin/env python3
"""Issue 9: a new leader read /status into 8 KiB, so above about 70-80 instances it lost
`applied` on takeover and wrote a spurious /history entry for a "switch" that never happened.
Here /status holds about 150 instances' worth (written by hand, as a previous leader would
have): a controller taking over must learn applied=blue and write no history entry."""

import json

import harness as h
from bgsys import System


def big_status(n):
    inst = [{"id": f"web-{i:04d}", "color": "blue" if i % 2 else "green",
             "status": "UP" if i % 2 else "OUT_OF_SERVICE", "last_error": "",
             "endpoint": f"http://10.0.{i // 250}.{i % 250}:9101", "healthy": True}
            for i in range(n)]
    return {"desired": "blue", "applied": "blue", "phase": "converged",
            "reason": "blue is UP", "epoch": 0, "leader": "old", "since": "2026-01-01T00:00:00Z",
            "updated": "2026-01-01T00:00:00Z", "active_mzxid": 0, "instances": inst}


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    data = json.dumps(big_status(150))
    t.check(len(data) > 16384, f"/status is big: {len(data)} bytes")
    h.zk_set(zk, s.root + "/status", data)
    h.zk_create(zk, s.root + "/history", "", parents=True)
    s.agent("blue-1", "blue")
    s.agent("green-1", "green")

    t.step("a controller takes over")
    c = s.controller("c1")
    m = c.wait_log(r"event=leader_elected .*previous_applied=(\w+)", timeout=10)
    t.check_eq(m.group(1), "blue", "applied learned from the big /status")
    h.wait_until(lambda: (s.status() or {}).get("leader") == "c1", timeout=20,
                 msg="c1 writes /status")
    s.wait_converged("blue")
    t.check_eq(h.zk_ls(zk, s.root + "/history"), [], "no spurious history entry")
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503}, "blue serves")


h.run(test)
