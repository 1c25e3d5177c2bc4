#!/usr/bin/env python3
"""Issue 10: HAProxy agent-check (agent-inter 500 ms, plus a TCP check of the application every
1 s) on each agent's haproxy-agent backend at its defaults; controller at its defaults; 2+2, two
`bgctl switch --wait` under wrk -c64 and a pinger: 0 failed requests, 0 old-colour answers to
requests sent after --wait returned."""

import harness as h
import cutrig


def test(t):
    cutrig.need_tools()
    cutrig.scenario(t, t.zookeeper(), "agent", 500, 1, 1, flips=2)


h.run(test)
