"""bgsys.py: start bluegreen systems (agents, controllers, bgctl) on top of harness.py."""

import collections
import json
import signal
import sys
import threading
import time
from pathlib import Path

import harness as h


STANDIN = Path(__file__).resolve().parents[1] / "tools" / "standin_agents.py"


class Agent:
    """A bg-agent process with its config; .url is its API base, .node its znode."""

    def __init__(self, sysm, id, color, backends=None, session_timeout_ms=2000, token=None,
                 port=None, **kw):
        self.sys, self.id, self.color = sysm, id, color
        self.port = port or h.free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.listen}"
        self.node = f"{sysm.root}/{color}/{id}"
        self.conf = h.write_agent_conf(sysm.t.dir, sysm.zk, sysm.root, id, color, self.listen,
                                       token_file=token, backends=backends,
                                       session_timeout_ms=session_timeout_ms, **kw)
        self.proc = None

    def start(self, wait=True):
        self.proc = self.sys.t.proc([h.bin("bg-agent"), "-c", str(self.conf)],
                                    name=f"agent-{self.id}")
        if wait:
            self.proc.wait_log(r"event=registered", timeout=15)
        return self

    def health(self, timeout=1):
        try:
            return h.http("GET", self.url + "/health", timeout=timeout)[0]
        except OSError:
            return None

    def status(self):
        return h.http_json("GET", self.url + "/v1/status", headers=self.sys.auth())[1]

    def put(self, status, epoch, headers=None, body=None):
        b = body if body is not None else {"status": status, "epoch": epoch}
        return h.http_json("PUT", self.url + "/v1/status", b,
                           headers=headers if headers is not None else self.sys.auth())


class System:
    """One service under a unique ZooKeeper root: agents, controllers, bgctl."""

    def __init__(self, t, zk, token=False):
        self.t, self.zk = t, zk
        self.root = t.root(zk)
        self.token_file = h.write_token(t.dir) if token else None
        self.token = self.token_file.read_text().strip() if token else None
        self.agents = []
        self.controllers = []

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def agent(self, id, color, start=True, **kw):
        a = Agent(self, id, color, token=self.token_file, **kw)
        self.agents.append(a)
        return a.start() if start else a

    def standins(self, color, count, *extra, session_ms=15000):
        """count lightweight stand-in agents of one colour in one process
        (tests/tools/standin_agents.py: the agent API and node, nothing else); extra: its
        options (e.g. "--fail-http", "502"). Returns the Proc; its .stats_url gives the
        stand-ins' counters (GET)."""
        p = self.t.proc([sys.executable, str(STANDIN), "--zk", self.zk.connect, "--root",
                         self.root, "--color", color, "--count", str(count), "--session-ms",
                         str(session_ms), *extra], name=f"standin-{color}")
        m = p.wait_log(r"standin_ready .*ports=(\d+)\.\.", timeout=60)
        p.stats_url = f"http://127.0.0.1:{m.group(1)}/standin/stats"
        return p

    def controller(self, id, **switch):
        conf = h.write_controller_conf(self.t.dir, self.zk, self.root, id=id,
                                       token_file=self.token_file, **switch)
        p = self.t.proc([h.bin("bg-controller"), "-c", str(conf)], name=f"controller-{id}")
        p.wait_log(r"event=election_joined", timeout=15)
        p.conf = conf
        self.controllers.append(p)
        return p

    def bgctl(self, *args, timeout=90):
        argv = [h.bin("bgctl"), "-z", self.zk.connect, "-r", self.root, *map(str, args)]
        r = h.run_cmd(argv, timeout=timeout, quiet=True)
        h.log(f"$ bgctl {' '.join(map(str, args))} -> rc={r.returncode} "
              f"out={r.stdout.strip()[:300]!r} err={r.stderr.strip()[:300]!r}")
        return r.returncode, r.stdout, r.stderr

    def flip(self, color):
        h.zk_set(self.zk, self.root + "/active_color", color)

    def status(self):
        return h.zk_get_json(self.zk, self.root + "/status")

    def wait_phase(self, phase, desired=None, timeout=20):
        def ok():
            s = self.status()
            return s and s["phase"] == phase and (desired is None or s["desired"] == desired)
        h.wait_until(ok, timeout=timeout,
                     msg=lambda: f"/status never reached {phase} {desired}: {self.status()}")
        return self.status()

    def wait_converged(self, color, timeout=20):
        def ok():
            s = self.status()
            return s and s["phase"] == "converged" and s["applied"] == color
        h.wait_until(ok, timeout=timeout,
                     msg=lambda: f"never converged on {color}: {self.status()}")
        return self.status()

    def healths(self):
        return {a.id: a.health() for a in self.agents}

    def leader(self):
        """The live controller Proc that /status names as leader."""
        st = self.status()
        for p in self.controllers:
            if st and p.alive() and p.name == f"controller-{st['leader']}":
                return p
        return None


