#!/usr/bin/env python3
"""bench/README.md "Defects and limits found at scale" item 6 (and what it became once every
ZooKeeper call of the loop was bounded to 500 ms a turn): the leader read every instance node
with one synchronous call after another, and read them all again whenever one changed. With
thousands of nodes a read no longer fit in a turn's budget, so no read ever finished: at
3900+3900 stand-ins the leader made no call and wrote no /status in 90 s.

Here 6000 instance nodes (made by hand, unusable data: no agent to call) beside one real blue
agent. The leader must read them all and converge; then a change of one node's data must be
read alone, not the 6000 again (ZooKeeper's own count of the requests it received), and a
node deleted and made again under the same name must be seen as the new node it is."""

import json
import sys
import time
from pathlib import Path

import harness as h
from bgsys import System

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from standin_agents import EPHEMERAL, Zk  # noqa: E402  (a bare ZooKeeper client)

N = 6000


def received(zk):
    for line in (h.four_letter("127.0.0.1", zk.port, "srvr") or "").splitlines():
        if line.startswith("Received:"):
            return int(line.split()[1])
    return None


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    s.agent("blue-1", "blue")
    t.step(f"{N} instance nodes under /green")
    z = Zk(zk.connect, 30000)
    z.ensure(s.root + "/green")
    for i in range(N):
        z.create(f"{s.root}/green/g-{i:05d}", b"not an instance", EPHEMERAL)

    t.step("a controller leads: it reads them all and converges")
    t0 = time.monotonic()
    c = s.controller("c1", session_timeout_ms=4000)
    st = s.wait_converged("blue", timeout=60)
    t.log(f"converged {time.monotonic() - t0:.1f} s after the controller started")
    t.check_eq(st["counts"]["green"]["instances"], N, "every green node counted")
    t.check_eq(st["counts"]["green"].get("unusable"), N, "each one unusable")

    t.step("one node's data changes: that node is read again, not all of them")
    time.sleep(1)
    r0 = received(zk)
    z._call(5, b"".join([  # setData(path, data, version -1)
        len(p := f"{s.root}/green/g-00042".encode()).to_bytes(4, "big"), p,
        len(d := json.dumps({"id": "g-00042", "endpoint": "http://127.0.0.1:1",
                             "healthy": False, "check": "HTTP 500"}).encode()).to_bytes(4, "big"),
        d, (-1).to_bytes(4, "big", signed=True)]))

    def seen():
        st = s.status()
        return st if st["counts"]["green"].get("unhealthy") == 1 else None
    h.wait_until(seen, timeout=20, msg="the changed node was read")
    time.sleep(1)
    r1 = received(zk)
    t.log(f"ZooKeeper received {r1 - r0} requests meanwhile")
    t.check(r1 - r0 < N // 10, f"{r1 - r0} requests, not {N} reads")

    t.step("a node deleted and made again under its name is a new node")
    mark = c.mark()
    z._call(2, len(p := f"{s.root}/green/g-00007".encode()).to_bytes(4, "big") + p +
            (-1).to_bytes(4, "big", signed=True))  # delete
    z.create(f"{s.root}/green/g-00007", json.dumps(
        {"id": "g-00007", "endpoint": "http://127.0.0.1:1", "healthy": True}).encode(),
        EPHEMERAL)
    m = c.wait_log(r"event=member_seen color=green id=g-00007 czxid=(\d+) "
                   r"endpoint=http://127.0.0.1:1", timeout=20, since=mark)
    t.check(int(m.group(1)) > 0, f"seen again as czxid {m.group(1)}")
    z.close()


h.run(test)
