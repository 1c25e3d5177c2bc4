#!/usr/bin/env python3
"""standin_agents.py -- many lightweight STAND-IN agents in one process (for scale benchmarks).

NOT bg-agent. One process serves N instances of one colour: N HTTP listeners on N loopback
ports (one selectors loop, keep-alive) speaking the agent API the controller uses, and N
ephemeral /<color>/<id> znodes registered through ONE ZooKeeper session (a minimal client of
ZooKeeper's wire protocol, stdlib only; pings keep the session alive).

Agent API spoken (DESIGN.md §4):
    PUT /v1/status {"status":"UP"|"OUT_OF_SERVICE","epoch":N}
        200 {"id","color","status","epoch","confirmed":true,"backends":[{"type":"health",..}]}
        400 bad body, 409 an epoch lower than the highest seen (that is all the fencing it does:
        unlike bg-agent it does not check the epoch against the live /election members)
    GET /v1/status   200 {"id","color","status","epoch","backends":[...]}
    GET /health      200 when UP, else 503
    GET /standin/stats  (any port) 200 {"puts":..,"puts_up":..,"puts_oos":..,"gets":..,
                        "up":<instances UP now>,"instances":N}
No backends, no application health check, no token, no TLS. Node data as bg-agent writes it:
    {"id","endpoint","version","app","address","color","healthy":true,"check":""}

Usage:
    standin_agents.py --zk HOST:PORT --root /r --color blue --count 500 [--prefix blue-]
                      [--session-ms 10000] [--host 127.0.0.1] [--pace-ms MS]
                      [--fail-http 502]
Prints "standin_ready color=.. count=.. ports=FIRST..LAST session=0x.. ms=.." once every node
exists, then serves until SIGTERM/SIGINT (closes the session: every node goes at once). A lost
session is replaced and every node registered again (as bg-agent does). Python 3 standard library only.
"""

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

# ------------------------------------------------------------------------------------------------
# A minimal ZooKeeper client (jute wire format): connect, create, ping, close.
# ------------------------------------------------------------------------------------------------

OP_CREATE, OP_PING, OP_CLOSE = 1, 11, -11
ZNODEEXISTS, ZNONODE = -110, -101
EPHEMERAL = 1


def _s(b):  # jute string/buffer
    if b is None:
        return struct.pack(">i", -1)
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">i", len(b)) + b


class ZkError(Exception):
    def __init__(self, op, path, code):
        super().__init__(f"{op} {path}: zookeeper error {code}")
        self.code = code


class Zk:
    """One session. Requests are synchronous (one at a time) and serialised by a lock; a
    background thread pings every third of the session timeout."""

    def __init__(self, connect, session_ms):
        host, port = connect.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = struct.pack(">iqiq", 0, 0, session_ms, 0) + _s(b"\0" * 16) + b"\0"
        self._send(req)
        resp = self._recv()
        _, self.timeout_ms, self.session_id = struct.unpack(">iiq", resp[:16])
        if self.timeout_ms <= 0:
            raise OSError("zookeeper refused the session")
        self.lock = threading.Lock()
        self.xid = 0
        self.lost = threading.Event()
        self.closing = False
        threading.Thread(target=self._pinger, daemon=True).start()

    def _send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recvn(self, n):
        b = bytearray()
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise OSError("zookeeper closed the connection")
            b += chunk
        return bytes(b)

    def _recv(self):
        (n,) = struct.unpack(">i", self._recvn(4))
        return self._recvn(n)

    def _call(self, op, body, xid=None):
        """Send one request, return (err, body) of its reply (watch events are skipped)."""
        with self.lock:
            if xid is None:
                self.xid += 1
                xid = self.xid
            self._send(struct.pack(">ii", xid, op) + body)
            while True:
                r = self._recv()
                rxid, _zxid, err = struct.unpack(">iqi", r[:16])
                if rxid == xid:
                    return err, r[16:]

    def create(self, path, data, flags=0):
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + _s("world") + _s("anyone")
        err, _ = self._call(OP_CREATE, _s(path) + _s(data) + acl + struct.pack(">i", flags))
        if err:
            raise ZkError("create", path, err)

    def ensure(self, path):
        """Create path and its parents (persistent, empty) if missing."""
        cur = ""
        for part in path.strip("/").split("/"):
            cur += "/" + part
            try:
                self.create(cur, b"")
            except ZkError as e:
                if e.code != ZNODEEXISTS:
                    raise

    def _pinger(self):
        while not self.closing:
            time.sleep(self.timeout_ms / 3000)
            if self.closing:
                return
            try:
                self._call(OP_PING, b"", xid=-2)
            except OSError:
                if not self.closing:
                    self.lost.set()
                return

    def close(self):
        self.closing = True
        try:
            self._call(OP_CLOSE, b"")
        except OSError:
            pass
        self.sock.close()


