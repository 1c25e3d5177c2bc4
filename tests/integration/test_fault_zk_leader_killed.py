#!/usr/bin/env python3
"""kill -9 of the ZooKeeper ensemble's leader server in the middle of a switch (settling):
clients reconnect to the survivors, the switch completes, and no agent's ephemeral node is lost
(czxid unchanged); the leading controller pauses while disconnected and makes no call then.
Round 1 kills at the start of the settle, round 2 (after the server came back) kills the new
ZooKeeper leader 250 ms before the settle ends, so that the settle ends during the outage.
Prints the recovery time (kill -> converged)."""

import time

import faults as f
import harness as h

SETTLE_MS = 2000
AGENT_SESSION_MS = 4000  # the DESIGN default; ZooKeeper re-elects well within it


def czxids(s):
    return {a.id: (f.zk_retry(h.zk_stat, s.zk, a.node) or {}).get("czxid") for a in s.agents}


def test(t):
    ens = t.ensemble()
    s = f.system(t, ens, blue=2, green=2, controllers=2, settle=SETTLE_MS,
                 agent_kw={"session_timeout_ms": AGENT_SESSION_MS})
    before = czxids(s)
    t.check(all(before.values()), f"every agent registered: {before}")
    marks = {a.id: a.proc.mark() for a in s.agents}
    cmarks = {p.id: p.mark() for p in s.controllers}
    cmarks0 = dict(cmarks)
    tl = f.Timeline(s.agents).start()
    tl.wait_samples()
    results = []

    for round_, color in enumerate(("green", "blue")):
        zl = ens.leader_index()
        t.check(zl is not None, "the ensemble has a leader")
        t.step(f"round {round_ + 1}: flip to {color}; kill -9 ZooKeeper leader "
               f"{ens.servers[zl].name} while settling")
        t_flip = time.time()
        f.flip(s, color)
        st = f.wait_phase(s, "settling", color, timeout=10)
        if round_ == 1:  # late in the settle: it ends while the leader is paused
            time.sleep(max(0.0, f.iso_to_epoch(st["since"]) + SETTLE_MS / 1000 - 0.25 -
                           time.time()))
        t_kill = time.time()
        ens.kill(zl)
        st = f.wait_converged(s, color, timeout=30)
        t_conv = f.iso_to_epoch(st["since"])
        t.check_eq(s.healths(), f.expected_health(s, color), f"every /health on {color}")
        new_leader = ens.wait_leader(timeout=20, exclude=zl)
        h.log(f"{ens.servers[new_leader].name} leads the ensemble now")
        now = czxids(s)
        t.check_eq(now, before, "no agent ephemeral was lost (czxid unchanged)")
        results.append((t_conv - t_kill, t_conv - t_flip))
        t.log(f"RESULT zk_leader_killed round {round_ + 1}: kill -> converged "
              f"{(t_conv - t_kill) * 1000:.0f} ms (settle {SETTLE_MS} ms), flip -> converged "
              f"{(t_conv - t_flip) * 1000:.0f} ms")
        t.check(t_conv - t_kill < SETTLE_MS / 1000 + 6, "converged within settle + 6 s")
        lead = next(p for p in s.controllers if p.id == st["leader"])
        ev = f.events(lead, {"leader_paused", "leader_resumed", "instance_status"},
                      since=cmarks[lead.id])
        pauses = [e for e in ev if e["event"] == "leader_paused" and e["ts"] >= t_kill - 0.01]
        t.check_eq(len(pauses), 1, f"the leader {lead.id} paused once when its server went")
        resumed = [e for e in ev if e["event"] == "leader_resumed" and e["ts"] >= pauses[0]["ts"]]
        t.check(resumed, f"{lead.id} resumed")
        during = [e["line"] for e in ev if e["event"] == "instance_status"
                  and pauses[0]["ts"] <= e["ts"] < resumed[0]["ts"]]
        t.check_eq(during, [], f"{lead.id} made no call while paused")
        gaps = []
        for p in [a.proc for a in s.agents] + s.controllers:
            ev = f.events(p, {"zk_disconnected", "zk_connected"}, since=p.run_offset)
            down = [e["ts"] for e in ev
                    if e["event"] == "zk_disconnected" and e["ts"] >= t_kill - 0.01]
            if down:
                up = [e["ts"] for e in ev if e["event"] == "zk_connected" and e["ts"] >= down[0]]
                t.check(up, f"{p.name} reconnected")
                gaps.append(up[0] - down[0])
        t.log(f"{len(gaps)} of {len(s.agents) + len(s.controllers)} daemons were disconnected; "
              f"longest reconnect {max(gaps) * 1000:.0f} ms; leader paused "
              f"{(resumed[0]['ts'] - pauses[0]['ts']) * 1000:.0f} ms")
        t.check_eq(len(gaps), len(s.agents) + len(s.controllers),
                   "every daemon lost its server (the ensemble re-elected) and reconnected")
        cmarks = {p.id: p.mark() for p in s.controllers}
        t.step(f"restart {ens.servers[zl].name}")
        ens.start(zl)
        ens.wait_quorum(30)

    tl.stop()
    t.check_eq(tl.zero_up(), [], f"some instance UP at every moment ({tl.samples} samples)")
    for a in s.agents:
        ev = [e["event"] for e in f.events(a.proc, {"zk_session_lost", "registered",
                                                     "node_vanished"}, since=marks[a.id])]
        t.check_eq(ev, [], f"{a.id}: no session loss or re-registration")
        want = [503, 200] if a.color == "blue" else [200, 503]
        t.check_eq(tl.codes_since(a.id, 0)[1:], want, f"{a.id}: changed exactly as switched")
    for p in s.controllers:
        ev = [e["event"] for e in f.events(p, {"leadership_lost", "zk_reopen"},
                                           since=cmarks0[p.id])]
        t.check_eq(ev, [], f"{p.name}: kept its session (no leadership_lost, no reopen)")
    t.log("RESULT zk_leader_killed: kill -> converged ms: " +
          ", ".join(f"{a * 1000:.0f}" for a, _ in results))


h.run(test)
