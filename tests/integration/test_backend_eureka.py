#!/usr/bin/env python3
"""The eureka backend against eureka-double (a protocol double of a Eureka server: no real
Eureka can be installed here; see tests/eureka/README.md).

register: true  -- the agent registers (never UP before it is told), heartbeats, follows
                   UP / OUT_OF_SERVICE, repairs a server that forgot its overrides, registers
                   again after a 404 heartbeat, deregisters on SIGTERM.
register: false -- the instance is registered by its own Eureka client (here: the test);
                   the agent only sets and clears the OUT_OF_SERVICE override.
Both with a dead first URL (failover). Throughout: never value=UNKNOWN, never PUT value=UP,
never the replication header.
"""

import time

import harness as h

JSON = {"Accept": "application/json"}


class Eureka:
    def __init__(self, t):
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = t.proc([h.bin("eureka-double"), "--listen", f"127.0.0.1:{self.port}"],
                           name="eureka-double")
        h.wait_until(lambda: h.http("GET", self.url + "/eureka/apps", headers=JSON)[0] == 200,
                     timeout=5, ignore=(OSError,), msg="eureka-double answers")

    def instance(self, app, id):
        code, body, _ = h.http_json("GET", f"{self.url}/eureka/apps/{app}/{id}", headers=JSON)
        return code, (body or {}).get("instance")

    def status(self, app, id):
        code, inst = self.instance(app, id)
        if code != 200:
            return code, None, None
        return code, inst["status"], inst["overriddenStatus"]

    def log(self):
        code, body, _ = h.http_json("GET", self.url + "/_double/log")
        assert code == 200
        return body

    def restart(self, forget=None):
        q = f"?forget={forget}" if forget else ""
        code, body, _ = h.http_json("POST", self.url + "/_double/restart" + q)
        assert code == 200, f"restart -> {code}"
        return body

    def register_client(self, app, id, status="UP"):
        """Register like an application's own Eureka client would."""
        body = {"instance": {
            "instanceId": id, "hostName": "127.0.0.1", "app": app, "ipAddr": "127.0.0.1",
            "vipAddress": app.lower(), "status": status, "overriddenStatus": "UNKNOWN",
            "port": {"$": 8080, "@enabled": "true"},
            "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                               "name": "MyOwn"},
            "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90},
            "lastDirtyTimestamp": str(int(time.time() * 1000))}}
        code, _, _ = h.http("POST", f"{self.url}/eureka/apps/{app}", body, headers=JSON)
        assert code == 204, f"client registration -> {code}"


def start_agent(t, zk, root, id, eureka_backend, color="blue"):
    port = h.free_port()
    conf = h.write_agent_conf(t.dir, zk, root, id, color, f"127.0.0.1:{port}",
                              backends=[eureka_backend], app="shop")
    a = t.proc([h.bin("bg-agent"), "-c", conf], name=id, env={"BG_LOG_LEVEL": "debug"})
    a.wait_log(r"event=registered", timeout=10)
    a.url = f"http://127.0.0.1:{port}"
    return a


def put(agent, status, epoch=1, timeout=10):
    t0 = time.monotonic()
    code, body, _ = h.http_json("PUT", agent.url + "/v1/status",
                                {"status": status, "epoch": epoch}, timeout=timeout)
    return code, body, time.monotonic() - t0


def eureka_msg(body):
    return next(b for b in body["backends"] if b["type"] == "eureka")["message"]


