#!/usr/bin/env python3
"""kill -9 of the leading controller in the middle of a switch (new colour UP, old colour not
yet out: phase "settling"): the standby finishes the switch. Throughout, some instance is UP
(round sampler, old colour scanned first, and per-agent timelines), and the samples prove that
no old instance left UP before every new one was UP. Prints the recovery time (kill ->
converged)."""

import signal
import time

import faults as f
import harness as h
from bgsys import HealthSampler

SESSION_MS = 2000
SETTLE_MS = 3000


def test(t):
    ens = t.ensemble()
    s = f.system(t, ens, blue=2, green=2, controllers=2, settle=SETTLE_MS)
    leader = f.leader_of(s)
    standby = next(p for p in s.controllers if p is not leader)
    t.check_eq(f.status(s)["leader"], leader.id, "/status names the leader")

    tl = f.Timeline(s.agents).start()
    tl.wait_samples()
    rounds = HealthSampler(s.agents)
    rounds.set_order("blue")  # old colour first
    rounds.start()

    t.step("flip to green; kill -9 the leader while it settles")
    t_flip = time.time()
    f.flip(s, "green")
    st = f.wait_phase(s, "settling", "green", timeout=10)
    t.check_eq(st["leader"], leader.id, "the first leader made green UP")
    t.check_eq(s.healths(), {"blue-1": 200, "blue-2": 200, "green-1": 200, "green-2": 200},
               "half-way: green UP, blue not yet out")
    mark = standby.mark()
    t_kill = time.time()
    leader.kill(signal.SIGKILL)
    leader.wait(5)
    t.check(time.time() - f.iso_to_epoch(st["since"]) < SETTLE_MS / 1000,
            "killed before the settle ended")

    t.step("the standby finishes the switch")
    st = f.wait_converged(s, "green", timeout=20)
    t_conv = f.iso_to_epoch(st["since"])
    elected = f.events(standby, "leader_elected", since=mark)
    t.check_eq(len(elected), 1, "the standby was elected once")
    t.check_eq(st["leader"], standby.id, "/status names the standby")
    t.check_eq(st["desired"], "green", "/status desired")
    t.check_eq(s.healths(), f.expected_health(s, "green"), "every /health after the switch")
    t.check_eq(sorted((i["id"], i["status"]) for i in st["instances"]),
               [("blue-1", "OUT_OF_SERVICE"), ("blue-2", "OUT_OF_SERVICE"), ("green-1", "UP"),
                ("green-2", "UP")], "/status instances")
    outs = [e["id"] for e in f.events(leader, "instance_status")
            if e["color"] == "blue" and e["status"] == "OUT_OF_SERVICE"]
    t.check_eq(outs, [], "the killed leader had taken no blue instance out")
    outs = sorted(e["id"] for e in f.events(standby, "instance_status", since=mark)
                  if e["color"] == "blue" and e["status"] == "OUT_OF_SERVICE")
    t.check_eq(outs, ["blue-1", "blue-2"], "the standby took blue out")
    time.sleep(0.3)
    rounds.stop()
    tl.stop()

    t.step("make before break, from the samples")
    t.check(rounds.rounds > 100, f"round sampler ran ({rounds.rounds} rounds)")
    t.check_eq(rounds.violations, [], "some instance answered 200 in every round")
    zero = tl.zero_up(t_flip - 1)
    t.check_eq(zero, [], f"timelines: no moment without an UP instance ({tl.samples} samples)")
    new_up, old_out = f.make_before_break(t, tl, ["green-1", "green-2"], ["blue-1", "blue-2"],
                                          t_flip)
    t.check(old_out > t_kill, "blue left UP only after the kill (the standby did it)")
    for b in ("blue-1", "blue-2"):
        t.check_eq(tl.codes_since(b, t_flip), [200, 503], f"{b}: UP then OUT, once")
    for g in ("green-1", "green-2"):
        t.check_eq(tl.codes_since(g, t_flip - 0.5), [503, 200], f"{g}: OUT then UP, once")

    hist = f.zk_retry(h.zk_ls, s.zk, s.root + "/history")
    last = f.zk_retry(h.zk_get_json, s.zk, f"{s.root}/history/{hist[-1]}")
    t.check_eq((last["from"], last["to"], last["result"], last["leader"]),
               ("blue", "green", "converged", standby.id), "history: the standby's switch")

    failover = elected[0]["ts"] - t_kill
    recovery = t_conv - t_kill
    t.log(f"RESULT leader_mid_switch: kill -> standby elected {failover * 1000:.0f} ms, "
          f"kill -> converged {recovery * 1000:.0f} ms (session {SESSION_MS} ms, settle "
          f"{SETTLE_MS} ms); standby took blue out {(old_out - elected[0]['ts']) * 1000:.0f} ms "
          f"after its election")
    t.check(recovery < (SESSION_MS + SETTLE_MS) / 1000 + 3,
            f"converged within session + settle + 3 s ({recovery:.2f} s)")


h.run(test)
