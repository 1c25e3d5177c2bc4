#!/usr/bin/env python3
"""Bug repro: /status overwritten by hand (garbage, or a stale copy written by a script or a
deposed controller) is not repaired while the leader has nothing new to say. Since commit
1247fc8 the controller ignores data changes of /status (zk.quiet_path) and write_status()
returns early when the contents equal the last ones it wrote, checking only that the node
exists, not that its version is still the one it wrote. A deleted /status is re-created at
once; an overwritten one stays wrong until the next change of state. Expected: repaired within
a couple of seconds, like a deletion."""

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
