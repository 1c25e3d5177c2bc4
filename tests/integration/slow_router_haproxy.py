#!/usr/bin/env python3
"""bg-router kind haproxy under load: wrk -c64 (keep-alive) and a probe client through a real
HAProxy whose backend starts empty and is driven by bg-router over the Runtime API, 2 blue +
2 green bg-demo-app instances with agents, one controller, while `bgctl switch <colour> --wait`
flips FLIPS times (BG_ROUTER_FLIPS, default 30); then HAProxy is reloaded under the same load
(the router keeps haproxy.file, the backend section HAProxy loads: the servers survive).

Passes when, during the flips, wrk reports no non-2xx response and no socket error, the probe no
failure, no request the probe sent after `bgctl switch --wait` returned reached the old colour,
no change failed, HAProxy was never reloaded by the router, and no non-2xx answer came across
HAProxy's own reload. Measured and logged: the cutover (flip -> the first request of an unbroken
run of 20 new-colour answers), the changes per flip, the reload's socket errors."""

import os
import re
import shutil
import signal
import time

import harness as h
import routerrig as ng
from slow_zero_downtime import Probe, Wrk, other, pct
from test_router_haproxy import HAPROXY_CFG_NO_BACKEND, pid_of, ready


def start(t):
    zk = t.zookeeper()
    s = ng.start_system(t, zk)
    sock, port, hport = t.path("haproxy.sock"), h.free_port(), h.free_port()
    cfg, backend = t.path("haproxy.cfg"), t.path("haproxy-app.cfg")
    cfg.write_text(HAPROXY_CFG_NO_BACKEND.format(sock=sock, port=port))
    backend.write_text("backend app\n    balance roundrobin\n")  # kept by the router from now on
    hap = t.proc(["haproxy", "-W", "-db", "-f", str(cfg), "-f", str(backend)], name="haproxy")
    h.wait_until(lambda: sock.exists(), timeout=10, msg="HAProxy never opened its socket")
    rconf = h.write_yaml(t.path("router.yaml"), {
        "zookeeper": {"connect": zk.connect, "root": s.root, "session_timeout_ms": 4000},
        "router": {"id": "lb-1", "kind": "haproxy"},
        "haproxy": {"socket": str(sock), "backend": "app", "file": str(backend)},
        "http": {"listen": f"127.0.0.1:{hport}"},
    })
    router = t.proc([h.bin("bg-router"), "-c", str(rconf)], name="router")
    h.wait_until(lambda: ng.serving_colors(s) == ["blue"], timeout=20, msg="router never served blue")
    return s, router, hap, sock, port, hport


def metric(hport, name):
    text = h.http("GET", f"http://127.0.0.1:{hport}/metrics")[1]
    return int(float(re.search(rf"^{name} (\S+)$", text, re.M).group(1)))


def reload_under_load(t, hap, sock, router, port, color):
    """HAProxy reloaded while wrk runs: the new process reads the servers from haproxy.file."""
    wrk = Wrk(t, f"http://127.0.0.1:{port}/", connections=64, threads=2, name="wrk-reload")
    time.sleep(1.0)
    old, mark = pid_of(sock), router.mark()
    t0 = time.monotonic()
    hap.kill(signal.SIGUSR2)
    h.wait_until(lambda: (pid_of(sock) or old) != old and len(ready(sock)) == 2, timeout=10,
                 msg="servers never back after HAProxy's reload")
    back = time.monotonic() - t0
    time.sleep(1.0)
    report = wrk.stop()
    t.check(re.search(r"event=haproxy_restarted", router.log_text(mark)) is not None,
            "the router noticed HAProxy's new process")
    h.log(f"HAProxy reload under load: new process serving {back * 1000:.0f} ms after SIGUSR2; "
          f"wrk {report['requests']} requests, non-2xx {report['non2xx']}, socket errors "
          f"{report['errors']}")
    t.check_eq(report["non2xx"], 0, "no non-2xx across HAProxy's reload (haproxy.file)")


def test(t):
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")
    flips = int(os.environ.get("BG_ROUTER_FLIPS", "30"))
    s, router, hap, sock, port, hport = start(t)
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
    log = router.log_text(mark)
    h.log(f"router reads of ZooKeeper's view: {metric(hport, 'bg_router_reads_total')}, of them "
          f"reading every member: {metric(hport, 'bg_router_member_reads_total')} (the others: "
          f"/status alone)")
    changes = len(re.findall(r"event=haproxy_applied", log))
    failed = len(re.findall(r"event=haproxy_apply_failed", log))
    cut = [f["cutover_ms"] for f in per_flip if f["cutover_ms"] is not None]
    stale = [f["stale_after_wait"] for f in per_flip]
    h.log(f"wrk: {report['requests']} requests, non-2xx {report['non2xx']}, socket errors "
          f"{report['errors']}; probe {probe.total} requests, {len(probe.failures)} failed")
    h.log(f"cutover p50 {pct(cut, 50)} ms p99 {pct(cut, 99)} ms; changes {changes} for {flips} "
          f"flips ({changes / flips:.2f} per flip), failed changes {failed}, HAProxy reloads 0; "
          f"old-colour answers after --wait returned: {sum(stale)}")
    t.check_eq(report["non2xx"], 0, "wrk: no non-2xx response")
    t.check_eq(sum(report["errors"].values()), 0,
               f"wrk: no socket error (no reload): {report['errors']}")
    t.check_eq(probe.failures, [], "probe: no failed request")
    t.check_eq(sum(stale), 0, "no request sent after --wait returned reached the old colour")
    t.check_eq(failed, 0, "no failed change")
    t.check(all(f["streak"] >= 20 for f in per_flip), "every flip ends served by the new colour")
    t.check(re.search(r"event=haproxy_restarted", log) is None, "HAProxy never reloaded")
    reload_under_load(t, hap, sock, router, port, color)


h.run(test)
