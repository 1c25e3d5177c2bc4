#!/usr/bin/env python3
"""bench/README.md "Defects and limits found at scale" item 3: every takeover re-sent the
status to every instance (2N PUTs, 1000 at 500+500: with real agents, 1000 confirmed backend
changes after each failover). Now a new leader first asks each agent its status (GET
/v1/status: no backend work) and sends a PUT only where the answer is not the target -- and
still to every instance whose state it cannot learn (level-triggered: unknown is called).

Here 50 blue and 50 green stand-in agents, two controllers. Two agents drift behind the
controllers' back (blue-7 taken OUT, green-7 put UP, by hand); the leader is killed. The new
leader must repair exactly those two (2 PUTs, not 100) and converge."""

import json
import re
import signal

import harness as h
from bgsys import System

N = 50


def standins(t, s, color):
    return s.standins(color, N).stats_url


def stats(urls):
    out = {}
    for u in urls:
        for k, v in h.http_json("GET", u, timeout=5)[1].items():
            out[k] = out.get(k, 0) + v
    return out


def endpoint(s, color, id):
    return json.loads(h.zk_get(s.zk, f"{s.root}/{color}/{id}"))["endpoint"]


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    urls = [standins(t, s, "blue"), standins(t, s, "green")]
    kw = dict(batch_size=8, resync="10m", session_timeout_ms=4000)
    c1 = s.controller("c1", **kw)
    c2 = s.controller("c2", **kw)
    s.wait_converged("blue", timeout=60)
    epoch = s.status()["epoch"]

    t.step("blue-7 and green-7 drift (set by hand, behind the controllers' back)")
    for color, id, want in (("blue", "blue-7", "OUT_OF_SERVICE"), ("green", "green-7", "UP")):
        code, _, _ = h.http_json("PUT", endpoint(s, color, id) + "/v1/status",
                              {"status": want, "epoch": epoch})
        t.check_eq(code, 200, f"{id} set {want}")
    t.check_eq(h.http("GET", endpoint(s, "blue", "blue-7") + "/health")[0], 503, "blue-7 out")

    t.step("kill -9 the leader: the standby takes over")
    leader = s.leader()
    standby = c2 if leader is c1 else c1
    before = stats(urls)
    mark = standby.mark()
    leader.kill(signal.SIGKILL)
    standby.wait_log(r"event=leader_elected", timeout=30, since=mark)
    sid = standby.name[len("controller-"):]
    h.wait_until(lambda: (lambda st: st.get("leader") == sid and st["phase"] == "converged" and
                          st["applied"] == "blue")(s.status() or {}),
                 timeout=60, msg="the new leader converged on blue")
    after = stats(urls)
    puts = after["puts"] - before["puts"]
    gets = after["gets"] - before["gets"]
    t.log(f"takeover: {puts} PUTs, {gets} GETs")
    t.check_eq(puts, 2, "only the two drifted agents were told (2N before)")
    t.check(gets >= 2 * N, f"every agent was asked ({gets} GETs)")
    t.check_eq(h.http("GET", endpoint(s, "blue", "blue-7") + "/health")[0], 200,
               "blue-7 UP again")
    t.check_eq(h.http("GET", endpoint(s, "green", "green-7") + "/health")[0], 503,
               "green-7 out again")
    told = set(re.findall(r"event=instance_status color=\w+ id=(\S+)",
                          standby.log_text(since=mark)))
    t.check_eq(told, {"blue-7", "green-7"}, "the instances the new leader told")
    st = s.status()
    t.check_eq(st["counts"]["blue"].get("UP"), N, "/status: every blue UP")
    t.check_eq(st["counts"]["green"].get("OUT_OF_SERVICE"), N, "/status: every green out")


h.run(test)
