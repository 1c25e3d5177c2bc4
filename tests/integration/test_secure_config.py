#!/usr/bin/env python3
"""Issue 9 / DESIGN §14, secure by default: an agent or controller whose http.listen is not a
loopback address and that has no http.token_file refuses to start (file:line:column naming
http.listen) unless http.insecure: true; no zookeeper.auth is a warning in --check-config
(exit 0) and a key=value warn line at every start."""

import re

import harness as h


def run(daemon, conf, *extra):
    return h.run_cmd([h.bin(daemon), "-c", str(conf), *extra], timeout=20)


def test(t):
    zk = t.zookeeper()
    root = t.root(zk)
    token = h.write_token(t.dir)
    auth = {"connect": zk.connect, "root": root, "auth": "bg:secret"}

    t.step("non-loopback listen without a token: refused, before anything starts")
    for listen in ("0.0.0.0:{}", "[::]:{}"):
        lst = listen.format(h.free_port())
        conf = h.write_agent_conf(t.dir, zk, root, "w1", "blue", lst,
                                  endpoint="http://127.0.0.1:1",
                                  extra={"zookeeper": auth}, filename="agent-open.yaml")
        for args in (("--check-config",), ()):
            r = run("bg-agent", conf, *args)
            out = r.stdout + r.stderr
            m = re.search(re.escape(str(conf)) + r":(\d+):(\d+): http\.listen: .*not a loopback "
                          r"address and http\.token_file is not set.*http\.insecure: true", out)
            t.check(r.returncode == 1 and m, f"bg-agent {' '.join(args)} listen {lst}: exit 1 "
                    f"with file:line:column naming http.listen: {out.strip()!r}")
            t.check("event=registered" not in out, "... and never registered")
    lst = f"0.0.0.0:{h.free_port()}"
    cconf = h.write_controller_conf(t.dir, zk, root, id="c1", listen=lst,
                                    extra={"zookeeper": auth, "http": {"listen": lst}})
    r = run("bg-controller", cconf)
    t.check(r.returncode == 1 and re.search(r":\d+:\d+: http\.listen: .*not a loopback",
                                            r.stderr), f"bg-controller refused: {r.stderr!r}")

    t.step("with a token, or http.insecure: true, it starts")
    lst = f"0.0.0.0:{h.free_port()}"
    conf = h.write_agent_conf(t.dir, zk, root, "w2", "blue", lst, endpoint="http://127.0.0.1:1",
                              token_file=token, extra={"zookeeper": auth},
                              filename="agent-token.yaml")
    r = run("bg-agent", conf, "--check-config")
    t.check(r.returncode == 0 and "http." not in r.stderr and "zookeeper.auth" not in r.stderr,
            f"token: valid, no security warning: {r.stderr!r}")
    lst = f"0.0.0.0:{h.free_port()}"
    conf = h.write_agent_conf(t.dir, zk, root, "w3", "blue", lst, endpoint="http://127.0.0.1:1",
                              extra={"zookeeper": auth,
                                     "http": {"listen": lst, "insecure": True}},
                              filename="agent-insecure.yaml")
    r = run("bg-agent", conf, "--check-config")
    t.check(r.returncode == 0 and re.search(r":\d+:\d+: warning: http\.insecure: ", r.stderr),
            f"insecure: valid with a warning: {r.stderr!r}")
    p = t.proc([h.bin("bg-agent"), "-c", str(conf)], name="agent-insecure")
    t.check(p.wait_log(r"event=registered", timeout=15), "insecure agent runs")
    t.check(re.search(r"level=warn .*event=http_insecure", p.log_text()),
            "and says so at start")
    p.stop()

    t.step("no zookeeper.auth: a warning, exit 0; a warn line at start (both daemons)")
    root = t.root(zk)  # the nodes above were created with a digest ACL
    noauth = {"connect": zk.connect, "root": root}
    conf = h.write_agent_conf(t.dir, zk, root, "w4", "blue", f"127.0.0.1:{h.free_port()}",
                              extra={"zookeeper": noauth}, filename="agent-noauth.yaml")
    cconf = h.write_controller_conf(t.dir, zk, root, id="c2", extra={"zookeeper": noauth})
    for daemon, path in (("bg-agent", conf), ("bg-controller", cconf)):
        r = run(daemon, path, "--check-config")
        t.check(r.returncode == 0 and r.stdout.strip() == f"{path}: ok" and re.search(
            re.escape(str(path)) + r":\d+:\d+: warning: zookeeper\.auth: not set: .*anyone who "
            r"can write to ZooKeeper can register an endpoint and receive the token", r.stderr),
            f"{daemon} --check-config: ok with the warning: {r.stdout!r} {r.stderr!r}")
        p = t.proc([h.bin(daemon), "-c", str(path)], name=f"{daemon}-noauth")
        ready = r"event=registered" if daemon == "bg-agent" else r"event=election_joined"
        p.wait_log(ready, timeout=15)
        lines = [ln for ln in p.log_text().splitlines() if "event=zookeeper_auth_unset" in ln]
        t.check(len(lines) == 1 and "level=warn" in lines[0] and
                "anyone who can write to ZooKeeper can register an endpoint and receive the token"
                in lines[0], f"{daemon}: one key=value warn line at start: {lines}")
        p.stop()


h.run(test)
