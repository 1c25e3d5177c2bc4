#!/usr/bin/env python3
"""Bearer token and epoch fencing on the agent API, and 400s for malformed bodies; a
controller with the token drives agents that require it."""

import harness as h
from bgsys import standard


def test(t):
    s = standard(t, blue=1, green=1, controllers=1, token=True)
    a = s.agents[0]
    t.step("token")
    code, body, hdrs = h.http("GET", a.url + "/v1/status")
    t.check_eq(code, 401, "no token -> 401")
    code, _, _ = h.http("GET", a.url + "/v1/status", headers={"Authorization": "Bearer nope"})
    t.check_eq(code, 401, "wrong token -> 401")
    code, _, _ = h.http("GET", a.url + "/v1/status",
                        headers={"Authorization": "Bearer " + s.token + "x"})
    t.check_eq(code, 401, "token with an extra byte -> 401")
    code, _, _ = h.http("PUT", a.url + "/v1/status", {"status": "OUT_OF_SERVICE", "epoch": 99})
    t.check_eq(code, 401, "PUT without token -> 401")
    t.check_eq(a.health(), 200, "unauthorised PUT changed nothing")
    code, body = a.status() and (200, a.status())
    t.check_eq(body["status"], "UP", "GET with the token works")
    t.check_eq(h.http("GET", a.url + "/health")[0], 200, "/health needs no token")

    t.step("epoch fencing")
    epoch = a.status()["epoch"]
    code, obj, _ = a.put("OUT_OF_SERVICE", epoch - 1 if epoch > 0 else -1)
    t.check_eq(code, 409 if epoch > 0 else 400, "older epoch refused")
    # DESIGN §14: a higher epoch counts only when it is a live /election member's.
    code, obj, _ = a.put("UP", epoch + 100)
    t.check_eq(code, 503, "newer epoch that no live controller holds -> refused")
    t.check_eq(obj["error"], "unknown epoch", "503 body says why")
    t.check_eq(a.status()["epoch"], epoch, "agent did not remember it")
    code, obj, _ = a.put("UP", epoch)
    t.check_eq(code, 200, "the leader's epoch accepted")
    if epoch > 0:
        code, obj, _ = a.put("OUT_OF_SERVICE", epoch - 1)
        t.check_eq(code, 409, "stale epoch -> 409")
        t.check_eq(obj["error"], "stale epoch", "409 body says why")
    t.check_eq(a.health(), 200, "stale call changed nothing")

    t.step("malformed requests -> 400, nothing changes")
    for body in ["", "garbage", "[]", '{"status":"UP"}', '{"epoch":1}',
                 '{"status":"DOWN","epoch":999}', '{"status":"UP","epoch":"1"}',
                 '{"status":"UP","epoch":-5}', '{"status":1,"epoch":999}', "\xff\xfe"]:
        code, obj, _ = a.put(None, None, body=body)
        t.check_eq(code, 400, f"body {body!r} -> 400")
        t.check(obj and obj.get("reason"), f"400 body has a reason: {obj}")
    t.check_eq(a.health(), 200, "still UP after bad requests")
    code, _, _ = h.http("DELETE", a.url + "/v1/status", headers=s.auth())
    t.check_eq(code, 405, "DELETE /v1/status -> 405")
    code, _, _ = h.http("GET", a.url + "/nope", headers=s.auth())
    t.check_eq(code, 404, "unknown path -> 404")
    code, text, _ = h.http("GET", a.url + "/metrics")
    t.check(code == 200 and "bg_agent_status_requests_total{result=\"unknown_epoch\"} 1" in text,
            "metrics count the call with an unknown epoch")

    t.step("the controller (with the token) still drives the agents")
    s.flip("green")
    s.wait_converged("green")
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "switched with the token")


h.run(test)
