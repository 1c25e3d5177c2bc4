#!/usr/bin/env python3
"""Every binary has --help; --check-config validates (exit 0/1) and names file:line:column
for every error; a daemon with a bad configuration refuses to start and changes nothing."""

import re

import harness as h


def test(t):
    for name in ("bg-agent", "bg-controller", "bgctl"):
        r = h.run_cmd([h.bin(name), "--help"])
        t.check(r.returncode == 0 and r.stdout.startswith("usage: "), f"{name} --help")
    for name in ("bg-agent", "bg-controller"):
        r = h.run_cmd([h.bin(name)])
        t.check_eq(r.returncode, 2, f"{name} without -c exits 2")
        t.check("-c FILE is required" in r.stderr, f"{name} says -c is required")

    good = h.write_agent_conf(t.dir, "127.0.0.1:1", "/", "web-1", "blue", "127.0.0.1:1")
    r = h.run_cmd([h.bin("bg-agent"), "-c", str(good), "--check-config"])
    t.check_eq((r.returncode, r.stdout.strip()), (0, f"{good}: ok"), "good agent.yaml")
    goodc = h.write_controller_conf(t.dir, "127.0.0.1:1", "/", id="c1")
    r = h.run_cmd([h.bin("bg-controller"), "-c", str(goodc), "--check-config"])
    t.check_eq(r.returncode, 0, "good controller.yaml")

    bad = t.path("bad.yaml")
    bad.write_text("zookeeper: {connect: \"127.0.0.1:1\", session_timeout_ms: soon}\n"
                   "switch: {batch_size: 0, settle: 5h}\n"
                   "colour: blue\n")
    r = h.run_cmd([h.bin("bg-controller"), "-c", str(bad), "--check-config"])
    t.check_eq(r.returncode, 1, "bad controller.yaml exits 1")
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(str(bad))]
    t.check_eq(len(lines), 4, f"all four errors listed:\n{r.stderr}")
    t.check(all(re.match(re.escape(str(bad)) + r":\d+:\d+: ", ln) for ln in lines),
            "each names file:line:column")
    t.check(any(":1:" in ln and "session_timeout_ms" in ln for ln in lines), "bad integer")
    t.check(any(":2:" in ln and "settle" in ln for ln in lines), "bad duration")
    t.check(any(":3:1:" in ln and "colour: unknown key" in ln for ln in lines), "unknown key")
    r = h.run_cmd([h.bin("bg-controller"), "-c", str(bad)])
    t.check_eq(r.returncode, 1, "daemon refuses to start with a bad configuration")


h.run(test)
