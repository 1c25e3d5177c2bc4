#!/usr/bin/env python3
"""A leader frozen (SIGSTOP) past its session timeout in the middle of a switch -- while its
first UP call is in flight -- is a zombie: the standby takes over and we flip again; when the
zombie wakes (SIGCONT) no call of it changes any agent (every one it still makes carries its
old epoch and is refused with 409, or fails locally), it logs leadership_lost and rejoins the
election as a follower, the final state is the newest flip, and it can lead again later.

In practice the zombie makes no new call at all: its ZooKeeper client thread notices the
expired session within milliseconds of SIGCONT, before the main loop acts (the call in flight
times out on its wall-clock timeout or is abandoned). So the fencing itself is also checked
directly: PUTs with the zombie's epoch are refused by every agent (409, metric counted)."""

import signal
import socket
import time

import faults as f
import harness as h

SESSION_MS = 2000
SETTLE_MS = 1500


def stale_total(s):
    return sum(f.metric(a.url + "/metrics", "bg_agent_status_requests_total",
                        {"result": "stale_epoch"}) for a in s.agents)


def balancer_poll(port):
    """GET /health as HAProxy's httpchk sends it (HTTP/1.0, no User-Agent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
        c.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        while c.recv(4096):
            pass


def test(t):
    ens = t.ensemble()
    s = f.system(t, ens, blue=2, green=2, controllers=2, settle=SETTLE_MS)
    zombie = f.leader_of(s)
    standby = next(p for p in s.controllers if p is not zombie)
    old_epoch = f.ctl_health(zombie)["epoch"]
    t.check_eq(f.status(s)["epoch"], old_epoch, "/status carries the leader's epoch")
    t.check_eq(stale_total(s), 0, "no stale call so far")
    mark_before_flip = zombie.mark()

    t.step("flip to green; freeze the leader while its first call is in flight")
    # A balancer (here: this test, polling like HAProxy's httpchk — no User-Agent, three
    # polls in a row; a person's curl is no balancer) polled every agent's /health just now,
    # so an agent answers a change only once the next poll saw it, or "unconfirmed" after a
    # wait derived from the poll interval (about 1 s here). Nobody polls now: the leader's
    # first UP call waits, and we freeze it meanwhile.
    for _ in range(3):
        for a in s.agents:
            balancer_poll(a.port)
    t.check_eq(s.healths(), f.expected_health(s, "blue"), "converged on blue")
    f.flip(s, "green")
    g = f.wait_log_any([a.proc for a in s.agents if a.color == "green"],
                       r"event=status_change from=OUT_OF_SERVICE to=UP", timeout=5)
    time.sleep(0.3)
    t_stop = time.time()
    zombie.kill(signal.SIGSTOP)
    mark_z = zombie.mark()
    mark_s = standby.mark()
    t.check_eq(f.events(zombie, "instance_status", since=mark_before_flip), [],
               f"frozen while its call to {g.name} was in flight")
    # Written before the calls (they wait for the balancers): not the last switch's outcome.
    st = f.status(s)
    t.check_eq((st["desired"], st["phase"]), ("green", "switching"),
               "/status says switching to green while the first call is in flight")

    t.step("the standby takes over and finishes; then we flip back to blue")
    m = standby.wait_log(r"event=leader_elected epoch=(\d+)", timeout=SESSION_MS / 1000 + 5,
                         since=mark_s)
    t_took = time.time()
    new_epoch = int(m.group(1))
    t.check(new_epoch > old_epoch, f"the standby leads with a newer epoch ({new_epoch} > "
                                   f"{old_epoch})")
    st = f.wait_converged(s, "green", timeout=15)
    t.check_eq((st["leader"], st["epoch"]), (standby.id, new_epoch), "standby converged green")
    f.flip(s, "blue")
    st = f.wait_converged(s, "blue", timeout=15)
    t.check_eq((st["leader"], st["epoch"]), (standby.id, new_epoch), "standby converged blue")
    want = f.expected_health(s, "blue")
    t.check_eq(s.healths(), want, "every /health on blue")
    for a in s.agents:
        t.check_eq(a.status()["epoch"], new_epoch, f"{a.id} has seen the new epoch")
    t.log(f"zombie frozen {time.time() - t_stop:.1f} s (session {SESSION_MS} ms), standby "
          f"took over after {(t_took - t_stop) * 1000:.0f} ms")

    t.step("SIGCONT the zombie: its calls are refused, it steps down and rejoins")
    tl = f.Timeline(s.agents).start()
    tl.wait_samples()
    agent_marks = {a.id: a.proc.mark() for a in s.agents}
    t_cont = time.time()
    zombie.kill(signal.SIGCONT)
    zombie.wait_log(r"event=leadership_lost", timeout=10, since=mark_z)
    zombie.wait_log(r"event=election_joined", timeout=10, since=mark_z)
    h.wait_until(lambda: (f.ctl_health(zombie) or {}).get("leader") is False, timeout=5,
                 msg="the zombie says it is not leader")
    time.sleep(2)  # give a misbehaving zombie time to do damage
    tl.stop()

    zcalls = f.events(zombie, {"instance_status", "instance_call_failed"}, since=mark_z)
    done = [e for e in zcalls if e["event"] == "instance_status"]
    # The only call that may complete is the one in flight when it froze (applied then, under
    # the old epoch, before the standby existed).
    t.check(all(e["id"] == g.name.replace("agent-", "") and e["status"] == "UP" for e in done)
            and len(done) <= 1, f"no new call of the zombie succeeded after it woke: {done}")
    stale = []
    for a in s.agents:
        for e in f.events(a.proc, {"stale_epoch", "status_change", "new_epoch"},
                          since=agent_marks[a.id]):
            if e["event"] == "stale_epoch":
                t.check_eq(int(e["epoch"]), old_epoch, f"{a.id} refused the zombie's epoch")
                stale.append((a.id, e["status"]))
            else:
                t.check(False, f"{a.id} changed after the zombie woke: {e['line']}")
    n_stale = stale_total(s)
    failed = [e for e in zcalls if e["event"] == "instance_call_failed"]
    t.log(f"zombie after SIGCONT: {len(done)} in-flight call completed, {len(failed)} failed "
          f"({[e['error'] for e in failed]}); agents refused {stale} (metric {n_stale:.0f})")
    t.check_eq(n_stale, float(len(stale)), "the agents' stale_epoch metric counts the refusals")
    t.check(all("409" in e["error"] or "abandoned" in e["error"] or "Timeout" in e["error"]
                for e in failed),
            "every failed zombie call was refused (409), timed out while frozen or abandoned")
    lost = f.events(zombie, "leadership_lost", since=mark_z)
    t.log(f"zombie: {lost[0]['line']}")
    for a in s.agents:
        t.check_eq(tl.codes_since(a.id, t_cont - 0.1), [want[a.id]],
                   f"{a.id}: /health never changed after SIGCONT")

    t.step("final state is the newest flip; the zombie follows")
    st = f.status(s)
    t.check_eq((st["phase"], st["desired"], st["applied"], st["leader"]),
               ("converged", "blue", "blue", standby.id), "/status")
    t.check_eq(s.healths(), want, "every /health on blue")
    t.check_eq(len(f.events(zombie, "leader_elected", since=mark_z)), 0,
               "the zombie did not lead again")
    t.check_eq(f.leader_of(s), standby, "exactly one leader: the standby")

    t.step("what the zombie would send now (its old epoch) is refused by every agent")
    before = stale_total(s)
    for a in s.agents:
        flip = "OUT_OF_SERVICE" if want[a.id] == 200 else "UP"
        code, body, _ = a.put(flip, old_epoch)
        t.check_eq((code, (body or {}).get("error")), (409, "stale epoch"),
                   f"{a.id}: PUT {flip} with epoch {old_epoch} refused")
    t.check_eq(stale_total(s) - before, float(len(s.agents)), "stale_epoch metric +1 each")
    t.check_eq(s.healths(), want, "nothing changed")
    t.step("the old zombie still works as a standby")
    mark_z = zombie.mark()
    standby.kill(signal.SIGKILL)
    zombie.wait_log(r"event=leader_elected", timeout=SESSION_MS / 1000 + 5, since=mark_z)
    f.flip(s, "green")
    st = f.wait_converged(s, "green", timeout=15)
    t.check_eq(st["leader"], zombie.id, "the former zombie leads and converged green")
    t.check_eq(s.healths(), f.expected_health(s, "green"), "every /health on green")
    t.log(f"RESULT zombie_leader: SIGSTOP -> standby elected {(t_took - t_stop) * 1000:.0f} ms; "
          f"zombie calls refused {len(stale)}; zombie stepped down "
          f"{(lost[0]['ts'] - t_cont) * 1000:.0f} ms after SIGCONT")


h.run(test)
