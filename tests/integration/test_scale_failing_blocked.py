#!/usr/bin/env python3
"""bench/README.md "Defects and limits found at scale" item 1: a switch to a colour whose agents
all fail was never judged "blocked" once the colour had more instances than a backoff period
holds calls (20 at batch_size 1: a failing call takes ~0.7 s with 3 retries, the backoff is
capped at 6.4 s). Due retries were picked before instances never tried, so some green
instances were never called, and "blocked" came and went with each retry (one /history entry
each time) or never came: `bgctl switch --wait` waited for its timeout.

Here 20 blue and 20 green stand-in agents (tests/tools/standin_agents.py), every green one
answering 502 with a backend-failure reason, one controller at batch_size 1. The switch must
be blocked once every green instance has failed once (one sweep), stay blocked while the
retries go on, and leave one /history entry; blue stays UP. Item 5: last_error is the agent's
"error", backend and "reason", not its JSON body with the quotes turned into '?'."""

import re
import time

import harness as h
from bgsys import System

N = 20


def standins(t, s, color, *extra):
    return s.standins(color, N, *extra)


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    standins(t, s, "blue")
    green = standins(t, s, "green")
    c = s.controller("c1", batch_size=1, resync="10m", session_timeout_ms=4000)
    s.wait_converged("blue", timeout=60)

    t.step("the green agents start failing (their backends are down), green is OUT already")
    green.stop()
    green = standins(t, s, "green", "--fail-http", "502")
    h.wait_until(lambda: sum(i["color"] == "green" for i in s.status()["instances"]) == N and
                 any("backend failed" in i["last_error"] for i in s.status()["instances"]),
                 timeout=60, msg="the green agents' OUT_OF_SERVICE calls fail")
    history0 = len(h.zk_ls(zk, s.root + "/history") or [])

    t.step("switch to green: every green agent fails")
    mark = c.mark()
    t0 = time.monotonic()
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "90s", timeout=120)
    took = time.monotonic() - t0
    t.check_eq(rc, 2, f"bgctl switch --wait says blocked (after {took:.1f} s)")
    tried = set(re.findall(r"event=instance_call_failed color=green id=(\S+) status=UP",
                           c.log_text(since=mark)))
    t.check_eq(len(tried), N, "blocked only once every green instance was called UP and failed")
    st = s.status()
    t.check(all("backend failed" in i["last_error"] for i in st["instances"]
                if i["color"] == "green"), "the agents' reasons in /status")
    # Item 5: the agent's own words, not its JSON body with the quotes turned into '?'.
    e = next(i["last_error"] for i in st["instances"] if i["color"] == "green")
    t.check(e.startswith("HTTP 502: backend failed (eureka): eureka http://eureka-1.example."
                         "internal:8761/eureka: PUT /eureka/apps/SHOP/green-") and "?" not in
            e.split("/status")[0], f"last_error extracted from the agent's JSON: {e!r}")

    t.step("it stays blocked while the retries go on")
    mark = c.mark()
    phases = set()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        phases.add((s.status() or {}).get("phase"))
        time.sleep(0.05)
    t.check_eq(phases, {"blocked"}, "phases seen in 8 s")
    t.check("status=UP" in c.log_text(since=mark), "retries went on")
    t.check_eq(c.log_text(since=mark).count("event=switch_start"), 0, "no new switch started")
    hist = h.zk_ls(zk, s.root + "/history") or []
    t.check_eq(len(hist) - history0, 1, "one /history entry for the blocked switch")
    t.check_eq(h.zk_get_json(zk, f"{s.root}/history/{sorted(hist)[-1]}")["result"], "blocked",
               "its result")
    st = s.status()
    t.check_eq(sum(i["color"] == "blue" and i["status"] == "UP" for i in st["instances"]), N,
               "blue stays UP")


h.run(test)
