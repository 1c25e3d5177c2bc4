#!/usr/bin/env python3
"""Fencing from the first moment: an agent that (re)starts reads the lowest member of
/election (the current leader's epoch) as soon as its session is connected, and refuses
calls from older leaders before any controller has called it, even while it still waits for
its dead predecessor's node to expire. Nodes under /election that are not controller members
("member-abc", "zzz") are ignored by agents and controllers alike."""

import harness as h
from bgsys import standard

SESSION_MS = 4000  # the killed agent's node outlives it this long


def test(t):
    s = standard(t, blue=1, green=1, controllers=1,
                 agent_kw={"session_timeout_ms": SESSION_MS})
    a = s.agents[0]
    election = s.root + "/election"

    t.step("no controller; the newest leader's member node is member-<E>")
    s.controllers[0].stop()
    t.check_eq(h.zk_ls(s.zk, election), [], "the stopped controller's election node is gone")
    # Ephemeral, as a live controller's: persistent member nodes are never trusted (issue 9).
    holds = [t.zk_hold(s.zk, election + "/member-", "{}", sequential=True) for _ in range(3)]
    made = [p.created for p in holds]
    epoch = int(made[-1].rsplit("-", 1)[1])
    t.check(epoch >= 3, f"sequential nodes: {made}")
    for p in holds[:-1]:
        p.stop()
    for junk in ("member-abc", "zzz", "member-"):
        h.zk_create(s.zk, election + "/" + junk, "{}")

    t.step(f"restart blue-1 (SIGTERM): it learns epoch {epoch}")
    a.proc.stop()
    a.start()
    t.check_eq(a.status()["epoch"], epoch, f"GET /v1/status: epoch {epoch} before any call")
    m = a.proc.wait_log(r"event=epoch_learned epoch=(\d+) previous=0 source=election", timeout=5)
    t.check_eq(int(m.group(1)), epoch, f"logged epoch_learned epoch={epoch}")
    t.check_eq(a.health(), 503, "a restarted agent starts OUT_OF_SERVICE")
    code, obj, _ = a.put("UP", epoch - 1)
    t.check_eq(code, 409, f"a call from a deposed leader (epoch {epoch - 1}) is refused at once")
    t.check_eq(a.health(), 503, "... and changed nothing")
    code, obj, _ = a.put("UP", epoch)
    t.check_eq(code, 200, "the current epoch is accepted")
    t.check_eq(a.health(), 200, "... and applied")

    t.step("kill -9 blue-1 and restart it at once: fenced while its old node still exists")
    a.proc.kill()
    a.proc.wait(5)
    a.start(wait=False)
    mark = a.proc.run_offset
    a.proc.wait_log(r"event=register_wait", timeout=10)  # logged right after learning
    text = a.proc.log_text(mark)
    t.check("event=epoch_learned" in text and "event=registered" not in text,
            "epoch learned while registration still waits for the old session's node")
    code, obj, _ = a.put("UP", epoch - 1)
    t.check_eq(code, 409, "a deposed leader is refused before the agent is even registered")
    a.proc.wait_log(r"event=registered", timeout=SESSION_MS / 1000 + 10)
    t.check_eq(a.status()["epoch"], epoch, "registered later, same epoch")

    t.step("a new controller ignores the junk nodes")
    holds[-1].stop()
    s.controller("c2")
    h.wait_until(lambda: (s.status() or {}).get("leader") == "c2", timeout=20,
                 msg="c2 writes /status")
    st = s.wait_converged("blue", timeout=20)
    t.check_eq(st["leader"], "c2", "c2 leads although member-abc / zzz / member- exist")
    s.flip("green")
    st = s.wait_converged("green", timeout=20)
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "c2 switches to green")
    t.check(a.status()["epoch"] > epoch, f"blue-1 follows c2's epoch ({a.status()['epoch']})")


h.run(test)
