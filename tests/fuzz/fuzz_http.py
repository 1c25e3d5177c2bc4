#!/usr/bin/env python3
"""fuzz_http.py: a process-level fuzzer for the agent's and the controller's HTTP APIs.

A real ZooKeeper, two agents (blue, green, with a token) and a controller (with its HTTP API)
run; for BG_FUZZ_SECONDS (default 40) this sends mutated requests to both APIs from several
threads: odd methods and paths, broken and huge headers, lying Content-Length, bad chunked
encoding, truncated/huge/invalid UTF-8/deeply nested JSON bodies, huge numbers and epochs,
right and wrong tokens, and slowloris-style partial requests left open. Meanwhile a monitor
asks every daemon's /health once every 200 ms: each must answer (any status) within 1 s.
At the end every daemon must still be alive and a real switch (blue -> green) must converge.

The run is reproducible in what it sends (not in timing): BG_FUZZ_SEED=N replays a seed; the
seed is printed first. Python 3 standard library only.
"""

import json
import os
import random
import re
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness as h  # noqa: E402
from bgsys import System  # noqa: E402

SECONDS = float(os.environ.get("BG_FUZZ_SECONDS", "40"))
SEED = int(os.environ.get("BG_FUZZ_SEED", str(random.SystemRandom().randrange(1 << 32))))
WORKERS = 4
LIMIT_S = 2.0  # /health must answer within this (issue 9: 1 s by design, 0.5 s per loop turn)
SLOW_MAX = 24  # partial requests held open at once (stalls, not exhaustion: see issue 9)


# ----------------------------------------------------------------------------------------------
# Request generation
# ----------------------------------------------------------------------------------------------

METHODS = [b"GET", b"PUT", b"POST", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"TRACE",
           b"CONNECT", b"get", b"PUT ", b"", b"\xff\xfe", b"X" * 300]
PATHS = [b"/health", b"/v1/status", b"/metrics", b"/", b"/v1/status/", b"/v1/status?x=1",
         b"/v1/../v1/status", b"/v1/status%00", b"/%ff%fe", b"//v1//status", b"/v1/",
         b"/health?" + b"a=" * 2000, b"/" + b"A" * 9000, b"*", b"http://x/v1/status",
         b"/v1/status#frag", b"/\xc3\xa9\xff", b"/v1/status\r\nX: y"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"HTTP/1.1x", b"", b"FOO/1.1"]
STATUSES = ["UP", "OUT_OF_SERVICE", "", "up", "DOWN", "a" + "\u00e9" * 20, "\u00e9" * 300,
            "UP\u0000", "X" * 100000, None, 1, [], {}]
EPOCHS = [0, 1, 7, -1, 2**31, 2**63 - 1, 2**63, 2**64, -2**63, 10**30, 1.5, 1e308, "1", None,
          True, [1]]


def rand_json(rng, depth=0):
    r = rng.random()
    if depth > 4 or r < 0.3:
        return rng.choice([0, -1, 2**63 - 1, 10**40, 1.5e308, "x", "\u00e9" * rng.randrange(50),
                           True, None, "\ud800".encode("utf-8", "surrogatepass").decode(
                               "utf-8", "replace")])
    if r < 0.6:
        return [rand_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["status", "epoch", "timeout_ms", "weight", "x", ""]):
            rand_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def mutate(rng, b):
    """A few random byte-level mutations of b."""
    b = bytearray(b)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[pos:pos] = bytes([rng.randrange(256)]) * rng.randrange(1, 8)
        elif op == 2:
            del b[pos:pos + rng.randrange(1, 16)]
        elif op == 3:
            b = b[:pos]  # truncation
        elif op == 4:
            b[pos:pos] = rng.choice([b"\xc3", b"\xe9", b"\xed\xa0\x80", b"\x00", b"\"", b"\\",
                                     b"{", b"[", b"9" * 40, b"\\u0000", b"\\ud800"])
        else:
            b[pos:pos] = b[pos:pos + 32]
    return bytes(b)


