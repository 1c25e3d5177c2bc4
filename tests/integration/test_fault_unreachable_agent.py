#!/usr/bin/env python3
"""An agent that stays registered but does not answer (SIGSTOP, 30 s session) during a switch,
with call_timeout 500ms and retries 1:
1. one of the OLD colour: each call times out and is retried (2 attempts), later calls back off
   (growing gaps); the rest of the switch proceeds; /status names it while it is unreachable and
   does not claim converged; after SIGCONT it is brought OUT_OF_SERVICE and /status converges.
2. one of the NEW colour (2 new instances, min_ready 1): the switch proceeds with the other one
   (the old colour goes out once it is UP); after SIGCONT the frozen one is marked UP.
3. the same with min_ready 2: blocked, the old colour is left UP; after SIGCONT it completes."""

import signal
import time

import faults as f
import harness as h

# Sessions longer than the harness default: this test is not about ZooKeeper, and a loaded
# machine (other tests in parallel) can stall a 2 s session into expiry.
CALL = {"call_timeout": 500, "retries": 1, "session_timeout_ms": 6000,
        "agent_kw": {"session_timeout_ms": 6000}}
FROZEN_S = 6.0


def frozen_named(s, id):
    st = f.status(s) or {}
    inst = f.instance(st, id) or {}
    return id in st.get("reason", "") or bool(inst.get("last_error"))


def call_failures(ctl, id, since):
    return [e for e in f.events(ctl, "instance_call_failed", since=since) if e["id"] == id]


