#!/usr/bin/env python3
"""bg-router, kind nginx (DESIGN §13), against a real nginx, ZooKeeper, agents and a
controller: the upstream file lists the instances /status has UP (a malformed instance.address
never reaches it), nginx down at reload time (not started yet, or stopped) is reported and
retried, a failing test keeps the old file and says so in /routers/<id>, after `bgctl switch
green --wait` requests through nginx reach green once the router has applied it, and a router
restarted at once waits for its previous session's node."""

import re
import shutil

import harness as h
import routerrig as ng
from bgsys import System

BAD_ADDRESS = "evil.example;}:80"  # passes the agent's host:port check, not the router's


router_node = ng.router_node


def serving(s, rid="lb-1"):
    n = router_node(s, rid)
    return sorted(f"{x['color']}/{x['id']}" for x in n["serving"]) if n else None


def served_by(url, n=20):
    names = set()
    for _ in range(n):
        code, _, hdrs = h.http("GET", url, timeout=2)
        h.check_eq(code, 200, "a request through nginx is answered 200")
        names.add(hdrs.get("x-served-by"))
    return sorted(names)


def test(t):
    if not shutil.which("nginx"):
        raise h.Skip("nginx not installed")
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    apps = {}
    for color in ("blue", "green"):
        for i in (1, 2):
            name = f"{color}-{i}"
            apps[name] = t.demo_app(name)
            # exec (a no-op) passes weights on: the agents count as weighted, so a canary is
            # by weight and the router renders them (health-only agents get an instance-count
            # canary until the controller counts routers: router/STATUS.md)
            s.agent(name, color, address=f"127.0.0.1:{apps[name].port}",
                    backends=[{"type": "health"}, {"type": "exec", "command": "true"}])
    g3 = s.agent("green-3", "green", address=BAD_ADDRESS,
            backends=[{"type": "health"}, {"type": "exec", "command": "true"}])
    s.controller("c1")
    s.wait_converged("blue")

    web = ng.Nginx(t, t.path("nginx"))
    prefix, port, upstream, ngx = web.prefix, web.port, web.upstream, web.argv
    cport, hport = h.free_port(), h.free_port()
    flag = t.path("test-fails")
    rconf = ng.router_yaml(t.path("router.yaml"), zk, s.root, http_listen=f"127.0.0.1:{hport}",
                           nginx={"file": str(upstream),
                                  # nginx -t, made to fail while the flag file exists
                                  "test": ["sh", "-c", f'test ! -e "{flag}" || '
                                           f'{{ echo flag set; exit 1; }}; exec "$@"', "sh",
                                           *ngx, "-t"],
                                  "reload": [*ngx, "-s", "reload"],
                                  "confirm": f"127.0.0.1:{cport}", "confirm_timeout": "3s"})

    t.step("nginx not running yet: the file is written and tested, the reload fails, reported")
    router = ng.start_router(t, rconf)
    router.wait_log(r"event=nginx_apply_failed .*reload nginx failed", timeout=20)
    t.check(upstream.exists(), "the upstream file is in place (tested, not served)")
    h.wait_until(lambda: router_node(s) and router_node(s)["last_error"], timeout=10,
                 msg=lambda: f"/routers/lb-1 never said the error: {router_node(s)}")
    node = router_node(s)
    t.check("reload nginx failed" in node["last_error"], f"/routers/lb-1 last_error: {node}")
    t.check_eq((node["serving"], node["pending"]), ([], True), "serving nothing yet, pending")
    text = upstream.read_text()
    t.check("green-3" not in text and "evil" not in text,
            "the instance with a malformed address is not in the file (and not UP anyway)")

    t.step("nginx started: the router retries, reloads and confirms through nginx")
    nginx = web.start()
    h.wait_until(lambda: serving(s) == ["blue/blue-1", "blue/blue-2"], timeout=20,
                 msg=lambda: f"router never served blue: {router_node(s)}")
    router.wait_log(r"event=nginx_applied .*servers=2 .*confirmed=true", timeout=5)
    t.check_eq(router_node(s)["last_error"], "", "the error is cleared once it worked")
    url = f"http://127.0.0.1:{port}/"
    t.check_eq(served_by(url), ["blue-1", "blue-2"], "requests through nginx reach blue")
    code, body, _ = h.http("GET", f"http://127.0.0.1:{cport}/bg-router/generation")
    t.check_eq((code, body), (200, f"lb-1 {router_node(s)['generation']}\n"),
               "nginx answers the generation /routers/lb-1 publishes")

    t.step("a second router (another balancer host; test and reload stand-ins) beside it")
    conf2 = ng.router_yaml(t.path("router-2.yaml"), zk, s.root, rid="lb-2",
                           nginx={"file": str(t.path("lb-2-upstream.conf")),
                                  "test": "true", "reload": "true"})
    lb2 = ng.start_router(t, conf2, name="router-lb-2")
    h.wait_until(lambda: serving(s, "lb-2") == ["blue/blue-1", "blue/blue-2"], timeout=15,
                 msg=lambda: f"lb-2 never served blue: {router_node(s, 'lb-2')}")

    t.step("bgctl switch green --wait: the router serves green; green-3's address is dropped")
    rc, _, _ = s.bgctl("switch", "green", "--wait")
    t.check_eq(rc, 0, "bgctl switch green --wait")
    h.wait_until(lambda: serving(s) == ["green/green-1", "green/green-2"], timeout=20,
                 msg=lambda: f"router never served green: {router_node(s)}")
    t.check_eq(served_by(url), ["green-1", "green-2"], "requests through nginx reach green")
    h.wait_until(lambda: serving(s, "lb-2") == ["green/green-1", "green/green-2"], timeout=15,
                 msg=lambda: f"lb-2 never served green: {router_node(s, 'lb-2')}")
    t.check_eq(t.path("lb-2-upstream.conf").read_text().split("\n")[1:],
               upstream.read_text().split("\n")[1:5] + [""],
               "lb-2 renders the same upstream block (no confirm server: it has none)")
    t.check_eq(lb2.stop(), 0, "lb-2 stops cleanly")
    text = upstream.read_text()
    servers = re.findall(r"^\s*server (\S+);", text, re.M)
    t.check_eq(sorted(servers), sorted(f"127.0.0.1:{apps[n].port}" for n in ("green-1", "green-2")),
               f"the upstream block lists the green instances only:\n{text}")
    t.check("evil" not in text and "green-3" not in text, "green-3 (UP) is not in the file")
    router.wait_log(r"event=instances_dropped .*green/green-3: malformed address", timeout=5)
    up = [i["id"] for i in s.status()["instances"] if i["status"] == "UP"]
    t.check("green-3" in up, f"green-3 is UP in /status all the same ({up})")

    t.step("a failing test: the old file is kept, the error is in /routers/lb-1, then repaired")
    flag.write_text("")
    before = upstream.read_text()
    rc, _, _ = s.bgctl("switch", "blue", "--wait", "--timeout", "8s")
    t.check(rc != 0, f"bgctl switch blue --wait does not succeed while the router fails ({rc})")
    router.wait_log(r"event=nginx_apply_failed .*test sh failed \(the old file is kept\)",
                    timeout=20)
    st = s.status()
    t.check("router lb-1 failed" in st["reason"] and "flag set" in st["reason"],
            f"/status names the router and its error: {st['phase']}: {st['reason']}")
    t.check_eq(sorted(i["id"] for i in st["instances"]
                      if i["status"] == "UP" and i["color"] == "green" and i["id"] != "green-3"),
               ["green-1", "green-2"], "green (what nginx serves) stays UP")
    t.check_eq(upstream.read_text(), before, "the old file is kept, byte for byte")
    t.check(not prefix.joinpath("upstream.conf.bg-prev").exists() and
            not prefix.joinpath("upstream.conf.bg-new").exists(), "no file left aside")
    node = router_node(s)
    t.check("flag set" in node["last_error"] and node["pending"],
            f"/routers/lb-1 says why and that a change is pending: {node}")
    t.check_eq(serving(s), ["green/green-1", "green/green-2"], "still serving green")
    t.check_eq(served_by(url), ["green-1", "green-2"], "nginx still serves green")
    flag.unlink()
    h.wait_until(lambda: serving(s) == ["blue/blue-1", "blue/blue-2"], timeout=20,
                 msg=lambda: f"router never recovered: {router_node(s)}")
    t.check_eq(served_by(url), ["blue-1", "blue-2"], "nginx serves blue after the repair")
    s.wait_converged("blue")  # the switch completed by itself once the router served blue

    applied = re.findall(r"event=nginx_applied .*servers=(\d+) ms=(\d+)", router.log_text())
    t.log(f"changes applied (servers, ms render to confirmed): {applied}")
    # Each switch changes 5 instances' status (3 UP, 2 OUT): batched, 2 reloads (the overlap,
    # which the controller waits for before taking the old colour out, and the end) per
    # switch, plus the first one; a batch may split once more under load.
    t.check(3 <= len(applied) <= 7, f"changes batched, not one per instance: {len(applied)}")

    t.step("nginx stopped while serving: the reload at the next switch fails, reported; "
           "nginx back: served")
    nginx.stop()
    mark = router.mark()
    rc, _, _ = s.bgctl("switch", "green", "--wait", "--timeout", "8s")
    t.check(rc != 0, f"bgctl switch green --wait does not succeed while nginx is down ({rc})")
    router.wait_log(r"event=nginx_apply_failed .*reload nginx failed", timeout=20, since=mark)
    st = s.status()
    t.check("router lb-1 failed" in st["reason"] and "reload nginx failed" in st["reason"],
            f"/status names the router and its error: {st['phase']}: {st['reason']}")
    t.check_eq(sorted(i["id"] for i in st["instances"]
                      if i["status"] == "UP" and i["color"] == "blue"),
               ["blue-1", "blue-2"], "blue (what nginx last served) stays UP")
    h.wait_until(lambda: "reload nginx failed" in (router_node(s) or {}).get("last_error", ""),
                 timeout=10, msg=lambda: f"/routers/lb-1 never said so: {router_node(s)}")
    t.check_eq(serving(s), ["blue/blue-1", "blue/blue-2"], "still says what nginx last served")
    nginx = web.start(name="nginx-2")
    h.wait_until(lambda: serving(s) == ["green/green-1", "green/green-2"], timeout=20,
                 msg=lambda: f"router never served green again: {router_node(s)}")
    t.check_eq(served_by(url), ["green-1", "green-2"], "nginx serves green")
    s.wait_converged("green")

    t.step("bgctl canary blue 25: nginx gets the weights; abort: back to green alone")
    # green-3 leaves first: the plan weighs every UP instance, and one the router cannot serve
    # (its malformed address) would take its share out of nginx's sum.
    t.check_eq(g3.proc.stop(), 0, "green-3's agent stops")
    h.wait_until(lambda: "green-3" not in [i["id"] for i in s.status()["instances"]], timeout=15,
                 msg="green-3 never left /status")
    rc, _, err = s.bgctl("canary", "blue", "25", "--wait", "--timeout", "60s")
    t.check_eq(rc, 0, f"bgctl canary blue 25 --wait ({err})")
    weights = lambda: {i: w for w, i in re.findall(r"^\s*server \S+ weight=(\d+); # \w+ (\S+)$",
                                                   upstream.read_text(), re.M)}
    h.wait_until(lambda: len(weights()) == 4, timeout=20,
                 msg=lambda: f"the upstream file never got weights:\n{upstream.read_text()}")
    gen = int(re.search(r"generation (\d+):", upstream.read_text()).group(1))
    h.wait_until(lambda: (router_node(s) or {}).get("generation") == gen and
                 not router_node(s)["pending"], timeout=20,
                 msg=lambda: f"the weighted file was never confirmed served: {router_node(s)}")
    w = {k: int(v) for k, v in weights().items()}
    share = (w["blue-1"] + w["blue-2"]) / sum(w.values())
    t.check(abs(share - 0.25) < 0.02, f"the weights give blue 25 % of the traffic: {w}")
    t.check_eq(sorted(w), ["blue-1", "blue-2", "green-1", "green-2"],
               "every UP instance with a usable address is weighted")
    hits, failed = {}, 0
    for _ in range(400):
        code, _, hdrs = h.http("GET", url, timeout=2)
        failed += code != 200
        who = hdrs.get("x-served-by", "")
        hits[who] = hits.get(who, 0) + 1
    t.check_eq(failed, 0, "requests through nginx during the canary not answered 200")
    blue = (hits.get("blue-1", 0) + hits.get("blue-2", 0)) / 400
    t.log(f"served during the canary: {hits}")
    t.check(0.15 <= blue <= 0.35, f"nginx sends blue about 25 % of 400 requests: {blue:.1%}")
    rc, _, err = s.bgctl("canary", "--abort", "--wait", "--timeout", "60s")
    t.check_eq(rc, 0, f"bgctl canary --abort --wait ({err})")
    h.wait_until(lambda: serving(s) == ["green/green-1", "green/green-2"] and
                 "weight=" not in upstream.read_text(), timeout=20,
                 msg=lambda: f"the canary never left nginx:\n{upstream.read_text()}")
    t.check_eq(served_by(url), ["green-1", "green-2"], "nginx serves green alone again")

    t.step("kill -9 and restart at once: the old session's node is waited for, then replaced")
    old_owner = h.zk_stat(zk, s.root + "/routers/lb-1")["ephemeralOwner"]
    router.kill()
    router.wait(10)
    router = ng.start_router(t, rconf, name="router-2")
    router.wait_log(r"event=router_node_taken", timeout=10)
    def new_owner():
        st = h.zk_stat(zk, s.root + "/routers/lb-1")  # None between the old and the new node
        return st is not None and st["ephemeralOwner"] != old_owner
    h.wait_until(new_owner, timeout=15, msg="the new router never published its node")
    h.wait_until(lambda: serving(s) == ["green/green-1", "green/green-2"], timeout=10,
                 msg=lambda: f"the new router does not serve green: {router_node(s)}")
    t.check_eq(len(re.findall("event=router_node_taken", router.log_text())), 1,
               "said once, not at every turn")

    t.step("GET /health and /metrics")
    code, health, _ = h.http_json("GET", f"http://127.0.0.1:{hport}/health")
    t.check_eq((code, health["id"], health["serving"], health["pending"], health["last_error"],
                health["generation"]), (200, "lb-1", 2, False, "", router_node(s)["generation"]),
               f"/health: {health}")
    code, text, _ = h.http("GET", f"http://127.0.0.1:{hport}/metrics")
    t.check(code == 200 and "\nbg_router_serving_instances 2\n" in text and
            "\nbg_router_pending 0\n" in text and "bg_router_apply_seconds_count" in text,
            "/metrics: serving 2, nothing pending, the apply histogram")
    t.check_eq(h.http("GET", f"http://127.0.0.1:{hport}/nope")[0], 404, "anything else: 404")
    if shutil.which("promtool"):  # test_metrics requires it (and says how to install it)
        r = h.run_cmd(["promtool", "check", "metrics"], input=text, timeout=30, quiet=True)
        t.check_eq((r.returncode, (r.stdout + r.stderr).strip()), (0, ""),
                   "promtool check metrics: no problem")

    t.step("SIGTERM: the router exits 0 and its ephemeral node goes")
    t.check_eq(router.stop(), 0, "bg-router exit code on SIGTERM")
    h.wait_until(lambda: router_node(s) is None, timeout=10, msg="/routers/lb-1 left behind")
    nginx.stop()


h.run(test)
