#!/usr/bin/env python3
"""Regression (failed when written; fixed by 8256ca2): /status overwritten by hand (garbage,
or a stale copy written by a script or a deposed controller) was not repaired while the
leader had nothing new to say: since 1247fc8 the controller ignored data changes of /status
(zk.quiet_path) and write_status() returned early when the contents equalled the last ones it
wrote, checking only that the node exists, not that its version is still the one it wrote.
A deleted /status is re-created at once; an overwritten one stayed wrong until the next
change of state. Expected: repaired within a few seconds, like a deletion."""

import json
import time

import faults as f
import harness as h


def status_ok(s):
    try:
        st = json.loads(h.zk_get(s.zk, s.root + "/status", binary=True).decode())
    except (ValueError, AttributeError):
        return None
    return st if st.get("phase") == "converged" and st.get("applied") == "blue" else None


def test(t):
    zk = t.zookeeper()
    s = f.system(t, zk, blue=1, green=1, controllers=1)
    time.sleep(0.5)
    t.step("/status deleted: re-created")
    h.zk_delete(s.zk, s.root + "/status")
    h.wait_until(lambda: status_ok(s), timeout=3, ignore=(h.ZkError,),
                 msg="/status re-created")
    t.check(True, "deleted /status was re-created")
    time.sleep(0.5)
    t.step("/status overwritten with garbage")
    h.zk_set(s.zk, s.root + "/status", b"\xff garbage {")
    try:
        h.wait_until(lambda: status_ok(s), timeout=5, msg="/status repaired")
        ok = True
    except AssertionError:
        ok = False
    t.log(f"/status 5 s after the overwrite: {h.zk_get(s.zk, s.root + '/status')[:60]!r}")
    t.check(ok, "overwritten /status repaired by the leader within 5 s")


h.run(test)
