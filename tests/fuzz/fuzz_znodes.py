#!/usr/bin/env python3
"""fuzz_znodes.py: a process-level fuzzer for what the controllers read from ZooKeeper.

Two controllers and four agents (two blue, two green) run against a real ZooKeeper. For
BG_FUZZ_SECONDS (default 40) this writes random names and data under /blue, /green (ephemeral
nodes held by `zkt create -e --hold`, and persistent ones made by hand), /active_color,
/status, /history and /election (persistent and ephemeral sequential member-... nodes, names
that only look like members): invalid UTF-8, control characters, long names, deep and huge
JSON, huge numbers, bare host:port, unreachable endpoints. Every controller and agent must stay
alive throughout. Then the garbage is removed (holders stopped, hand-made nodes deleted,
/active_color set to a real colour) and the system must converge, and a real switch must too.

BG_FUZZ_SEED=N replays a seed (the sequence of writes; not the timing). Python 3 stdlib only.
"""

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness as h  # noqa: E402
from bgsys import standard  # noqa: E402

SECONDS = float(os.environ.get("BG_FUZZ_SECONDS", "40"))
SEED = int(os.environ.get("BG_FUZZ_SEED", str(random.SystemRandom().randrange(1 << 32))))
MAX_HELD = 8  # ephemeral nodes held at once (each is a zkt process)


def arg(b):
    """bytes -> a str that subprocess turns back into exactly these bytes (argv)."""
    return b.decode("utf-8", "surrogateescape")


def rand_name(rng):
    """A node name: ZooKeeper refuses some (control characters, '.', '..'): fine, we try."""
    k = rng.randrange(10)
    if k == 0:
        return "g" + "\u00e9" * rng.choice([10, 100, 300])
    if k == 1:
        return "member-" + rng.choice(["0000000000", "0000000001", "9" * 10, "9" * 30, "-1",
                                       "abc", "", "0000000002x"])
    if k == 2:
        return "x" * rng.choice([129, 500, 2000])
    if k == 3:
        return rng.choice(["entry-0000000000", "entry-", "entry-9999999999", "status",
                           "a b", "%s", "%n%n%n", "'; --", "\u202e", "\U0001F600"])
    if k == 4:
        return "".join(chr(rng.randrange(0x20, 0x7f)) for _ in range(rng.randrange(1, 40))
                       ).replace("/", "_")
    return f"fz-{rng.randrange(1000)}"


def rand_data(rng):
    k = rng.randrange(16)
    if k == 0:
        return b""
    if k == 1:
        return os.urandom(rng.randrange(1, 300)).replace(b"\0", b"?")
    if k == 2:
        return b"[" * rng.choice([100, 10000, 100000])
    if k == 3:
        return b"127.0.0.1:%d" % rng.choice([1, 9, 65535, 65536, 0])
    if k == 4:
        return b"h\nx:80"
    if k == 5:
        return b"{\"endpoint\":\"http://" + b"\xc3\xa9" * rng.choice([10, 200]) + b":1\"}"
    if k == 6:
        return b"x" * rng.choice([1000, 100000, 1000000])
    if k == 7:
        return b"green " + rng.choice([b"10", b"-1", b"101", b"99999999999999999999", b""])
    ep = rng.choice(["http://127.0.0.1:1", "http://127.0.0.1:9", "https://127.0.0.1:2",
                     "http://10.255.255.1:80", "http://" + "h" * 500 + ":1", "ftp://x",
                     "http://h\u001b[31m:1", "http://\u00e9" * 30, 5, None])
    d = {"id": rng.choice(["x", "g" + "\u00e9" * 100, "", None, 7]), "endpoint": ep,
         "healthy": rng.choice([True, False, "yes", None, 1]),
         "check": rng.choice(["ok", "\u00e9" * 600, "a\nb", ""]),
         "version": "1", "app": "DEMO", "address": rng.choice(["127.0.0.1:1", "x", 5])}
    if rng.random() < 0.3:  # something /status- or /history-shaped
        d = {"desired": rng.choice(["blue", "green", "red", 5]),
             "applied": rng.choice(["blue", "green", None]),
             "phase": rng.choice(["idle", "switching", "converged", "blocked", "x"]),
             "epoch": rng.choice([0, 2**63 - 1, -1, 10**30]),
             "since": rng.choice([0, -1, 2**63]),
             "instances": [{"id": rand_name(rng), "color": "blue", "status": "UP"}] *
             rng.randrange(3)}
    b = json.dumps(d, ensure_ascii=rng.random() < 0.5).encode()
    if rng.random() < 0.3:
        pos = rng.randrange(len(b))
        b = b[:pos] + rng.choice([b"\xc3", b"\xff", b"\x00", b"\"", b""]) + b[pos + 1:]
    return b


