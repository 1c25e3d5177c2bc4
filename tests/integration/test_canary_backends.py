#!/usr/bin/env python3
"""Issue 13: the weight of a status call reaches every backend that can weight.

One agent with eureka (register: true, against eureka-double), haproxy-agent and exec backends:
PUT {"status":"UP","epoch":1,"weight":33} -> eureka-double's instance has metadata
weight "33", the agent-check port answers "ready 33%", the exec command saw BG_WEIGHT=33,
GET /v1/status says "weight": 33 and /metrics bg_agent_weight 33; a new weight with the same
status is applied again (25); OUT_OF_SERVICE gives BG_WEIGHT=0 and "drain"; a bad weight (101,
"50", 12.5) is refused with 400 and changes nothing. A PUT without weight answers "ready" as
before weights existed. The node says "weighted": true (a plain /health agent's does not)."""

import socket

import harness as h
JSON = {"Accept": "application/json"}


class Eureka:
    """eureka-double (tests/eureka), as in test_backend_eureka.py."""

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


def agent_check(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        data = b""
        while True:
            b = s.recv(64)
            if not b:
                break
            data += b
    return data.decode()


def put(url, body):
    code, resp, _ = h.http_json("PUT", url + "/v1/status", body, timeout=10)
    return code, resp


def test(t):
    zk = t.zookeeper()
    root = t.root(zk)
    eu = Eureka(t)
    aport, port = h.free_port(), h.free_port()
    out = t.path("weight.txt")
    backends = [
        {"type": "eureka", "urls": [eu.url + "/eureka/"], "register": True,
         "renew_interval": "500ms", "duration": "2s", "port": 8080, "timeout": "1s"},
        {"type": "haproxy-agent", "listen": f"127.0.0.1:{aport}"},
        {"type": "exec", "command": ["/bin/sh", "-c", f'echo "$BG_STATUS $BG_WEIGHT" > {out}']},
    ]
    conf = h.write_agent_conf(t.dir, zk, root, "w-1", "green", f"127.0.0.1:{port}",
                              backends=backends, app="shop")
    a = t.proc([h.bin("bg-agent"), "-c", conf], name="w-1")
    a.wait_log(r"event=registered", timeout=10)
    url = f"http://127.0.0.1:{port}"
    node = h.zk_get_json(zk, f"{root}/green/w-1")
    t.check_eq(node.get("weighted"), True, "the node says weighted: true")
    h.wait_until(lambda: eu.instance("SHOP", "w-1")[0] == 200, timeout=5,
                 msg="registered in eureka-double")

    t.step("PUT UP without weight: answered as before weights")
    code, _ = put(url, {"status": "UP", "epoch": 1})
    t.check_eq(code, 200, "PUT UP (no weight) answers 200")
    t.check_eq(agent_check(aport), "ready\n", "agent-check answers ready")
    t.check_eq(out.read_text().strip(), "UP 100", "exec: BG_WEIGHT=100 when none was given")

    for w in (33, 25):
        t.step(f"PUT UP weight {w}")
        code, resp = put(url, {"status": "UP", "epoch": 1, "weight": w})
        t.check_eq(code, 200, f"PUT UP weight {w} answers 200 ({resp})")
        t.check_eq(agent_check(aport), f"ready {w}%\n", f"agent-check answers ready {w}%")
        t.check_eq(out.read_text().strip(), f"UP {w}", f"exec: BG_WEIGHT={w}")
        _, inst = eu.instance("SHOP", "w-1")
        t.check_eq(inst.get("metadata", {}).get("weight"), str(w),
                   f"eureka: metadata weight {w}")
        _, st, _ = h.http_json("GET", url + "/v1/status")
        t.check_eq((st["status"], st.get("weight")), ("UP", w), "GET /v1/status shows it")
        _, text, _ = h.http("GET", url + "/metrics")
        t.check(f"bg_agent_weight {w}" in text, f"/metrics bg_agent_weight {w}")

    t.step("bad weights are refused, nothing changes")
    for bad in (101, -1, "50", 12.5):
        code, resp = put(url, {"status": "UP", "epoch": 1, "weight": bad})
        t.check_eq(code, 400, f"weight {bad!r} -> 400 ({resp})")
    t.check_eq(agent_check(aport), "ready 25%\n", "still ready 25%")
    _, st, _ = h.http_json("GET", url + "/v1/status")
    t.check_eq(st.get("weight"), 25, "still weight 25")

    t.step("OUT_OF_SERVICE")
    code, _ = put(url, {"status": "OUT_OF_SERVICE", "epoch": 1})
    t.check_eq(code, 200, "PUT OUT_OF_SERVICE answers 200")
    t.check_eq(agent_check(aport), "drain\n", "agent-check answers drain")
    t.check_eq(out.read_text().strip(), "OUT_OF_SERVICE 0", "exec: BG_WEIGHT=0")

    t.step("a /health-only agent cannot weight")
    port2 = h.free_port()
    conf2 = h.write_agent_conf(t.dir, zk, root, "w-2", "green", f"127.0.0.1:{port2}")
    a2 = t.proc([h.bin("bg-agent"), "-c", conf2], name="w-2")
    a2.wait_log(r"event=registered", timeout=10)
    node = h.zk_get_json(zk, f"{root}/green/w-2")
    t.check("weighted" not in node, f"no weighted in its node ({node})")


h.run(test)
