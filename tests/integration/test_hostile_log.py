#!/usr/bin/env python3
"""Issue 9, log injection: untrusted text (a request's URL, an instance node's name) was logged
raw, so a client or anyone who can write to ZooKeeper could forge keys (`id=x level=error
event=forged`) or whole lines (`%0A` in a URL, unescaped by the HTTP server). Now every line
the daemons write starts with ts=, and outside quoted values no forged key appears."""

import re
import socket

import harness as h
from bgsys import standard

QUOTED = re.compile(r'"[^"]*"')


def forged(text):
    """Lines that do not start as ours, and lines with event=forged outside quoted values."""
    bad = []
    for line in text.splitlines():
        if not line.startswith("ts="):
            bad.append(line)
        elif "event=forged" in QUOTED.sub('""', line):
            bad.append(line)
    return bad


def raw_get(port, target):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sk:
        sk.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sk.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b" ", 2)[1].decode()


def test(t):
    s = standard(t, blue=1, green=1, controllers=1, token=True)
    a = s.agents[0]
    ctl = s.controllers[0]

    t.step("agent: a URL with %0A and fake keys, without the token")
    target = "/v1/x%0Ats=2026-01-01T00:00:00.000Z%20level=error%20prog=bg-agent%20event=forged"
    t.check_eq(raw_get(a.port, target), "401", "refused")
    a.proc.wait_log(r"event=unauthorized", timeout=5)
    t.check_eq(forged(a.proc.log_text()), [], "no forged line or key in the agent's log")

    t.step("controller: an instance named with fake keys, unreachable, then a flip")
    name = "evil level=error event=forged"
    # As harness.zk_hold, but the created path has spaces.
    hold = t.proc([h.bin("zkt"), "-z", s.zk.connect, "-q", "-s", 4000, "create",
                   f"{s.root}/green/{name}", '{"endpoint":"http://127.0.0.1:1"}', "-e", "-p",
                   "--hold"], name="hold-evil")
    hold.wait_log(r"^(/.*forged)$", timeout=10)
    s.flip("green")
    ctl.wait_log(r"event=instance_call_failed color=green id=evil", timeout=20)
    t.check_eq(forged(ctl.log_text()), [], "no forged line or key in the controller's log")
    t.check(ctl.alive(), "controller alive")


h.run(test)
