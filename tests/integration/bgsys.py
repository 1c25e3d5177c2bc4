"""bgsys.py: start bluegreen systems (agents, controllers, bgctl) on top of harness.py."""

import json
import signal
import threading
import time

import harness as h


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
