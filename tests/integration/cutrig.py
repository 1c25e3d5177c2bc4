"""cutrig.py: the issue-10 cutover rig shared by tests/integration/test_cutover_*.py,
slow_cutover_*.py and bench/bench_cutover.py.

n blue + n green bg-demo-app instances, each with a bg-agent at its DEFAULTS (no confirm_polls,
confirm_timeout or poll_window tuning), one bg-controller at its defaults (settle 0s), and a real
HAProxy in front. Modes:

  httpchk     option httpchk GET /health on each agent's HTTP port
              (default-server inter I rise R fall F)
  send-state  as httpchk plus `http-check send-state` (X-Haproxy-Server-State on every check)
  send-state-404  as send-state plus `http-check disable-on-404`, and every agent's health
              backend with `out_of_service_code: 404`: an OUT_OF_SERVICE instance whose
              application is healthy answers 404, which HAProxy turns into NOLB (no new
              traffic) at once, and back to UP at the first 200, whatever rise/fall are
  agent       agent-check on each agent's haproxy-agent port (agent-inter I), plus a plain
              TCP check every 1 s of the application

A flip is `bgctl switch COLOUR --wait`. While it runs, wrk keeps keep-alive connections busy
through HAProxy and a Pinger starts a new request (new connection) every 20 ms recording its
send time and X-Served-By. measure_flip() returns per-flip figures:

  wait_ms       flip (/active_color mtime) -> `bgctl switch --wait` returned
  cutover_ms    flip -> send time of the first request of the final unbroken run of new-colour
                answers (every Pinger request sent later was answered by the new colour)
  last_old_ms   flip -> send time of the last request answered by the old colour
  old_after_wait  Pinger requests SENT after --wait returned that the old colour answered
  stat_old_after_wait  responses HAProxy's old-colour servers gave after --wait returned
                (show stat counters, wrk included) beyond the requests they had in flight then
  failed        Pinger requests without a 200 during the flip
"""

import collections
import http.client
import shutil
import threading
import time

import harness as h
import slow_zero_downtime as zd
from bgsys import Pinger, System

OTHER = {"blue": "green", "green": "blue"}


def haproxy_cfg(fport, servers, mode, inter=2000, rise=2, fall=3, admin_sock=None, weight=None):
    """servers: [(name, app_port, agent_http_port, agent_check_port)]; weight: each server's
    (canaryrig: 100, so that an agent's weight percentage has room)"""
    w = f" weight {weight}" if weight is not None else ""
    lines = ["global", "  maxconn 8192"]
    if admin_sock:
        lines.append(f"  stats socket {admin_sock} level admin")
    lines += ["defaults", "  mode http", "  timeout connect 1s", "  timeout client 30s",
              "  timeout server 30s", "  timeout http-keep-alive 30s",
              "frontend fe", f"  bind 127.0.0.1:{fport}", "  default_backend be",
              "backend be", "  balance roundrobin"]
    if mode in ("httpchk", "send-state", "send-state-404"):
        lines.append("  option httpchk GET /health")
        if mode in ("send-state", "send-state-404"):
            lines.append("  http-check send-state")
        if mode == "send-state-404":
            lines.append("  http-check disable-on-404")
        lines.append(f"  default-server inter {inter} rise {rise} fall {fall}")
        for name, app, agent_http, _ in servers:
            lines.append(f"  server {name} 127.0.0.1:{app}{w} check port {agent_http}")
    elif mode == "agent":
        for name, app, _, aport in servers:
            lines.append(f"  server {name} 127.0.0.1:{app}{w} check inter 1s agent-check "
                         f"agent-addr 127.0.0.1 agent-port {aport} agent-inter {inter}")
    else:
        raise ValueError(mode)
    return "\n".join(lines) + "\n"


