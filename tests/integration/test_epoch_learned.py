#!/usr/bin/env python3
"""Fencing from the first moment: an agent that (re)starts reads the lowest member of
/election (the current leader's epoch) and refuses calls from older leaders before any
controller has called it. Nodes under /election that are not controller members
("member-abc", "zzz") are ignored by agents and controllers alike."""

import harness as h
from bgsys import standard


def test(t):
    s = standard(t, blue=1, green=1, controllers=1)
    a = s.agents[0]
    election = s.root + "/election"

    t.step("no controller; the newest leader's member node is member-...03")
    s.controllers[0].stop()
    t.check_eq(h.zk_ls(s.zk, election), [], "the stopped controller's election node is gone")
    made = [h.zk_create(s.zk, election + "/member-", "{}", sequential=True) for _ in range(3)]
    t.check(made[-1].endswith("member-0000000003"), f"sequential nodes: {made}")
    for p in made[:-1]:
        h.zk_delete(s.zk, p)
    for junk in ("member-abc", "zzz", "member-"):
        h.zk_create(s.zk, election + "/" + junk, "{}")

    t.step("restart blue-1: it learns epoch 3 on registration")
    a.proc.stop()
    a.start()
    t.check_eq(a.status()["epoch"], 3, "GET /v1/status: epoch 3 before any call")
    m = a.proc.wait_log(r"event=epoch_learned epoch=(\d+) previous=0 source=election", timeout=5)
    t.check_eq(m.group(1), "3", "logged epoch_learned epoch=3")
    t.check_eq(a.health(), 503, "a restarted agent starts OUT_OF_SERVICE")
    code, obj, _ = a.put("UP", 2)
    t.check_eq(code, 409, "a call from a deposed leader (epoch 2) is refused at once")
    t.check_eq(a.health(), 503, "... and changed nothing")
    code, obj, _ = a.put("UP", 3)
    t.check_eq(code, 200, "the current epoch is accepted")
    t.check_eq(a.health(), 200, "... and applied")

    t.step("a new controller ignores the junk nodes")
    h.zk_delete(s.zk, made[-1])
    s.controller("c2")
    st = s.wait_converged("blue", timeout=20)
    t.check_eq(st["leader"], "c2", "c2 leads although member-abc / zzz / member- exist")
    s.flip("green")
    st = s.wait_converged("green", timeout=20)
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "c2 switches to green")
    t.check(a.status()["epoch"] >= 4, f"blue-1 follows c2's epoch ({a.status()['epoch']})")


h.run(test)
