#!/usr/bin/env python3
"""Issue 9: 1000 idle connections from one peer must not exhaust a daemon's HTTP server. The
flood comes from 127.0.0.2 (one "stranger" address); the agent's GET /health and a real
PUT /v1/status from 127.0.0.1 still answer within 1 s, and the agent has closed all but
http.max_connections_per_ip (64) of the stranger's connections. The same for the controller's
/health; http.idle_timeout closes idle connections."""

import errno
import resource
import socket
import time

import harness as h
from bgsys import standard

FLOOD = 1000


def flood(port, n=FLOOD, source="127.0.0.2"):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((source, 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            h.log(f"connect {len(socks)}: {e}")
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks


def closed_by_peer(s):
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError as e:
        return e.errno in (errno.ECONNRESET, errno.EPIPE)


def fully_closed(socks):
    """How many of socks (answered, then closed or half-closed by the server) the server has
    closed entirely: after its answer and EOF, our write to those is answered with a reset."""
    for k in socks:
        try:
            while k.recv(64):
                pass
            k.send(b"x")
        except OSError:
            pass
    time.sleep(0.2)
    n = 0
    for k in socks:
        try:
            k.recv(64)
            k.send(b"x")
        except BlockingIOError:
            pass
        except OSError as e:
            n += e.errno in (errno.ECONNRESET, errno.EPIPE)
    return n


def count_closed(socks, want, timeout=5):
    """Wait until at least want of socks were closed by the server; returns the count."""
    n = 0
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = sum(closed_by_peer(s) for s in socks)
        if n >= want:
            break
        time.sleep(0.1)
    return n


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def test(t):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * FLOOD + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * FLOOD), hard))
    listen = f"127.0.0.1:{h.free_port()}"
    s = standard(t, blue=1, green=1, controllers=1, token=True)
    s.controllers[0].stop()  # the PUTs below are ours
    a = s.agents[0]
    port = a.port

    t.step(f"{FLOOD} idle connections from 127.0.0.2 to the agent")
    socks = flood(port)
    t.check(len(socks) >= FLOOD * 0.9, f"opened {len(socks)} connections")
    closed = count_closed(socks, len(socks) - 64)
    t.check(closed >= len(socks) - 64,
            f"the agent closed all but at most 64 of them ({closed} of {len(socks)} closed)")
    code, secs = timed(lambda: a.health(timeout=1))
    t.check(code == 200 and secs < 1, f"GET /health from 127.0.0.1 -> {code} in {secs:.3f}s")
    epoch = a.status()["epoch"]
    (code, obj, _), secs = timed(lambda: h.http_json(
        "PUT", a.url + "/v1/status", {"status": "OUT_OF_SERVICE", "epoch": epoch},
        headers=s.auth(), timeout=1))
    t.check(code == 200 and obj["status"] == "OUT_OF_SERVICE" and secs < 1,
            f"a real PUT /v1/status answers within 1 s: {code} {obj} in {secs:.3f}s")
    t.check_eq(a.health(timeout=1), 503, "... and took effect")
    code, secs = timed(lambda: a.health(timeout=1))
    t.check(code == 503 and secs < 1, f"still answering ({code} in {secs:.3f}s)")
    t.check(a.proc.alive(), "agent alive")
    for k in socks:
        k.close()

    t.step("the controller's HTTP API under the same flood")
    conf = h.write_controller_conf(t.dir, s.zk, s.root, id="c9", listen=listen,
                                   token_file=s.token_file)
    c = t.proc([h.bin("bg-controller"), "-c", str(conf)], name="controller-c9")
    c.wait_log(r"event=election_joined", timeout=15)
    cport = int(listen.rsplit(":", 1)[1])
    socks = flood(cport)
    closed = count_closed(socks, len(socks) - 64)
    t.check(closed >= len(socks) - 64, f"the controller closed {closed} of {len(socks)}")
    (code, _, _), secs = timed(lambda: h.http("GET", f"http://{listen}/health", timeout=1))
    t.check(code == 200 and secs < 1, f"controller GET /health -> {code} in {secs:.3f}s")
    for k in socks:
        k.close()

    t.step(f"{FLOOD} idle connections from 127.0.0.2 to a haproxy-agent port")
    hport = h.free_port()
    g = s.agent("green-9", "green", backends=[{"type": "health"}, {
        "type": "haproxy-agent", "listen": f"127.0.0.1:{hport}"}])
    socks = flood(hport)
    # Each is answered at once; the first 64 linger up to 2 s for HAProxy's close, the rest
    # (over the per-peer cap) are closed at once.
    closed = fully_closed(socks)
    t.check(closed >= len(socks) - 64,
            f"all but at most 64 closed within 1 s ({closed} of {len(socks)})")
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", hport), timeout=1) as k:
        word = k.recv(16)
    secs = time.monotonic() - t0
    t.check(word == b"drain\n" and secs < 1, f"a check from 127.0.0.1 is answered: {word!r} "
                                             f"in {secs:.3f}s")
    t.check(g.proc.alive(), "agent alive")
    for k in socks:
        k.close()

    t.step("http.idle_timeout closes idle connections")
    b = s.agent("blue-9", "blue", start=False)
    b.conf = h.write_agent_conf(t.dir, s.zk, s.root, "blue-9", "blue", b.listen,
                                token_file=s.token_file, filename="agent-blue-9b.yaml",
                                extra={"http": {"listen": b.listen,
                                                "token_file": str(s.token_file),
                                                "idle_timeout": "1s"}})
    b.start()
    socks = flood(b.port, n=10, source="127.0.0.3")
    t.check_eq(len(socks), 10, "10 idle connections")
    t.check_eq(count_closed(socks, 1, timeout=0.5), 0, "open at first")
    closed = count_closed(socks, 10, timeout=5)
    t.check_eq(closed, 10, "all closed by the agent after about 1 s idle")
    for k in socks:
        k.close()


h.run(test)
