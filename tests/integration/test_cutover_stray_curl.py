#!/usr/bin/env python3
"""Issue 10 "only balancers count", at the agent, deterministic: a balancer WITHOUT send-state
(GET /health every 500 ms, no User-Agent, as HAProxy's httpchk) and a person's curl loop (User-
Agent curl/7.88.1) poll one agent from the SAME address (127.0.0.1 -- e.g. curl on the HAProxy
host). Right after a curl poll the controller-style PUT flips the status. The curl must neither
confirm the change nor make the balancer disappear: the PUT may be answered only after the
balancer's confirm_polls (default 3) polls, confirmed, and GET /v1/status must count exactly one
balancer. No controller, no HAProxy: one agent at its defaults. (Failed on 57cf748: pollers were
told apart by address only, so the curl poll made the merged peer "no balancer" and the change
was "applied (no balancer polling)" at once; passes since daf4039.)"""

import http.client
import json
import threading
import time

import harness as h
from bgsys import System


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    a = s.agent("web-1", "blue")
    t.check_eq(a.put("UP", 1)[0], 200, "PUT UP (nobody polls yet)")
    stop = threading.Event()
    polls = []
    state = {"header": None}

    def poll(ua=None, header=None):
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=2)
        hd = {}
        if ua:
            hd["User-Agent"] = ua
        if header:
            hd["X-Haproxy-Server-State"] = header
        c.request("GET", "/health", headers=hd)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status

    def balancer():
        while not stop.is_set():
            code = poll(header=state["header"])
            polls.append((time.monotonic(), code))
            stop.wait(0.5)

    th = threading.Thread(target=balancer, daemon=True)
    th.start()
    try:
        time.sleep(2.5)  # > 3 polls: a balancer now
        status = "UP"
        for i in range(4):
            status = "OUT_OF_SERVICE" if status == "UP" else "UP"
            t.step(f"curl polls, then PUT {status}")
            poll(ua="curl/7.88.1")
            t0 = time.monotonic()
            code, obj, _ = a.put(status, 1)
            took = time.monotonic() - t0
            n = sum(1 for tp, _ in polls if tp > t0)
            t.log(f"PUT {status}: {code} in {took * 1000:.0f} ms after {n} balancer poll(s); "
                  f"confirmed={obj.get('confirmed')} waiting_for={obj.get('waiting_for')} "
                  f"messages={[b.get('message') for b in obj.get('backends', [])]}")
            t.check(code == 200 and obj.get("confirmed") is True and n >= 3,
                    f"PUT {status} confirmed, and only after the balancer's 3 polls (it "
                    f"polled {n} times; confirmed={obj.get('confirmed')})")
            st = a.status()
            bal = [b for be in st.get("backends", []) for b in (be.get("balancers") or [])]
            t.log("balancers: " + json.dumps(bal))
            t.check_eq(sum(1 for b in bal if b.get("counts")), 1,
                       "exactly one balancer counts (the curl loop is none)")
            time.sleep(1.1)
    finally:
        stop.set()
        th.join(5)


h.run(test)
