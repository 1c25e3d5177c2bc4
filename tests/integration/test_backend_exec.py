#!/usr/bin/env python3
"""The exec backend: environment, captured output, exit codes, timeouts, cancel, ordering.

Real ZooKeeper and real bg-agents; the commands are small shell scripts in the temp dir.
"""

import os
import threading
import time

import harness as h


def script(t, name, body):
    p = t.path(name)
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def start_agent(t, zk, root, id, backends, color="blue", app="Shop"):
    port = h.free_port()
    conf = h.write_agent_conf(t.dir, zk, root, id, color, f"127.0.0.1:{port}",
                              backends=backends, app=app)
    a = t.proc([h.bin("bg-agent"), "-c", conf], name=id, env={"BG_LOG_LEVEL": "debug"})
    a.wait_log(r"event=registered", timeout=10)
    a.url = f"http://127.0.0.1:{port}"
    return a


def put(agent, status, epoch=1, timeout=15):
    t0 = time.monotonic()
    code, body, _ = h.http_json("PUT", agent.url + "/v1/status",
                                {"status": status, "epoch": epoch}, timeout=timeout)
    return code, body, time.monotonic() - t0


def get_status(agent):
    code, body, _ = h.http_json("GET", agent.url + "/v1/status")
    assert code == 200, f"GET /v1/status -> {code}"
    return body


def read_env(path):
    env = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition("=")
        env[k] = v
    return env


def proc_state(pid):
    """'gone', 'zombie' or 'alive'."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    return "zombie" if state == "Z" else "alive"


def success(t, zk, root):
    t.step("exit 0: applied; BG_ environment, stdin /dev/null, no inherited sockets")
    envfile = t.path("env.out")
    hook = script(t, "record.sh", f"""