def registering_agent(t, zk, root, eu, dead):
    t.step("register: true -- registration at start-up, STARTING (never UP untold)")
    a = start_agent(t, zk, root, "eu-reg", {
        "type": "eureka", "urls": [dead, eu.url + "/eureka/"], "register": True,
        "renew_interval": "500ms", "duration": "2s", "port": 8080, "timeout": "1s"})
    code, inst = h.wait_until(lambda: (lambda r: r if r[0] == 200 else None)(
        eu.instance("SHOP", "eu-reg")), timeout=5, msg="the agent registers SHOP/eu-reg")
    t.check_eq((inst["status"], inst["overriddenStatus"]), ("STARTING", "UNKNOWN"),
               "registered STARTING with no override")
    t.check_eq((inst["app"], inst["instanceId"], inst["port"]["$"], inst["vipAddress"],
                inst["dataCenterInfo"]["name"], inst["leaseInfo"]["renewalIntervalInSecs"],
                inst["leaseInfo"]["durationInSecs"]),
               ("SHOP", "eu-reg", 8080, "shop", "MyOwn", 1, 2), "registration fields")
    a.wait_log(r"event=eureka_failover op=register url=" + dead, timeout=2)
    t.check(True, "the dead first URL was skipped for the live one")

    t.step("PUT UP: UP with no override")
    code, body, secs = put(a, "UP")
    t.check_eq(code, 200, f"PUT UP answers 200 ({secs * 1000:.0f} ms)")
    t.check(eureka_msg(body).startswith(f"UP confirmed at {eu.url}/eureka in "),
            f"message {eureka_msg(body)!r}")
    t.check_eq(eu.status("SHOP", "eu-reg"), (200, "UP", "UNKNOWN"), "Eureka: UP, no override")

    t.step("PUT OUT_OF_SERVICE: the override")
    code, body, _ = put(a, "OUT_OF_SERVICE")
    t.check_eq(code, 200, "PUT OUT_OF_SERVICE answers 200")
    t.check_eq(eu.status("SHOP", "eu-reg"), (200, "OUT_OF_SERVICE", "OUT_OF_SERVICE"),
               "Eureka: OUT_OF_SERVICE by override")

    t.step("a server restart forgets the override; the re-assert repairs it")
    eu.restart()
    code, st, ov = eu.status("SHOP", "eu-reg")
    t.check((st, ov) == ("STARTING", "UNKNOWN"),
            f"after the restart the instance is back as registered, not UP: {st}/{ov}")
    code, body, _ = put(a, "OUT_OF_SERVICE")
    t.check_eq(code, 200, "re-assert answers 200")
    t.check_eq(eu.status("SHOP", "eu-reg"), (200, "OUT_OF_SERVICE", "OUT_OF_SERVICE"),
               "repaired: OUT_OF_SERVICE by override again")

    t.step("UP survives a restart (registered UP), and back OUT")
    t.check_eq(put(a, "UP")[0], 200, "PUT UP")
    eu.restart()
    t.check_eq(eu.status("SHOP", "eu-reg"), (200, "UP", "UNKNOWN"), "still UP after a restart")
    t.check_eq(put(a, "UP")[0], 200, "re-assert UP")
    t.check_eq(put(a, "OUT_OF_SERVICE")[0], 200, "PUT OUT_OF_SERVICE")
    t.check_eq(eu.status("SHOP", "eu-reg"), (200, "OUT_OF_SERVICE", "OUT_OF_SERVICE"),
               "OUT_OF_SERVICE")

    t.step("heartbeats every renew_interval")

    def heartbeats():
        return [e for e in eu.log() if e["method"] == "PUT" and
                e["path"] == "/eureka/apps/SHOP/eu-reg"]
    n0 = len(heartbeats())
    time.sleep(1.6)
    hb = heartbeats()
    t.check(len(hb) - n0 >= 2, f"{len(hb) - n0} heartbeats in 1.6 s (renew_interval 500ms)")
    last = hb[-1]
    t.check(last["status"] == 200 and last["query"].get("status") == "STARTING" and
            {k.lower(): v for k, v in last["query"].items()}.get("lastdirtytimestamp", "").isdigit(),
            f"heartbeat 200 with status and lastDirtyTimestamp: {last['query_string']}")

    t.step("a 404 heartbeat (server forgot everything): register again, re-apply the status")
    mark = a.mark()
    seq0 = eu.log()[-1]["seq"]
    eu.restart(forget="all")
    t.check_eq(eu.instance("SHOP", "eu-reg")[0], 404, "the instance is gone from the server")
    h.wait_until(lambda: eu.status("SHOP", "eu-reg")[1:] == ("OUT_OF_SERVICE", "OUT_OF_SERVICE"),
                 timeout=4, msg="registered again and OUT_OF_SERVICE re-applied")
    t.check(True, "registered again and OUT_OF_SERVICE re-applied")
    a.wait_log(r"event=eureka_heartbeat_404", since=mark, timeout=1)
    after = [(e["method"], e["path"], e["query"].get("value"), e["status"])
             for e in eu.log() if e["seq"] > seq0]
    i404 = next((i for i, e in enumerate(after) if e[0] == "PUT" and e[3] == 404), None)
    t.check(i404 is not None, "a heartbeat was answered 404")
    rest = after[i404 + 1:]
    ireg = next((i for i, e in enumerate(rest) if e[:2] == ("POST", "/eureka/apps/SHOP")), None)
    t.check(ireg is not None and rest[ireg][3] == 204, f"then a registration (204): {rest[:4]}")
    t.check(("PUT", "/eureka/apps/SHOP/eu-reg/status", "OUT_OF_SERVICE", 200) in rest[ireg:],
            "then the override PUT")

    t.step("SIGTERM: deregister")
    rc = a.stop()
    t.check_eq(rc, 0, "the agent exits 0")
    t.check_eq(eu.instance("SHOP", "eu-reg")[0], 404, "the instance is gone from Eureka")
    dels = [e for e in eu.log() if e["method"] == "DELETE" and
            e["path"] == "/eureka/apps/SHOP/eu-reg"]
    t.check(len(dels) == 1 and dels[0]["status"] == 200, f"one DELETE, answered 200: {dels}")


