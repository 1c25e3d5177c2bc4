#!/usr/bin/env python3
"""The docker demo's entrypoint scripts (docker/entrypoint-instance.sh, entrypoint-controller.sh)
run as compose runs them, but on this machine (no container engine in CI): the configuration
they write passes --check-config, the agents start although they listen beyond loopback (the
shared BG_TOKEN), a switch converges with the health check and HAProxy's 404 soft-stop setting,
and a missing BG_TOKEN is refused with a clear message. HOST/ports/ROOT are the only changes
from compose's environment (host names and fixed ports are the container network's)."""

import os
from pathlib import Path

import harness as h
from bgsys import System

REPO = h.REPO
TOKEN = "demo-token-change-me-0123456789"


def env_for(t, name, extra):
    d = t.dir / name
    d.mkdir()
    dirs = [str(Path(h.bin(b)).parent) for b in ("bg-agent", "bg-controller", "bg-demo-app")]
    path = ":".join(dirs + [os.environ["PATH"]])
    return {"PATH": path, "BG_CONF_DIR": str(d), "BG_TOKEN": TOKEN, **extra}


def test(t):
    zk = t.zookeeper()
    s = System(t, zk)
    s.token = TOKEN  # the agents' API wants it
    agents = {}
    for id, color, version in (("blue-1", "blue", "1.0"), ("green-1", "green", "2.0")):
        app_port, agent_port = h.free_ports(2)
        env = env_for(t, id, {"ID": id, "COLOR": color, "VERSION": version, "ZK": zk.connect,
                              "ROOT": s.root, "HOST": "127.0.0.1", "APP_PORT": app_port,
                              "AGENT_PORT": agent_port})
        p = t.proc(["sh", str(REPO / "docker" / "entrypoint-instance.sh")], name=id, env=env)
        p.wait_log(r"event=registered", timeout=20)
        agents[id] = (p, f"http://127.0.0.1:{agent_port}", f"http://127.0.0.1:{app_port}/")
    t.check("listen=0.0.0.0:" in agents["blue-1"][0].log_text(),
            "the agent listens beyond loopback (with the token)")
    cport = h.free_port()
    env = env_for(t, "controller", {"ZK": zk.connect, "ROOT": s.root, "HTTP_PORT": cport})
    c = t.proc(["sh", str(REPO / "docker" / "entrypoint-controller.sh")], name="controller",
               env=env)
    c.wait_log(r"event=leader_elected", timeout=20)
    t.check_eq(h.http("GET", f"http://127.0.0.1:{cport}/health")[0], 200, "controller /health")

    t.step("switch blue -> green through the entrypoints' configuration")
    s.flip("blue")
    s.wait_converged("blue", timeout=30)
    want = {"blue-1": 200, "green-1": 404}

    def healths():
        return {id: h.http("GET", a[1] + "/health")[0] for id, a in agents.items()}
    # 404 once green's application check has passed `rise` times (503 before: not healthy).
    h.wait_until(lambda: healths() == want, timeout=15, msg=lambda: f"/health: {healths()}")
    t.check_eq(healths(), want,
               "blue UP (200), green out of service and healthy (404: HAProxy's soft-stop)")
    s.flip("green")
    s.wait_converged("green", timeout=30)
    t.check_eq(healths(), {"blue-1": 404, "green-1": 200}, "green UP, blue out after the switch")
    code, body, _ = h.http("GET", agents["green-1"][2])
    t.check(code == 200 and "green-1" in body, f"the demo application answers: {body[:60]!r}")

    t.step("without BG_TOKEN the scripts refuse to start, saying why")
    for script in ("entrypoint-instance.sh", "entrypoint-controller.sh"):
        env = env_for(t, f"bad-{script}", {"ID": "x", "COLOR": "blue", "VERSION": "1",
                                           "ZK": zk.connect, "BG_TOKEN": None})
        r = h.run_cmd(["sh", str(REPO / "docker" / script)], env=env, timeout=30, quiet=True)
        t.check(r.returncode != 0 and "BG_TOKEN" in r.stderr,
                f"{script} without BG_TOKEN: rc {r.returncode}, {r.stderr.strip()[:100]!r}")


if __name__ == "__main__":
    h.run(test)