def test(t):
    t.log(f"seed={SEED} seconds={SECONDS} (replay: BG_FUZZ_SEED={SEED})")
    rng = random.Random(SEED)
    s = standard(t, blue=2, green=2, controllers=2)
    zk, root = s.zk, s.root
    procs = [a.proc for a in s.agents] + s.controllers
    held = []       # zkt --hold processes (ephemeral nodes)
    made = set()    # persistent nodes we created
    counts = {}
    refused = 0

    def note(what):
        counts[what] = counts.get(what, 0) + 1

    def create(path, data, ephemeral=False, sequential=False):
        nonlocal refused
        data = data.replace(b"\0", b"?")  # argv cannot carry NUL
        if len(data) > 100000 and not ephemeral and not sequential:
            r = h.zkt(zk, "setfile", arg(path), "-", input=data)  # big: through stdin
            if r.returncode == 0:
                made.add(arg(path))
            return
        data = data[:100000]  # one argv string holds at most 128 KiB
        if ephemeral:
            if len(held) >= MAX_HELD:
                held.pop(rng.randrange(len(held))).stop()
            args = [h.bin("zkt"), "-z", zk.connect, "-q", "-s", 4000, "create", arg(path),
                    arg(data), "-e"]
            if sequential:
                args.append("-s")
            p = t.proc(args + ["--hold"], name=f"hold-{len(counts)}-{rng.randrange(10**6)}")
            held.append(p)
            return
        args = ["create", arg(path), arg(data)] + (["-s"] if sequential else [])
        r = h.zkt(zk, *args)
        if r.returncode == 0:
            made.add(r.stdout.decode("utf-8", "surrogateescape").strip() or arg(path))
        else:
            refused += 1

    t.step(f"write garbage for {SECONDS:.0f} s")
    t_start = time.time()
    t_end = t_start + SECONDS
    dead = []
    restarted = False
    while time.time() < t_end:
        if not restarted and time.time() > t_start + SECONDS / 2:
            # Halfway: restart the leader, so that hand-made persistent member-... nodes now
            # have lower sequence numbers than its new election node (never to be obeyed).
            restarted = True
            try:  # /status may hold our garbage right now
                leader = s.leader() or s.controllers[0]
            except (ValueError, KeyError, TypeError, AttributeError):
                leader = s.controllers[0]
            t.log(f"restart {leader.name} (election: {h.zk_ls(zk, root + '/election')[:8]})")
            leader.stop()
            leader.start()
            note("restart")
        k = rng.randrange(100)
        data = rand_data(rng)
        if k < 30:
            color = rng.choice(["blue", "green"])
            eph = rng.random() < 0.6
            create(f"{root}/{color}/{rand_name(rng)}".encode(), data, ephemeral=eph)
            note(f"{color}{'/eph' if eph else '/pers'}")
        elif k < 45:
            v = rng.choice([b"blue", b"green", b" green\n", b"GREEN", b"purple", b"",
                            b"blue\0green", b"\xff\xfe", b"b" * 100000, data])
            h.zkt(zk, "setfile", root + "/active_color", "-", input=v)
            note("active_color")
        elif k < 55:
            h.zkt(zk, "setfile", root + "/status", "-", input=data)
            note("status")
        elif k < 65:
            create(f"{root}/history/{rand_name(rng)}".encode(), data,
                   sequential=rng.random() < 0.5)
            note("history")
        elif k < 80:
            r = rng.random()
            if r < 0.4:
                create(f"{root}/election/member-".encode(), data, ephemeral=True,
                       sequential=True)
            elif r < 0.6:
                create(f"{root}/election/member-".encode(), data, sequential=True)
            else:
                create(f"{root}/election/{rand_name(rng)}".encode(), data,
                       ephemeral=rng.random() < 0.5)
            note("election")
        elif k < 82:
            # A stranger deletes any election node, a real controller's included.
            kids = h.zk_ls(zk, root + "/election")
            if kids:
                h.zkt(zk, "delete", f"{root}/election/{rng.choice(kids)}")
                note("election-delete")
        elif k < 90 and made:
            p = rng.choice(sorted(made))
            h.zkt(zk, "delete", "-r", p)
            made.discard(p)
            note("delete")
        elif held:
            held.pop(rng.randrange(len(held))).stop()
            note("release")
        for p in procs:
            if not p.alive() and p not in [d[0] for d in dead]:
                dead.append((p, time.time()))
    t.log(f"writes: {', '.join(f'{k}={v}' for k, v in sorted(counts.items()))}; "
          f"refused by ZooKeeper {refused}")

    t.step("remove the garbage")
    for p in held:
        p.stop()
    for p in sorted(made, key=len, reverse=True):
        h.zkt(zk, "delete", "-r", p)
    # Whatever is left that is not ours: under /election only the controllers' own members.
    for color in ("blue", "green"):
        ours = {a.id for a in s.agents if a.color == color}
        for n in h.zk_ls(zk, f"{root}/{color}"):
            if n not in ours:
                h.zkt(zk, "delete", "-r", f"{root}/{color}/{n}")
    t.log(f"left: election={h.zk_ls(zk, root + '/election')} "
          f"blue={h.zk_ls(zk, root + '/blue')} green={h.zk_ls(zk, root + '/green')}")
    s.flip("blue")

    for p in procs:
        t.check(p.alive(), f"{p.name} alive after the garbage (exit code {p.returncode})")
    t.check_eq([(p.name, p.returncode) for p, _ in dead], [], "nobody died while fuzzing")

    t.step("the system converges once the garbage is gone, and a real switch works")
    # /status may still hold our garbage until the leader rewrites it: the agents' own answers
    # are the ground truth, and /status must name one of the controllers as leader.
    names = {p.name for p in s.controllers}
    for color in ("blue", "green"):
        s.flip(color)
        want = {a.id: 200 if a.color == color else 503 for a in s.agents}
        h.wait_until(lambda: s.healths() == want, timeout=30,
                     msg=lambda: f"agents never served {color}: {s.healths()}")
        st = s.wait_converged(color, timeout=30)
        t.check(f"controller-{st.get('leader')}" in names,
                f"/status written by a real leader ({st.get('leader')!r})")
        t.check_eq(s.healths(), want, f"{color} UP, the other colour out")
    for p in procs:
        t.check(p.alive(), f"{p.name} alive at the end")
    t.log(f"seed={SEED}")


h.run(test)
