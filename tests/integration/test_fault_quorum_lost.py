#!/usr/bin/env python3
"""Quorum lost: two of three ZooKeeper servers stopped for longer than the session timeout,
then restored. While ZooKeeper is unavailable the controllers stop acting (leader_paused, no
instance_status line) and the agents keep serving their last status (/health unchanged the
whole time); the agents whose sessions expired register again; after recovery everything
converges without a manual step (every agent node exists again, a flip converges)."""

import time

import faults as f
import harness as h

SESSION_MS = 2000
OUTAGE_S = 6.0


def test(t):
    ens = t.ensemble()
    s = f.system(t, ens, blue=2, green=2, controllers=2,
                 agent_kw={"session_timeout_ms": SESSION_MS})
    want = f.expected_health(s, "blue")
    leader = f.leader_of(s)
    czx = {a.id: f.zk_retry(h.zk_stat, s.zk, a.node)["czxid"] for a in s.agents}
    old_epoch = f.status(s)["epoch"]
    marks = {p.name: p.mark() for p in [a.proc for a in s.agents] + s.controllers}
    tl = f.Timeline(s.agents).start()
    tl.wait_samples()

    t.step(f"stop two of three servers for {OUTAGE_S} s (session timeout {SESSION_MS} ms)")
    zl = ens.leader_index()
    victims = [zl, (zl + 1) % 3]  # the leader and one follower
    t_out = time.time()
    for i in victims:
        ens.kill(i)
    survivor = ens.servers[({0, 1, 2} - set(victims)).pop()]
    h.wait_until(lambda: survivor.mode() is None, timeout=10,
                 msg="the survivor stops serving (no quorum)")
    # A flip cannot even be written now; the agents must hold what they have.
    r = h.zkt(s.zk, "set", s.root + "/active_color", "green", timeout_ms=1000)
    t.check(r.returncode != 0, f"no write is possible without quorum (zkt rc={r.returncode})")
    leader.wait_log(r"event=leader_paused", timeout=5, since=marks[leader.name])
    t_paused = time.time()
    time.sleep(max(0.0, t_out + OUTAGE_S - time.time()))
    t.check_eq(s.healths(), want, "agents still serve their last status during the outage")

    t.step("restore the two servers")
    t_back = time.time()
    for i in victims:
        ens.start(i, wait=False)
    ens.wait_quorum(60)
    t_quorum = time.time()
    # Every agent node exists again, re-created by its agent once the old session expired
    # (until then the old session's node is still there: the agent waits for it to go).
    for a in s.agents:
        a.proc.wait_log(r"event=registered", timeout=20, since=marks[a.proc.name])
        st = h.wait_until(lambda: (lambda x: x if x and x["czxid"] != czx[a.id] else None)(
            f.zk_retry(h.zk_stat, s.zk, a.node)), timeout=20, ignore=(h.ZkError,),
            msg=f"{a.id}'s node re-created")
        t.check(st["czxid"] != czx[a.id], f"{a.id}'s node exists again, re-created (czxid "
                                          f"{czx[a.id]} -> {st['czxid']})")
    t_nodes = time.time()
    h.wait_until(lambda: (f.status(s) or {}).get("epoch") != old_epoch and
                 f.status(s)["phase"] == "converged", timeout=20,
                 msg="a new leader wrote /status converged")
    st = f.status(s)
    t_conv = time.time()
    t.check_eq((st["applied"], st["desired"]), ("blue", "blue"),
               f"/status converged by the new leader {st['leader']} (epoch {old_epoch} -> "
               f"{st['epoch']})")
    t.check_eq(st["desired"], "blue", "/active_color unchanged (the flip never got through)")
    t.check_eq(s.healths(), want, "every /health still right after recovery")
    t_check = time.time()

    t.step("what happened during the outage")
    for a in s.agents:
        t.check_eq([r.code for r in tl.runs(a.id) if r.first_send < t_check], [want[a.id]],
                   f"{a.id}: /health answered {want[a.id]} at every sample")
    t.check_eq(tl.zero_up(0, t_check), [], "some instance UP at every moment")
    for p in s.controllers:
        ev = f.events(p, {"leader_paused", "leadership_lost", "instance_status",
                          "election_joined", "leader_elected"}, since=marks[p.name])
        # The outage ends for a controller when it connects again: the first two servers
        # back may serve (and it may lead and act) before wait_quorum has seen all three.
        back = [e["ts"] for e in f.events(p, {"zk_connected"}, since=marks[p.name])
                if e["ts"] > t_out]
        t.check(back and back[0] > t_back, f"{p.name} reconnected only after the servers were "
                f"restarted ({(back[0] - t_back) * 1000:.0f} ms after)" if back else
                f"{p.name} reconnected")
        end = back[0] if back else time.time()
        during = [e["line"] for e in ev if e["event"] == "instance_status"
                  and t_out <= e["ts"] <= end]
        t.check_eq(during, [], f"{p.name} made no call while ZooKeeper was unavailable")
        lost = [e for e in ev if e["event"] == "leadership_lost"]
        if p is leader:
            t.check_eq([e["event"] for e in ev][:2], ["leader_paused", "leadership_lost"],
                       f"{p.name} paused, then presumed its leadership lost")
            t.check(lost and lost[0]["ts"] - t_out >= SESSION_MS / 1000 - 0.1,
                    f"{p.name} gave up leadership only after the session timeout "
                    f"({(lost[0]['ts'] - t_out) * 1000:.0f} ms)")
        t.check([e for e in ev if e["event"] == "election_joined" and e["ts"] > t_back],
                f"{p.name} rejoined the election after recovery")
    renewed = 0
    for a in s.agents:
        ev = f.events(a.proc, {"zk_session_lost", "registered", "status_change"},
                      since=marks[a.proc.name])
        t.check_eq([e["line"] for e in ev if e["event"] == "status_change"], [],
                   f"{a.id}: no status change at all")
        lost = [e for e in ev if e["event"] == "zk_session_lost"]
        reg = [e for e in ev if e["event"] == "registered"]
        t.check(len(reg) >= 1, f"{a.id} registered again ({len(reg)} time(s))")
        t.check(lost and lost[0]["ts"] < t_back, f"{a.id} presumed its session lost during "
                                                 f"the outage")
        t.check(reg and reg[-1]["ts"] > t_back, f"{a.id} registered again after recovery")
        renewed += 1

    t.step("a flip after recovery converges")
    t_flip = time.time()
    f.flip(s, "green")
    st = f.wait_converged(s, "green", timeout=20)
    t_green = f.iso_to_epoch(st["since"])
    t.check_eq(s.healths(), f.expected_health(s, "green"), "every /health on green")
    tl.stop()
    t.check_eq(tl.zero_up(), [], "make before break during that flip too")
    t.check_eq(sorted(i["id"] for i in st["instances"]),
               ["blue-1", "blue-2", "green-1", "green-2"], "/status lists each agent once")
    t.log(f"RESULT quorum_lost: outage {t_back - t_out:.1f} s; leader paused "
          f"{(t_paused - t_out) * 1000:.0f} ms after the kill; quorum back "
          f"{(t_quorum - t_back) * 1000:.0f} ms after restart; all {renewed} agent nodes back "
          f"{(t_nodes - t_quorum) * 1000:.0f} ms and /status converged "
          f"{(t_conv - t_quorum) * 1000:.0f} ms after quorum; flip -> converged "
          f"{(t_green - t_flip) * 1000:.0f} ms")


h.run(test)
