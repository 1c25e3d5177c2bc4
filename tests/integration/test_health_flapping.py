#!/usr/bin/env python3
"""Issue #8, a flapping application causes no switch storm.

2 blue + 2 green; the green applications flap (GET /healthz 200 and 503 in turn, 500 ms
each). Agents check every 200 ms (rise 2, fall 2), so each green agent's verdict changes
about twice a second; the controller has switch.min_healthy_time 2s (a new-colour instance
must have been healthy that long before it is marked UP). /active_color is set to green and
the system is watched for 10 s under load through HAProxy (option httpchk GET /health on
the agents, inter 100 rise 1 fall 1).

Counted over those 10 s: the green agents' verdict changes in their nodes, /status writes
and phase changes, the controller's status calls (event=instance_status log lines),
/history entries, and who answered through HAProxy. Asserted: green is never marked UP,
blue is never taken out, at most 2 phase changes and at most 2 history entries, and 0
failed requests.
"""

import re
import shutil
import time

import harness as h
from bgsys import FAST_CHECK, HealthRig

WATCH_S = 10


def test(t):
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")
    rig = HealthRig(t, inter=100, rise=1, fall=1, check=FAST_CHECK, label="flap",
                    min_healthy_time="2s",
                    app_kw=lambda name: {"flap_ms": 500} if name.startswith("green") else {}
                    ).start()
    s = rig.sys
    root = s.root
    hist0 = len(h.zk_ls(rig.zk, root + "/history") or [])

    t.step(f"switch to a flapping green; watch {WATCH_S} s under load")
    load = rig.load()
    time.sleep(1)
    mark = rig.ctl.mark()
    v0 = h.zk_stat(rig.zk, root + "/status")["version"]
    nv0 = {n: h.zk_stat(rig.zk, rig.agents[n].node)["version"] for n in ("green-1", "green-2")}
    s.flip("green")
    phases, verdicts, green_health = [], {"green-1": [], "green-2": []}, []
    t_end = time.monotonic() + WATCH_S
    while time.monotonic() < t_end:
        st = s.status()
        ph = (st["phase"], st["desired"])
        if not phases or phases[-1] != ph:
            phases.append(ph)
        for n in verdicts:
            node = rig.node(n)
            v = node.get("healthy") if node else None
            if not verdicts[n] or verdicts[n][-1] != v:
                verdicts[n].append(v)
        green_health += [rig.agents[n].health() for n in verdicts]
        time.sleep(0.05)
    res = load.stop()
    v1 = h.zk_stat(rig.zk, root + "/status")["version"]
    nv1 = {n: h.zk_stat(rig.zk, rig.agents[n].node)["version"] for n in ("green-1", "green-2")}
    log = rig.ctl.log_text(mark)
    calls = re.findall(r"event=instance_status .*", log)
    green_up = [c for c in calls if "color=green" in c and "status=UP" in c]
    blue_out = [c for c in calls if "color=blue" in c and "OUT_OF_SERVICE" in c]
    hist = (h.zk_ls(rig.zk, root + "/history") or [])[hist0:]
    node_writes = {n: nv1[n] - nv0[n] for n in nv0}
    t.log(f"RESULT over {WATCH_S} s: node writes {node_writes}, verdict changes seen "
          f"{ {n: len(v) - 1 for n, v in verdicts.items()} }; /status writes {v1 - v0}; "
          f"phase changes {len(phases) - 1} (first: {phases[:4]}); controller status calls {len(calls)} (green UP "
          f"{len(green_up)}, blue OUT {len(blue_out)}); history entries {len(hist)}; "
          f"wrk {res['requests']} requests, failed {res['failed']}; probe served by "
          f"{res['served_by']}")
    t.check(sum(node_writes.values()) >= 4,
            f"the green applications did flap: their agents rewrote their nodes "
            f"{node_writes} times")
    t.check_eq(green_up, [], "green was never marked UP")
    t.check_eq(blue_out, [], "blue was never taken out")
    t.check(200 not in green_health, f"no green agent answered /health 200 "
                                     f"({len(green_health)} samples)")
    results = [(h.zk_get_json(rig.zk, f"{root}/history/{n}") or {}).get("result") for n in hist]
    t.check(len(phases) <= 3, f"at most 2 phase changes ({len(phases) - 1}: {phases[:6]}...)")
    t.check(len(hist) <= 2, f"at most 2 history entries ({len(hist)}: {results})")
    t.check(v1 - v0 <= 4 * WATCH_S, f"/status written at most 4 times a second ({v1 - v0})")
    t.check_eq(res["failed"], 0, "wrk: 0 failed requests")
    t.check_eq(set(res["served_by"]), {"blue-1", "blue-2"}, "only blue answered")
    st = s.status()
    t.check_eq((st["phase"], st["desired"]), ("blocked", "green"),
               f"/status stays blocked on green: {st['reason']!r}")


h.run(test)