class CutRig:
    """check: None (default) -- the agents have no application check (the application counts
    healthy); a dict -- each agent checks its application's GET /healthz with these check: keys
    (interval, timeout, rise, fall). .apps {name: Proc} after start()."""

    def __init__(self, t, zk, mode="httpchk", n=2, inter=2000, rise=2, fall=3, label=None,
                 controller_switch=None, check=None):
        self.t, self.zk, self.mode = t, zk, mode
        self.n, self.inter, self.rise, self.fall = n, inter, rise, fall
        self.label = label or f"{mode}-n{n}-i{inter}"
        self.switch = controller_switch or {"settle": "0s"}
        self.check = check
        self.procs = []
        self.apps = {}

    def describe(self):
        if self.mode == "agent":
            return f"{self.n}+{self.n} agent-check agent-inter {self.inter}ms"
        extra = {"send-state": " send-state",
                 "send-state-404": " send-state disable-on-404"}.get(self.mode, "")
        return (f"{self.n}+{self.n} httpchk{extra}"
                f" inter {self.inter}ms rise {self.rise} fall {self.fall}")

    def start(self, serve_timeout=None):
        t = self.t
        self.sys = s = System(t, self.zk)
        s.flip("blue")
        servers = []
        for color in ("blue", "green"):
            for i in range(1, self.n + 1):
                name = f"{color}-{i}"
                app = t.demo_app(name, version=f"{color}-v")
                self.procs.append(app)
                self.apps[name] = app
                aport = None
                backends = None  # the health backend is always on, at its defaults
                if self.mode == "agent":
                    aport = h.free_port()
                    backends = [{"type": "haproxy-agent", "listen": f"127.0.0.1:{aport}"}]
                elif self.mode == "send-state-404":
                    # the only key given: GET /health answers 404 while OUT_OF_SERVICE
                    backends = [{"type": "health", "out_of_service_code": 404}]
                check = None if self.check is None else {"http": app.health_url, **self.check}
                a = s.agent(name, color, start=False, backends=backends, check=check,
                            address=f"127.0.0.1:{app.port}", session_timeout_ms=6000)
                servers.append((name, app.port, a.port, aport))
        for a in s.agents:
            a.start(wait=False)
        for a in s.agents:
            a.proc.wait_log(r"event=registered", timeout=60)
            self.procs.append(a.proc)
        # The controller at its defaults: only settle given (its default is 0s as well).
        self.ctl = s.controller(f"cut-{self.label}", session_timeout_ms=6000,
                                extra={"switch": dict(self.switch)})
        self.procs.append(self.ctl)
        self.fport = h.free_port()
        self.url = f"http://127.0.0.1:{self.fport}/"
        self.admin_sock = t.path(f"haproxy-{self.label}.sock")
        cfg = t.path(f"haproxy-{self.label}.cfg")
        cfg.write_text(haproxy_cfg(self.fport, servers, self.mode, self.inter, self.rise,
                                   self.fall, self.admin_sock))
        r = h.run_cmd(["haproxy", "-c", "-f", cfg], quiet=True)
        if r.returncode != 0:
            raise h.HarnessError(f"haproxy -c rejects {cfg}: {r.stdout}{r.stderr}")
        self.haproxy = t.proc(["haproxy", "-db", "-f", cfg], name=f"haproxy-{self.label}")
        self.procs.append(self.haproxy)
        # HAProxy is up before the first switch settles: balancers are polling from the start.
        s.wait_converged("blue", timeout=max(60, 4 * self.n * self.inter / 1000 + 30))
        self.color = "blue"
        self.wait_serving("blue", timeout=serve_timeout or
                          (30 + 3 * self.inter * max(self.rise, self.fall) / 1000))
        # A balancer counts once it has polled a few times in a row (agent/confirm.c: 3 without
        # send-state); a HAProxy that started a moment ago is not yet one. Flip only once every
        # agent counts this HAProxy, as in a running deployment.
        self.wait_balancer_counted(timeout=10 + 5 * self.inter / 1000)
        return self

    def counted_balancers(self, agent):
        """The balancers agent's GET /v1/status says count (any backend), as dicts."""
        out = []
        for b in agent.status().get("backends", []):
            for bal in b.get("balancers") or []:
                if bal.get("counts"):
                    out.append(bal)
        return out

    def wait_balancer_counted(self, timeout):
        if not any("balancers" in b for b in self.sys.agents[0].status().get("backends", [])):
            time.sleep(3 * self.inter / 1000)  # an agent without the field (before issue 10)
            return
        h.wait_until(lambda: all(self.counted_balancers(a) for a in self.sys.agents),
                     timeout=timeout, interval=0.2, ignore=(OSError, KeyError),
                     msg=lambda: "every agent counts HAProxy as a balancer: " + str(
                         {a.id: a.status().get("backends") for a in self.sys.agents[:2]})[:1500])

    def wait_serving(self, color, n=40, timeout=30):
        zd.HaproxyRig.wait_serving(self, color, n, timeout)

    def answered(self):
        return zd.haproxy_answered(self.admin_sock)

    def server_states(self):
        """{server: HAProxy's status column ("UP", "NOLB", "DOWN 1/2", ...)} from show stat."""
        out = {}
        text = zd.haproxy_admin(self.admin_sock, "show stat")
        lines = text.splitlines()
        if not lines:
            return out
        hdr = lines[0].lstrip("# ").split(",")
        for ln in lines[1:]:
            d = dict(zip(hdr, ln.split(",")))
            if d.get("pxname") == "be" and d.get("svname") not in (None, "FRONTEND", "BACKEND"):
                out[d["svname"]] = d.get("status")
        return out

    def stop(self):
        for p in reversed(self.procs):
            p.stop()