def body(rng):
    k = rng.randrange(12)
    if k == 0:
        return b""
    if k == 1:
        return b"[" * rng.choice([100, 10000, 200000]) + b"]" * rng.randrange(2)
    if k == 2:
        return b'{"a":' * rng.choice([1000, 50000]) + b"1" + b"}" * rng.randrange(3)
    if k == 3:
        return os.urandom(rng.randrange(1, 4096))
    if k == 4:
        return b"{\"status\":\"UP\",\"epoch\":" + b"9" * rng.choice([20, 400, 100000]) + b"}"
    if k == 5:
        return json.dumps(rand_json(rng)).encode()
    if k == 6:
        return b" " * rng.choice([1 << 16, 1 << 20, 3 << 20])  # huge, valid-ish whitespace
    d = {"status": rng.choice(STATUSES), "epoch": rng.choice(EPOCHS)}
    if rng.random() < 0.3:
        d["timeout_ms"] = rng.choice([0, -1, 1, 2**62, 2**63 - 1, 10**20, "x"])
    if rng.random() < 0.2:
        d["weight"] = rng.choice([0, 50, 100, 101, -1, 2**63])
    raw = json.dumps(d, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    return mutate(rng, raw) if rng.random() < 0.4 else raw


def request(rng, token):
    """(bytes of one request, whether it may legitimately leave the connection waiting)."""
    method = rng.choice(METHODS) if rng.random() < 0.4 else rng.choice([b"GET", b"PUT"])
    path = rng.choice(PATHS) if rng.random() < 0.5 else rng.choice([b"/v1/status", b"/health"])
    version = rng.choice(VERSIONS) if rng.random() < 0.1 else b"HTTP/1.1"
    b = body(rng) if method != b"GET" or rng.random() < 0.2 else b""
    hdrs = [b"Host: 127.0.0.1"]
    r = rng.random()
    if r < 0.35:
        hdrs.append(b"Authorization: Bearer " + token.encode())
    elif r < 0.5:
        hdrs.append(rng.choice([b"Authorization: Bearer ", b"Authorization: Bearer x",
                                b"Authorization: Basic Zm9vOmJhcg==", b"Authorization:",
                                b"Authorization: Bearer " + token.encode()[:-1],
                                b"Authorization: Bearer " + token.encode() + b"x",
                                b"Authorization: Bearer " + b"A" * 100000,
                                b"Authorization: Bearer \xc3\xa9\xff"]))
    waits = False
    cl = rng.random()
    if cl < 0.7:
        hdrs.append(b"Content-Length: %d" % len(b))
    elif cl < 0.78:
        hdrs.append(b"Content-Length: " + rng.choice([b"-1", b"99999999999999999999", b"abc",
                                                      b"1, 2", b"0x10", b""]))
    elif cl < 0.86:
        hdrs.append(b"Transfer-Encoding: chunked")
        b = rng.choice([b"%x\r\n" % len(b) + b + b"\r\n0\r\n\r\n", b"zz\r\n" + b,
                        b"ffffffffffffffff\r\n" + b, b"5\r\nab"])
        waits = True
    elif cl < 0.9:
        hdrs.append(b"Content-Length: %d" % (len(b) + rng.randrange(1, 100)))  # lies: more
        waits = True
    if rng.random() < 0.1:
        hdrs += [b"X-H%d: %s" % (i, b"v" * rng.randrange(100)) for i in range(rng.randrange(2000))]
    if rng.random() < 0.05:
        hdrs.append(b"X-Long: " + b"L" * rng.choice([8000, 70000, 1 << 20]))
    if rng.random() < 0.05:
        hdrs.append(rng.choice([b"NoColon", b": empty-name", b"X-Nul: a\x00b", b" folded",
                                b"X-Bad-\xff: 1", b"Content-Type: application/json\r\r"]))
    if rng.random() < 0.1:
        hdrs.append(b"Content-Type: " + rng.choice([b"application/json", b"text/plain",
                                                    b"multipart/form-data; boundary=x",
                                                    b"application/x-www-form-urlencoded"]))
    head = method + b" " + path + (b" " + version if version else b"") + b"\r\n"
    head += b"\r\n".join(hdrs) + b"\r\n\r\n"
    if rng.random() < 0.05:
        head = mutate(rng, head)
        waits = True
    return head + b, waits


# ----------------------------------------------------------------------------------------------
# Sending
# ----------------------------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.codes = {}
        self.slow = 0

    def add(self, code):
        with self.lock:
            self.sent += 1
            self.codes[code] = self.codes.get(code, 0) + 1


def send(port, data, waits, rng):
    """Send one request (in pieces, sometimes); return the status code, or a word."""
    s = socket.socket()
    s.settimeout(0.5 if waits else 3)
    try:
        s.connect(("127.0.0.1", port))
        if rng.random() < 0.2:
            for i in range(0, len(data), 7):
                s.sendall(data[i:i + 7])
        else:
            s.sendall(data)
        if rng.random() < 0.1:
            return "closed-early"  # close without reading the answer
        line = s.recv(64)
        if not line:
            return "eof"
        parts = line.split(b" ", 2)
        return parts[1].decode("latin-1") if len(parts) > 1 else "garbage"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()


def slowloris(port, rng, stop, hold):
    """Open a connection, send part of a request a byte at a time, hold it for `hold` s."""
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        partial = rng.choice([b"PUT /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
                              b"GET /health HTTP/1.1\r\nHost: x\r\n",
                              b"GET /v1/sta"])
        t_end = time.time() + hold
        for ch in partial:
            if stop.is_set() or time.time() > t_end:
                break
            s.sendall(bytes([ch]))
            time.sleep(hold / len(partial))
    except OSError:
        pass
    finally:
        s.close()


class Monitor(threading.Thread):
    """Every 200 ms: each target's /health must answer (any status). The design bound is
    0.5 s of ZooKeeper waiting per loop turn; answers over 1 s are counted (over_1s) and
    printed, and only those over LIMIT_S (a shared, noisy machine) or missing fail."""

    def __init__(self, targets):
        super().__init__(daemon=True)
        self.targets = targets  # name -> port
        self.stop_ev = threading.Event()
        self.rounds = 0
        self.failures = []
        self.worst = {n: 0.0 for n in targets}
        self.over_1s = 0

    def run(self):
        while not self.stop_ev.is_set():
            for name, port in self.targets.items():
                t0 = time.time()
                try:
                    code = h.http("GET", f"http://127.0.0.1:{port}/health",
                                  timeout=LIMIT_S)[0]
                except OSError as e:
                    code = f"{type(e).__name__}: {e}"
                dt = time.time() - t0
                self.worst[name] = max(self.worst[name], dt)
                self.over_1s += dt > 1.0
                if not isinstance(code, int) or dt > LIMIT_S:
                    self.failures.append((round(time.time(), 3), name, code, round(dt, 3)))
            self.rounds += 1
            self.stop_ev.wait(0.2)

    def stop(self):
        self.stop_ev.set()
        self.join(10)


def fuzz(t, targets, token, seconds):
    stop = threading.Event()
    stats = Stats()
    lock = threading.Lock()
    slow_threads = []

    def worker(n):
        rng = random.Random(SEED * 1000 + n)
        while not stop.is_set():
            name, port = rng.choice(sorted(targets.items()))
            if rng.random() < 0.05:
                with lock:
                    slow_threads[:] = [x for x in slow_threads if x.is_alive()]
                    if len(slow_threads) < SLOW_MAX:
                        th = threading.Thread(target=slowloris, daemon=True,
                                              args=(port, random.Random(rng.random()), stop,
                                                    rng.uniform(1, 8)))
                        th.start()
                        slow_threads.append(th)
                        stats.slow += 1
                continue
            data, waits = request(rng, token)
            stats.add(f"{name}:{send(port, data, waits, rng)}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    for th in threads:
        th.start()
    time.sleep(seconds)
    stop.set()
    for th in threads + slow_threads:
        th.join(15)
    return stats


def explain(t, failures, procs):
    """For each /health failure, log the daemon's ZooKeeper events around it (a stall that
    coincides with a lost connection or session points at a ZooKeeper call)."""
    for when, name, _code, dt in failures:
        lo = time.strftime("%H:%M:%S", time.gmtime(when - dt - 1))
        hi = time.strftime("%H:%M:%S", time.gmtime(when + 1))
        events = []
        for line in procs[name].log_text().splitlines():
            m = re.match(r"ts=\S+T(\d\d:\d\d:\d\d)\.(\d+)Z .*event=(zk_(?!client)\w+|leader\w*|"
                         r"leadership_\w+|status_write_failed)", line)
            if m and lo <= m.group(1) <= hi:
                events.append(f"{m.group(1)}.{m.group(2)} {m.group(3)}")
        stalled = time.strftime("%H:%M:%S", time.gmtime(when - dt))
        t.log(f"  {name} stalled {dt:.1f} s from {stalled}: {', '.join(events[:12]) or 'no zk event'}")


def test(t):
    t.log(f"seed={SEED} seconds={SECONDS} (replay: BG_FUZZ_SEED={SEED})")
    zk = t.zookeeper()
    s = System(t, zk, token=True)
    s.flip("blue")
    blue = s.agent("blue-1", "blue")
    green = s.agent("green-1", "green")
    cport = h.free_port()
    conf = h.write_controller_conf(t.dir, zk, s.root, id="c1", listen=f"127.0.0.1:{cport}",
                                   token_file=s.token_file)
    c = t.proc([h.bin("bg-controller"), "-c", str(conf)], name="controller-c1")
    c.wait_log(r"event=election_joined", timeout=15)
    s.controllers.append(c)
    s.wait_converged("blue")

    targets = {"blue-1": blue.port, "green-1": green.port, "controller": cport}
    mon = Monitor(targets)
    mon.start()
    t.step(f"fuzz the HTTP APIs for {SECONDS:.0f} s with {WORKERS} threads")
    stats = fuzz(t, targets, s.token, SECONDS)
    mon.stop()
    top = sorted(stats.codes.items(), key=lambda kv: -kv[1])
    t.log(f"sent {stats.sent} requests ({stats.sent / SECONDS:.0f}/s), {stats.slow} slow "
          f"connections; answers: {', '.join(f'{k}={v}' for k, v in top[:24])}")
    t.log(f"/health rounds {mon.rounds}, worst latency "
          f"{', '.join(f'{n}={v * 1000:.0f}ms' for n, v in mon.worst.items())}")

    dead = [(p.name, p.returncode) for p in [blue.proc, green.proc, c] if not p.alive()]
    t.check_eq(dead, [], "every daemon alive after fuzzing")
    t.log(f"/health answers over 1 s: {mon.over_1s} of {mon.rounds * len(targets)}")
    if mon.failures:
        t.log(f"/health too slow or unanswered {len(mon.failures)} times: {mon.failures[:10]}")
        # The ZooKeeper events around each, for the diagnosis: every ZooKeeper call is
        # bounded now (common/zk.c), so even a lost connection must not stall /health.
        explain(t, mon.failures, {"blue-1": blue.proc, "green-1": green.proc, "controller": c})

    t.step("a real switch still converges (blue -> green -> blue)")
    s.flip("green")
    s.wait_converged("green", timeout=30)
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "green UP, blue out after the flip")
    s.flip("blue")
    s.wait_converged("blue", timeout=30)
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503}, "and back to blue")
    for p in [blue.proc, green.proc, c]:
        t.check(p.alive(), f"{p.name} alive at the end")
    t.check_eq(mon.failures[:10], [], f"every /health answered within {LIMIT_S:.0f} s while "
               "fuzzing, ZooKeeper connection losses included")
    t.check(mon.rounds > SECONDS * 2, f"the monitor ran ({mon.rounds} rounds)")
    t.log(f"seed={SEED}")


h.run(test)
