#!/usr/bin/env python3
"""Issue 9, epoch poisoning (DESIGN §14): a PUT /v1/status with "epoch": 2^63-1 used to be
accepted and remembered, so every real leader calling the instance afterwards got 409 and
stepped down: the next flip never converged. Now an agent trusts a higher epoch only when it is
the sequence of a live (ephemeral) member of /election: the made-up one is refused (503 with
the reason), changes nothing, and a flip converges. A newly elected leader (higher epoch, just
created) is obeyed at once or after one retry, and a controller that hears 409 steps down only
when a lower live member exists."""

import time

import harness as h
from bgsys import standard

BIG = 2**63 - 1


def test(t):
    s = standard(t, blue=1, green=1, controllers=2)
    g = s.agents[1]
    leader = s.leader()
    epoch = g.status()["epoch"]

    t.step("a made-up huge epoch is refused and not remembered")
    for st in ("UP", "OUT_OF_SERVICE"):
        code, obj, _ = g.put(st, BIG)
        t.check_eq(code, 503, f"PUT {st} with epoch 2^63-1 refused")
        t.check(obj and "not the sequence of a live member of /election" in obj.get("reason", ""),
                f"the answer says why: {obj}")
    t.check_eq(g.status()["epoch"], epoch, "the agent's epoch is unchanged")
    t.check_eq(g.health(), 503, "green-1 still OUT_OF_SERVICE")
    t.check(g.proc.wait_log(r"event=untrusted_epoch .*epoch=9223372036854775807", timeout=5),
            "the refusal is logged")

    t.step("the real leader is not fenced out: a flip converges")
    s.flip("green")
    s.wait_converged("green", timeout=30)
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "switched")
    t.check(leader.alive() and s.leader() is leader, "the same controller still leads")
    t.check("leadership_lost" not in leader.log_text(), "the leader never stepped down")

    t.step("a new leader (higher epoch, just elected) is obeyed")
    leader.kill()  # SIGKILL: its node goes when its session expires
    s.controllers.remove(leader)
    h.wait_until(lambda: s.leader() is not None and s.status()["epoch"] > epoch, timeout=30,
                 msg="a new leader takes over")
    new_epoch = s.status()["epoch"]
    s.flip("blue")
    s.wait_converged("blue", timeout=30)
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503}, "switched back by the new leader")
    t.check_eq(g.status()["epoch"], new_epoch, "the agent now fences at the new leader's epoch")
    code, _, _ = g.put("UP", epoch)
    t.check_eq(code, 409, "the old leader's epoch is stale now")

    t.step("a huge epoch once more, then a flip")
    t.check_eq(g.put("UP", BIG)[0], 503, "refused again")
    s.flip("green")
    s.wait_converged("green", timeout=30)
    time.sleep(0.5)
    t.check(all(p.alive() for p in s.controllers), "controllers alive")


h.run(test)
