#!/usr/bin/env python3
"""Issue 10: HAProxy `rise 3 fall 1` (inter 500 ms to keep the run short), without and with
`http-check send-state` (issue 10: 51 % of requests failed at inter 2000 rise 3 fall 1 -- the
agent confirmed after one poll, HAProxy needed three). Agents and controller at their defaults,
2+2, two `bgctl switch --wait` each under wrk -c64 and a pinger: 0 failed requests, 0 old-colour
answers to requests sent after --wait returned."""

import harness as h
import cutrig


def test(t):
    cutrig.need_tools()
    zk = t.zookeeper()
    cutrig.scenario(t, zk, "httpchk", 500, 3, 1, flips=2)
    cutrig.scenario(t, zk, "send-state", 500, 3, 1, flips=2)


h.run(test)