class HealthSampler(threading.Thread):
    """Polls every agent's /health in a tight loop, old colour first then new, and records
    rounds in which no agent answered 200. set_order(colors) sets the scan order."""

    def __init__(self, agents, interval=0.0):
        super().__init__(daemon=True)
        self.agents = agents
        self.order = list(agents)
        self.interval = interval
        self.rounds = 0
        self.violations = []
        self.stop_ev = threading.Event()

    def set_order(self, first_color):
        self.order = ([a for a in self.agents if a.color == first_color] +
                      [a for a in self.agents if a.color != first_color])

    def run(self):
        while not self.stop_ev.is_set():
            order = self.order
            codes = [(a.id, a.health(timeout=2)) for a in order]
            self.rounds += 1
            if not any(c == 200 for _, c in codes):
                self.violations.append((time.time(), codes))
            if self.interval:
                time.sleep(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join(10)


def standard(t, zk=None, blue=2, green=2, controllers=1, token=False, agent_kw=None, **switch):
    """A ZooKeeper (unless given), `blue`+`green` agents, controllers; active colour blue,
    converged. Returns the System."""
    zk = zk or t.zookeeper()
    s = System(t, zk, token=token)
    s.flip("blue")
    for i in range(1, blue + 1):
        s.agent(f"blue-{i}", "blue", **(agent_kw or {}))
    for i in range(1, green + 1):
        s.agent(f"green-{i}", "green", **(agent_kw or {}))
    for i in range(1, controllers + 1):
        s.controller(f"c{i}", **switch)
    s.wait_converged("blue")
    return s


# ----------------------------------------------------------------------------------------------
# Application health (DESIGN §11): demo apps with agents checking them, HAProxy in front
# ----------------------------------------------------------------------------------------------

FAST_CHECK = {"interval": 200, "timeout": 500, "rise": 2, "fall": 2}
# These scenarios run wrk, HAProxy and the probe beside ZooKeeper on a shared 2-core machine:
# a 2 s session expired now and then under load, which is not what they are about.
SESSION_MS = 4000


class HealthRig:
    """n blue + n green bg-demo-app instances, each with a bg-agent whose check: is the app's
    GET /healthz, one controller (settle 0), and a real HAProxy in front: traffic to each
    application's port, `option httpchk GET /health` on each agent's port
    (`check port AGENT inter I rise R fall F`; the agents' health backend confirms with
    max(R, F) polls). Active colour blue, converged and served through HAProxy when start()
    returns.

    check: the agents' check: keys besides http (None: the agent's defaults; False: no check
    at all); app_kw(name)
    -> extra t.demo_app() kwargs (e.g. {"start": False} for an application that is down);
    backend_extra: more lines for HAProxy's backend (e.g. ["option redispatch 1"]);
    switch: controller switch keys (min_ready, batch_size, min_healthy_time, ...).
    Attributes after start(): .sys (System), .apps / .agents {name: ...}, .url, .fport,
    .admin_sock, .ctl (controller Proc)."""

    def __init__(self, t, zk=None, n=2, inter=100, rise=1, fall=1, check=FAST_CHECK,
                 app_kw=None, label="health", backend_extra=(), **switch):
        self.t, self.zk, self.n = t, zk, n
        self.backend_extra = list(backend_extra)  # more lines for HAProxy's backend
        self.inter, self.rise, self.fall = inter, rise, fall
        self.check = check
        self.app_kw = app_kw or (lambda name: {})
        self.label = label
        polls = max(rise, fall)
        # A confirmation waits for `polls` HAProxy checks: allow them, then some.
        self.confirm_ms = inter * polls + inter + 500
        self.switch = {"settle": "0s", "resync": "30s",
                       "call_timeout": f"{self.confirm_ms + 1000}ms", **switch}

    def start(self):
        import slow_zero_downtime as zd

        t = self.t
        self.zk = self.zk or t.zookeeper()
        self.sys = s = System(t, self.zk)
        s.flip("blue")
        self.apps, self.agents, servers = {}, {}, []
        for color in ("blue", "green"):
            for i in range(1, self.n + 1):
                name = f"{color}-{i}"
                app = t.demo_app(name, version=f"{color}-v", **self.app_kw(name))
                check = None if self.check is False else {"http": app.health_url,
                                                          **(self.check or {})}
                a = s.agent(name, color, start=False, address=f"127.0.0.1:{app.port}",
                            check=check, session_timeout_ms=SESSION_MS,
                            backends=[{"type": "health",
                                       "confirm_polls": max(self.rise, self.fall),
                                       "confirm_timeout": f"{self.confirm_ms}ms",
                                       "poll_window": f"{max(5000, 3 * self.inter)}ms"}])
                self.apps[name], self.agents[name] = app, a
                servers.append((name, app.port, a.port, None))
        for a in s.agents:
            a.start(wait=False)
        for a in s.agents:
            a.proc.wait_log(r"event=registered", timeout=20)
        self.ctl = s.controller(f"c-{self.label}", session_timeout_ms=SESSION_MS,
                                **self.switch)
        s.wait_converged("blue", timeout=60)
        self.fport = h.free_port()
        self.url = f"http://127.0.0.1:{self.fport}/"
        self.admin_sock = t.path(f"haproxy-{self.label}.sock")
        cfg = t.path(f"haproxy-{self.label}.cfg")
        text = zd.haproxy_config(self.fport, servers, "httpchk", self.inter, self.rise,
                                 self.fall, self.admin_sock)
        extra = "".join(f"  {ln}\n" for ln in self.backend_extra)
        cfg.write_text(text.replace("  balance roundrobin\n", "  balance roundrobin\n" + extra))
        r = h.run_cmd(["haproxy", "-c", "-f", cfg], quiet=True)
        if r.returncode != 0:
            raise h.HarnessError(f"haproxy -c rejects {cfg}: {r.stdout}{r.stderr}")
        self.haproxy = t.proc(["haproxy", "-db", "-f", cfg], name=f"haproxy-{self.label}")
        self.wait_serving("blue", timeout=30 + 3 * self.inter * self.rise / 1000)
        return self

    def stop(self):
        """Stop HAProxy, the controller, the agents and the applications."""
        for p in [self.haproxy, self.ctl, *[a.proc for a in self.agents.values()],
                  *self.apps.values()]:
            p.stop()

    def wait_serving(self, color, n=40, timeout=30):
        """Until n consecutive requests through HAProxy are answered 200 by `color`."""
        import slow_zero_downtime as zd
        zd.HaproxyRig.wait_serving(self, color, n, timeout)

    def answered(self):
        """{server: (responses so far, in flight)} from HAProxy's show stat."""
        import slow_zero_downtime as zd
        return zd.haproxy_answered(self.admin_sock)

    def load(self, connections=32):
        """Start wrk (keep-alive connections through HAProxy) and a probe (one request after
        another, recording who answered). Returns Load; .stop() gives the figures."""
        return Load(self.t, self, connections)

    def node(self, name, timeout=10):
        """The instance node's JSON (waits up to timeout for it to exist), or None."""
        a = self.agents[name]
        try:
            return h.wait_until(lambda: h.zk_get_json(self.zk, a.node), timeout=timeout,
                                msg=f"{a.node} exists")
        except AssertionError:
            return None

    def stats(self, name):
        """bg-demo-app's GET /admin/stats (ordinary requests answered), or None if down."""
        try:
            code, body, _ = self.apps[name].admin("stats")
        except OSError:
            return None
        return json.loads(body) if code == 200 else None


class Load:
    """wrk + probe through a rig's HAProxy (see HealthRig.load)."""

    def __init__(self, t, rig, connections=32):
        import slow_zero_downtime as zd

        self.zd = zd
        self.probe = zd.Probe(rig.fport)
        self.probe.start()
        self.wrk = zd.Wrk(t, rig.url, connections=connections, threads=2,
                          name=f"wrk-{rig.label}")

    def records(self, since=0.0):
        """The probe's (t_send, t_recv, status, colour, served_by) answered since wall time."""
        return self.probe.since(since)

    def stop(self):
        """Stops both; returns {"requests", "non2xx", "errors", "failed", "probe_requests",
        "probe_failed", "probe_failures", "served_by" {name: count}}."""
        rep = self.wrk.stop()
        self.probe.stop()
        served = collections.Counter(r[4] for r in self.probe.records if r[2] == 200)
        return {"requests": rep["requests"], "non2xx": rep["non2xx"], "errors": rep["errors"],
                "failed": rep["error_total"], "probe_requests": self.probe.total,
                "probe_failed": len(self.probe.failures),
                "probe_failures": self.probe.failures[:10], "served_by": dict(served)}


class Pinger(threading.Thread):
    """Starts a new request (on a new connection) every `every` seconds without waiting for
    the previous ones, so that a request stuck at a dead server (HAProxy waits a turn-around
    of up to 1 s before each of its retries) does not hide when the balancer routes
    elsewhere. Records (t_send, t_recv, status, colour, served_by) like Probe."""

    def __init__(self, port, every=0.02, timeout=10, workers=48):
        super().__init__(daemon=True)
        import concurrent.futures
        self.port, self.every, self.timeout = port, every, timeout
        self.pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.lock = threading.Lock()
        self.records = []
        self.stop_ev = threading.Event()

    def _one(self):
        import http.client
        import slow_zero_downtime as zd
        t0 = time.time()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            r = conn.getresponse()
            r.read()
            code, by = r.status, r.getheader("X-Served-By")
        except (OSError, http.client.HTTPException) as e:
            code, by = 0, f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        rec = (t0, time.time(), code, zd.color_of(by) if code == 200 else None, by)
        with self.lock:
            self.records.append(rec)

    def run(self):
        while not self.stop_ev.wait(self.every):
            self.pool.submit(self._one)

    def since(self, t):
        with self.lock:
            return sorted((r for r in self.records if r[0] >= t), key=lambda r: r[0])

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        self.pool.shutdown(wait=True)


def first_answer_after(records, t0, color):
    """Wall-clock time of the first request sent at or after t0 that `color` answered 200 (from
    Probe records), or None."""
    for r in records:
        if r[0] >= t0 and r[2] == 200 and r[3] == color:
            return r[0]
    return None