def test(t):
    zk = t.zookeeper()

    t.step("1. an old-colour agent does not answer during blue -> green")
    s = f.system(t, zk, blue=2, green=2, controllers=1, **CALL)
    b3 = s.agent("blue-3", "blue", session_timeout_ms=30000)
    f.wait_converged(s, "blue")
    h.wait_until(lambda: b3.health() == 200, timeout=5, msg="blue-3 UP")
    ctl = s.controllers[0]
    tl = f.Timeline(s.agents).start()
    tl.wait_samples()
    mark = ctl.mark()
    b3.proc.kill(signal.SIGSTOP)
    t_stop = time.time()
    f.flip(s, "green")
    h.wait_until(lambda: frozen_named(s, "blue-3"), timeout=10,
                 msg="/status names the unreachable blue-3")
    st = f.status(s)
    t.log(f"/status while blue-3 is frozen: phase={st['phase']} reason={st['reason']!r} "
          f"blue-3={f.instance(st, 'blue-3')}")
    t.check(st["phase"] != "converged", f"/status does not claim converged (phase "
                                        f"{st['phase']})")
    h.wait_until(lambda: len(call_failures(ctl, "blue-3", mark)) >= 3,
                 timeout=FROZEN_S + 5, msg="three failed calls to blue-3")
    h.wait_until(lambda: {a.id: a.health() for a in s.agents if a.id != "blue-3"} ==
                 {"blue-1": 503, "blue-2": 503, "green-1": 200, "green-2": 200}, timeout=10,
                 msg="the rest of the switch done")
    time.sleep(max(0.0, t_stop + FROZEN_S - time.time()))
    st = f.status(s)
    t.check(st["phase"] != "converged" and frozen_named(s, "blue-3"),
            f"still not converged, blue-3 still named ({st['phase']}: {st['reason']!r})")
    t.check_eq(f.instance(st, "blue-3")["status"], "UNKNOWN",
               "/status: blue-3's status is unknown")
    fails = call_failures(ctl, "blue-3", mark)
    t.check(all(e["attempts"] == "2" for e in fails),
            f"each call was tried twice (retries 1): {[e['attempts'] for e in fails]}")
    t.check(all("Timeout" in e["error"] or "timed out" in e["error"].lower() for e in fails),
            f"each failed by timing out: {sorted(set(e['error'] for e in fails))}")
    gaps = [b["ts"] - a["ts"] for a, b in zip(fails, fails[1:])]
    t.log(f"{len(fails)} failed calls to blue-3, gaps (s): {[round(g, 2) for g in gaps]}")
    t.check(len(fails) >= 3 and all(b > a + 0.1 for a, b in zip(gaps, gaps[1:])),
            f"the gaps between failed calls grow (backoff): {[round(g, 2) for g in gaps]}")
    t.check(all(g >= 2 * 0.5 for g in gaps), "each call took both attempts' timeouts")
    t.check(len(fails) <= 1 + FROZEN_S / 1.0, f"no hammering: {len(fails)} calls in "
                                              f"{FROZEN_S} s")
    t_cont = time.time()
    b3.proc.kill(signal.SIGCONT)
    st = f.wait_converged(s, "green", timeout=20)
    t_conv = f.iso_to_epoch(st["since"])
    t.check_eq(s.healths(), {"blue-1": 503, "blue-2": 503, "blue-3": 503, "green-1": 200,
                             "green-2": 200}, "every /health after SIGCONT")
    t.check_eq(f.instance(st, "blue-3")["status"], "OUT_OF_SERVICE", "/status: blue-3 OUT")
    t.check_eq(f.instance(st, "blue-3")["last_error"], "", "/status: blue-3's error cleared")
    tl.stop()
    t.check_eq(tl.zero_up(), [], "some instance UP at every moment")
    f.make_before_break(t, tl, ["green-1", "green-2"], ["blue-1", "blue-2"], t_stop,
                        proven=False)
    rec1 = t_conv - t_cont
    t.log(f"RESULT unreachable old agent: SIGCONT -> converged {rec1 * 1000:.0f} ms")

    t.step("2. a new-colour agent does not answer during blue -> green (min_ready 1)")
    s2 = f.system(t, zk, blue=2, green=1, controllers=1, **CALL)
    g2 = s2.agent("green-2", "green", session_timeout_ms=30000)
    f.wait_converged(s2, "blue")
    ctl = s2.controllers[0]
    mark = ctl.mark()
    tl = f.Timeline(s2.agents).start()
    tl.wait_samples()
    g2.proc.kill(signal.SIGSTOP)
    t_flip = time.time()
    f.flip(s2, "green")
    h.wait_until(lambda: {a.id: a.health() for a in s2.agents if a.id != "green-2"} ==
                 {"blue-1": 503, "blue-2": 503, "green-1": 200}, timeout=10,
                 msg="the switch proceeded with green-1")
    h.wait_until(lambda: frozen_named(s2, "green-2"), timeout=10, msg="/status names green-2")
    st = f.status(s2)
    t.check(st["phase"] != "converged", f"not converged while green-2 is unreachable "
                                        f"({st['phase']}: {st['reason']!r})")
    time.sleep(2)
    t_cont = time.time()
    g2.proc.kill(signal.SIGCONT)
    h.wait_until(lambda: g2.health() == 200, timeout=15, msg="green-2 marked UP after SIGCONT")
    st = f.wait_converged(s2, "green", timeout=15)
    t_conv = f.iso_to_epoch(st["since"])
    t.check_eq(s2.healths(), f.expected_health(s2, "green"), "every /health")
    tl.stop()
    t.check_eq(tl.zero_up(), [], "some instance UP at every moment")
    f.make_before_break(t, tl, ["green-1"], ["blue-1", "blue-2"], t_flip, proven=False)
    t.check(call_failures(ctl, "green-2", mark), "the calls to green-2 failed meanwhile")
    rec2 = t_conv - t_cont
    t.log(f"RESULT unreachable new agent: SIGCONT -> converged {rec2 * 1000:.0f} ms")

    t.step("3. the same with min_ready 2: blocked, blue left UP")
    s3 = f.system(t, zk, blue=2, green=1, controllers=1, min_ready=2, **CALL)
    g2 = s3.agent("green-2", "green", session_timeout_ms=30000)
    f.wait_converged(s3, "blue")
    h.wait_until(lambda: f.instance(f.status(s3), "green-2", "green") and
                 f.instance(f.status(s3), "green-2", "green")["status"] == "OUT_OF_SERVICE",
                 timeout=10, msg="green-2 known OUT")
    g2.proc.kill(signal.SIGSTOP)
    f.flip(s3, "green")
    st = f.wait_phase(s3, "blocked", "green", timeout=15)
    t.check("green-2" in st["reason"] and "min_ready is 2" in st["reason"],
            f"blocked names green-2 and min_ready: {st['reason']!r}")
    time.sleep(1)
    t.check_eq({a.id: a.health() for a in s3.agents if a.id != "green-2"},
               {"blue-1": 200, "blue-2": 200, "green-1": 200}, "blue left UP (green-1 UP too)")
    t.check_eq(f.status(s3)["phase"], "blocked", "still blocked")
    t_cont = time.time()
    g2.proc.kill(signal.SIGCONT)
    st = f.wait_converged(s3, "green", timeout=20)
    t.check_eq(s3.healths(), f.expected_health(s3, "green"), "completed after SIGCONT")
    rec3 = f.iso_to_epoch(st["since"]) - t_cont
    t.log(f"RESULT unreachable agent (min_ready 2): SIGCONT -> converged {rec3 * 1000:.0f} ms")


h.run(test)
