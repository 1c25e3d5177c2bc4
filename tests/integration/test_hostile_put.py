#!/usr/bin/env python3
"""Issue 9: a PUT /v1/status with "timeout_ms": 2^63-1 overflowed (signed) in the agent's
deadline arithmetic: undefined behaviour, an abort under UBSan (the ASan+UBSan build). The
timeout is clamped: the PUT is applied and answered, the agent stays up."""

import harness as h
from bgsys import System

BIG = 2**63 - 1


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    a = s.agent("web-1", "blue")
    for st in ("UP", "OUT_OF_SERVICE", "UP"):
        code, obj, _ = a.put(None, None, body={"status": st, "epoch": 0, "timeout_ms": BIG})
        t.check_eq(code, 200, f"PUT {st} with timeout_ms 2^63-1 applied")
    t.check_eq(a.health(), 200, "UP")
    t.check(a.proc.alive(), "the agent is still running")


h.run(test)
