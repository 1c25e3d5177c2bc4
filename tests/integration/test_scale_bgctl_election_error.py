#!/usr/bin/env python3
"""bench/README.md "Defects and limits found at scale" item 7: bgctl said "no controller is
running (no /election members)" when it merely failed to read /election (seen during
ZooKeeper stalls while both controllers were alive): leader_id() returned NULL for any error.

Here /election cannot be read (its ACL grants no READ; /status and /active_color stay
readable): bgctl status and bgctl wait must say that reading /election failed, and never that
no controller runs. With /election readable and empty they still say no controller runs."""

import json

import harness as h
from bgsys import System


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    h.zk_create(zk, s.root + "/blue/blue-1", json.dumps({"id": "blue-1",
                                                         "endpoint": "http://127.0.0.1:1"}),
                parents=True)
    h.zk_create(zk, s.root + "/status", json.dumps({
        "desired": "blue", "applied": "", "phase": "switching", "reason": "marking blue UP",
        "epoch": 3, "leader": "c1", "since": "2026-01-01T00:00:00Z", "active_mzxid": 0,
        "instances": []}))
    h.zk_create(zk, s.root + "/election/member-0000000003", json.dumps({"id": "c1"}),
                parents=True)

    t.step("/election readable but no live member: 'no controller'")
    rc, out, err = s.bgctl("status")
    t.check("(no controller running)" in out, "bgctl status says no controller runs")
    rc, out, err = s.bgctl("wait", "--timeout", "3s")
    t.check_eq(rc, 3, "bgctl wait times out")
    t.check("no controller is running" in err, "and warns that no controller runs")

    t.step("/election unreadable (no READ in its ACL)")
    r = h.zkcli(zk, "setAcl", s.root + "/election", "world:anyone:cdwa")
    t.check_eq(r.rc, 0, "setAcl")
    rc, out, err = s.bgctl("status")
    t.check_eq(rc, 0, "bgctl status rc")
    t.check("no controller" not in out, "bgctl status does not claim no controller runs")
    t.check("cannot read /election: not authorised" in out,
            f"bgctl status says what failed: {[ln for ln in out.splitlines() if 'leader' in ln]}")
    rc, out, err = s.bgctl("status", "--json")
    j = json.loads(out)
    t.check(j.get("leader") is None and "cannot read /election" in j.get("leader_error", ""),
            f"--json: leader_error {j.get('leader_error')!r}")
    rc, out, err = s.bgctl("wait", "--timeout", "3s")
    t.check_eq(rc, 3, "bgctl wait times out")
    t.check("no controller is running" not in err, "bgctl wait does not claim no controller runs")
    t.check("reading /election failed: not authorised" in err,
            f"bgctl wait says what failed: {err.strip()!r}")


h.run(test)
