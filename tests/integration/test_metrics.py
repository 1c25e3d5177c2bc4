#!/usr/bin/env python3
"""Every daemon's GET /metrics passes `promtool check metrics` (Debian's prometheus package),
before and after a switch; the switch duration histogram counts the switch (cumulative
buckets, +Inf = _count); the per-colour gauges match the colours; the call latency histogram
counts every status call; the agents' backend apply and health check histograms count; and
every PromQL expression of the Grafana dashboard (conf/grafana/bluegreen.json) names only
metrics the daemons expose."""

import json
import re
import shutil
from pathlib import Path

import harness as h
from bgsys import System

DASHBOARD = Path(__file__).resolve().parents[2] / "conf" / "grafana" / "bluegreen.json"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(url):
    code, text, hdrs = h.http("GET", url + "/metrics")
    h.check(code == 200, f"GET {url}/metrics answered {code}")
    return text


def samples(text):
    """{(name, frozenset(labels.items())): value} of a /metrics text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            h.check(False, f"sample line parses: {line!r}")
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def promtool(t, name, text):
    r = h.run_cmd(["promtool", "check", "metrics"], input=text, timeout=30, quiet=True)
    problems = (r.stdout + r.stderr).strip()
    t.check(r.returncode == 0 and problems == "",
            f"promtool check metrics on {name}: rc={r.returncode} {problems[:2000]!r}")


def check_histogram(t, s, name, labels):
    """Buckets cumulative, +Inf equals _count. Returns _count."""
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in s.items()
                      if k[0] == name + "_bucket"
                      and {x for x in k[1] if x[0] != "le"} == set(labels.items())),
                     key=lambda b: b[0])
    t.check(len(buckets) > 1, f"{name}{labels} has buckets ({len(buckets)})")
    counts = [v for _, v in buckets]
    t.check(counts == sorted(counts), f"{name}{labels} buckets are cumulative: {counts}")
    t.check_eq(buckets[-1][0], float("inf"), f"{name}{labels} last bucket is +Inf")
    count = value(s, name + "_count", **labels)
    t.check_eq(buckets[-1][1], count, f"{name}{labels} +Inf bucket equals _count")
    return count


def test(t):
    if shutil.which("promtool") is None:
        raise AssertionError("promtool not installed (Debian's prometheus package; "
                             "scripts/deps.sh --test installs it)")
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    s.agent("blue-1", "blue")
    s.agent("blue-2", "blue", check={"exec": ["/bin/true"], "interval": 200})
    s.agent("green-1", "green", backends=[{"type": "health"},
                                          {"type": "exec", "command": ["/bin/true"]}])
    urls = []
    for cid in ("c1", "c2"):  # c1 joins first and leads; c2 stands by
        listen = f"127.0.0.1:{h.free_port()}"
        conf = h.write_controller_conf(t.dir, zk, s.root, listen=listen, id=cid)
        ctl = t.proc([h.bin("bg-controller"), "-c", str(conf)], name=f"controller-{cid}")
        ctl.wait_log(r"event=election_joined", timeout=15)
        urls.append(f"http://{listen}")
    ctl_url, standby_url = urls
    s.wait_converged("blue")
    t.check_eq(s.status()["leader"], "c1", "c1 leads")

    t.step("promtool on every daemon's /metrics, converged on blue")
    daemons = {"controller": ctl_url, "standby": standby_url, **{a.id: a.url for a in s.agents}}
    for name, url in daemons.items():
        promtool(t, name, scrape(url))
    before = samples(scrape(ctl_url))
    n0 = value(before, "bg_controller_switch_duration_seconds_count")
    t.check(n0 is not None and n0 >= 1, f"the first convergence counted as a switch ({n0})")

    h.wait_until(lambda: value(samples(scrape(ctl_url)), "bg_controller_instances_healthy",
                               color="blue") == 2,
                 timeout=15, msg="blue-2's check never passed (as the controller sees it)")

    t.step("switch to green; the histogram counts it, the gauges follow")
    s.flip("green")
    s.wait_converged("green")
    h.wait_until(lambda: value(samples(scrape(ctl_url)),
                               "bg_controller_switch_duration_seconds_count") == n0 + 1,
                 timeout=10, msg="switch duration histogram never counted the switch")
    texts = {name: scrape(url) for name, url in daemons.items()}
    for name, text in texts.items():
        promtool(t, name, text)
    c = samples(texts["controller"])
    t.check_eq(value(c, "bg_controller_leader"), 1.0, "the leader says so")
    t.check_eq(value(samples(texts["standby"]), "bg_controller_leader"), 0.0,
               "the standby says so")
    check_histogram(t, c, "bg_controller_switch_duration_seconds", {})
    total = value(c, "bg_controller_switch_duration_seconds_sum")
    rc, out, _ = s.bgctl("history", "--json")
    t.check_eq(rc, 0, "bgctl history --json")
    hist = [e for e in json.loads(out) if e["result"] == "converged"]
    t.check_eq(len(hist), n0 + 1, "one converged history entry per counted switch")
    ms = sum(e["ms"] for e in hist)
    # The history entry's ms is taken a little later (after a ZooKeeper call): never less.
    t.check(total is not None and ms / 1000 - 2 * len(hist) < total <= ms / 1000 + 0.002,
            f"switch durations sum to {total} s, /history says {ms} ms")
    for name, want in [("bg_controller_instances_registered", {"blue": 2, "green": 1}),
                       ("bg_controller_instances_up", {"blue": 0, "green": 1}),
                       ("bg_controller_instances_healthy", {"blue": 2, "green": 1}),
                       ("bg_controller_desired_color", {"blue": 0, "green": 1}),
                       ("bg_controller_applied_color", {"blue": 0, "green": 1})]:
        got = {col: value(c, name, color=col) for col in ("blue", "green")}
        t.check_eq(got, {k: float(v) for k, v in want.items()}, f"{name} per colour")
    t.check_eq(value(c, "bg_controller_phase", phase="converged"), 1.0, "phase converged")
    calls = value(c, "bg_controller_calls_total")
    t.check(calls >= 3, f"status calls made ({calls})")
    t.check_eq(check_histogram(t, c, "bg_controller_call_duration_seconds", {"call": "status"}),
               calls, "every status call is in the call latency histogram")
    check_histogram(t, c, "bg_controller_call_duration_seconds", {"call": "probe"})
    n = check_histogram(t, c, "bg_controller_zk_call_duration_seconds", {})
    t.check(n >= 10, f"controller: ZooKeeper calls timed ({n})")

    for a in s.agents:
        m = samples(texts[a.id])
        n = check_histogram(t, m, "bg_agent_backend_apply_duration_seconds",
                            {"backend": "health", "index": "0"})
        t.check(n >= 1, f"{a.id}: the health backend's applies counted ({n})")
        n = check_histogram(t, m, "bg_agent_zk_call_duration_seconds", {})
        t.check(n >= 1, f"{a.id}: ZooKeeper calls timed ({n})")
        checks = check_histogram(t, m, "bg_agent_app_check_duration_seconds", {})
        ran = value(m, "bg_agent_app_checks_total", result="pass") + \
            value(m, "bg_agent_app_checks_total", result="fail")
        t.check_eq(checks, ran, f"{a.id}: check latency counts every check run")
        if a.id == "green-1":
            n = check_histogram(t, m, "bg_agent_backend_apply_duration_seconds",
                                {"backend": "exec", "index": "1"})
            t.check(n >= 1, f"{a.id}: the exec backend's applies counted ({n})")
        if a.id == "blue-2":
            t.check(checks >= 1, f"{a.id} (exec check): checks timed ({checks})")

    t.step("the Grafana dashboard names only metrics the daemons expose")
    dash = json.loads(DASHBOARD.read_text())
    exprs = [tg["expr"] for p in dash["panels"] for tg in p.get("targets", [])]
    t.check(len(exprs) >= 10, f"dashboard has {len(exprs)} PromQL expressions")
    exposed = {k[0] for text in texts.values() for k in samples(text)}
    # A family declared with no sample yet (per-router gauges without a bg-router running)
    # is exposed all the same.
    exposed |= {m.group(1) for text in texts.values()
                for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}
    for e in exprs:
        names = set(re.findall(r"\bbg_[a-z0-9_]+", e))
        t.check(names and names <= exposed,
                f"dashboard expression names exposed metrics: {e!r} "
                f"(unknown: {sorted(names - exposed)})")
    titles = " | ".join(p["title"] for p in dash["panels"]).lower()
    for word in ("colour", "phase", "healthy", "switch duration", "latency", "failures",
                 "unconfirmed"):
        t.check(word in titles, f"a dashboard panel about {word!r}")


h.run(test)
