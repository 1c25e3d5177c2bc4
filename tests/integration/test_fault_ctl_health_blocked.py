#!/usr/bin/env python3
"""Regression (failed when written; fixed by 8256ca2): the controller served GET /health and
/metrics on its main loop, and that loop did not serve HTTP while it waited for agent calls.
With one agent that does not answer (SIGSTOP, still registered) and call_timeout 2s,
retries 3 (the defaults), the leader's /health did not answer for seconds at a time --
exactly when an operator or a liveness probe needs it. Expected: /health answers within 1 s
throughout."""

import signal
import time

import faults as f
import harness as h


def test(t):
    zk = t.zookeeper()
    s = f.system(t, zk, blue=1, green=1, controllers=1, call_timeout=2000, retries=3)
    ctl = s.controllers[0]
    g = s.agent("green-2", "green", session_timeout_ms=30000)
    f.wait_converged(s, "blue")
    g.proc.kill(signal.SIGSTOP)
    f.flip(s, "green")
    time.sleep(0.3)
    worst, fails = 0.0, 0
    t_end = time.time() + 8
    while time.time() < t_end:
        t0 = time.time()
        try:
            code, _, _ = h.http("GET", ctl.url + "/health", timeout=1)
            ok = code == 200
        except OSError:
            ok = False
        took = time.time() - t0
        worst = max(worst, took)
        fails += not ok
        time.sleep(0.1)
    g.proc.kill(signal.SIGCONT)
    t.log(f"controller /health while an agent is unreachable: {fails} answers missing "
          f"(1 s timeout), slowest {worst * 1000:.0f} ms")
    t.check_eq(fails, 0, "the controller's /health answered within 1 s every time")


h.run(test)
