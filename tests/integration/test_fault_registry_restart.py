#!/usr/bin/env python3
"""A registry that restarts and forgets its status overrides (eureka-double's
POST /_double/restart) is repaired by the controller's periodic resync: within one resync
interval (2 s here, + the time of the calls) every instance's status in
GET /eureka/apps/APP/ID is right again. Agents use {type: eureka, register: true} against the
double (a protocol double of Eureka, see tests/eureka/README.md). Skipped when the double or
the agent's eureka backend is not available."""

import time

import faults as f
import harness as h
from bgsys import System

JSON = {"Accept": "application/json"}
APP = "DEMO"
RESYNC_MS = 2000


def eureka_status(url, id):
    code, body, _ = h.http_json("GET", f"{url}/eureka/apps/{APP}/{id}", headers=JSON)
    if code != 200:
        return code
    inst = body["instance"]
    return inst["status"], inst["overriddenStatus"]


def want_eureka(s, color):
    return {a.id: (("UP", "UNKNOWN") if a.color == color else
                   ("OUT_OF_SERVICE", "OUT_OF_SERVICE")) for a in s.agents}


def test(t):
    try:
        double = h.bin("eureka-double")
    except h.HarnessError as e:
        raise h.Skip(f"no eureka-double: {e}")
    port = h.free_port()
    url = f"http://127.0.0.1:{port}"
    backend = {"type": "eureka", "urls": [url + "/eureka"], "register": True,
               "renew_interval": "1s", "timeout": "1s"}
    probe = h.write_agent_conf(t.dir, "127.0.0.1:1", "/", "probe-1", "blue", "127.0.0.1:1",
                               backends=[backend], filename="probe.yaml")
    r = h.run_cmd([h.bin("bg-agent"), "-c", probe, "--check-config"])
    if r.returncode != 0:
        raise h.Skip(f"bg-agent rejects a eureka backend: {(r.stderr or r.stdout).strip()}")

    eu = t.proc([double, "--listen", f"127.0.0.1:{port}"], name="eureka-double")
    h.wait_until(lambda: h.http("GET", url + "/eureka/apps", headers=JSON)[0] == 200,
                 timeout=5, ignore=(OSError,), msg="eureka-double answers")
    zk = t.zookeeper()
    s = System(t, zk)
    f.flip(s, "blue")
    for c in ("blue", "green"):
        for i in (1, 2):
            s.agent(f"{c}-{i}", c, backends=[backend])
    f.controller(s, "c1", resync=RESYNC_MS)
    try:
        f.wait_converged(s, "blue", timeout=20)
    except AssertionError:
        bad = [e["line"] for a in s.agents for e in f.events(a.proc, "status_failed")]
        if bad:
            raise h.Skip(f"the eureka backend fails here: {bad[0]}")
        raise

    def all_right(color):
        return {a.id: eureka_status(url, a.id) for a in s.agents} == want_eureka(s, color)

    h.wait_until(lambda: all_right("blue"), timeout=10, msg="Eureka shows blue UP, green OUT")
    t.check_eq({a.id: eureka_status(url, a.id) for a in s.agents}, want_eureka(s, "blue"),
               "Eureka: blue UP, green OUT_OF_SERVICE")

    for color in ("blue", "green"):
        if color == "green":
            t.step("flip to green, then the registry restarts again")
            f.flip(s, "green")
            f.wait_converged(s, "green", timeout=20)
            h.wait_until(lambda: all_right("green"), timeout=10, msg="Eureka shows green")
            time.sleep(1.2)  # this restart lands in the middle of a resync interval
        t.step(f"registry restart (overrides forgotten) while {color} is active")
        code, _, _ = h.http("POST", url + "/_double/restart")
        t_restart = time.time()
        t.check_eq(code, 200, "POST /_double/restart")
        after = {a.id: eureka_status(url, a.id) for a in s.agents}
        t.log(f"right after the restart: {after}")
        t.check(after != want_eureka(s, color), "the restart did break something (overrides "
                                                "forgotten)")
        h.wait_until(lambda: all_right(color), timeout=RESYNC_MS / 1000 + 3,
                     msg="every instance right again")
        took = time.time() - t_restart
        t.check_eq({a.id: eureka_status(url, a.id) for a in s.agents}, want_eureka(s, color),
                   f"Eureka right again {took * 1000:.0f} ms after the restart")
        t.check(took <= RESYNC_MS / 1000 + 1.0, f"within one resync interval + 1 s "
                                                f"({took * 1000:.0f} ms)")
        t.check_eq(s.healths(), f.expected_health(s, color), "every /health unchanged")
        t.log(f"RESULT registry_restart ({color} active): repaired in {took * 1000:.0f} ms "
              f"(resync {RESYNC_MS} ms)")


h.run(test)
