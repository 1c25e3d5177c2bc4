#!/usr/bin/env python3
"""Invalid /active_color values and a target colour without instances change nothing; /status
says blocked with a readable reason; bgctl switch --wait exits 2 naming the reason."""

import harness as h
from bgsys import standard


def test(t):
    s = standard(t, blue=2, green=0, controllers=1)
    before = s.healths()
    t.check_eq(before, {"blue-1": 200, "blue-2": 200}, "blue UP at the start")

    cases = [(b"purple", "'purple'"), (b"", "empty"), (b"   \n", "empty"),
             (b"\xff\xfe\x00blue", "'???blue'"), (b"Blue", "'Blue'"),
             (b"x" * (1024 * 1000), "bytes of data")]
    for data, fragment in cases:
        t.step(f"/active_color = {data[:20]!r}{'...' if len(data) > 20 else ''}")
        h.zk_set(s.zk, s.root + "/active_color", data)
        st = h.wait_until(lambda: (lambda x: x if x and x["phase"] == "blocked" and
                                   fragment in x["reason"] else None)(s.status()),
                          timeout=10, msg=f"blocked with {fragment!r} in the reason")
        t.check("/active_color is invalid" in st["reason"], f"reason: {st['reason']}")
        t.check_eq(s.healths(), before, "no instance changed")
        t.check(all(p.alive() for p in s.controllers), "controller still running")

    t.step("back to blue: converged again")
    s.flip("blue")
    s.wait_converged("blue")

    t.step("a switch to green, which has no instances, is blocked and changes nothing")
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "10s")
    t.check_eq(rc, 2, "bgctl switch --wait exit code when blocked")
    t.check("green has 0 registered instance(s), min_ready is 1" in err,
            f"reason on stderr: {err.strip()}")
    t.check_eq(s.healths(), before, "blue still UP")
    st = s.status()
    t.check_eq((st["phase"], st["applied"]), ("blocked", "blue"), "/status blocked, applied blue")

    t.step("a green instance appears: the blocked switch proceeds by itself")
    g = s.agent("green-1", "green")
    s.wait_converged("green")
    t.check_eq(g.health(), 200, "green-1 UP")
    t.check_eq(s.healths()["blue-1"], 503, "blue-1 OUT after green is UP")

    t.step("/active_color deleted: blocked, nothing changes")
    h.zk_delete(s.zk, s.root + "/active_color")
    s.wait_phase("blocked")
    t.check("does not exist" in s.status()["reason"], "reason names the missing node")
    t.check_eq(g.health(), 200, "green-1 still UP")


h.run(test)
