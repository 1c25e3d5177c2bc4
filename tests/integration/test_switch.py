#!/usr/bin/env python3
"""Switches driven by the real zkCli.sh, make before break proven by sampling every agent's
/health (old colour first) during repeated flips, and an agent restart getting the right
status."""

import signal
import time

import harness as h
from bgsys import HealthSampler, standard


def test(t):
    s = standard(t, blue=2, green=2, controllers=2)
    t.check_eq(s.healths(), {"blue-1": 200, "blue-2": 200, "green-1": 503, "green-2": 503},
               "blue converged: blue UP, green OUT_OF_SERVICE")

    t.step("flip with the real zkCli.sh")
    r = h.zkcli(s.zk, "set", s.root + "/active_color", "green")
    t.check_eq(r.rc, 0, "zkCli.sh set exit code")
    st = s.wait_converged("green")
    t.check_eq(st["desired"], "green", "/status desired")
    t.check_eq(sorted((i["id"], i["status"]) for i in st["instances"]),
               [("blue-1", "OUT_OF_SERVICE"), ("blue-2", "OUT_OF_SERVICE"), ("green-1", "UP"),
                ("green-2", "UP")], "/status lists every instance with its status")
    t.check_eq(s.healths(), {"blue-1": 503, "blue-2": 503, "green-1": 200, "green-2": 200},
               "agents' /health after the flip")
    t.check_eq(h.zkcli(s.zk, "get", s.root + "/active_color").data.strip(), "green",
               "zkCli.sh reads the colour back")

    t.step("sample every /health while flipping 10 times")
    sampler = HealthSampler(s.agents)
    sampler.start()
    color = "green"
    times = []
    for _ in range(10):
        sampler.set_order(color)  # old colour first: a scan can only miss a handover if a
        color = "blue" if color == "green" else "green"  # whole switch fits inside it
        t0 = time.time()
        s.flip(color)
        s.wait_converged(color)
        times.append((time.time() - t0) * 1000)
    sampler.stop()
    t.log(f"{sampler.rounds} sample rounds; flip->converged ms: "
          f"{', '.join(f'{x:.0f}' for x in times)}")
    t.check(sampler.rounds > 50, f"sampler ran ({sampler.rounds} rounds)")
    t.check_eq(sampler.violations, [], "some instance answered /health 200 in every round")

    t.step("an agent restarted (SIGTERM) comes back with the right status")
    active = color
    a = next(x for x in s.agents if x.color == active)
    a.proc.stop()
    a.start()
    h.wait_until(lambda: a.health() == 200, timeout=10,
                 msg=f"restarted {a.id} ({active}) marked UP again")
    t.check_eq(a.health(), 200, f"restarted active {a.id} is UP")
    b = next(x for x in s.agents if x.color != active)
    b.proc.kill(signal.SIGKILL)
    b.proc.wait(5)
    b.start()  # waits for registration (after the old session expired)
    h.wait_until(lambda: s.status() and any(
        i["id"] == b.id and i["status"] == "OUT_OF_SERVICE" for i in s.status()["instances"]),
        timeout=10, msg=f"restarted standby {b.id} confirmed OUT_OF_SERVICE")
    t.check_eq(b.health(), 503, f"restarted standby {b.id} stays OUT_OF_SERVICE")


h.run(test)
