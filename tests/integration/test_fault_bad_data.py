#!/usr/bin/env python3
"""Bad data in ZooKeeper: garbage, huge (~1,000,000 bytes) and non-UTF-8 data in /active_color
and in instance nodes (fake registrations under /blue and /green), an instance id registered
under both colours (a fake /green/blue-1 pointing at the real blue-1), /status deleted by hand.
Nothing crashes (both controllers alive), nothing changes state wrongly (the real agents'
/health never changes while the data is bad), /status says why (reason / instances[].problem)
and is re-created after its deletion."""

import json
import time

import faults as f
import harness as h

HUGE = 1_000_000


def raw_status(s):
    """/status as bytes; checks that it is valid UTF-8 JSON and returns it parsed."""
    b = h.zk_get(s.zk, s.root + "/status", binary=True)
    assert b is not None, "/status missing"
    return json.loads(b.decode("utf-8"))  # strict: raises on invalid UTF-8


def wait_status(s, pred, what, timeout=10):
    def ok():
        st = raw_status(s)
        return st if pred(st) else None
    return h.wait_until(ok, timeout=timeout, msg=what)


def test(t):
    zk = t.zookeeper()
    s = f.system(t, zk, blue=2, green=2, controllers=2)
    want = f.expected_health(s, "blue")
    tl = f.Timeline(s.agents).start()
    tl.wait_samples()
    t_start = time.time()

    def alive():
        t.check(all(p.alive() for p in s.controllers), "both controllers still running")

    t.step("fake instance nodes with bad data")
    long_id = "L" * 200
    fakes = {  # (colour, id): (data, fragment of the problem)
        ("blue", "fake-garbage"): (b"garbage {{{", "neither JSON with an endpoint nor host:port"),
        ("green", "fake-huge"): (b"x" * HUGE, f"node data too large ({HUGE} bytes)"),
        ("blue", "fake-binary"): (b"\xff\xfe\x00\x01\x80binary\xc3", "neither JSON"),
        ("green", "fake-noendpoint"): (b'{"id":"fake-noendpoint"}', 'no "endpoint" string'),
        ("green", "fake-scheme"): (b'{"endpoint":"ftp://127.0.0.1:1"}',
                                   "must start with http:// or https://"),
        ("blue", "fake-space"): (b'{"endpoint":"http://127.0.0.1:1 /x"}', "white space"),
        ("green", "fake-empty"): (b"", "neither JSON"),
        ("blue", 'we"ird id'): (b"\x00\x00", "neither JSON"),
        ("green", long_id): (b"\xff" * 300, "neither JSON"),
    }
    holders = []
    for (color, id), (data, _) in fakes.items():
        path = f"{s.root}/{color}/{id}"
        if len(data) > 1000 or b"\x00" in data or not data.isascii():
            h.zk_set(s.zk, path, data)  # persistent: the controller cannot tell the difference
        else:
            holders.append(t.zk_hold(s.zk, path, data.decode()))
    st = wait_status(s, lambda st: sum(1 for i in st["instances"] if i.get("problem")) >=
                     len(fakes), "/status lists every fake with a problem")
    for (color, id), (_, frag) in fakes.items():
        inst = [i for i in st["instances"] if i["color"] == color and
                (i["id"] == id or (len(id) > 128 and i["id"] == id[:128]))]
        t.check(len(inst) == 1 and frag in inst[0].get("problem", "") and
                "endpoint" not in inst[0],
                f"/status: {color}/{id[:20]} has problem containing {frag!r}: {inst}")
    t.check_eq((st["phase"], st["desired"], st["applied"]), ("converged", "blue", "blue"),
               "/status still converged on blue: unusable nodes are ignored")
    real = sorted((i["id"], i["status"]) for i in st["instances"] if not i.get("problem"))
    t.check_eq(real, [("blue-1", "UP"), ("blue-2", "UP"), ("green-1", "OUT_OF_SERVICE"),
                      ("green-2", "OUT_OF_SERVICE")], "/status: the real instances as they were")
    alive()

    t.step("a flip with the fakes present drives only the real instances")
    f.flip(s, "green")
    st = f.wait_converged(s, "green", timeout=15)
    t.check_eq(s.healths(), f.expected_health(s, "green"), "every real /health on green")
    f.flip(s, "blue")
    st = f.wait_converged(s, "blue", timeout=15)
    t.check_eq(s.healths(), want, "every real /health on blue again")
    t_flipped = time.time()
    alive()

    t.step("bad /active_color: garbage, huge, non-UTF-8")
    for data, frag in [(b"purple\n", "'purple?'"), (b"g" * HUGE, f"{HUGE} bytes of data"),
                       (b"\xff\xfe\x00green", "'???green'"), (b"\xc3\x28blue", "'?(blue'")]:
        h.zk_set(s.zk, s.root + "/active_color", data)
        st = wait_status(s, lambda st: st["phase"] == "blocked" and frag in st["reason"],
                         f"blocked naming {frag!r}")
        t.check("/active_color is invalid" in st["reason"] and "no instance was changed" in
                st["reason"], f"reason: {st['reason'][:200]}")
        t.check_eq(st["applied"], "blue", "applied stays blue")
        t.check_eq(s.healths(), want, "no agent changed")
        alive()
    f.flip(s, "blue")
    f.wait_converged(s, "blue")

    t.step("an id registered under both colours: a fake /green/blue-1 at the real blue-1")
    b1 = next(a for a in s.agents if a.id == "blue-1")
    dup = t.zk_hold(s.zk, f"{s.root}/green/blue-1",
                    json.dumps({"id": "blue-1", "endpoint": b1.url, "app": "DEMO"}))
    st = wait_status(s, lambda st: all(
        "both colours" in (f.instance(st, "blue-1", c) or {}).get("problem", "")
        for c in ("blue", "green")), "/status flags blue-1 under both colours")
    t.check_eq(b1.health(), 200, "the real blue-1 is still UP (not driven as a green one)")
    time.sleep(1)
    t.check_eq(s.healths(), want, "no agent changed")
    # (A flip while the duplicate exists: see test_fault_duplicate_converged.py.)
    dup.stop()  # the fake goes away: blue-1 is an ordinary blue instance again
    st = wait_status(s, lambda st: (f.instance(st, "blue-1", "green") is None and
                                    not f.instance(st, "blue-1", "blue").get("problem")),
                     "/status: blue-1 no longer flagged")
    alive()

    t.step("/status deleted by hand")
    t_del = time.time()
    h.zk_delete(s.zk, s.root + "/status")
    h.wait_until(lambda: h.zk_exists(s.zk, s.root + "/status"), timeout=5,
                 msg="/status re-created")
    st = wait_status(s, lambda st: st["phase"] == "converged", "/status converged", timeout=5)
    t_re = time.time()
    t.check_eq((st["desired"], st["applied"]), ("blue", "blue"), "re-created /status content")
    t.check_eq(sum(1 for i in st["instances"] if not i.get("problem")), 4,
               "re-created /status lists the real instances")
    t.log(f"/status re-created within {(t_re - t_del) * 1000:.0f} ms")

    # (/status overwritten by hand: see test_fault_status_overwritten.py.)

    t.step("the fakes go away; a flip still works")
    for p in holders:
        p.stop()
    for (color, id), (data, _) in fakes.items():
        h.zk_delete(s.zk, f"{s.root}/{color}/{id}")
    st = wait_status(s, lambda st: len(st["instances"]) == 4, "/status: only the real ones")
    tl.stop()
    for a in s.agents:
        t.check_eq(tl.codes_since(a.id, t_flipped + 0.5), [want[a.id]],
                   f"{a.id}: /health never changed while the data was bad")
    t.check_eq(tl.zero_up(t_start), [], "some instance UP at every moment")
    f.flip(s, "green")
    f.wait_converged(s, "green")
    t.check_eq(s.healths(), f.expected_health(s, "green"), "a flip converges")
    for p in s.controllers:
        crashes = [e["line"] for e in f.events(p, {"fatal", "out_of_memory"})]
        t.check_eq(crashes, [], f"{p.name}: no fatal line")
    alive()
    t.log(f"RESULT bad_data: /status re-created {(t_re - t_del) * 1000:.0f} ms after deletion")


h.run(test)
