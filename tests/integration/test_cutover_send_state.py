#!/usr/bin/env python3
"""Issue 10: HAProxy's defaults (inter 2s rise 2 fall 3) WITH `http-check send-state`: the
agents confirm from X-Haproxy-Server-State (the balancer's own view). 2+2, agents and controller
at their defaults, two `bgctl switch --wait` under wrk -c64 and a pinger: 0 failed requests, 0
old-colour answers to requests sent after --wait returned."""

import harness as h
import cutrig


def test(t):
    cutrig.need_tools()
    cutrig.scenario(t, t.zookeeper(), "send-state", 2000, 2, 3, flips=2)


h.run(test)
