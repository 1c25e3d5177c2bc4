#!/usr/bin/env python3
"""An agent frozen (SIGSTOP) past its session timeout loses its node; after SIGCONT it
re-registers by itself and is driven to the right status."""

import signal
import time

import harness as h
from bgsys import standard


def test(t):
    s = standard(t, blue=2, green=1, controllers=1, call_timeout=500, retries=1)
    a = next(x for x in s.agents if x.id == "blue-1")
    czxid = h.zk_stat(s.zk, a.node)["czxid"]
    t.step("SIGSTOP blue-1 for 4 s (session timeout 2 s)")
    a.proc.kill(signal.SIGSTOP)
    t.check(h.zk_wait_gone(s.zk, a.node, timeout=8), "frozen agent's node expired")
    time.sleep(1)
    mark = a.proc.mark()
    a.proc.kill(signal.SIGCONT)
    t.step("SIGCONT: it notices, reconnects and registers again")
    a.proc.wait_log(r"event=registered", timeout=15, since=mark)
    st = h.zk_stat(s.zk, a.node)
    t.check(st is not None and st["czxid"] != czxid, "re-registered with a new node")
    h.wait_until(lambda: s.status() and any(
        i["id"] == "blue-1" and i["status"] == "UP" and i["color"] == "blue"
        for i in s.status()["instances"]), timeout=10, msg="controller re-drove blue-1 UP")
    t.check_eq(a.health(), 200, "blue-1 UP again")
    t.check_eq(s.healths(), {"blue-1": 200, "blue-2": 200, "green-1": 503}, "all as expected")

    t.step("frozen standby: switch proceeds; it is brought OUT when it returns")
    g2 = s.agent("green-2", "green")
    # A long session: it stays registered while frozen, so the controller has to deal with it.
    b2 = s.agent("blue-3", "blue", session_timeout_ms=20000)
    s.wait_converged("blue")
    b2.proc.kill(signal.SIGSTOP)
    s.flip("green")
    # blue-3 cannot answer: the call times out and retries, /status names it meanwhile.
    h.wait_until(lambda: s.status() and "blue-3" in s.status()["reason"], timeout=15,
                 msg="/status names the unreachable blue-3")
    t.check_eq(g2.health(), 200, "green-2 UP despite the frozen blue-3")
    t.check_eq(a.health(), 503, "blue-1 OUT despite the frozen blue-3")
    b2.proc.kill(signal.SIGCONT)
    s.wait_converged("green", timeout=30)
    h.wait_until(lambda: b2.health() == 503, timeout=10, msg="blue-3 OUT after it returned")
    t.check_eq(b2.health(), 503, "blue-3 brought to OUT_OF_SERVICE")


h.run(test)
