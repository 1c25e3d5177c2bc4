#!/usr/bin/env python3
"""An idle, converged controller leaves ZooKeeper alone (regression: it used to rewrite
/status ~1300 times a second, woken by its own writes) yet still notices /status being deleted
or the colour changing."""

import time

import harness as h
from bgsys import standard


def test(t):
    s = standard(t, blue=1, green=1, controllers=1)
    time.sleep(0.5)
    v1 = h.zk_stat(s.zk, s.root + "/status")["version"]
    time.sleep(2)
    v2 = h.zk_stat(s.zk, s.root + "/status")["version"]
    t.log(f"/status version {v1} -> {v2} over 2 s idle")
    t.check(v2 - v1 <= 1, f"idle controller does not rewrite /status ({v2 - v1} writes in 2 s)")

    t.step("/status deleted by hand is re-created")
    h.zk_delete(s.zk, s.root + "/status")
    t.check(h.zk_wait_exists(s.zk, s.root + "/status", timeout=5), "/status re-created")
    t.check_eq(s.status()["phase"], "converged", "with the current state")

    t.step("still reacts to a flip")
    s.flip("green")
    s.wait_converged("green")
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "flipped")


h.run(test)
