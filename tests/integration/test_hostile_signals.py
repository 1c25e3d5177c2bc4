#!/usr/bin/env python3
"""Issue 9: SIGHUP (a closed terminal, `systemctl kill -s HUP`, a reload reflex) killed a daemon
on the spot: the agent's node and the controller's election node stayed until their sessions
expired. Both daemons now stop cleanly on SIGHUP as on SIGTERM, and say so in a log line."""

import signal
import time

import harness as h
from bgsys import standard

SESSION_MS = 10000  # a node left behind would outlive its process this long


def test(t):
    s = standard(t, blue=1, green=1, controllers=2,
                 agent_kw={"session_timeout_ms": SESSION_MS})
    g = s.agents[1]

    t.step("SIGHUP to an agent: it deregisters at once and exits 0")
    t0 = time.monotonic()
    g.proc.kill(signal.SIGHUP)
    t.check(h.zk_wait_gone(s.zk, g.node, timeout=2), "its node is gone within 2 s")
    t.check_eq(g.proc.wait(timeout=5), 0, "exit code")
    t.check(time.monotonic() - t0 < SESSION_MS / 1000 / 2, "well before its session would expire")
    t.check(g.proc.wait_log(r"event=stopping reason=signal signal=SIGHUP", timeout=1),
            "the agent logs that SIGHUP stops it")

    t.step("SIGHUP to the leader: it leaves the election at once, the other takes over")
    leader = s.leader()
    other = [p for p in s.controllers if p is not leader][0]
    members = h.zk_ls(s.zk, s.root + "/election")
    leader.kill(signal.SIGHUP)
    t.check_eq(leader.wait(timeout=5), 0, "leader exit code")
    t.check(leader.wait_log(r"event=stopping reason=signal leader=1 signal=SIGHUP", timeout=1),
            "the controller logs that SIGHUP stops it")
    t.check(len(h.zk_ls(s.zk, s.root + "/election")) == len(members) - 1,
            "its election node is gone at once")
    h.wait_until(lambda: (s.status() or {}).get("leader") == other.name.split("-", 1)[1],
                 timeout=10, msg="the other controller leads")


h.run(test)
