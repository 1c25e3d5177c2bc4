#!/usr/bin/env python3
"""The installed Debian package at work: /usr/bin/bg-agent (2 blue + 2 green), two
/usr/bin/bg-controller and /usr/bin/bgctl against a test ZooKeeper (tests/integration's
harness). A switch to green and a rollback with `bgctl ... --wait` converge, the agents'
/health follow, `bgctl status --json` and `history --json` say so, and the installed bash
completion lists the instance ids from the same ZooKeeper.

Run by tests/package/check_package.sh after `apt-get install ./dist/bluegreen_*.deb`, with
BG_BUILD_DIR pointing at a directory whose agent/bg-agent, controller/bg-controller and
controller/bgctl are symbolic links to /usr/bin and whose tests/tools/zkt is a built one (the
harness's ZooKeeper client; not in the package). Every daemon's /proc/PID/exe is checked to be
the installed binary.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import harness as h  # noqa: E402
from bgsys import standard  # noqa: E402

INSTALLED = {"bg-agent": "/usr/bin/bg-agent", "bg-controller": "/usr/bin/bg-controller",
             "bgctl": "/usr/bin/bgctl"}
COMPLETION = "/usr/share/bash-completion/completions/bgctl"


def test(t):
    for name, path in INSTALLED.items():
        t.check_eq(os.path.realpath(h.bin(name)), path, f"the harness runs the installed {name}")

    t.step("2 blue + 2 green installed agents, 2 installed controllers, active blue")
    # Sessions of 10 s, not the harness's 2 s: this check is about the package, not about
    # failover, and CI machines are shared (a starved ZooKeeper client expired 2 s sessions).
    s = standard(t, blue=2, green=2, controllers=2, session_timeout_ms=10000,
                 agent_kw={"session_timeout_ms": 10000})
    for a in s.agents:
        t.check_eq(os.readlink(f"/proc/{a.proc.pid}/exe"), INSTALLED["bg-agent"],
                   f"agent {a.id} runs {INSTALLED['bg-agent']}")
    for c in s.controllers:
        t.check_eq(os.readlink(f"/proc/{c.pid}/exe"), INSTALLED["bg-controller"],
                   f"{c.name} runs {INSTALLED['bg-controller']}")
    t.check_eq(s.healths(), {"blue-1": 200, "blue-2": 200, "green-1": 503, "green-2": 503},
               "blue UP, green OUT_OF_SERVICE")

    t.step("bgctl switch green --wait")
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "60s")
    t.check_eq(rc, 0, "switch green --wait exits 0")
    t.check("converged on green" in out, f"it says converged ({out.strip()!r})")
    t.check_eq(s.healths(), {"blue-1": 503, "blue-2": 503, "green-1": 200, "green-2": 200},
               "green UP, blue OUT_OF_SERVICE")
    rc, out, err = s.bgctl("status", "--json")
    st = json.loads(out)
    t.check_eq((rc, st["active_color"], st["applied"], st["phase"]),
               (0, "green", "green", "converged"), "status --json")
    t.check_eq(sorted((i["id"], i["status"]) for i in st["instances"]),
               [("blue-1", "OUT_OF_SERVICE"), ("blue-2", "OUT_OF_SERVICE"), ("green-1", "UP"),
                ("green-2", "UP")], "status --json lists every instance")

    t.step("bgctl rollback --wait")
    rc, out, err = s.bgctl("rollback", "--wait", "--timeout", "60s")
    t.check_eq(rc, 0, "rollback --wait exits 0")
    t.check_eq(s.healths(), {"blue-1": 200, "blue-2": 200, "green-1": 503, "green-2": 503},
               "blue UP again")
    rc, out, err = s.bgctl("history", "--json")
    hist = json.loads(out)
    t.check_eq([(e.get("from"), e.get("to"), e.get("result")) for e in hist][-2:],
               [("blue", "green", "converged"), ("green", "blue", "converged")],
               "history --json: the switch and the rollback")

    t.step("the installed bash completion asks the same ZooKeeper for instance ids")
    script = (f". {COMPLETION}; _bgctl_instance_ids {INSTALLED['bgctl']} "
              f"-z {s.zk.connect} -r {s.root}")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    t.check_eq(sorted(r.stdout.split()), ["blue-1", "blue-2", "green-1", "green-2"],
               "_bgctl_instance_ids")
    script = (f". {COMPLETION}; COMP_LINE='bgctl -z {s.zk.connect} -r {s.root} drain g'; "
              "COMP_POINT=${#COMP_LINE}; _bgctl; echo \"${COMPREPLY[@]}\"")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    t.check_eq(sorted(r.stdout.split()), ["green-1", "green-2"], "bgctl ... drain g<TAB>")


h.run(test)
