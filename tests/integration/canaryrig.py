"""canaryrig.py: the issue-13 rig (canary weights and rolling drain) shared by
tests/integration/test_canary_*.py, slow_canary_*.py and bench/bench_canary.py.

nb blue + ng green bg-demo-app instances, each with a bg-agent, one bg-controller and a real
HAProxy in front (balance roundrobin, every server `weight 100` so that an agent's "ready W%"
is W of 100). Modes:

  agent   agent-check on each agent's haproxy-agent port (agent-inter 200 ms) plus a TCP
          check of the application every 1 s: the controller weights the instances
  health  option httpchk GET /health on each agent's HTTP port (inter 200 ms, rise 1, fall 1):
          the agents have only the health backend, so a canary is an instance-count one

share() runs wrk through HAProxy and returns the share of the responses each colour's servers
gave (HAProxy's own counters, show stat), and wrk's failures.
"""

import shutil
import time

import cutrig
import harness as h
import slow_zero_downtime as zd
from bgsys import System

OTHER = {"blue": "green", "green": "blue"}


def need_tools():
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")


def haproxy_cfg(fport, servers, mode, admin_sock):
    """servers: [(name, app_port, agent_http_port, agent_check_port)]; mode "health" (httpchk
    on the agents' /health) or "agent" (agent-check), 200 ms checks, weight 100 each."""
    if mode not in ("health", "agent"):
        raise ValueError(mode)
    return cutrig.haproxy_cfg(fport, servers, "httpchk" if mode == "health" else "agent",
                              inter=200, rise=1, fall=1, admin_sock=admin_sock, weight=100)


class CanaryRig:
    def __init__(self, t, zk, mode="agent", nb=2, ng=2, label=None, switch=None, check=None):
        """check: None -- the agents check nothing (the application counts healthy); a dict
        of check: keys (interval, timeout, rise, fall) -- each checks its app's /healthz."""
        self.t, self.zk, self.mode, self.nb, self.ng = t, zk, mode, nb, ng
        self.check = check
        self.apps = {}
        self.label = label or f"{mode}-{nb}-{ng}"
        self.switch = {"settle": "0s", **(switch or {})}
        self.procs = []

    def describe(self):
        return f"{self.nb} blue + {self.ng} green, " + (
            "agent-check weights" if self.mode == "agent" else "httpchk /health only")

    def start(self):
        t = self.t
        self.sys = s = System(t, self.zk)
        s.flip("blue")
        servers = []
        for color, n in (("blue", self.nb), ("green", self.ng)):
            for i in range(1, n + 1):
                name = f"{color}-{i}"
                app = t.demo_app(name, version=f"{color}-v")
                self.procs.append(app)
                self.apps[name] = app
                check = None if self.check is None else {"http": app.health_url, **self.check}
                aport = h.free_port() if self.mode == "agent" else None
                backends = ([{"type": "haproxy-agent", "listen": f"127.0.0.1:{aport}"}]
                            if aport else None)
                a = s.agent(name, color, start=False, backends=backends, check=check,
                            address=f"127.0.0.1:{app.port}", session_timeout_ms=6000)
                servers.append((name, app.port, a.port, aport))
        for a in s.agents:
            a.start(wait=False)
        for a in s.agents:
            a.proc.wait_log(r"event=registered", timeout=60)
            self.procs.append(a.proc)
        self.ctl = s.controller(f"canary-{self.label}", session_timeout_ms=6000,
                                **self.switch)
        self.procs.append(self.ctl)
        self.fport = h.free_port()
        self.url = f"http://127.0.0.1:{self.fport}/"
        self.admin_sock = t.path(f"haproxy-{self.label}.sock")
        cfg = t.path(f"haproxy-{self.label}.cfg")
        cfg.write_text(haproxy_cfg(self.fport, servers, self.mode, self.admin_sock))
        r = h.run_cmd(["haproxy", "-c", "-f", cfg], quiet=True)
        if r.returncode != 0:
            raise h.HarnessError(f"haproxy -c rejects {cfg}: {r.stdout}{r.stderr}")
        self.haproxy = t.proc(["haproxy", "-db", "-f", cfg], name=f"haproxy-{self.label}")
        self.procs.append(self.haproxy)
        s.wait_converged("blue", timeout=60)
        zd.HaproxyRig.wait_serving(self, "blue", 40, 30)
        return self

    def bgctl(self, *args, timeout=90):
        return self.sys.bgctl(*args, timeout=timeout)

    def answered(self):
        return zd.haproxy_answered(self.admin_sock)

    def weights(self):
        """{server: HAProxy's current weight} from show stat."""
        text = zd.haproxy_admin(self.admin_sock, "show stat")
        lines = text.splitlines()
        hdr = lines[0].lstrip("# ").split(",")
        out = {}
        for ln in lines[1:]:
            d = dict(zip(hdr, ln.split(",")))
            if d.get("pxname") == "be" and d.get("svname") not in (None, "FRONTEND", "BACKEND"):
                out[d["svname"]] = (d.get("status"), int(d.get("weight") or 0))
        return out

    def share(self, seconds=3, connections=16, min_requests=4000):
        """wrk for `seconds` (longer until min_requests were answered): {"green": %, "blue": %,
        "total": n, "failed": wrk's non-2xx + socket errors, "per_server": {...}}."""
        before = self.answered()
        total_failed, dur = 0, seconds
        while True:
            # --timeout 10s: a machine shared with other builds stalls for seconds at times
            r = h.run_wrk(self.url, duration=dur, connections=connections, threads=2,
                          extra=("--timeout", "10s"))
            total_failed += r["error_total"]
            if r["error_total"]:
                h.log(f"[{self.label}] wrk failures: non-2xx {r['non2xx']}, socket errors "
                      f"{r['errors']}, latency {r['latency_avg']}")
            after = self.answered()
            per = {k: after[k][0] - before.get(k, (0, 0))[0] for k in after}
            total = sum(per.values())
            if total >= min_requests:
                break
            dur = max(1, int(dur * (min_requests / max(total, 1))))
        out = {"total": total, "failed": total_failed, "per_server": per}
        for c in ("blue", "green"):
            out[c] = 100.0 * sum(v for k, v in per.items() if zd.color_of(k) == c) / total
        return out

    def stop(self):
        for p in reversed(self.procs):
            p.stop()


class Load:
    """wrk (keep-alive) + a Pinger (new connection every 20 ms) through the rig's HAProxy, for
    "0 failed requests" while something changes."""

    def __init__(self, t, rig, connections=32):
        from bgsys import Pinger
        self.pinger = Pinger(rig.fport, every=0.02)
        self.pinger.start()
        self.wrk = zd.Wrk(t, rig.url, connections=connections, threads=2,
                          name=f"wrk-{rig.label}-{int(time.time() * 1000) % 100000}")
        self.t0 = time.time()

    def stop(self):
        rep = self.wrk.stop()
        self.pinger.stop()
        recs = self.pinger.since(self.t0)
        fails = [r for r in recs if r[2] != 200]
        return {"requests": rep["requests"], "wrk_failed": rep["error_total"],
                "pings": len(recs), "ping_failed": len(fails),
                "ping_failures": [(round((r[0] - self.t0) * 1000), r[2], r[4])
                                  for r in fails[:5]]}
