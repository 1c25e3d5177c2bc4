#!/usr/bin/env python3
"""Issue 9: a JSON object leaked per /history entry in the controller (an entry written with no
per-instance outcome: s:O on a fresh object). Run under the ASan build (LeakSanitizer): switches,
a superseded switch and an application fallback each write history entries, then every daemon
is stopped with SIGTERM and must exit 0 with no leak report. In a build without ASan the
scenario still runs (the checks of clean exits hold), it just cannot see leaks."""

import os
import time

import harness as h
from bgsys import standard

os.environ["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=23"
os.environ.setdefault("LSAN_OPTIONS", "")


def test(t):
    s = standard(t, blue=1, green=1, controllers=1)
    ctl = s.controllers[0]
    t.step("switches, a superseded one, history entries")
    for color in ("green", "blue", "green"):
        s.flip(color)
        s.wait_converged(color)
    s.flip("blue")
    s.flip("green")  # supersedes the switch to blue (or converges at once: both are fine)
    s.wait_converged("green")
    t.step("a switch refused for health: a fallback entry without per-instance outcomes")
    refused = f"127.0.0.1:{h.refused_port()}"  # not port 1: a test beside may listen there
    bad = s.agent("green-sick", "green", check={"tcp": refused, "interval": 200,
                                                 "timeout": 200, "rise": 1, "fall": 1})
    s.flip("blue")
    s.wait_converged("blue")
    s.agents[1].proc.kill(__import__("signal").SIGTERM)  # green-1 leaves: only the sick one
    s.agents[1].proc.wait(timeout=10)
    s.flip("green")
    s.wait_phase("blocked", "green")
    s.flip("blue")
    s.wait_converged("blue")
    time.sleep(1)
    entries = h.zk_ls(s.zk, s.root + "/history") or []
    t.check(len(entries) >= 5, f"history entries written: {len(entries)}")

    t.step("stop: clean exits, no leak report")
    for p in [ctl] + [a.proc for a in s.agents if a.proc.alive()]:
        p.kill(__import__("signal").SIGTERM)
        rc = p.wait(timeout=10)
        text = p.log_text()
        t.check("LeakSanitizer" not in text, f"{p.name}: no LeakSanitizer report")
        t.check_eq(rc, 0, f"{p.name} exit code")
    _ = bad


h.run(test)
