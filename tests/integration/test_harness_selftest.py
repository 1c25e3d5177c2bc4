#!/usr/bin/env python3
"""The harness checks itself: ZooKeeper (single and ensemble), zkt, zkCli.sh, bg-demo-app."""

import json
import os
import subprocess
import sys
import time

import harness as h


def single_zookeeper(t):
    t.step("single ZooKeeper")
    zk = t.zookeeper()
    t.check(zk.four("ruok") == "imok", f"ruok answers imok ({zk.start_seconds:.2f}s to serve)")
    t.check_eq(zk.mode(), "standalone", "srvr reports standalone mode")

    root = t.root(zk)
    t.check(h.zk_exists(zk, root), f"unique root {root} created")

    path = root + "/active_color"
    t.check_eq(h.zk_get(zk, path), None, "zk_get of a missing node is None")
    h.zk_set(zk, path, "blue")
    t.check_eq(h.zk_get(zk, path), "blue", "zk_set creates, zk_get reads")
    h.zk_set(zk, path, "green\n")
    st = h.zk_stat(zk, path)
    t.check(st["version"] == 1 and st["dataLength"] == 6 and st["ephemeralOwner"] == "0x0",
            f"zk_stat after a second set: {st}")

    blob = bytes(range(256)) * 1024  # 256 KiB of binary data through stdin
    h.zk_set(zk, root + "/blob", blob)
    t.check(h.zk_get(zk, root + "/blob", binary=True) == blob, "binary 256 KiB round trip")

    h.zk_set(zk, root + "/blue/b", "")
    h.zk_set(zk, root + "/blue/a", {"id": "a", "endpoint": "http://127.0.0.1:1"})
    t.check_eq(h.zk_ls(zk, root + "/blue"), ["a", "b"], "zk_ls sorted; set creates parents")
    t.check_eq(h.zk_get_json(zk, root + "/blue/a")["id"], "a", "JSON data round trip")
    t.check_eq(h.zk_ls(zk, root + "/nope"), None, "zk_ls of a missing node is None")

    seq = h.zk_create(zk, root + "/history/entry-", "x", sequential=True, parents=True)
    t.check(seq.startswith(root + "/history/entry-00000"), f"sequential create -> {seq}")
    try:
        h.zk_create(zk, seq, "again")
        t.check(False, "create of an existing node fails")
    except h.ZkError as e:
        t.check_eq(e.rc, 4, "create of an existing node exits 4")
    try:
        h.zk_delete(zk, root + "/blue")
        t.check(False, "non-recursive delete of a parent fails")
    except h.ZkError as e:
        t.check_eq(e.rc, 6, "non-recursive delete of a parent exits 6")

    # An ephemeral registration held by a background zkt, like an agent's.
    holder = t.zk_hold(zk, root + "/green/fake-1", '{"id":"fake-1"}')
    st = h.zk_stat(zk, holder.created)
    t.check(st is not None and st["ephemeralOwner"] != "0x0",
            f"held node is ephemeral (owner {st and st['ephemeralOwner']})")
    holder.stop()
    t.check(h.zk_wait_gone(zk, holder.created, timeout=5), "ephemeral gone once its holder stops")
    t.check(not h.zk_wait_exists(zk, holder.created, timeout=0.2), "wait-exists times out")

    # zkt speed (the reason it exists).
    n = 20
    t0 = time.monotonic()
    for _ in range(n):
        h.zk_get(zk, path)
    per_call = (time.monotonic() - t0) / n * 1000
    t.check(per_call < 200, f"zkt get takes {per_call:.1f} ms per call")

    # The real zkCli.sh, as CI and admins use it.
    r = h.zkcli(zk, "get", path)
    t.check(r.rc == 0 and r.data.strip() == "green", f"zkCli.sh get -> rc={r.rc} {r.data!r}")
    r = h.zkcli(zk, "set", path, "blue")
    t.check(r.rc == 0 and h.zk_get(zk, path) == "blue", "zkCli.sh set is seen by zkt")

    t.check(h.zk_delete(zk, root, recursive=True), "recursive delete of the root")
    t.check(not h.zk_exists(zk, root), "root gone")
    t.check(h.zk_delete(zk, root) is False, "delete of a missing node returns False")

    # zkt fails fast and clearly when nobody listens.
    dead = f"127.0.0.1:{h.free_port()}"
    r = h.zkt(dead, "get", "/", timeout_ms=300)
    t.check(r.returncode == 2 and "not connected" in r.stderr,
            f"zkt against a dead server exits 2: {r.stderr.strip()}")

    zk.stop()
    t.check(not zk.alive(), "ZooKeeper stopped")
    zk.start()
    t.check(h.zk_exists(zk, "/t"), "data survives a restart (same data dir)")


