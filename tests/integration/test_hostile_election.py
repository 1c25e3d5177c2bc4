#!/usr/bin/env python3
"""Issue 9: a persistent (non-ephemeral) /election/member-... made by hand used to be obeyed as
a predecessor forever (no controller ever led) and named as the leader by bgctl. Now only
ephemeral members count: the controller leads, logs a warning naming the node, bgctl names the
real leader. And a controller steps down on a 409 only when a lower live member exists: an
"agent" that answers every call with 409 no longer deposes the real leader (DESIGN §14)."""

import http.server
import threading
import time

import harness as h
from bgsys import System


class Always409(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        body = b'{"error":"stale epoch","epoch":9223372036854775807,"given":1}'
        self.send_response(409)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    fake = s.root + "/election/member-0000000000"
    h.zk_create(zk, fake, '{"id":"ghost"}', parents=True)
    t.check(h.zk_stat(zk, fake)["ephemeralOwner"] in ("0x0", "0", 0), "the node is persistent")
    s.agent("blue-1", "blue")
    s.agent("green-1", "green")

    t.step("a persistent member-0000000000 is not obeyed")
    c1 = s.controller("c1")
    st = s.wait_converged("blue", timeout=20)
    t.check_eq(st["leader"], "c1", "c1 leads")
    t.check(c1.wait_log(r"event=election_node_ignored node=\S*/election/member-0000000000 ",
                        timeout=5), "the controller names the ignored node")
    rc, out, _ = s.bgctl("status")
    t.check(rc == 0 and "ghost" not in out and "c1" in out, f"bgctl names c1 as leader: {out}")

    t.step("an endpoint that answers 409 does not depose the leader")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Always409)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        t.zk_hold(zk, s.root + "/green/liar", '{"endpoint":"http://127.0.0.1:%d"}' % port)
        s.flip("green")
        h.wait_until(lambda: s.agents[1].health() == 200, timeout=20, msg="green-1 made UP")
        c1.wait_log(r"event=stale_epoch_ignored", timeout=10)
        time.sleep(1)
        t.check("leadership_lost" not in c1.log_text(), "c1 never stepped down")
        t.check_eq(s.status()["leader"], "c1", "c1 still leads")
        t.check(c1.alive(), "c1 alive")
    finally:
        srv.shutdown()


h.run(test)
