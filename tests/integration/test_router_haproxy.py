#!/usr/bin/env python3
"""bg-router, kind haproxy (DESIGN §13), against a real HAProxy (master-worker, its Runtime API
on a unix socket), ZooKeeper, agents and a controller: servers are added to an empty backend at
run time and confirmed by `show servers state`; `bgctl switch green --wait` returns only once
HAProxy sends nothing new to blue (drained, then deleted); an instance that comes is added and
one that goes is removed; weights of a canary reach HAProxy; HAProxy reloaded (it forgets servers
added at run time) is noticed and everything applied again; an address that is not an IP literal
never reaches HAProxy; HAProxy down blocks the switch with the router's reason in /status (the old
colour stays) and the switch finishes by itself once HAProxy is back."""

import os
import re
import shutil
import signal
import socket
import time

import harness as h
import routerrig as ng
from bgsys import System

HAPROXY_CFG = """\
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend app
backend app
    balance roundrobin
"""


# The same without backend app: with haproxy.file the router writes that section (a second -f).
HAPROXY_CFG_NO_BACKEND = HAPROXY_CFG[:HAPROXY_CFG.index("\nbackend app") + 1]


def ask(sock, cmd):
    """One Runtime API command, HAProxy's whole answer."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(3)
        c.connect(str(sock))
        c.sendall((cmd + "\n").encode())
        out = b""
        while True:
            d = c.recv(65536)
            if not d:
                return out.decode()
            out += d


def servers(sock):
    """{name: (addr:port, admin state, weight)} of backend app."""
    out = {}
    for line in ask(sock, "show servers state app").splitlines()[1:]:
        f = line.split()
        if len(f) > 18 and not line.startswith("#"):
            out[f[3]] = (f"{f[4]}:{f[18]}", int(f[6]), int(f[7]))
    return out


def ready(sock):
    """The servers taking new requests (admin state 0), sorted."""
    return sorted(n for n, (_, admin, _) in servers(sock).items() if admin == 0)


def pid_of(sock):
    m = re.search(r"^Pid: (\d+)$", ask(sock, "show info"), re.M)
    return int(m.group(1)) if m else None


router_node = ng.router_node


def serving(s, rid="lb-1"):
    n = router_node(s, rid)
    return sorted(f"{x['color']}/{x['id']}" for x in n["serving"]) if n else None


def served_by(url, n=20):
    names, bad = set(), 0
    for _ in range(n):
        code, _, hdrs = h.http("GET", url, timeout=2)
        bad += code != 200
        names.add(hdrs.get("x-served-by"))
    return sorted(names), bad


def test(t):
    if not shutil.which("haproxy"):
        raise h.Skip("haproxy not installed")
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    apps = {}
    for color in ("blue", "green"):
        for i in (1, 2):
            name = f"{color}-{i}"
            apps[name] = t.demo_app(name)
            # exec (a no-op) passes weights on: a canary is by weight (see test_router_nginx)
            s.agent(name, color, address=f"127.0.0.1:{apps[name].port}",
                    backends=[{"type": "health"}, {"type": "exec", "command": "true"}])
    named = s.agent("green-9", "green", address=f"localhost:{h.free_port()}",
                    backends=[{"type": "health"}, {"type": "exec", "command": "true"}])
    # passes the agent's host:port check, not the router's (see test_router_nginx)
    evil = s.agent("green-8", "green", address="evil.example;}:80",
                   backends=[{"type": "health"}, {"type": "exec", "command": "true"}])
    s.controller("c1")
    s.wait_converged("blue")

    sock, port, hport = t.path("haproxy.sock"), h.free_port(), h.free_port()
    cfg = t.path("haproxy.cfg")
    cfg.write_text(HAPROXY_CFG.format(sock=sock, port=port))
    # master-worker in the foreground: SIGUSR2 to the master reloads (a new worker process)
    hap = t.proc(["haproxy", "-W", "-db", "-f", str(cfg)], name="haproxy")
    h.wait_until(lambda: sock.exists(), timeout=10, msg="HAProxy never opened its socket")
    t.check_eq(servers(sock), {}, "the backend starts empty")
    rconf = h.write_yaml(t.path("router.yaml"), {
        "zookeeper": {"connect": zk.connect, "root": s.root, "session_timeout_ms": 4000},
        "router": {"id": "lb-1", "kind": "haproxy"},
        "haproxy": {"socket": str(sock), "backend": "app", "verify_every": "200ms"},
        "http": {"listen": f"127.0.0.1:{hport}"},
    })
    url = f"http://127.0.0.1:{port}/"

    t.step("the router adds blue's servers to the empty backend at run time")
    router = t.proc([h.bin("bg-router"), "-c", str(rconf)], name="router")
    h.wait_until(lambda: serving(s) == ["blue/blue-1", "blue/blue-2"], timeout=20,
                 msg=lambda: f"router never served blue: {router_node(s)}")
    router.wait_log(r"event=haproxy_applied .*servers=2 .*confirmed=true", timeout=5)
    t.check_eq(servers(sock), {n: (f"127.0.0.1:{apps[n].port}", 0, 100)
                               for n in ("blue-1", "blue-2")},
               "show servers state: blue-1 and blue-2 at their addresses, ready, weight 100")
    t.check_eq(served_by(url), (["blue-1", "blue-2"], 0), "requests through HAProxy reach blue")
    node = router_node(s)
    t.check_eq((node["kind"], node["pending"], node["last_error"]), ("haproxy", False, ""),
               f"/routers/lb-1: {node}")

    t.step("a second HAProxy with its own router (lb-2, haproxy.file) beside it: both waited for")
    sock2, port2 = t.path("haproxy-2.sock"), h.free_port()
    cfg2, file2 = t.path("haproxy-2.cfg"), t.path("haproxy-2-app.cfg")
    cfg2.write_text(HAPROXY_CFG_NO_BACKEND.format(sock=sock2, port=port2))
    file2.write_text("backend app\n    balance roundrobin\n")  # as a user starts: empty
    hap2 = t.proc(["haproxy", "-W", "-db", "-f", str(cfg2), "-f", str(file2)],
                  name="haproxy-lb-2")
    h.wait_until(lambda: sock2.exists(), timeout=10, msg="HAProxy 2 never opened its socket")
    conf2 = h.write_yaml(t.path("router-2.yaml"), {
        "zookeeper": {"connect": zk.connect, "root": s.root, "session_timeout_ms": 4000},
        "router": {"id": "lb-2", "kind": "haproxy"},
        "haproxy": {"socket": str(sock2), "backend": "app", "file": str(file2),
                    "options": ["balance roundrobin", "retries 2"]},
    })
    lb2 = t.proc([h.bin("bg-router"), "-c", str(conf2)], name="router-lb-2")
    h.wait_until(lambda: serving(s, "lb-2") == ["blue/blue-1", "blue/blue-2"], timeout=15,
                 msg=lambda: f"lb-2 never served blue: {router_node(s, 'lb-2')}")

    t.step("bgctl switch green --wait: once it returns, HAProxy sends nothing new to blue")
    rc, _, err = s.bgctl("switch", "green", "--wait")
    t.check_eq(rc, 0, f"bgctl switch green --wait ({err})")
    t.check_eq(served_by(url, 40), (["green-1", "green-2"], 0),
               "every request after --wait returned reaches green")
    st = servers(sock)
    t.check_eq(ready(sock), ["green-1", "green-2"], f"only green takes new requests: {st}")
    router.wait_log(r"event=instances_dropped .*green/green-9: address localhost:\d+ is not an "
                    r"IP address", timeout=5)
    router.wait_log(r"green/green-8: malformed address", timeout=5)
    t.check("green-9" not in st and "green-8" not in st,
            "green-9 (UP, a host name) and green-8 (UP, a malformed address) never reach HAProxy")
    t.check(all("evil" not in v[0] for v in st.values()), f"no malformed address: {st}")
    t.check("green-9" in [i["id"] for i in s.status()["instances"] if i["status"] == "UP"],
            "green-9 is UP in /status all the same")
    h.wait_until(lambda: sorted(servers(sock)) == ["green-1", "green-2"], timeout=10,
                 msg=lambda: f"blue's drained servers were never deleted: {servers(sock)}")
    router.wait_log(r"event=haproxy_server_deleted command=\"del server app/blue-1\"", timeout=5)

    t.check_eq(ready(sock2), ["green-1", "green-2"], "lb-2's HAProxy: only green is ready")
    t.check_eq(served_by(f"http://127.0.0.1:{port2}/", 20), (["green-1", "green-2"], 0),
               "requests through the second HAProxy reach green")
    want = ["balance roundrobin", "retries 2",
            *[f"server {n} 127.0.0.1:{apps[n].port} weight 100" for n in ("green-1", "green-2")]]
    lines = lambda: re.findall(r"^    ((?:server|balance|retries) .*)$", file2.read_text(), re.M)
    # written by a thread of the router's (fsync may take a while): soon, not at once
    h.wait_until(lambda: lines() == want, timeout=10,
                 msg=lambda: f"haproxy.file never showed the section as served:\n"
                             f"{file2.read_text()}")
    t.check_eq(lines(), want, "haproxy.file: the section as served")
    r = h.run_cmd(["haproxy", "-c", "-f", str(cfg2), "-f", str(file2)], quiet=True)
    t.check_eq(r.returncode, 0, f"haproxy -c accepts it: {r.stdout}{r.stderr}")
    old = pid_of(sock2)
    hap2.kill(signal.SIGUSR2)  # the new process reads the file: green from its first request
    h.wait_until(lambda: (pid_of(sock2) or old) != old, timeout=10, msg="HAProxy 2 never reloaded")
    t.check_eq(ready(sock2), ["green-1", "green-2"],
               "after the reload, before the router could apply anything: green is there")
    t.check_eq(served_by(f"http://127.0.0.1:{port2}/", 20), (["green-1", "green-2"], 0),
               "no 503 after the reload: the servers came from the file")
    t.check_eq(lb2.stop(), 0, "lb-2 stops cleanly")
    hap2.stop()
    h.wait_until(lambda: router_node(s, "lb-2") is None, timeout=10, msg="/routers/lb-2 left")

    t.step("an instance that comes is added at run time; one that goes is removed")
    apps["green-3"] = t.demo_app("green-3")
    g3 = s.agent("green-3", "green", address=f"127.0.0.1:{apps['green-3'].port}",
                 backends=[{"type": "health"}, {"type": "exec", "command": "true"}])
    h.wait_until(lambda: ready(sock) == ["green-1", "green-2", "green-3"], timeout=20,
                 msg=lambda: f"green-3 never added: {servers(sock)}")
    t.check_eq(served_by(url, 30)[0], ["green-1", "green-2", "green-3"], "green-3 serves")
    t.check_eq(g3.proc.stop(), 0, "green-3's agent stops")
    h.wait_until(lambda: sorted(servers(sock)) == ["green-1", "green-2"], timeout=20,
                 msg=lambda: f"green-3 never removed: {servers(sock)}")
    t.check_eq(served_by(url), (["green-1", "green-2"], 0), "green-1 and green-2 serve")

    t.step("bgctl canary blue 25: HAProxy gets the weights; abort: green alone")
    t.check_eq((named.proc.stop(), evil.proc.stop()), (0, 0),
               "green-9's and green-8's agents stop (they would take a share)")
    h.wait_until(lambda: not {"green-8", "green-9"} & {i["id"] for i in s.status()["instances"]},
                 timeout=15, msg="green-8 and green-9 never left /status")
    rc, _, err = s.bgctl("canary", "blue", "25", "--wait", "--timeout", "60s")
    t.check_eq(rc, 0, f"bgctl canary blue 25 --wait ({err})")
    h.wait_until(lambda: len(ready(sock)) == 4, timeout=20,
                 msg=lambda: f"blue never came back weighted: {servers(sock)}")
    w = {n: v[2] for n, v in servers(sock).items()}
    share = (w["blue-1"] + w["blue-2"]) / sum(w.values())
    t.check(abs(share - 0.25) < 0.02, f"HAProxy's weights give blue 25 %: {w}")
    rc, _, err = s.bgctl("canary", "--abort", "--wait", "--timeout", "60s")
    t.check_eq(rc, 0, f"bgctl canary --abort --wait ({err})")
    h.wait_until(lambda: ready(sock) == ["green-1", "green-2"] and
                 all(v[2] == 100 for n, v in servers(sock).items() if v[1] == 0), timeout=20,
                 msg=lambda: f"the canary never left HAProxy: {servers(sock)}")

    t.step("HAProxy reloaded (a new worker without the run-time servers): applied again")
    old = pid_of(sock)
    mark = router.mark()
    t0 = time.monotonic()
    hap.kill(signal.SIGUSR2)
    h.wait_until(lambda: (pid_of(sock) or old) != old, timeout=10, msg="HAProxy never reloaded")
    router.wait_log(rf"event=haproxy_restarted old_pid={old} pid=\d+", timeout=10, since=mark)
    h.wait_until(lambda: ready(sock) == ["green-1", "green-2"], timeout=10,
                 msg=lambda: f"servers never applied again after the reload: {servers(sock)}")
    t.log(f"servers back {time.monotonic() - t0:.3f} s after SIGUSR2 (verify_every 200ms)")
    t.check_eq(served_by(url), (["green-1", "green-2"], 0), "HAProxy serves green again")

    t.step("HAProxy frozen (SIGSTOP): the router's /health still answers; its error says why")
    worker = pid_of(sock)
    os.kill(worker, signal.SIGSTOP)
    try:
        worst, codes, t_end = 0.0, set(), time.monotonic() + 3.0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            codes.add(h.http("GET", f"http://127.0.0.1:{hport}/health", timeout=5)[0])
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.05)
        t.check_eq(codes, {200}, "router /health answers 200 while HAProxy is frozen")
        t.log(f"router /health slowest answer while HAProxy was frozen: {worst * 1000:.0f} ms")
        t.check(worst < 0.5, f"router /health answered within 0.5 s (worst {worst:.3f} s; "
                "haproxy.timeout is 1 s)")
        router.wait_log(r"event=haproxy_unreachable .*no answer within the timeout", timeout=5)
    finally:
        os.kill(worker, signal.SIGCONT)
    h.wait_until(lambda: not (router_node(s) or {"pending": True})["pending"], timeout=20,
                 msg=lambda: f"the router never recovered from the freeze: {router_node(s)}")
    t.check_eq(served_by(url), (["green-1", "green-2"], 0), "HAProxy serves green after thawing")

    t.step("HAProxy down: the switch waits for the router, its reason in /status; back: done")
    hap.stop()
    rc, _, _ = s.bgctl("switch", "blue", "--wait", "--timeout", "6s")
    t.check(rc != 0, f"bgctl switch blue --wait does not succeed while HAProxy is down ({rc})")
    st = s.status()
    t.check("router lb-1 failed" in st["reason"] and "cannot connect" in st["reason"],
            f"/status names the router and why: {st['phase']}: {st['reason']}")
    t.check_eq(sorted(i["id"] for i in st["instances"]
                      if i["status"] == "UP" and i["color"] == "green"),
               ["green-1", "green-2"], "green (what HAProxy last served) stays UP")
    node = router_node(s)
    t.check("cannot connect" in node["last_error"] and node["pending"],
            f"/routers/lb-1 says why and that a change is pending: {node}")
    hap = t.proc(["haproxy", "-W", "-db", "-f", str(cfg)], name="haproxy-2")
    h.wait_until(lambda: serving(s) == ["blue/blue-1", "blue/blue-2"], timeout=40,
                 msg=lambda: f"router never served blue once HAProxy was back: {router_node(s)}")
    s.wait_converged("blue", timeout=30)
    t.check_eq(served_by(url), (["blue-1", "blue-2"], 0), "HAProxy serves blue")
    t.check_eq(ready(sock), ["blue-1", "blue-2"], "only blue takes new requests")

    t.step("GET /metrics; SIGTERM: exit 0, node gone, HAProxy keeps serving")
    code, text, _ = h.http("GET", f"http://127.0.0.1:{hport}/metrics")
    t.check(code == 200 and "\nbg_router_serving_instances 2\n" in text and
            "\nbg_router_pending 0\n" in text, "/metrics: serving 2, nothing pending")
    reapplies = re.search(r"^bg_router_reapplies_total (\d+)$", text, re.M)
    t.check(reapplies is not None and int(reapplies.group(1)) >= 1,
            "/metrics counts the reload that made the router apply again")
    if shutil.which("promtool"):  # test_metrics requires it (and says how to install it)
        r = h.run_cmd(["promtool", "check", "metrics"], input=text, timeout=30, quiet=True)
        t.check_eq((r.returncode, (r.stdout + r.stderr).strip()), (0, ""),
                   "promtool check metrics: no problem")
    t.check_eq(router.stop(), 0, "bg-router exit code on SIGTERM")
    h.wait_until(lambda: router_node(s) is None, timeout=10, msg="/routers/lb-1 left behind")
    t.check_eq(served_by(url), (["blue-1", "blue-2"], 0),
               "what HAProxy serves is left as it is when the router stops")
    hap.stop()


if __name__ == "__main__":  # slow_router_haproxy imports the helpers
    h.run(test)
