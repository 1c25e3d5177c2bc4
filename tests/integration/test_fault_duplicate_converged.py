#!/usr/bin/env python3
"""An instance id registered under both colours (here a stray /green/blue-1 next to the real
agent's /blue/blue-1) is rightly never driven; a flip to green must then not end in /status
"converged" ("green is UP, blue is out") while the real blue-1 is still UP and taking
traffic, and bgctl switch --wait must not report success; the reason names the instance.
(Failed when written: converged with "blue is out"; fixed meanwhile by 1db8b19.)"""

import json
import time

import faults as f
import harness as h


def test(t):
    zk = t.zookeeper()
    s = f.system(t, zk, blue=2, green=2, controllers=1)
    b1 = next(a for a in s.agents if a.id == "blue-1")
    t.zk_hold(s.zk, f"{s.root}/green/blue-1",
              json.dumps({"id": "blue-1", "endpoint": b1.url, "app": "DEMO"}))
    h.wait_until(lambda: "both colours" in (f.instance(f.status(s), "blue-1", "green") or {})
                 .get("problem", ""), timeout=10, msg="/status flags blue-1 under both colours")
    f.flip(s, "green")
    h.wait_until(lambda: s.healths()["blue-2"] == 503, timeout=10, msg="blue-2 taken out")
    time.sleep(1)
    st = f.status(s)
    healths = s.healths()
    t.log(f"/status phase={st['phase']} reason={st['reason']!r}; /health {healths}")
    t.check_eq(healths["blue-1"], 200, "the ambiguous blue-1 was left as it is (UP)")
    t.check(not (st["phase"] == "converged" and healths["blue-1"] == 200),
            "/status does not claim converged while old-colour blue-1 is still UP")
    t.check("blue-1" in st["reason"], "/status reason names the ambiguous blue-1")
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "3s")
    t.check(rc != 0, f"bgctl switch green --wait does not report success (rc={rc})")


h.run(test)
