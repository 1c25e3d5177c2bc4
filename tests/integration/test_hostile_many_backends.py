#!/usr/bin/env python3
"""Issue 9: more than 64 backends overflowed the agent's fixed arrays (owner_start[64], 64 poll
descriptors): an out-of-bounds read, and backends past the 64th never polled. With 70
haproxy-agent backends (one descriptor each) a PUT is applied by all of them, and the last
one's agent-check port answers with the new state."""

import socket

import harness as h
from bgsys import System

N = 70


def agent_check(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sk:
        data = b""
        while True:
            chunk = sk.recv(256)
            if not chunk:
                break
            data += chunk
            if b"\n" in data:
                break
    return data.decode().strip()


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    ports = h.free_ports(N)
    backends = [{"type": "haproxy-agent", "listen": f"127.0.0.1:{p}"} for p in ports]
    a = s.agent("web-1", "blue", backends=backends)
    for st in ("UP", "OUT_OF_SERVICE", "UP"):
        code, obj, _ = a.put(st, 0)
        t.check_eq(code, 200, f"PUT {st} applied by every backend")
        t.check_eq(len(obj["backends"]), N + 1, "every backend reported (and /health)")
    # Only now: a check answered counts as a balancer polling (then changes wait for polls).
    for p in (ports[0], ports[63], ports[-1]):
        t.check(agent_check(p).startswith("ready"), f"agent-check port {p} answers ready")
    t.check(a.proc.alive(), "agent alive")


h.run(test)