# ------------------------------------------------------------------------------------------------
# The instances' HTTP side
# ------------------------------------------------------------------------------------------------

REASONS = {200: "OK", 502: "Bad Gateway", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 503: "Service Unavailable"}


class Instance:
    __slots__ = ("id", "color", "port", "status", "epoch")

    def __init__(self, id, color, port):
        self.id, self.color, self.port = id, color, port
        self.status, self.epoch = "OUT_OF_SERVICE", 0  # a new instance starts out of service

    def doc(self):
        return {"id": self.id, "color": self.color, "status": self.status, "epoch": self.epoch,
                "backends": [{"type": "health", "status": self.status, "ok": True}]}


class Server:
    def __init__(self, instances, host, fail_http=0):
        self.fail_http = fail_http
        self.sel = selectors.DefaultSelector()
        self.instances = instances
        self.stats = {"puts": 0, "puts_up": 0, "puts_oos": 0, "gets": 0, "conflicts": 0}
        for inst in instances:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((host, inst.port))
            inst.port = ls.getsockname()[1]
            ls.listen(64)
            ls.setblocking(False)
            self.sel.register(ls, selectors.EVENT_READ, ("listen", inst))

    def handle(self, inst, method, path, body):
        if path == "/standin/stats":
            d = dict(self.stats, instances=len(self.instances),
                     up=sum(i.status == "UP" for i in self.instances))
            return 200, d
        if path == "/health" and method == "GET":
            return (200 if inst.status == "UP" else 503), {"status": inst.status}
        if path == "/v1/status" and method == "GET":
            self.stats["gets"] += 1
            return 200, inst.doc()
        if path == "/v1/status" and method == "PUT":
            try:
                j = json.loads(body)
                st, ep = j["status"], j["epoch"]
                if st not in ("UP", "OUT_OF_SERVICE") or not isinstance(ep, int) or ep < 0:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return 400, {"error": "bad request"}
            if ep < inst.epoch:
                self.stats["conflicts"] += 1
                return 409, {"error": "stale epoch", "epoch": inst.epoch, "given": ep}
            inst.epoch = ep
            if self.fail_http:
                self.stats["failed"] = self.stats.get("failed", 0) + 1
                return self.fail_http, {
                    "error": "backend failed", "id": inst.id, "status": inst.status,
                    "backends": [{"type": "eureka", "ok": False, "reason": (
                        f"eureka http://eureka-1.example.internal:8761/eureka: PUT /eureka/apps/"
                        f"SHOP/{inst.id}/status?value={st}: Failed to connect to "
                        f"eureka-1.example.internal port 8761 after 2001 ms: Connection timed "
                        f"out; eureka http://eureka-2.example.internal:8761/eureka: PUT /eureka/"
                        f"apps/SHOP/{inst.id}/status?value={st}: Failed to connect to "
                        f"eureka-2.example.internal port 8761 after 2000 ms: Connection timed "
                        f"out")}]}
            inst.status = st
            self.stats["puts"] += 1
            self.stats["puts_up" if st == "UP" else "puts_oos"] += 1
            d = inst.doc()
            d["confirmed"] = True
            return 200, d
        if path in ("/v1/status", "/health"):
            return 405, {"error": "method not allowed"}
        return 404, {"error": "not found"}

    def serve(self, stop):
        while not stop.is_set():
            for key, ev in self.sel.select(timeout=0.2):
                kind, inst = key.data[0], key.data[1]
                if kind == "listen":
                    try:
                        c, _ = key.fileobj.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.sel.register(c, selectors.EVENT_READ, ("conn", inst, bytearray()))
                else:
                    self._readable(key.fileobj, inst, key.data[2])

    def _close(self, c):
        try:
            self.sel.unregister(c)
        except (KeyError, ValueError):
            pass
        c.close()

    def _readable(self, c, inst, buf):
        try:
            data = c.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(c)
            return
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._close(c)
                return
            head = bytes(buf[:end]).decode("latin-1").split("\r\n")
            try:
                method, path, version = head[0].split(" ", 2)
            except ValueError:
                self._close(c)
                return
            hdrs = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            clen = int(hdrs.get("content-length", "0") or 0)
            if len(buf) < end + 4 + clen:
                return
            body = bytes(buf[end + 4:end + 4 + clen])
            del buf[:end + 4 + clen]
            code, doc = self.handle(inst, method, path.split("?", 1)[0], body)
            out = json.dumps(doc).encode()
            keep = hdrs.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            resp = (f"HTTP/1.1 {code} {REASONS.get(code, 'X')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(out)}\r\n"
                    f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode() + out
            try:
                c.setblocking(True)
                c.settimeout(2)
                c.sendall(resp)
                c.setblocking(False)
            except OSError:
                self._close(c)
                return
            if not keep:
                self._close(c)
                return


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zk", required=True)
    ap.add_argument("--root", default="/")
    ap.add_argument("--color", required=True, choices=("blue", "green"))
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", default=None, help="id prefix (default '<color>-')")
    ap.add_argument("--start", type=int, default=1, help="first instance number")
    ap.add_argument("--session-ms", type=int, default=10000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--version", default="1.0")
    ap.add_argument("--app", default="SHOP")
    ap.add_argument("--fail-http", type=int, default=0, metavar="CODE",
                    help="answer every PUT with CODE and a long backend-failure reason (as an "
                         "agent whose Eureka is down does: 502)")
    ap.add_argument("--pace-ms", type=float, default=0,
                    help="pause between two registrations (a rolling start; default none)")
    args = ap.parse_args()
    prefix = args.prefix if args.prefix is not None else args.color + "-"
    t0 = time.monotonic()

    insts = [Instance(f"{prefix}{i}", args.color, 0)
             for i in range(args.start, args.start + args.count)]
    srv = Server(insts, args.host, args.fail_http)  # binds port 0: the kernel picks N free ports

    root = "/" + args.root.strip("/")
    base = (root if root != "/" else "") + "/" + args.color
    def register():
        zk = Zk(args.zk, args.session_ms)
        try:
            zk.ensure(base)
            for inst in insts:
                node = {"id": inst.id, "endpoint": f"http://{args.host}:{inst.port}",
                        "version": args.version, "app": args.app,
                        "address": f"{args.host}:{inst.port}", "color": args.color,
                        "healthy": True, "check": ""}
                zk.create(f"{base}/{inst.id}", json.dumps(node).encode(), EPHEMERAL)
                if args.pace_ms:
                    time.sleep(args.pace_ms / 1000)
        except BaseException:
            zk.closing = True
            zk.sock.close()
            raise
        return zk

    # A ZooKeeper stalled by a loaded machine may drop the connection while we register: start
    # over (after the old session's expiry if its nodes may still be there), for up to 3 min.
    # A session lost later is replaced and every node registered again, as bg-agent does.
    def register_retrying():
        deadline = time.monotonic() + 180
        while True:
            try:
                return register()
            except (OSError, ZkError) as e:
                if time.monotonic() > deadline:
                    raise
                print(f"standin_retry error=\"{e}\"", file=sys.stderr, flush=True)
                time.sleep(1 + (args.session_ms / 1000 if isinstance(e, ZkError) or
                                "closed" in str(e) else 0))

    zk = register_retrying()
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"standin_ready color={args.color} count={len(insts)} "
          f"ports={insts[0].port}..{insts[-1].port} session=0x{zk.session_id:x} "
          f"session_ms={zk.timeout_ms} ms={round((time.monotonic() - t0) * 1000)}", flush=True)
    current = [zk]

    def keeper():
        while True:
            current[0].lost.wait()
            if stop.is_set():
                return
            print("standin_session_lost action=register_again", file=sys.stderr, flush=True)
            try:
                current[0].sock.close()
            except OSError:
                pass
            try:
                current[0] = register_retrying()
            except (OSError, ZkError):
                print("standin_gave_up", file=sys.stderr, flush=True)
                os._exit(2)
            print(f"standin_registered_again session=0x{current[0].session_id:x}",
                  file=sys.stderr, flush=True)
    threading.Thread(target=keeper, daemon=True).start()

    srv.serve(stop)
    current[0].close()
    print(f"standin_stopped stats={json.dumps(srv.stats)}", flush=True)


if __name__ == "__main__":
    main()
