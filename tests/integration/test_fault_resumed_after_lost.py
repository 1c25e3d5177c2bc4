#!/usr/bin/env python3
"""Bug repro (log): a leader frozen past its session timeout logs leader_paused and
leadership_lost on waking, reopens its session -- and then logs leader_resumed with its old
epoch although it no longer leads (bg_ctl_run keeps `paused` set across BG_ZK_LOST). An
operator (or an alert on leader_resumed) is told the old leader resumed. Expected: after
leadership_lost no leader_resumed until it is elected again."""

import signal
import time

import faults as f
import harness as h


def test(t):
    zk = t.zookeeper()
    s = f.system(t, zk, blue=1, green=1, controllers=2)
    leader = f.leader_of(s)
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
    after = ev[ev.index("leadership_lost") + 1:]
    t.check("leader_resumed" not in after[:after.index("leader_elected")]
            if "leader_elected" in after else "leader_resumed" not in after,
            f"no leader_resumed after leadership_lost until elected again: {after}")


h.run(test)
