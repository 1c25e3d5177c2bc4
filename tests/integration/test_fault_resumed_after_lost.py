#!/usr/bin/env python3
"""Regression (log; failed when written, fixed by 8256ca2): a leader frozen past its session
timeout logs leader_paused and leadership_lost on waking and reopens its session -- and then
logged leader_resumed with its old epoch although it no longer led (bg_ctl_run kept `paused`
set across BG_ZK_LOST). An operator (or an alert on leader_resumed) was told the old leader
resumed. Expected: after leadership_lost no leader_resumed until it is elected again."""

import signal
import time

import faults as f
import harness as h


def test(t):
    zk = t.zookeeper()
    s = f.system(t, zk, blue=1, green=1, controllers=2)
    paused_first = 0
    for round_ in range(3):  # the bug needs leader_paused before leadership_lost (usual)
        leader = f.leader_of(s)
        t.step(f"round {round_ + 1}: freeze {leader.name} past its session")
        mark = leader.mark()
        leader.kill(signal.SIGSTOP)
        time.sleep(4)  # session timeout 2 s
        leader.kill(signal.SIGCONT)
        leader.wait_log(r"event=election_joined", timeout=10, since=mark)
        time.sleep(0.5)
        ev = [e["event"] for e in f.events(leader, {"leader_paused", "leadership_lost",
                                                    "leader_resumed", "leader_elected",
                                                    "election_joined"}, since=mark)]
        t.log(f"events after SIGCONT: {ev}")
        t.check("leadership_lost" in ev, "it logged leadership_lost")
        paused_first += ev.index("leader_paused") < ev.index("leadership_lost") \
            if "leader_paused" in ev else 0
        after = ev[ev.index("leadership_lost") + 1:]
        upto = after[:after.index("leader_elected")] if "leader_elected" in after else after
        t.check("leader_resumed" not in upto,
                f"no leader_resumed after leadership_lost until elected again: {after}")
        f.wait_converged(s, "blue", timeout=15)
    t.log(f"leader_paused came first in {paused_first} of 3 rounds")


h.run(test)
