#!/usr/bin/env python3
"""Issue #8, a bad deploy is refused: a switch to a colour whose application is down (agents
running, application not started) is refused with the reason, and completes by itself once
the application is up — with HAProxy's default check timing (inter 2s rise 2 fall 3) and the
agents' default check timing (interval 1s, timeout 1s, rise 2, fall 3).

2 blue + 2 green; HAProxy: traffic to each application's port, `option httpchk GET /health`
on each agent's port. wrk (-c32) and a probe run through HAProxy the whole time.

(a) the green applications are not running: `bgctl switch green --wait` exits 2 naming
    green-1 and green-2 and why; /status blocked; blue keeps serving; 0 failed requests.
    The agents report the verdict in their node, GET /v1/status and /metrics.
(b) the green applications start: the switch completes by itself (converged on green), the
    traffic moves to green, still 0 failed requests.
"""

import re
import shutil
import json
import time

import harness as h
from bgsys import HealthRig

GREEN = ("green-1", "green-2")


def agent_metric(agent, name):
    """Sum of a metric's samples in the agent's /metrics (None when absent)."""
    code, text, _ = h.http("GET", agent.url + "/metrics")
    vals = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    return sum(vals) if vals else None


def test(t):
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")
    rig = HealthRig(t, inter=2000, rise=2, fall=3, check=None, label="gate",
                    app_kw=lambda name: {"start": not name.startswith("green")}).start()
    s = rig.sys

    t.step("the agents of the stopped green applications report unhealthy")
    for name in GREEN:
        a = rig.agents[name]
        node = rig.node(name)
        t.check(node is not None and node.get("healthy") is False and node.get("check") and
                node.get("address") == f"127.0.0.1:{rig.apps[name].port}",
                f"{name}'s node: healthy false, the check message, address: {node}")
        st = a.status()
        chk = (st or {}).get("check") or {}
        t.check(st is not None and st.get("healthy") is False and chk.get("type") == "http" and
                chk.get("consecutive", 0) >= 1 and chk.get("message"),
                f"{name} GET /v1/status: healthy false, check {chk}")
        t.check_eq(agent_metric(a, "bg_agent_healthy"), 0.0, f"{name} /metrics bg_agent_healthy")
        t.check_eq(a.health(), 503, f"{name} GET /health 503")
    for name in ("blue-1", "blue-2"):
        t.check_eq(rig.node(name).get("healthy"), True, f"{name}'s node says healthy")
        t.check_eq(agent_metric(rig.agents[name], "bg_agent_healthy"), 1.0,
                   f"{name} /metrics bg_agent_healthy")

    t.step("(a) switch to green under load: refused")
    load = rig.load()
    time.sleep(1)
    t0 = time.monotonic()
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "60s")
    secs = time.monotonic() - t0
    t.check_eq(rc, 2, f"bgctl switch green --wait exits 2 (blocked) after {secs:.2f} s")
    t.check(all(n in err + out for n in GREEN),
            f"bgctl's reason names both unhealthy instances: {(err + out).strip()!r}")
    st = s.status()
    t.check(st["phase"] == "blocked" and st["desired"] == "green" and
            all(n in st["reason"] for n in GREEN),
            f"/status blocked, reason names them: {st['phase']} {st['reason']!r}")
    rc2, out2, _ = s.bgctl("status")
    t.check(rc2 == 0 and all(n in out2 for n in GREEN) and "unhealthy" in out2.lower(),
            "bgctl status shows the unhealthy instances")
    time.sleep(3)  # longer than one HAProxy check interval: nothing changes meanwhile
    for name in ("blue-1", "blue-2"):
        t.check_eq(rig.agents[name].health(), 200, f"{name} still UP")
    mid = load.probe.total
    served = {k for _, _, c, _, k in load.records() if c == 200}
    t.check_eq(served, {"blue-1", "blue-2"}, "only blue answered while the switch was refused")

    t.step("(b) the green applications start: the switch completes by itself")
    t_up = time.time()
    for name in GREEN:
        rig.apps[name].start()
        rig.apps[name].wait_listening()
    s.wait_converged("green", timeout=90)
    conv_s = time.time() - t_up
    t.log(f"green applications started -> converged on green: {conv_s:.2f} s "
          f"(agent rise 2 x 1 s, the controller's 2 s hold after a refused switch, then 4 "
          f"confirmations of up to 3 HAProxy checks x 2 s)")
    # Converged once min_ready (1) green is UP; the other may still be rising: it follows.
    want = [("blue-1", "OUT_OF_SERVICE"), ("blue-2", "OUT_OF_SERVICE"), ("green-1", "UP"),
            ("green-2", "UP")]
    h.wait_until(lambda: sorted((i["id"], i["status"]) for i in s.status()["instances"]) == want,
                 timeout=30, msg=lambda: f"both greens UP: {s.status()['instances']}")
    t.check_eq(sorted((i["id"], i["status"]) for i in s.status()["instances"]), want,
               "/status: green UP, blue OUT_OF_SERVICE")
    rig.wait_serving("green", timeout=30)
    time.sleep(1)
    res = load.stop()
    t.log(f"load over (a)+(b): wrk {res['requests']} requests, non-2xx {res['non2xx']}, "
          f"socket errors {res['errors']}; probe {res['probe_requests']} requests "
          f"({mid} before the start), served by {res['served_by']}")
    t.check(res["requests"] > 1000, f"wrk got answers ({res['requests']})")
    t.check_eq(res["failed"], 0, "wrk: 0 failed requests (non-2xx + socket errors)")
    t.check_eq(res["probe_failures"], [], "probe: every request answered 200")
    t.check(all(res["served_by"].get(n, 0) > 0 for n in GREEN),
            "the probe was served by both greens after the switch")
    rc, out, err = s.bgctl("history", "-n", "5")
    t.log("bgctl history:\n" + out)
    rc, out, err = s.bgctl("history", "--json", "-n", "5")
    hist = [(e.get("result"), e.get("from"), e.get("to")) for e in json.loads(out)]
    t.check(("refused", "blue", "green") in hist and ("converged", "blue", "green") in hist,
            f"/history: the switch to green refused, then converged ({hist})")


h.run(test)