def start_load(t, rig, connections=64):
    """wrk (keep-alive) + Pinger (new connection every 20 ms) through the rig's HAProxy."""
    pinger = Pinger(rig.fport, every=0.02)
    pinger.start()
    wrk = zd.Wrk(t, rig.url, connections=connections, threads=2, name=f"wrk-{rig.label}")
    return wrk, pinger


def measure_flip(t, rig, pinger, new, wait_timeout=300, settle_s=None):
    """One `bgctl switch NEW --wait`, measured (see the module's docstring)."""
    old = OTHER[new]
    before = rig.answered()
    t0 = time.time()
    rc, out, err = rig.sys.bgctl("switch", new, "--wait", "--timeout", f"{wait_timeout}s",
                                 timeout=wait_timeout + 30)
    t_ret = time.time()
    at_ret = rig.answered()
    st = h.zk_stat(rig.zk, rig.sys.root + "/active_color")
    flip_t = st["mtime"] / 1000.0
    if not (t0 - 1 <= flip_t <= t_ret + 1):
        flip_t = t0
    # Observe on: the old colour must stay silent; long enough for one full check cycle.
    settle_s = settle_s if settle_s is not None else max(2.0, 2.5 * rig.inter / 1000
                                                         * max(rig.rise, rig.fall))
    deadline = time.time() + settle_s + 30
    while True:
        time.sleep(0.1)
        recs = pinger.since(flip_t)
        done = [r for r in recs if r[1] <= time.time() - 0.05]
        tail_ok = done and all(r[3] == new for r in done if r[0] >= time.time() - settle_s)
        if time.time() - t_ret >= settle_s and tail_ok:
            break
        if time.time() > deadline:
            break
    time.sleep(0.3)
    after = rig.answered()
    recs = pinger.since(flip_t - 1)
    recs = [r for r in recs if r[0] >= flip_t]
    olds = [r for r in recs if r[2] == 200 and r[3] == old]
    fails = [r for r in recs if r[2] != 200]
    last_bad = None
    for i, r in enumerate(recs):
        if not (r[2] == 200 and r[3] == new):
            last_bad = i
    first_good = recs[0 if last_bad is None else last_bad + 1] if recs and \
        (last_bad is None or last_bad + 1 < len(recs)) else None
    in_flight_old = sum(v[1] for k, v in at_ret.items() if zd.color_of(k) == old)
    stat_old = sum(after[k][0] - at_ret[k][0] for k in after if zd.color_of(k) == old)
    res = {
        "to": new, "rc": rc, "wait_out": (out + err).strip()[-300:],
        "wait_ms": (t_ret - flip_t) * 1000,
        "cutover_ms": None if first_good is None else max(0.0, (first_good[0] - flip_t) * 1000),
        "last_old_ms": (olds[-1][0] - flip_t) * 1000 if olds else 0.0,
        "old_after_wait": sum(1 for r in olds if r[0] > t_ret),
        "old_after_wait_examples": [(round((r[0] - t_ret) * 1000), r[4]) for r in olds
                                    if r[0] > t_ret][:5],
        "stat_old_after_wait": max(0, stat_old - in_flight_old),
        "stat_old_in_flight_at_wait": in_flight_old,
        "failed": len(fails), "failures": [(round((r[0] - flip_t) * 1000), r[2], r[4])
                                           for r in fails[:5]],
        "pings": len(recs),
        "old_during": sum(after[k][0] - before[k][0] for k in after if zd.color_of(k) == old),
    }
    rig.color = new
    h.log(f"[{rig.label}] flip -> {new}: rc={rc} wait {res['wait_ms']:.0f} ms, cutover "
          f"{zd.fmt(res['cutover_ms'])} ms, last old answer {res['last_old_ms']:.0f} ms, "
          f"old answers to requests sent after --wait {res['old_after_wait']} "
          f"(HAProxy counters beyond in-flight: {res['stat_old_after_wait']}), "
          f"failed pings {res['failed']} of {res['pings']}")
    return res


