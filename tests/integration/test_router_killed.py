#!/usr/bin/env python3
"""Issue 12: the routers as the leader sees them, and a router killed in the middle of a switch.
Real ZooKeeper, agents, a controller, bg-router lb-1 in front of a real nginx and lb-2 with
stand-in test/reload commands. /status's "routers", `bgctl status` (text and --json), the
status page and /metrics list the live routers with exact counts per colour; a switch waits
for lb-2 whose reload hangs, lb-2 is killed with SIGKILL, and the switch completes once its
ephemeral node is gone (session expiry), after which it is listed nowhere; a router whose
test fails blocks the next switch and shows its error in /status routers[].last_error."""

import json
import re
import shutil
import time

import harness as h
import routerrig as ng
from bgsys import System

SESSION_MS = 2000  # lb-2's ZooKeeper session: its node goes this long after a kill -9


router_node = ng.router_node


def serving(s, rid):
    n = router_node(s, rid)
    return sorted(f"{x['color']}/{x['id']}" for x in n["serving"]) if n else None


def entry(s, rid, blue, green, pending=False, failed=False, last_error=None, waited=False):
    """The /status routers[] entry expected for router rid (generation: its node's)."""
    node = router_node(s, rid)
    return {"id": rid, "kind": "nginx", "serving": {"blue": blue, "green": green},
            "generation": node["generation"] if node else None, "pending": pending,
            "failed": failed, "last_error": last_error, "waited": waited}


def wait_routers(s, want, timeout=20):
    """Until /status's routers equal want() (a list of entries); returns /status."""
    deadline = time.monotonic() + timeout
    while True:
        st = s.status() or {}
        expected = want()
        if st.get("routers") == expected:
            return st
        if time.monotonic() >= deadline:
            raise AssertionError(f"/status routers never became\n{expected}\nbut stayed\n"
                                 f"{st.get('routers')}\n({st.get('phase')}: {st.get('reason')})")
        time.sleep(0.05)


def metrics(url):
    code, text, _ = h.http("GET", url + "metrics")
    h.check_eq(code, 200, "GET /metrics")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return text, out


def router_rows(text):
    """bgctl status's router rows: [[id, kind, blue, green, generation, state...]]."""
    lines = text.splitlines()
    try:
        i = next(k for k, line in enumerate(lines) if line.startswith("ROUTER "))
    except StopIteration:
        return []
    rows = []
    for line in lines[i + 1:]:
        if not line.strip():
            break
        rows.append(line.split(None, 5))
    return rows