def ensemble(t):
    t.step("3-server ensemble")
    ens = t.ensemble(3)
    t.check(ens.start_seconds is not None, f"quorum after {ens.start_seconds:.2f}s")
    leader = ens.leader_index()
    t.check(leader is not None, f"a leader: {ens.servers[leader].name}")

    root = t.root(ens)
    h.zk_set(ens, root + "/active_color", "blue")
    # A read through each member alone: the write was replicated.
    for s in ens.servers:
        got = h.wait_until(lambda s=s: h.zk_get(s, root + "/active_color"), timeout=5,
                           msg=f"{root}/active_color on {s.name}")
        t.check_eq(got, "blue", f"{s.name} serves the replicated write")

    t.step(f"kill the leader {ens.servers[leader].name}")
    ens.kill(leader)
    t0 = time.monotonic()
    # At once, during the election: zkt retries until the remaining two elect a leader.
    h.zk_set(ens, root + "/active_color", "green")
    t.check_eq(h.zk_get(ens, root + "/active_color"), "green",
               f"a write during the election succeeds after {time.monotonic() - t0:.2f}s")
    new_leader = ens.wait_quorum(timeout=30)
    t.check(new_leader is not None and new_leader != leader,
            f"new leader {ens.servers[new_leader].name} after {time.monotonic() - t0:.2f}s")

    # Regression: CI once waited 20 s for "a new leader" because the new leader had index 0.
    fake = type("Fake", (), {"leader_index": lambda self: 0, "name": "fake"})()
    t.check_eq(h.Ensemble.wait_leader(fake, timeout=2), 0,
               "wait_leader accepts index 0 (a truthiness wait raises a timeout here)")
    t.check_eq(ens.wait_leader(timeout=20, exclude=leader), new_leader,
               "wait_leader(exclude=old) finds the new leader")

    t.step("restart the old leader")
    ens.start(leader)
    ens.wait_quorum(timeout=30)
    got = h.wait_until(lambda: h.zk_get(ens.servers[leader], root + "/active_color") == "green",
                       timeout=10, msg="the restarted member catches up")
    t.check(got, f"{ens.servers[leader].name} rejoined and caught up")


