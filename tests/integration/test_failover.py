#!/usr/bin/env python3
"""kill -9 of the leading controller: the standby takes over within the session timeout
(+ margin) and a flip afterwards converges; failover time is measured and printed."""

import re
import signal
import time

import harness as h
from bgsys import standard

SESSION_MS = 2000


def first_action_after(p, since):
    """Wall time (s) of the leader_elected line in p's log after `since` (a log mark)."""
    m = p.wait_log(r"ts=(\S+) .*event=leader_elected", timeout=15, since=since)
    return m.group(1)


def iso_to_epoch(ts):
    return time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + \
        int(ts[20:23]) / 1000


def test(t):
    s = standard(t, blue=2, green=2, controllers=2)
    samples = []
    for round_ in range(3):
        leader = s.leader()
        t.check(leader is not None, "a leader is known")
        standby = next(p for p in s.controllers if p is not leader and p.alive())
        mark = standby.mark()
        t.step(f"round {round_ + 1}: kill -9 {leader.name}")
        t0 = time.time()
        leader.kill(signal.SIGKILL)
        leader.wait(5)
        ts = first_action_after(standby, mark)
        took = (iso_to_epoch(ts) - t0) * 1000
        samples.append(took)
        t.log(f"failover: kill -9 -> {standby.name} leader_elected in {took:.0f} ms "
              f"(session timeout {SESSION_MS} ms)")
        t.check(took <= SESSION_MS + 1500, f"took over within the session timeout + margin "
                                           f"({took:.0f} ms)")
        color = "green" if s.status()["applied"] == "blue" else "blue"
        s.flip(color)
        s.wait_converged(color)
        st = s.status()
        t.check_eq(st["leader"], standby.name.replace("controller-", ""),
                   "/status names the new leader")
        want = {a.id: (200 if a.color == color else 503) for a in s.agents}
        t.check_eq(s.healths(), want, f"flip to {color} after failover converged")
        # Restart the killed one as the new standby.
        leader.start()
        leader.wait_log(r"event=election_joined", timeout=10)
    samples.sort()
    t.log(f"failover ms (sorted): {', '.join(f'{x:.0f}' for x in samples)}; "
          f"median {samples[len(samples) // 2]:.0f}")

    t.step("history has the switches")
    rc, out, _ = s.bgctl("history")
    t.check_eq(rc, 0, "bgctl history exit code")
    t.check(len(re.findall(r"converged", out)) >= 4, f"history lists the switches:\n{out}")


h.run(test)
