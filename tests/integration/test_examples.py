#!/usr/bin/env python3
"""What `cmake --install` ships works as shipped: the four binaries in bin/, the example
configurations (valid: --check-config exits 0) and the systemd units, whose ExecStartPre /
ExecStart lines run against the installed binaries and examples and which
`systemd-analyze verify` accepts without a warning (when systemd-analyze is installed)."""

import re
import shutil
import subprocess

import harness as h


def unit_commands(text):
    return {k: v.split() for k, v in re.findall(r"^(ExecStart(?:Pre)?)=(.+)$", text, re.M)}


def test(t):
    prefix = t.path("prefix")
    build = h.build_dir()
    r = h.run_cmd(["cmake", "--install", build, "--prefix", prefix], timeout=120)
    t.check_eq(r.returncode, 0, f"cmake --install --prefix {prefix}")
    for rel in ("bin/bg-agent", "bin/bg-controller", "bin/bgctl", "bin/bg-router",
                "share/bluegreen/examples/agent.yaml", "share/bluegreen/examples/controller.yaml",
                "share/bluegreen/examples/router.yaml",
                "lib/systemd/system/bg-agent.service",
                "lib/systemd/system/bg-controller.service",
                "lib/systemd/system/bg-router.service"):
        t.check(prefix.joinpath(rel).exists(), f"installed {rel}")
    t.check(not prefix.joinpath("bin/zkt").exists(), "test tools are not installed")
    # The examples name /etc/bluegreen/token (the agent's listen is not loopback: required).
    token = t.path("token")
    token.write_text("example-token\n")
    for conf in ("agent.yaml", "controller.yaml"):
        p = prefix / "share/bluegreen/examples" / conf
        p.write_text(p.read_text().replace("/etc/bluegreen/token", str(token)))

    examples = prefix / "share/bluegreen/examples"
    t.step("the example configurations are valid as shipped")
    for daemon, conf in (("bg-agent", "agent.yaml"), ("bg-controller", "controller.yaml"),
                         ("bg-router", "router.yaml")):
        r = h.run_cmd([prefix / "bin" / daemon, "-c", examples / conf, "--check-config"])
        t.check_eq((r.returncode, r.stdout.strip()), (0, f"{examples / conf}: ok"),
                   f"{daemon} --check-config {conf}")

    every = t.path("agent-all-backends.yaml")
    every.write_text(re.sub(r"^  # - \{type", "  - {type",
                            examples.joinpath("agent.yaml").read_text(), flags=re.M))
    t.check(every.read_text().count("  - {type") == 4, "agent.yaml with its 3 commented "
            "backend examples uncommented (4 backends)")
    r = h.run_cmd([prefix / "bin/bg-agent", "-c", every, "--check-config"])
    t.check_eq((r.returncode, r.stderr.strip()), (0, ""), "... is valid too")

    hap = t.path("router-haproxy.yaml")
    text = examples.joinpath("router.yaml").read_text()
    text = re.sub(r"^nginx:\n(  .*\n)+", "", text, flags=re.M)  # the nginx section out
    text = re.sub(r"^# (haproxy:|  \w+: )", r"\1", text, flags=re.M).replace(
        "kind: nginx ", "kind: haproxy ")
    hap.write_text(text)
    t.check("\nhaproxy:\n  socket: /run/haproxy/admin.sock" in text and "\nnginx:" not in text,
            f"router.yaml with its haproxy section uncommented instead of nginx's:\n{text}")
    r = h.run_cmd([prefix / "bin/bg-router", "-c", hap, "--check-config"])
    t.check_eq((r.returncode, r.stdout.strip(), r.stderr.strip()), (0, f"{hap}: ok", ""),
               "... is valid too (kind haproxy)")

    t.step("the systemd units' command lines run against what was installed")
    units = t.path("units")
    units.mkdir()
    for name, conf in (("bg-agent.service", "agent.yaml"),
                       ("bg-controller.service", "controller.yaml"),
                       ("bg-router.service", "router.yaml")):
        text = prefix.joinpath("lib/systemd/system", name).read_text()
        cmds = unit_commands(text)
        t.check_eq(sorted(cmds), ["ExecStart", "ExecStartPre"], f"{name}: ExecStartPre, ExecStart")
        t.check("--check-config" in cmds["ExecStartPre"], f"{name}: validates before starting")
        t.check_eq(cmds["ExecStart"][0], f"{prefix}/bin/{name.split('.')[0]}",
                   f"{name}: names the binary under the install prefix")
        local = text.replace(f"/etc/bluegreen/{conf}", str(examples / conf))
        pre = unit_commands(local)["ExecStartPre"]
        r = h.run_cmd(pre)
        t.check_eq(r.returncode, 0, f"{name}: ExecStartPre {' '.join(pre[1:])} -> 0")
        start = unit_commands(local)["ExecStart"]
        t.check_eq(start, [a for a in pre if a != "--check-config"],
                   f"{name}: ExecStart runs the config ExecStartPre checked")
        units.joinpath(name).write_text(local)

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        h.log("systemd-analyze not installed: unit syntax not verified (command lines were)")
        return
    t.step("systemd-analyze verify")
    bad = units / "bad.service"
    bad.write_text("[Service]\nExecStart=/bin/true\nRestart=sometimes\n")
    r = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    t.check("sometimes" in r.stdout + r.stderr, "the check can fail: a bad unit is reported")
    bad.unlink()
    # --man=no: the Documentation= pages are checked by unit.man_pages (not installed here).
    r = subprocess.run([analyze, "verify", "--man=no", *map(str, sorted(units.iterdir()))],
                       capture_output=True, text=True, timeout=60)
    # Complaints about a unit name the unit; other lines (no bus in a container, ...) are
    # about the machine and only logged.
    out = (r.stdout + r.stderr).splitlines()
    about_units = [ln for ln in out
                   if any(f"bg-{d}.service" in ln for d in ("agent", "controller", "router"))]
    if len(out) > len(about_units):
        h.log("systemd-analyze also said:\n" + "\n".join(set(out) - set(about_units)))
    t.check_eq(about_units, [], "systemd-analyze verify: no warning for any unit")


h.run(test)
