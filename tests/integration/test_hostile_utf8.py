#!/usr/bin/env python3
"""Issue 9: text cut in the middle of a UTF-8 character crashed both daemons (json_pack
returned NULL, then strlen(NULL)). A PUT /v1/status whose "status" is "a" + 20 x "é" (echoed
cut at 40 bytes) must get a 400 with a reason, again and again; an ephemeral
/green/<"g" + 100 x "é"> (id cut at 128 bytes) with an unreachable endpoint, then a flip to
green, must leave the controller alive, /status and /history valid UTF-8 JSON naming the
instance and saying why it failed."""

import json
import time

import harness as h
from bgsys import standard


def strict_json(s, path):
    b = h.zk_get(s.zk, path, binary=True)
    assert b is not None, f"{path} missing"
    return json.loads(b.decode("utf-8"))  # strict: raises on invalid UTF-8


def test(t):
    s = standard(t, blue=1, green=1, controllers=1)
    a = s.agents[1]  # green-1
    ctl = s.controllers[0]

    t.step("agent: PUT with a status value whose echo cut splits a character")
    body = json.dumps({"status": "a" + "é" * 20, "epoch": 0}, ensure_ascii=False)
    for _ in range(5):
        code, obj, _ = a.put(None, None, body=body.encode("utf-8"))
        t.check_eq(code, 400, "the PUT is refused with 400")
        t.check(obj and "must be" in obj.get("reason", ""), f"400 says why: {obj}")
    t.check(a.proc.alive(), "the agent is still running")
    t.check_eq(a.status()["id"], "green-1", "the agent still answers GET /v1/status")

    t.step("controller: an instance id with multi-byte characters, unreachable, then a flip")
    name = "g" + "é" * 100
    t.zk_hold(s.zk, f"{s.root}/green/{name}", '{"endpoint":"http://127.0.0.1:1"}')
    s.flip("green")

    def failed_listed():
        st = strict_json(s, s.root + "/status")
        fake = [i for i in st["instances"] if i["id"].startswith("gé")]
        return st if fake and fake[0].get("last_error") else None
    st = h.wait_until(failed_listed, timeout=20, msg="/status lists the fake with its error")
    fake = [i for i in st["instances"] if i["id"].startswith("gé")][0]
    t.check(len(fake["id"].encode("utf-8")) <= 128 and name.startswith(fake["id"]),
            f"the id is cut at a character boundary: {len(fake['id'].encode())} bytes")
    time.sleep(2)  # let the controller retry the unreachable instance a few times
    t.check(ctl.alive(), "the controller is still running")
    t.check_eq(h.http("GET", f"http://127.0.0.1:{a.port}/health")[0], 200,
               "green-1 was made UP")

    t.step("flip back: the switch's history entry is valid UTF-8 JSON")
    s.flip("blue")
    h.wait_until(lambda: h.zk_ls(s.zk, s.root + "/history"), timeout=20,
                 msg="a /history entry is written")
    time.sleep(1)
    for e in h.zk_ls(s.zk, s.root + "/history") or []:
        entry = strict_json(s, f"{s.root}/history/{e}")
        t.check(isinstance(entry.get("instances"), dict), f"history entry parses: {e}")
    t.check(ctl.alive(), "the controller is still running after the history write")
    strict_json(s, s.root + "/status")


h.run(test)
