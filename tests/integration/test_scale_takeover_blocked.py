#!/usr/bin/env python3
"""bench/README.md "Defects and limits found at scale" item 2: after a leader change during a
switch to a colour whose agents all fail, /status showed the whole active colour UNKNOWN (500
blue UNKNOWN, 0 UP at 500+500, while every blue agent was UP): the new leader knows nothing of
either colour, kept retrying the failing colour (a retry always due) and never re-asserted the
old one.

Here 20 blue and 20 green stand-in agents, green answering 502 to every call, two controllers
at batch_size 1. The switch to green is blocked; the leader is killed; the standby must take
over, be blocked after one sweep of green, and re-assert blue: /status shows every blue
instance UP again."""

import re
import signal
import time

import harness as h
from bgsys import System

N = 20


def standins(t, s, color, *extra):
    return s.standins(color, N, *extra)


def blue_up(st):
    return sum(i["color"] == "blue" and i["status"] == "UP" for i in st.get("instances", []))


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    standins(t, s, "blue")
    green = standins(t, s, "green")
    kw = dict(batch_size=1, resync="10m", session_timeout_ms=4000)
    c1 = s.controller("c1", **kw)
    c2 = s.controller("c2", **kw)
    s.wait_converged("blue", timeout=60)
    green.stop()
    standins(t, s, "green", "--fail-http", "502")
    h.wait_until(lambda: sum(i["color"] == "green" for i in s.status()["instances"]) == N,
                 timeout=60, msg="the failing green agents registered")

    t.step("switch to green: blocked")
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "90s", timeout=120)
    t.check_eq(rc, 2, "bgctl switch --wait says blocked")
    leader = s.leader()
    standby = c2 if leader is c1 else c1
    t.check_eq(blue_up(s.status()), N, "blue UP in /status before the takeover")

    t.step("kill -9 the leader: the standby takes over the blocked switch")
    mark = standby.mark()
    leader.kill(signal.SIGKILL)
    standby.wait_log(r"event=leader_elected", timeout=30, since=mark)
    sid = standby.name[len("controller-"):]
    t0 = time.monotonic()
    st = h.wait_until(lambda: (lambda st: st if st and st.get("leader") == sid and
                               st["phase"] == "blocked" and blue_up(st) == N else None)(
                          s.status()),
                      timeout=60, msg=lambda: f"the new leader never showed blue UP: "
                      f"{blue_up(s.status())} of {N} UP, phase {s.status()['phase']}")
    t.log(f"blue UP again in /status {time.monotonic() - t0:.1f} s after the election")
    tried = set(re.findall(r"event=instance_call_failed color=green id=(\S+) status=UP",
                           standby.log_text(since=mark)))
    t.check_eq(len(tried), N, "the new leader tried every green instance first")
    t.check("keeping the other colour's healthy instances UP" in st["reason"] or
            "retrying" in st["reason"], f"reason: {st['reason'][:120]!r}")
    t.check_eq(h.zk_get(zk, s.root + "/active_color").strip(), "green", "still asked for green")


h.run(test)
