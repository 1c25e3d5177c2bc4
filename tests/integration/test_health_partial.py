#!/usr/bin/env python3
"""Issue #8, one instance of the new colour is broken (2 blue + 2 green, min_ready 1): the
switch still converges on the healthy one, /status names the broken instance, its agent's
GET /health never answers 200, and no request reaches it.

green-2's application runs but is broken from the start (GET /healthz 503, every other
request 500). HAProxy `option httpchk GET /health` on the agents (inter 100 rise 1 fall 1);
agents check every 200 ms. wrk (-c32) and a probe run through HAProxy; a sampler polls
green-2's agent /health every few ms from before the switch to the end. "No request reaches
it" is counted three ways: the probe's X-Served-By, HAProxy's response counter for green-2,
and green-2's own count of ordinary requests (GET /admin/stats).
"""

import shutil
import threading
import time

import harness as h
from bgsys import FAST_CHECK, HealthRig


def test(t):
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")
    rig = HealthRig(t, inter=100, rise=1, fall=1, check=FAST_CHECK, label="partial",
                    min_ready=1,
                    app_kw=lambda name: {"broken": name == "green-2"}).start()
    s = rig.sys
    bad = rig.agents["green-2"]

    codes = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            codes.append(bad.health(timeout=2))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = rig.answered()["green-2"][0]
    stats0 = rig.stats("green-2")  # HAProxy's first checks may have let a request through

    t.step("(d) switch to green under load, green-2 broken")
    load = rig.load()
    time.sleep(1)
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "30s")
    t.check_eq(rc, 0, "bgctl switch green --wait exits 0: converged with green-1 alone")
    st = s.status()
    t.check(st["phase"] == "converged" and st["applied"] == "green",
            f"/status converged on green: {st['phase']} {st['applied']}")
    inst = {i["id"]: i for i in st["instances"]}
    t.check_eq((inst["green-1"]["status"], inst["green-2"]["status"]),
               ("UP", "OUT_OF_SERVICE"), "green-1 UP, the broken green-2 OUT_OF_SERVICE")
    t.check("green-2" in str(st.get("reason", "")) + str(inst["green-2"]),
            f"/status names the broken instance: reason {st.get('reason')!r}, "
            f"entry {inst['green-2']}")
    rc, out, _ = s.bgctl("status")
    t.check("green-2" in out and "unhealthy" in out.lower(),
            "bgctl status shows green-2 unhealthy")
    rig.wait_serving("green")
    time.sleep(2)
    res = load.stop()
    stop.set()
    sampler.join(5)
    after = rig.answered()["green-2"][0]
    stats = rig.stats("green-2")
    t.log(f"RESULT wrk {res['requests']} requests, failed {res['failed']}; probe served by "
          f"{res['served_by']}; green-2: /health sampled {len(codes)} times "
          f"{sorted(set(codes), key=str)}, HAProxy responses {after - before}, app {stats}")
    t.check(len(codes) > 100 and 200 not in codes,
            f"green-2's agent never answered /health 200 ({len(codes)} samples)")
    t.check_eq(res["served_by"].get("green-2", 0), 0, "the probe was never served by green-2")
    t.check_eq(after - before, 0, "HAProxy sent green-2 no request (show stat)")
    t.check_eq((stats["served"] - stats0["served"],
                stats["served_broken"] - stats0["served_broken"]), (0, 0),
               "green-2's application answered no ordinary request")
    t.check_eq(res["failed"], 0, "wrk: 0 failed requests")
    t.check_eq(res["probe_failures"], [], "probe: every request answered 200")
    t.check(res["served_by"].get("green-1", 0) > 0, "green-1 serves")


h.run(test)