def test(t):
    if not shutil.which("nginx"):
        raise h.Skip("nginx not installed")
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    for color in ("blue", "green"):
        for i in (1, 2):
            name = f"{color}-{i}"
            app = t.demo_app(name)
            s.agent(name, color, address=f"127.0.0.1:{app.port}")
    listen = f"127.0.0.1:{h.free_port()}"
    conf = h.write_controller_conf(t.dir, zk, s.root, id="c1", listen=listen)
    ctl = t.proc([h.bin("bg-controller"), "-c", str(conf)], name="controller-c1")
    ctl.wait_log(r"event=election_joined", timeout=15)
    s.controllers.append(ctl)
    curl = f"http://{listen}/"
    slisten = f"127.0.0.1:{h.free_port()}"  # a standby: its page shows /status as read
    sconf = h.write_controller_conf(t.dir, zk, s.root, id="c2", listen=slisten)
    standby = t.proc([h.bin("bg-controller"), "-c", str(sconf)], name="controller-c2")
    standby.wait_log(r"event=election_joined", timeout=15)
    s.controllers.append(standby)
    s.wait_converged("blue")
    st = s.status()
    t.check_eq(st["routers"], [], "/status lists no router while none runs")

    t.step("lb-1 (a real nginx) and lb-2 (stand-ins) serve blue: listed with exact counts")
    web = ng.Nginx(t, t.path("nginx"))
    # lb-1's upstream file must exist before nginx starts: lb-1 first, nginx once it wrote it
    r1conf = ng.router_yaml(t.path("router-1.yaml"), zk, s.root, nginx=ng.nginx_section(
        web, confirm_port=h.free_port(), confirm_timeout="3s"))
    lb1 = ng.start_router(t, r1conf, name="router-lb-1")
    h.wait_until(lambda: web.upstream.exists(), timeout=15,
                 msg="lb-1 never wrote its upstream file")
    web.start()
    hang, fail = t.path("reload-hangs"), t.path("test-fails")
    r2conf = h.write_yaml(t.path("router-2.yaml"), {
        "zookeeper": {"connect": zk.connect, "root": s.root, "session_timeout_ms": SESSION_MS},
        "router": {"id": "lb-2", "kind": "nginx"},
        "nginx": {"upstream": "shop", "file": str(t.path("lb-2-upstream.conf")),
                  "test": ["sh", "-c", f'test ! -e "{fail}" || {{ echo flag set; exit 1; }}'],
                  "reload": ["sh", "-c", f'while test -e "{hang}"; do sleep 0.1; done'],
                  "timeout": "120s"},
    })
    lb2 = t.proc([h.bin("bg-router"), "-c", str(r2conf)], name="router-lb-2")
    for rid in ("lb-1", "lb-2"):
        h.wait_until(lambda: serving(s, rid) == ["blue/blue-1", "blue/blue-2"], timeout=20,
                     msg=f"{rid} never served blue")
    st = wait_routers(s, lambda: [entry(s, "lb-1", 2, 0), entry(s, "lb-2", 2, 0)])
    t.check(st["routers"][0]["generation"] >= 1, f"lb-1's generation: {st['routers'][0]}")
    rc, out, _ = s.bgctl("status")
    t.check_eq(rc, 0, "bgctl status")
    gens = [str(e["generation"]) for e in st["routers"]]
    t.check_eq(router_rows(out), [["lb-1", "nginx", "2", "0", gens[0], "ok"],
                                  ["lb-2", "nginx", "2", "0", gens[1], "ok"]],
               f"bgctl status lists both routers:\n{out}")
    rc, out, _ = s.bgctl("status", "--json")
    t.check_eq((rc, json.loads(out)["routers"]), (0, st["routers"]),
               "bgctl status --json: the routers as /status has them")
    text, m = metrics(curl)
    t.check_eq((m.get("bg_controller_routers"),
                m.get('bg_controller_router_serving{router="lb-1",color="blue"}'),
                m.get('bg_controller_router_serving{router="lb-1",color="green"}'),
                m.get('bg_controller_router_serving{router="lb-2",color="blue"}'),
                m.get('bg_controller_router_failing{router="lb-2"}'),
                m.get('bg_controller_router_waited{router="lb-2"}')),
               (2.0, 2.0, 0.0, 2.0, 0.0, 0.0), "/metrics: 2 routers, each serving 2 blue")
    if shutil.which("promtool"):
        r = h.run_cmd(["promtool", "check", "metrics"], input=text, timeout=30, quiet=True)
        t.check_eq((r.returncode, (r.stdout + r.stderr).strip()), (0, ""),
                   "promtool check metrics: no problem")
    rows = [f"<tr><td>{e['id']}</td><td>nginx</td><td>2</td><td>0</td><td>{e['generation']}"
            f"</td><td>ok</td></tr>" for e in st["routers"]]
    code, page, _ = h.http("GET", curl)
    t.check(code == 200 and "<h2>Routers (2)</h2>" in page and all(r in page for r in rows),
            "the leader's page: a Routers table, lb-1 and lb-2 ok, serving 2 blue each")

    def standby_page():
        code, page, _ = h.http("GET", f"http://{slisten}/")  # the first GET asks for reads
        return code == 200 and "<h2>Routers (2)</h2>" in page and all(r in page for r in rows)
    h.wait_until(standby_page, timeout=10, msg="the standby's page never showed both routers")
    t.check(True, "the standby's page: the same Routers table (from /status as it read it)")

    t.step("switch to green while lb-2's reload hangs: the switch waits for lb-2")
    hang.write_text("")
    rc, _, _ = s.bgctl("switch", "green")
    t.check_eq(rc, 0, "bgctl switch green")
    # bg-router publishes "pending" when a change starts: the hanging reload shows
    st = wait_routers(s, lambda: [entry(s, "lb-1", 2, 2),
                                  entry(s, "lb-2", 2, 0, waited=True, pending=True)])
    t.check_eq((st["phase"], st["reason"]),
               ("switching", "green is UP (2 of 2); waiting for router lb-2 to serve it "
                             "(0 instance(s) of it served)"), "/status: waiting for lb-2")
    t.check_eq(sorted(i["id"] for i in st["instances"] if i["status"] == "UP"),
               ["blue-1", "blue-2", "green-1", "green-2"], "blue stays UP (make before break)")
    rc, out, _ = s.bgctl("status")
    t.check_eq(router_rows(out)[1], ["lb-2", "nginx", "2", "0", str(st["routers"][1]["generation"]),
                                     "pending (the switch waits for it)"],
               f"bgctl status: lb-2 waited for:\n{out}")
    _, m = metrics(curl)
    t.check_eq((m.get('bg_controller_router_waited{router="lb-2"}'),
                m.get('bg_controller_router_waited{router="lb-1"}'),
                m.get('bg_controller_router_serving{router="lb-1",color="green"}'),
                m.get('bg_controller_router_serving{router="lb-2",color="green"}')),
               (1.0, 0.0, 2.0, 0.0), "/metrics: lb-2 waited for, lb-1 not")
    code, page, _ = h.http("GET", curl)
    t.check(code == 200 and "<h2>Routers (2)</h2>" in page and
            f"<tr><td>lb-2</td><td>nginx</td><td>2</td><td>0</td><td>"
            f"{st['routers'][1]['generation']}</td><td>pending <span class=\"muted\">(the switch "
            "waits for it)</span></td></tr>" in page,
            "the status page shows lb-2 waited for")

    t.step("kill -9 lb-2 mid-switch: the switch completes once its node is gone")
    lb2.kill()
    t0 = time.monotonic()
    lb2.wait(10)
    time.sleep(0.5)
    st = s.status()
    t.check(st["phase"] == "switching" and router_node(s, "lb-2") is not None,
            f"right after the kill its node is still there and waited for: {st['phase']}")
    h.wait_until(lambda: router_node(s, "lb-2") is None, timeout=15,
                 msg="lb-2's ephemeral node never went")
    gone = time.monotonic() - t0
    s.wait_converged("green", timeout=20)
    done = time.monotonic() - t0
    hang.unlink()  # the orphaned reload stand-in exits
    t.log(f"kill -9 lb-2 -> node gone {gone:.2f} s -> converged {done:.2f} s "
          f"(session_timeout_ms {SESSION_MS})")
    t.check(done < SESSION_MS / 1000 + 8, f"converged soon after the session expired: {done:.2f} s")
    h.wait_until(lambda: serving(s, "lb-1") == ["green/green-1", "green/green-2"], timeout=10,
                 msg=lambda: f"lb-1 never dropped blue: {router_node(s, 'lb-1')}")
    st = wait_routers(s, lambda: [entry(s, "lb-1", 0, 2)])
    t.check_eq(sorted(i["id"] for i in st["instances"] if i["status"] == "UP"),
               ["green-1", "green-2"], "blue is out")
    rc, out, _ = s.bgctl("status")
    t.check_eq(router_rows(out), [["lb-1", "nginx", "0", "2",
                                   str(st["routers"][0]["generation"]), "ok"]],
               f"bgctl status lists lb-1 only:\n{out}")
    text, m = metrics(curl)
    t.check_eq((m.get("bg_controller_routers"),
                m.get('bg_controller_router_serving{router="lb-1",color="green"}'),
                m.get('bg_controller_router_serving{router="lb-2",color="blue"}')),
               (1.0, 2.0, None), "/metrics: lb-1 alone, serving 2 green")
    t.check("lb-2" not in text, "/metrics no longer names lb-2")
    code, page, _ = h.http("GET", curl)
    t.check(code == 200 and "<h2>Routers (1)</h2>" in page and "lb-2" not in page,
            "the status page lists lb-1 alone")
    code, body, _ = h.http("GET", web.url)
    t.check_eq(code, 200, "nginx (lb-1) answers through green")

    t.step("lb-2 back with a failing test: the next switch blocks, its error in /status")
    fail.write_text("")
    lb2 = t.proc([h.bin("bg-router"), "-c", str(r2conf)], name="router-lb-2b")
    h.wait_until(lambda: (router_node(s, "lb-2") or {}).get("last_error"), timeout=15,
                 msg=lambda: f"lb-2 never reported its failing test: {router_node(s, 'lb-2')}")
    err = router_node(s, "lb-2")["last_error"]
    t.check(err.startswith("test sh failed (the old file is kept): ") and "flag set" in err,
            f"lb-2's error: {err!r}")
    st = wait_routers(s, lambda: [entry(s, "lb-1", 0, 2),
                                  entry(s, "lb-2", 0, 0, pending=True, failed=True,
                                        last_error=err)])
    t.check_eq(st["phase"], "converged", "an error with nothing of the old colour: converged")
    rc, _, _ = s.bgctl("switch", "blue")
    t.check_eq(rc, 0, "bgctl switch blue")
    st = wait_routers(s, lambda: [entry(s, "lb-1", 2, 2),
                                  entry(s, "lb-2", 0, 0, pending=True, failed=True,
                                        last_error=router_node(s, "lb-2")["last_error"],
                                        waited=True)])
    err = st["routers"][1]["last_error"]
    t.check(err.startswith("test sh failed (the old file is kept): ") and "flag set" in err,
            f"/status routers[1].last_error: {err!r}")
    t.check_eq((st["phase"], st["reason"]),
               ("blocked", f"blue is UP (2 of 2); router lb-2 failed: {err}; the other colour "
                           "stays"), "/status: blocked by lb-2, with its error")
    rc, out, _ = s.bgctl("status")
    t.check_eq(router_rows(out)[1], ["lb-2", "nginx", "0", "0",
                                     str(st["routers"][1]["generation"]),
                                     f"failed: {err} (the switch waits for it)"],
               f"bgctl status: lb-2 failed, with its error:\n{out}")
    _, m = metrics(curl)
    t.check_eq((m.get('bg_controller_router_failing{router="lb-2"}'),
                m.get('bg_controller_router_failing{router="lb-1"}')), (1.0, 0.0),
               "/metrics: lb-2 failing, lb-1 not")
    code, page, _ = h.http("GET", curl)
    t.check(code == 200 and "<span class=\"err\">failed: test sh failed (the old file is kept): "
            in page, "the status page shows lb-2 failed, with its error")

    t.step("lb-2's test repaired: the switch completes by itself, both serve blue")
    fail.unlink()
    s.wait_converged("blue", timeout=60)
    st = wait_routers(s, lambda: [entry(s, "lb-1", 2, 0), entry(s, "lb-2", 2, 0)])
    t.check_eq(st["routers"][1]["last_error"], None, "lb-2's error is gone")
    t.check_eq(lb2.stop(), 0, "lb-2 stops cleanly")
    t.check_eq(lb1.stop(), 0, "lb-1 stops cleanly")
    wait_routers(s, lambda: [])


h.run(test)
