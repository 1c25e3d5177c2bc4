#!/usr/bin/env python3
"""Issue #8, an exec check that hangs is killed at its timeout and counts as a failure.

One agent whose check is `exec: [/bin/sh, -c, "echo $$ >> PIDS; exec sleep 30"]` with
interval 300 ms, timeout 500 ms, rise 1, fall 2. Every check run writes its pid (the same pid
then becomes `sleep 30`). Checked: the agent is unhealthy (node, GET /v1/status with the
check's message, /metrics), every check process is gone within timeout + 1.5 s of being
started (no zombie either), the agent never has more than 2 check processes at once, and its
HTTP API answers promptly while a check hangs. Then the check is made to pass (a file switch
in the same script): the agent turns healthy.
"""

import os
import re
import time

import harness as h
from bgsys import System

TIMEOUT_MS = 500


def proc_state(pid):
    """'R', 'S', 'Z', ... or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def children(pid):
    r = h.run_cmd(["pgrep", "-P", str(pid)], quiet=True)
    return [int(x) for x in r.stdout.split()]


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    pids_file = t.path("pids")
    ok_file = t.path("check-passes")
    script = (f"echo $$ >> {pids_file}; [ -e {ok_file} ] && exit 0; exec sleep 30")
    a = s.agent("blue-1", "blue", start=False,
                check={"exec": ["/bin/sh", "-c", script], "interval": 300,
                       "timeout": TIMEOUT_MS, "rise": 1, "fall": 2})
    a.start()

    t.step("(f) the check hangs: killed at its timeout, a failure")
    seen = {}  # pid -> first time seen
    gone = {}  # pid -> time it was gone
    zombies = set()
    most = 0
    api_ms = []
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:
        now = time.monotonic()
        try:
            lines = pids_file.read_text().split()
        except OSError:
            lines = []
        for p in map(int, lines):
            seen.setdefault(p, now)
        for p in seen:
            if p in gone:
                continue
            st = proc_state(p)
            if st is None:
                gone[p] = now
            elif st == "Z":
                zombies.add(p)
        most = max(most, len(children(a.proc.pid)))
        t0 = time.monotonic()
        h.http("GET", a.url + "/v1/status", timeout=2)
        api_ms.append((time.monotonic() - t0) * 1000)
        time.sleep(0.02)
    st = a.status()
    chk = st.get("check") or {}
    t.log(f"RESULT {len(seen)} check runs in 4 s; lifetimes (ms) "
          f"{[round((gone[p] - seen[p]) * 1000) for p in seen if p in gone]}; "
          f"most check processes at once {most}; GET /v1/status max {max(api_ms):.0f} ms; "
          f"check {chk}")
    t.check(len(seen) >= 3, f"the check ran repeatedly ({len(seen)} runs in 4 s)")
    finished = [p for p in seen if seen[p] < t_end - (TIMEOUT_MS / 1000 + 1.5)]
    late = [p for p in finished if p not in gone or gone[p] - seen[p] > TIMEOUT_MS / 1000 + 1.5]
    t.check(finished and not late,
            f"every hanging check process is gone within {TIMEOUT_MS} ms + 1.5 s "
            f"({len(finished)} checked; late: {late})")
    t.check_eq(sorted(zombies & set(finished) - set(gone)), [], "no zombie left behind")
    t.check(most <= 2, f"at most 2 check processes at a time ({most})")
    t.check(max(api_ms) < 1000, f"the agent's API answers while a check hangs "
                                f"(slowest {max(api_ms):.0f} ms)")
    t.check(st.get("healthy") is False and chk.get("type") == "exec" and
            re.search(r"time", str(chk.get("message", "")) + str(chk.get("result", "")), re.I),
            f"GET /v1/status: unhealthy, the check timed out: {chk}")
    node = h.zk_get_json(zk, a.node)
    t.check_eq(node.get("healthy"), False, "the node says healthy: false")
    _, metrics, _ = h.http("GET", a.url + "/metrics")
    fails = [ln for ln in metrics.splitlines() if ln.startswith("bg_agent_app_checks_total")]
    t.check(any(not re.search(r'result="(ok|pass|success)"', ln) and float(ln.split()[-1]) >= 2
                for ln in fails), f"/metrics counts the failed checks: {fails}")

    t.step("the check passes again: healthy")
    ok_file.write_text("")
    h.wait_until(lambda: (h.zk_get_json(zk, a.node) or {}).get("healthy") is True, timeout=10,
                 msg="node healthy again")
    t.check_eq(a.status().get("healthy"), True, "GET /v1/status healthy")
    left = [p for p in seen if proc_state(p) not in (None,)]
    t.check_eq(left, [], "no check process of the hanging runs is left")
    t.check(os.path.exists(pids_file), "pids recorded")


h.run(test)