def run_flips(t, rig, flips, connections=64, wait_timeout=300, pause=1.0):
    """wrk + Pinger, `flips` switches; returns {"flips": [...], "wrk": {...}}."""
    wrk, pinger = start_load(t, rig, connections)
    time.sleep(1.0)
    per = []
    try:
        for i in range(flips):
            per.append(measure_flip(t, rig, pinger, OTHER[rig.color], wait_timeout))
            time.sleep(pause)
    finally:
        rep = wrk.stop()
        pinger.stop()
    return {"flips": per, "requests": rep["requests"], "non2xx": rep["non2xx"],
            "socket_errors": rep["errors"], "wrk_failed": rep["error_total"],
            "ping_failed": sum(f["failed"] for f in per)}


def check_flips(t, rig, r):
    """The issue-10 assertions: 0 failed requests (wrk + pings), switch --wait exit 0, 0 old-colour
    answers to requests sent after --wait returned."""
    name = rig.describe()
    t.log(f"{name}: wrk {r['requests']} requests, non-2xx {r['non2xx']}, socket errors "
          f"{r['socket_errors']}; per flip wait/cutover/last-old ms: " + ", ".join(
              f"{f['wait_ms']:.0f}/{zd.fmt(f['cutover_ms'])}/{f['last_old_ms']:.0f}"
              for f in r["flips"]))
    t.check(r["requests"] > 100, f"{name}: wrk got answers ({r['requests']})")
    t.check_eq(r["wrk_failed"], 0, f"{name}: no failed wrk request (non-2xx + socket errors)")
    t.check_eq([f["failures"] for f in r["flips"] if f["failed"]], [],
               f"{name}: every ping answered 200")
    t.check_eq([(f["to"], f["rc"], f["wait_out"]) for f in r["flips"] if f["rc"] != 0], [],
               f"{name}: bgctl switch --wait exits 0")
    t.check_eq([(f["to"], f["old_after_wait"], f["old_after_wait_examples"])
                for f in r["flips"] if f["old_after_wait"]], [],
               f"{name}: no request sent after switch --wait returned was answered by the "
               f"old colour")
    t.check_eq([(f["to"], f["stat_old_after_wait"]) for f in r["flips"]
                if f["stat_old_after_wait"]], [],
               f"{name}: HAProxy's old-colour servers answered nothing after --wait returned "
               f"beyond what they had in flight (wrk included)")


class StrayCurl(threading.Thread):
    """A person's curl loop: GET /health on one agent every `every` s with a curl User-Agent."""

    def __init__(self, url, every=1.0):
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.codes = collections.Counter()
        self.stop_ev = threading.Event()

    def run(self):
        host, port = self.url.split("//", 1)[1].split("/", 1)[0].split(":")
        while not self.stop_ev.is_set():
            try:
                c = http.client.HTTPConnection(host, int(port), timeout=2)
                c.request("GET", "/health", headers={"User-Agent": "curl/7.88.1",
                                                     "Accept": "*/*"})
                r = c.getresponse()
                r.read()
                self.codes[r.status] += 1
                c.close()
            except OSError:
                self.codes[0] += 1
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.join(5)


def need_tools():
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")


def scenario(t, zk, mode, inter, rise, fall, n=2, flips=2, during=None):
    """Start a CutRig, flip `flips` times under load, print and check (check_flips), stop.
    during(rig) is called once the rig serves blue, before the load starts; it may return a
    callable run after the flips have been checked (before the rig stops). Returns (rig,
    result)."""
    rig = CutRig(t, zk, mode, n=n, inter=inter, rise=rise, fall=fall)
    t.step(f"{rig.describe()}: {flips} x bgctl switch --wait under wrk -c64 and a pinger")
    rig.start()
    after = during(rig) if during else None
    try:
        r = run_flips(t, rig, flips)
        check_flips(t, rig, r)
        if after:
            after()
    finally:
        rig.stop()
    return rig, r


def waiting_snapshot(rig, new, delay=0.5):
    """Flip to `new` with zkCli-style set (no --wait), wait `delay` s, and return what
    `bgctl status` and /status say while the switch waits; then wait for converged."""
    rig.sys.flip(new)
    time.sleep(delay)
    rc, out, err = rig.sys.bgctl("status")
    st = rig.sys.status()
    rig.sys.wait_converged(new, timeout=120)
    rig.color = new
    return out, st
