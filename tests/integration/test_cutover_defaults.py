#!/usr/bin/env python3
"""Issue 10: HAProxy's own defaults (option httpchk GET /health, inter 2s rise 2 fall 3, NO
http-check send-state), agents and controller at their defaults, 2 blue + 2 green, two
`bgctl switch --wait` under wrk -c64 and a pinger: 0 failed requests, and no request sent after
--wait returned is answered by the old colour (issue 10 saw 201-224 per flip).

Meanwhile a stray `curl` loop (GET /health every 1 s, curl's User-Agent) hits blue-1 and
green-1: it must neither confirm a change (the old-colour check above) nor stall the switch
(--wait returns within 30 s), and the agents must count one balancer, not two (GET /v1/status
"balancers"). Also prints what `bgctl status` and /status show while a switch waits."""

import json

import harness as h
import cutrig


def test(t):
    cutrig.need_tools()
    zk = t.zookeeper()
    strays = []

    def during(rig):
        for name in ("blue-1", "green-1"):
            s = cutrig.StrayCurl(rig.sys.agents[[a.id for a in rig.sys.agents].index(name)].url)
            s.start()
            strays.append(s)

        def after():
            for a in rig.sys.agents:
                if a.id in ("blue-1", "green-1", "blue-2"):
                    st = a.status()
                    bal = [b.get("balancers") for b in st.get("backends", [])]
                    t.log(f"GET /v1/status {a.id} backends' balancers: {json.dumps(bal)[:600]}")
                    if a.id != "blue-2":
                        counted = rig.counted_balancers(a)
                        t.check(len(counted) == 1,
                                f"{a.id}: one balancer counts (HAProxy), the curl loop does not "
                                f"(balancers: {json.dumps(bal)[:300]})")
            t.step("what bgctl status and /status show while the switch waits")
            out, st = cutrig.waiting_snapshot(rig, cutrig.OTHER[rig.color], delay=1.0)
            t.log("bgctl status during the switch:\n" + out)
            t.log("/status during the switch: " + json.dumps(st)[:1500])
            for s in strays:
                s.stop()
            t.log(f"stray curl loop answers: {[dict(s.codes) for s in strays]}")
        return after

    rig, r = cutrig.scenario(t, zk, "httpchk", 2000, 2, 3, flips=2, during=during)
    t.check([f["wait_ms"] for f in r["flips"] if f["wait_ms"] > 30000] == [],
            f"the curl loop did not stall the switch (wait ms {[round(f['wait_ms']) for f in r['flips']]})")


h.run(test)
