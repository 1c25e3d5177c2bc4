#!/usr/bin/env python3
"""Agents register ephemeral nodes with the documented JSON, start OUT_OF_SERVICE, delete
their node at once on SIGTERM, and lose it only after the session timeout on kill -9."""

import json
import signal
import time

import harness as h
from bgsys import System


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    t.step("a fresh root: the agent creates /blue and /green itself")
    a = s.agent("web-1", "blue", version="1.4.2", app="SHOP")
    t.check_eq(sorted(h.zk_ls(zk, s.root)), ["blue", "green"], "agent created /blue and /green")
    data = json.loads(h.zk_get(zk, a.node))
    t.check_eq(data, {"id": "web-1", "endpoint": a.url, "version": "1.4.2", "app": "SHOP",
                      "color": "blue", "healthy": True, "check": ""},
               "node data is the documented JSON (no check configured: healthy)")
    st = h.zk_stat(zk, a.node)
    t.check(st["ephemeralOwner"] not in ("0x0", "0", 0), f"node is ephemeral ({st})")
    t.check_eq(a.health(), 503, "a new instance starts OUT_OF_SERVICE (/health 503)")
    t.check_eq(a.status()["status"], "OUT_OF_SERVICE", "GET /v1/status says OUT_OF_SERVICE")

    t.step("SIGTERM deletes the node at once and exits 0")
    t0 = time.time()
    rc = a.proc.stop()
    gone_ms = (time.time() - t0) * 1000
    t.check_eq(rc, 0, "agent exit code on SIGTERM")
    t.check(not h.zk_exists(zk, a.node), "node gone right after SIGTERM")
    t.log(f"SIGTERM to node gone: {gone_ms:.0f} ms (session timeout 2000 ms)")
    t.check(gone_ms < 1500, f"node removed well before the session timeout ({gone_ms:.0f} ms)")

    t.step("kill -9 leaves the node until the session expires")
    b = s.agent("web-2", "green", session_timeout_ms=2000)
    czxid = h.zk_stat(zk, b.node)["czxid"]
    t0 = time.time()
    b.proc.kill(signal.SIGKILL)
    b.proc.wait(5)
    t.check(h.zk_exists(zk, b.node), "node still there right after kill -9")
    t.check(h.zk_wait_gone(zk, b.node, timeout=10), "node expires with the session")
    t.log(f"kill -9 to node gone: {(time.time() - t0) * 1000:.0f} ms")

    t.step("restarted agent registers again as a new member (new czxid)")
    b.start()
    t.check(h.zk_stat(zk, b.node)["czxid"] != czxid, "re-registration has a new czxid")

    t.step("a node deleted by hand is re-created")
    h.zk_delete(zk, b.node)
    t.check(h.zk_wait_exists(zk, b.node, timeout=5), "agent re-created its deleted node")


h.run(test)