def client_registered(t, zk, root, eu, dead):
    t.step("register: false -- the application's own client registered it UP")
    eu.register_client("SHOP", "eu-cli", "UP")
    a = start_agent(t, zk, root, "eu-cli", {
        "type": "eureka", "urls": [dead, eu.url + "/eureka"], "timeout": "1s"}, color="green")
    t.check_eq(eu.status("SHOP", "eu-cli"), (200, "UP", "UNKNOWN"),
               "the agent changes nothing by itself at start-up")

    code, body, _ = put(a, "OUT_OF_SERVICE")
    t.check_eq(code, 200, "dead first URL, live second: applied")
    msg = eureka_msg(body)
    t.check(msg.startswith(f"OUT_OF_SERVICE confirmed at {eu.url}/eureka") and
            f"failed over: {dead}: " in msg, f"message names the failover: {msg!r}")
    t.check_eq(eu.status("SHOP", "eu-cli"), (200, "OUT_OF_SERVICE", "OUT_OF_SERVICE"),
               "OUT_OF_SERVICE by override")

    code, body, _ = put(a, "UP")
    t.check_eq(code, 200, "PUT UP answers 200")
    t.check_eq(eu.status("SHOP", "eu-cli"), (200, "UP", "UNKNOWN"),
               "override cleared: UP, no override")

    t.step("drift: a restarted server forgot the override; the re-assert repairs it")
    t.check_eq(put(a, "OUT_OF_SERVICE")[0], 200, "PUT OUT_OF_SERVICE")
    eu.restart()
    t.check_eq(eu.status("SHOP", "eu-cli")[1], "UP", "drifted: the client's own UP is back")
    code, body, _ = put(a, "OUT_OF_SERVICE")
    t.check_eq(code, 200, "re-assert answers 200")
    t.check_eq(eu.status("SHOP", "eu-cli"), (200, "OUT_OF_SERVICE", "OUT_OF_SERVICE"),
               "repaired")

    t.step("an instance not registered at all: 502")
    code, _, _ = h.http("DELETE", f"{eu.url}/eureka/apps/SHOP/eu-cli", headers=JSON)
    assert code == 200
    code, body, _ = put(a, "UP")
    t.check_eq(code, 502, "PUT answers 502")
    t.check(body.get("backend") == "eureka" and "is not registered" in body.get("reason", "") and
            "404" in body.get("reason", ""), f"reason {body.get('reason')!r}")

    t.step("SIGTERM without register: nothing to deregister")
    eu.register_client("SHOP", "eu-cli", "UP")
    t.check_eq(a.stop(), 0, "the agent exits 0")
    t.check_eq(eu.instance("SHOP", "eu-cli")[0], 200, "the client's registration stays")
    dels = [e for e in eu.log() if e["method"] == "DELETE" and
            e["path"] == "/eureka/apps/SHOP/eu-cli" and
            e["headers"].get("user-agent") == "bluegreen-agent"]
    t.check_eq(dels, [], "the agent never deleted the instance")


def all_dead(t, zk, root):
    t.step("every URL dead: 502 naming each")
    d1, d2 = (f"http://127.0.0.1:{p}/eureka" for p in h.free_ports(2))
    a = start_agent(t, zk, root, "eu-dead", {"type": "eureka", "urls": [d1, d2],
                                             "timeout": "1s"})
    code, body, secs = put(a, "OUT_OF_SERVICE")
    reason = body.get("reason", "")
    t.check_eq(code, 502, f"PUT answers 502 ({secs * 1000:.0f} ms)")
    t.check(reason.startswith("PUT /apps/SHOP/eu-dead/status?value=OUT_OF_SERVICE at " + d2) and
            f"failed over: {d1}: " in reason, f"reason {reason!r}")
    t.check(secs < 1.0, "connection refused fails fast, no waiting for timeouts")
    a.stop()


def protocol_rules(t, eu):
    t.step("never value=UNKNOWN, never PUT value=UP, never the replication header")
    log = [e for e in eu.log() if e["headers"].get("user-agent") == "bluegreen-agent"]
    t.check(len(log) > 20, f"{len(log)} agent requests in the double's log")
    bad = [e for e in log if "UNKNOWN" in e["query_string"]]
    t.check_eq(bad, [], "no request with value=UNKNOWN")
    bad = [e for e in log if e["method"] == "PUT" and e["query"].get("value") == "UP"]
    t.check_eq(bad, [], "no PUT .../status?value=UP")
    bad = [e for e in log if "x-netflix-discovery-replication" in e["headers"]]
    t.check_eq(bad, [], "no replication header")
    bad = [e for e in log if e["headers"].get("accept") != "application/json"]
    t.check_eq(bad, [], "every request says Accept: application/json")
    ups = [e for e in log if e["path"].endswith("/status") and e["query"].get("value") == "UP"]
    t.check(ups and all(e["method"] == "DELETE" for e in ups),
            f"UP is always DELETE .../status?value=UP ({len(ups)} of them)")


def test(t):
    zk = t.zookeeper()
    root = t.root(zk)
    eu = Eureka(t)
    dead = f"http://127.0.0.1:{h.free_port()}/eureka"
    registering_agent(t, zk, root, eu, dead)
    client_registered(t, zk, root, eu, dead)
    all_dead(t, zk, root)
    protocol_rules(t, eu)


h.run(test)