def demo_app(t):
    t.step("bg-demo-app")
    app = t.demo_app("blue-1", version="1.4.2")
    status, body, headers = h.http("GET", app.url + "any/path?x=1")
    t.check_eq((status, body), (200, "blue-1 1.4.2\n"), "GET answers NAME VERSION")
    t.check_eq(headers.get("x-served-by"), "blue-1", "X-Served-By header")
    status, body, _ = h.http("POST", app.url, body={"k": "v" * 10000})
    t.check_eq((status, body), (200, "blue-1 1.4.2\n"), "POST with a body answers too")

    t.step("bg-demo-app: health endpoint, broken and fixed at run time")
    t.check_eq(h.http("GET", app.health_url)[:2], (200, "OK\n"), "GET /healthz: 200 OK")
    t.check_eq(app.admin("break")[0], 200, "POST /admin/break")
    t.check_eq(h.http("GET", app.health_url)[0], 503, "broken: /healthz 503")
    status, body, headers = h.http("GET", app.url)
    t.check_eq((status, body, headers.get("x-served-by")), (500, "blue-1 1.4.2 broken\n",
                                                           "blue-1"),
               "broken: ordinary requests 500, still marked X-Served-By")
    t.check_eq(app.admin("fix")[0], 200, "POST /admin/fix")
    t.check_eq(h.http("GET", app.url)[0], 200, "fixed: 200 again")
    stats = json.loads(app.admin("stats")[1])
    t.check_eq((stats["served"], stats["served_broken"], stats["health_checks"]), (3, 1, 2),
               f"GET /admin/stats counts ordinary (200 / 500) and health requests: {stats}")
    ff = t.path("broken-flag")
    app2 = t.demo_app("green-1", fail_file=ff)
    t.check_eq(h.http("GET", app2.health_url)[0], 200, "--fail-file absent: healthy")
    ff.write_text("")
    t.check_eq((h.http("GET", app2.health_url)[0], h.http("GET", app2.url)[0]), (503, 500),
               "--fail-file present: /healthz 503, requests 500")
    ff.unlink()
    t.check_eq(h.http("GET", app2.health_url)[0], 200, "--fail-file removed: healthy again")
    app2.stop()
    app3 = t.demo_app("green-2", flap_ms=200)
    seen = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.2:
        seen.append(h.http("GET", app3.health_url)[0])
        time.sleep(0.02)
    changes = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
    t.check(set(seen) == {200, 503} and 3 <= changes <= 8,
            f"--flap-ms 200: /healthz alternates ({changes} changes in 1.2 s)")
    app3.stop()
    app4 = t.demo_app("green-3", broken=True, start=False)
    t.check(not app4.alive(), "start=False: an application that is down")
    app4.start()
    app4.wait_listening()
    t.check_eq(h.http("GET", app4.health_url)[0], 503, "--broken: starts broken")
    app4.stop()

    res = h.run_wrk(app.url, duration=2, connections=64)
    t.check(res["requests"] > 1000 and res["error_total"] == 0,
            f"wrk -c64 -d2s: {res['requests']} requests, {res['rps']:.0f}/s, "
            f"latency {res['latency_avg']}, errors {res['error_total']}")

    app.stop()
    t.check_eq(app.returncode, 0, "SIGTERM stops it cleanly (exit 0)")

    # The error paths the other tests rely on.
    try:
        h.http("GET", app.url, timeout=0.5)
        t.check(False, "a stopped app refuses connections")
    except OSError:
        t.check(True, "http() raises OSError when nothing listens")
    try:
        h.wait_until(lambda: h.http("GET", app.url, timeout=0.2), timeout=0.3,
                     ignore=(OSError,), msg="the stopped app")
        t.check(False, "wait_until times out")
    except AssertionError as e:
        t.check("timed out after 0.3s waiting for: the stopped app" in str(e),
                f"wait_until raises with its message: {e}")


def config_writers(t):
    t.step("config writers")
    tok = h.write_token(t.dir)
    a = h.write_agent_conf(t.dir, "127.0.0.1:2181", "/t/x", "web-1", "blue", "127.0.0.1:9101",
                           token_file=tok, backends=[{"type": "health"},
                                                     {"type": "eureka",
                                                      "urls": ["http://127.0.0.1:8761/eureka"],
                                                      "register": False}])
    text = a.read_text()
    t.check('connect: "127.0.0.1:2181"' in text and "color: blue" in text and
            '- type: eureka' in text and 'urls: ["http://127.0.0.1:8761/eureka"]' in text,
            "agent.yaml written")
    c = h.write_controller_conf(t.dir, "127.0.0.1:2181", "/t/x", id="c1", settle=250)
    t.check("settle: 250ms" in c.read_text() and "id: c1" in c.read_text(),
            "controller.yaml written (int durations become ms)")


def strict_skips(t):
    """BG_STRICT=1 turns a skip into a failure (CI has every tool), except strict=False."""
    t.step("strict skips")
    here = os.path.dirname(os.path.abspath(__file__))
    for strict, env, want in [(True, "1", 1), (True, "", 77), (False, "1", 77)]:
        script = t.dir / f"skipper_{strict}_{env or 'unset'}.py"
        script.write_text("import sys\nsys.path.insert(0, %r)\nimport harness as h\n"
                          "def test(t):\n    raise h.Skip('no tool', strict=%r)\n"
                          "h.run(test)\n" % (here, strict))
        e = dict(os.environ, BG_STRICT=env)
        r = subprocess.run([sys.executable, str(script)], env=e, capture_output=True, text=True,
                           timeout=60)
        t.check_eq(r.returncode, want, f"Skip(strict={strict}) with BG_STRICT={env!r}: exit code")


def test(t):
    single_zookeeper(t)
    ensemble(t)
    demo_app(t)
    config_writers(t)
    strict_skips(t)


if __name__ == "__main__":
    h.run(test)