env | grep '^BG_' > {envfile}.tmp
# stdin must be /dev/null: this read must end at once with nothing
if read line; then echo "stdin had: $line" >> {envfile}.tmp; fi
n=0
for fd in /proc/$$/fd/*; do
  case "$(readlink "$fd")" in socket:*) n=$((n+1));; esac
done
echo "SOCKETS=$n" >> {envfile}.tmp
mv {envfile}.tmp {envfile}
echo "recorded $BG_STATUS"
""")
    a = start_agent(t, zk, root, "ex-ok", [{"type": "exec", "command": hook}])

    code, body, secs = put(a, "UP")
    t.check_eq(code, 200, f"PUT UP answers 200 ({secs * 1000:.0f} ms)")
    env = read_env(envfile)
    t.check_eq(env.get("BG_STATUS"), "UP", "BG_STATUS")
    t.check_eq(env.get("BG_INSTANCE"), "ex-ok", "BG_INSTANCE is instance.id")
    t.check_eq(env.get("BG_COLOR"), "blue", "BG_COLOR")
    t.check_eq(env.get("BG_APP"), "Shop", "BG_APP is instance.app")
    t.check_eq(env.get("SOCKETS"), "0", "no socket of the agent leaks into the command")
    t.check("stdin had" not in open(envfile).read(), "stdin is /dev/null")
    ex = [b for b in body["backends"] if b["type"] == "exec"]
    t.check_eq(len(ex), 1, "one exec backend in the answer")
    t.check_eq(ex[0]["result"], "ok", "exec result ok")
    t.check(ex[0]["message"].startswith("exit 0 in "), f"message {ex[0]['message']!r}")

    os.unlink(envfile)
    code, body, _ = put(a, "OUT_OF_SERVICE")
    t.check_eq(code, 200, "PUT OUT_OF_SERVICE answers 200")
    t.check_eq(read_env(envfile).get("BG_STATUS"), "OUT_OF_SERVICE", "BG_STATUS on the way out")

    os.unlink(envfile)
    code, body, _ = put(a, "OUT_OF_SERVICE")
    t.check_eq(code, 200, "a re-assert of the same status answers 200")
    t.check(envfile.exists(), "a re-assert runs the command again (repairs drift)")

    st = get_status(a)
    ex = [b for b in st["backends"] if b["type"] == "exec"][0]
    t.check(ex["result"] == "ok" and ex["status"] == "OUT_OF_SERVICE" and
            ex["time"].endswith("Z"), f"GET /v1/status shows the last result and time: {ex}")
    a.stop()


def failure(t, zk, root):
    t.step("exit 3: 502 naming the backend, with the output tail")
    hook = script(t, "fail.sh", """
i=0
while [ $i -lt 200 ]; do echo "noise line $i"; i=$((i+1)); done
echo "error: cannot reach the balancer" >&2
exit 3
""")
    a = start_agent(t, zk, root, "ex-fail", [{"type": "exec", "command": [hook, "--flag"]}])
    code, body, _ = put(a, "UP")
    t.check_eq(code, 502, "PUT answers 502 when the command fails")
    t.check_eq(body.get("backend"), "exec", "the answer names the exec backend")
    reason = body.get("reason", "")
    t.check(reason.startswith("exit 3: "), f"reason starts with the exit code: {reason[:60]!r}")
    t.check(reason.endswith("error: cannot reach the balancer"),
            f"reason ends with the tail of the output: ...{reason[-60:]!r}")
    t.check("noise line 0 " not in reason and len(reason) < 512,
            f"only the tail is kept ({len(reason)} chars)")
    st = get_status(a)
    ex = [b for b in st["backends"] if b["type"] == "exec"][0]
    t.check_eq(ex["result"], "failed", "GET /v1/status shows the failure")
    t.check_eq(st["applied"], False, "the status is not applied")

    t.step("a command that cannot be started")
    a.stop()
    b = start_agent(t, zk, root, "ex-missing",
                    [{"type": "exec", "command": str(t.path("no-such-command"))}])
    code, body, _ = put(b, "UP")
    t.check_eq(code, 502, "missing command: 502")
    t.check("cannot run" in body.get("reason", "") and
            "No such file" in body.get("reason", ""), f"reason {body.get('reason')!r}")
    b.stop()


def timeouts(t, zk, root):
    t.step("a hanging command: SIGTERM at the timeout, the whole group is gone")
    pids = t.path("hang.pids")
    hook = script(t, "hang.sh", f"""
sleep 60 &
echo "$$ $!" > {pids}
echo "hanging"
wait
""")
    a = start_agent(t, zk, root, "ex-hang",
                    [{"type": "exec", "command": hook, "timeout": "1s"}])
    code, body, secs = put(a, "UP")
    t.check_eq(code, 502, "PUT answers 502 on timeout")
    t.check(0.9 <= secs < 2.5, f"answered after the 1 s timeout ({secs:.2f} s)")
    t.check(body.get("reason", "").startswith("timed out after 1000 ms: hanging"),
            f"reason {body.get('reason')!r}")
    shell, sleeper = open(pids).read().split()
    t.check_eq(proc_state(shell), "gone", "the command itself is reaped (no zombie)")
    h.wait_until(lambda: proc_state(sleeper) != "alive", timeout=2,
                 msg="its child (sleep 60) is killed with it")
    t.check(True, "its child (sleep 60) was killed with it")
    a.stop()

    t.step("a command ignoring SIGTERM: SIGKILL 2 s later")
    pids2 = t.path("stubborn.pids")
    hook = script(t, "stubborn.sh", f"""
trap '' TERM
echo $$ > {pids2}
echo "ignoring TERM"
while :; do sleep 1; done
""")
    a = start_agent(t, zk, root, "ex-stubborn",
                    [{"type": "exec", "command": hook, "timeout": "500ms"}])
    code, body, secs = put(a, "UP")
    t.check_eq(code, 502, "PUT answers 502")
    t.check(2.3 <= secs < 4.0, f"answered after timeout + 2 s of grace ({secs:.2f} s)")
    t.check(body.get("reason", "").startswith("timed out after 500 ms: ignoring TERM"),
            f"reason {body.get('reason')!r}")
    t.check_eq(proc_state(open(pids2).read().strip()), "gone", "SIGKILLed and reaped")
    t.check(a.alive(), "the agent is still running")
    t0 = time.monotonic()
    code, _, _ = h.http("GET", a.url + "/v1/status")
    t.check(code == 200 and time.monotonic() - t0 < 0.5, "and answering at once")
    a.stop()


def cancel(t, zk, root):
    t.step("a newer status supersedes a running command: it is killed and reaped")
    pidfile = t.path("slow.pid")
    hook = script(t, "slow.sh", f"""
if [ "$BG_STATUS" = UP ]; then echo $$ > {pidfile}; exec sleep 30; fi
echo "out is quick"
""")
    a = start_agent(t, zk, root, "ex-cancel", [{"type": "exec", "command": hook}])
    result = {}

    def first():
        result["up"] = put(a, "UP", epoch=1)

    th = threading.Thread(target=first)
    th.start()
    h.wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=5,
                 msg="the UP command runs")
    pid = pidfile.read_text().strip()
    code, body, _ = put(a, "OUT_OF_SERVICE", epoch=2)
    th.join(10)
    # Regression: the superseding PUT used to be answered 503 "superseded" with the old one.
    t.check_eq(code, 200, f"the superseding PUT is answered 200 once applied ({body})")
    st = get_status(a)
    ex = [b for b in st["backends"] if b["type"] == "exec"][0]
    t.check(st["status"] == "OUT_OF_SERVICE" and st["applied"] and ex["result"] == "ok" and
            ex["status"] == "OUT_OF_SERVICE", f"the newer OUT_OF_SERVICE is applied: {ex}")
    t.check_eq(result["up"][0], 503, "the superseded UP is answered 503")
    t.check_eq(result["up"][1].get("error"), "superseded", "and says so")
    h.wait_until(lambda: proc_state(pid) == "gone", timeout=4,
                 msg="the cancelled command is killed and reaped")
    t.check_eq(proc_state(pid), "gone", f"cancelled command pid {pid} killed and reaped")
    a.stop()


def ordering(t, zk, root):
    t.step("backends run in order; the first failing stops the second")
    marker = t.path("second.ran")
    first = script(t, "first.sh", "echo first failed; exit 7\n")
    second = script(t, "second.sh", f"touch {marker}\n")
    a = start_agent(t, zk, root, "ex-order", [{"type": "exec", "command": first},
                                             {"type": "exec", "command": second}])
    code, body, _ = put(a, "UP")
    t.check_eq(code, 502, "502 from the first exec")
    t.check_eq(body.get("reason"), "exit 7: first failed", "the reason is the first one's")
    time.sleep(0.3)
    t.check(not marker.exists(), "the second exec did not run")
    st = get_status(a)
    kinds = [(b["type"], b["result"]) for b in st["backends"]]
    t.check_eq(kinds, [("health", "ok"), ("exec", "failed"), ("exec", "none")],
               "GET /v1/status: health ok, first exec failed, second not run")
    t.check(st["backends"][1]["time"] != "" and st["backends"][2]["time"] == "",
            "times: set for what ran, empty for what did not")

    t.step("once the first succeeds, the second runs")
    first_ok = script(t, "first.sh", "echo first ok\n")
    del first_ok
    code, body, _ = put(a, "UP", epoch=2)
    t.check_eq(code, 200, "200 once both succeed")
    t.check(marker.exists(), "the second exec ran")
    kinds = [(b["type"], b["result"]) for b in body["backends"]]
    t.check_eq(kinds, [("health", "ok"), ("exec", "ok"), ("exec", "ok")], "all ok")
    a.stop()


def test(t):
    zk = t.zookeeper()
    root = t.root(zk)
    success(t, zk, root)
    failure(t, zk, root)
    timeouts(t, zk, root)
    cancel(t, zk, root)
    ordering(t, zk, root)


h.run(test)
