#!/usr/bin/env python3
"""Issue 10: HAProxy `rise 1 fall 3` (inter 500 ms), without and with `http-check send-state`
(issue 10 saw 26-40 requests per flip reach the old colour after --wait returned). Agents and
controller at their defaults, 2+2, two `bgctl switch --wait` each under wrk -c64 and a pinger:
0 failed requests, 0 old-colour answers to requests sent after --wait returned."""

import harness as h
import cutrig


def test(t):
    cutrig.need_tools()
    zk = t.zookeeper()
    cutrig.scenario(t, zk, "httpchk", 500, 1, 3, flips=2)
    cutrig.scenario(t, zk, "send-state", 500, 1, 3, flips=2)


h.run(test)
