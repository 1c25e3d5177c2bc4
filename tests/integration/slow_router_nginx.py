#!/usr/bin/env python3
"""bg-router under load: wrk -c64 (keep-alive) and a probe client through a real nginx driven
by bg-router (kind nginx, confirm on), 2 blue + 2 green bg-demo-app instances with agents, one
controller, while `bgctl switch <colour> --wait` flips FLIPS times (BG_ROUTER_FLIPS, default 30).

Passes when wrk reports no non-2xx response and the probe no error status, and after every
flip the router serves only the new colour and the probe sees an unbroken run of 20 new-colour
answers. Measured and logged (not asserted): wrk's and the probe's socket errors (nginx
closes idle keep-alive connections when a reload retires its old workers; bench/ measured the
same for the seed-style reload), the cutover (flip -> the first request of the unbroken
new-colour run), reloads per flip, and the probe's old-colour answers to requests sent after
`bgctl switch --wait` returned: the controller does not wait for routers yet (DESIGN §13's
next step), so those may be > 0."""

import os
import re
import shutil
import time

import harness as h
import routerrig as ng
from slow_zero_downtime import Probe, Wrk, other, pct


def start(t):
    zk = t.zookeeper()
    s = ng.start_system(t, zk)
    web = ng.Nginx(t, t.path("nginx"), workers=2, connections=4096)
    rconf = ng.router_yaml(t.path("router.yaml"), zk, s.root,
                           nginx=ng.nginx_section(web, confirm_port=h.free_port(),
                                                  quiet_test=True))
    router = ng.start_router(t, rconf)
    router.wait_log(r"event=nginx_apply_failed", timeout=20)  # nginx is not running yet
    web.start()
    h.wait_until(lambda: ng.serving_colors(s) == ["blue"], timeout=20, msg="router never served blue")
    return s, router, web.port


def test(t):
    for exe in ("nginx", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")
    flips = int(os.environ.get("BG_ROUTER_FLIPS", "30"))
    s, router, port = start(t)
    url = f"http://127.0.0.1:{port}/"
    probe = Probe(port)
    probe.start()
    wrk = Wrk(t, url, connections=64, threads=2, name="wrk-router")
    time.sleep(1.0)
    mark = router.mark()
    per_flip = []
    color = "blue"
    try:
        for _ in range(flips):
            color = other(color)
            per_flip.append(ng.flip_once(t, s, probe, color))
            time.sleep(0.2)
    finally:
        report = wrk.stop()
        probe.stop()
    reloads = len(re.findall(r"event=nginx_applied", router.log_text(mark)))
    failed = len(re.findall(r"event=nginx_apply_failed", router.log_text(mark)))
    cut = [f["cutover_ms"] for f in per_flip if f["cutover_ms"] is not None]
    stale = [f["stale_after_wait"] for f in per_flip]
    h.log(f"wrk: {report['requests']} requests, non-2xx {report['non2xx']}, socket errors "
          f"{report['errors']}; probe {probe.total} requests, {len(probe.failures)} failed")
    h.log(f"cutover p50 {pct(cut, 50)} ms p99 {pct(cut, 99)} ms; reloads {reloads} for "
          f"{flips} flips ({reloads / flips:.2f} per flip), failed changes {failed}; old-colour "
          f"answers after --wait returned: {sum(stale)} in {sum(1 for x in stale if x)} flips")
    t.check_eq(report["non2xx"], 0, "wrk: no non-2xx response")
    # A reload retires the old workers, which close their idle keep-alive connections: a
    # request sent on one at that moment is reset (a socket error, not an answer).
    answered_bad = [f for f in probe.failures if f[1] != 0]
    h.log(f"probe: {len(probe.failures) - len(answered_bad)} connection(s) reset by a reload")
    t.check_eq(answered_bad, [], "probe: no request answered with an error status")
    t.check_eq(failed, 0, "no failed change")
    t.check(all(f["streak"] >= 20 for f in per_flip), "every flip ends served by the new colour")
    t.check(reloads <= 2 * flips, f"at most 2 reloads per flip (overlap, end): {reloads}")


h.run(test)
