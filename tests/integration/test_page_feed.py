#!/usr/bin/env python3
"""The status page of a standby whose /status is not JSON: the page says so, and the standby
reads ZooKeeper for it at most every 2 s while someone looks (it re-read /status on every loop
turn before: a malformed /status counted as a failed read, retried at once).

The leader here is a held election node (a leader that never writes /status: stuck, or of
another version), so the malformed /status stays as written."""

import time

import harness as h
from bgsys import System
from faults import metric

CALLS = "bg_controller_zk_call_duration_seconds_count"


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    t.zk_hold(zk, f"{s.root}/election/member-", "stuck-leader", sequential=True)
    listen = f"127.0.0.1:{h.free_port()}"
    conf = h.write_controller_conf(t.dir, zk, s.root, id="c1", listen=listen)
    p = t.proc([h.bin("bg-controller"), "-c", str(conf)], name="controller-c1")
    p.wait_log(r"event=election_joined", timeout=15)
    url = f"http://{listen}"
    h.zk_set(zk, f"{s.root}/status", "{not json")

    t.step("the standby's page says /status is not JSON")
    h.wait_until(lambda: "not a JSON document" in h.http("GET", url + "/")[1], timeout=10,
                 msg=lambda: f"page: {h.http('GET', url + '/')[1][:800]}")
    body = h.http("GET", url + "/")[1]
    t.check("(standby)" in body, "the controller stands by (the held node leads)")
    t.check('id="nostatus"' in body, "no status document is shown")

    t.step("an idle standby waits on its watch; while someone looks, a read every 2 s")
    time.sleep(2.5)  # the first reads are done
    b0 = metric(url + "/metrics", CALLS)
    time.sleep(6)
    idle = metric(url + "/metrics", CALLS) - b0
    h.log(f"ZooKeeper calls in 6 s without viewing: {idle:.0f}")
    # The election safety net: /election read again every 2 s (children, each member, the
    # predecessor's watch): 3 rounds of a few calls. It read it every loop turn before
    # (~100 calls in 6 s).
    t.check(idle <= 30, f"an idle standby's ZooKeeper calls in 6 s: {idle:.0f} (at most 30)")
    before = metric(url + "/metrics", CALLS)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 6:
        code, _, _ = h.http("GET", url + "/")
        t.check_eq(code, 200, "GET / status")
        time.sleep(0.2)
    viewing = metric(url + "/metrics", CALLS) - before
    h.log(f"ZooKeeper calls in 6 s of viewing: {viewing:.0f}")
    # Each refresh (every 2 s) is an exists + get of /status and a children of /history:
    # 3 or 4 refreshes, ~12 calls, on top of the idle ones.
    t.check(viewing - idle <= 20,
            f"ZooKeeper calls in 6 s of viewing a malformed /status: {viewing:.0f}, idle "
            f"{idle:.0f} (at most 20 more: a read every 2 s, not every loop turn)")

    t.step("a valid /status again is shown at the next read")
    h.zk_set(zk, f"{s.root}/status", {"active": "blue", "desired": "blue", "phase": "converged",
                                      "instances": []})
    h.wait_until(lambda: "not a JSON document" not in h.http("GET", url + "/")[1], timeout=10,
                 msg="the page still says /status is not JSON")


h.run(test)
