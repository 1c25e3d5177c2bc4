#!/usr/bin/env python3
"""bench_scale.py -- many instances under one controller (issue 9, item 4: 1000 instances).

For each fleet size (N blue + N green): a real ZooKeeper (standalone, loopback), two real
bg-controllers (one leads, one stands by), and the fleet. Measured:
  * initial convergence (controllers started -> /status converged on blue),
  * bgctl switch --wait (end to end, and the controller's own switch_end ms), batch_size 1 and
    batch_size 32 (the controllers are restarted with the new batch size: that is a takeover
    too, timed as such),
  * failover: kill -9 of the idle leader -> standby's leader_elected, -> /status written by
    the standby, -> /status converged again (session timeout --session-ms, stated),
  * /status bytes, the newest /history entry's bytes, the leader's RssAnon idle and after the
    switches, the status PUTs the fleet received per switch / per takeover.

THE FLEET: "standin" rows are LIGHTWEIGHT STAND-INS (tests/tools/standin_agents.py: one Python
process per colour serving N instances on N loopback ports, N ephemeral znodes through one
ZooKeeper session, speaking the agent API: PUT/GET /v1/status, /health). They are not
bg-agent: no backends, no confirmation wait, no /election watch. "real" rows are real bg-agent
processes (health backend only) for comparison at a size this machine can run.

Figures are printed, never asserted (shared, noisy machine). Usage:
    BG_BUILD_DIR=build/release python3 bench/bench_scale.py [--sizes 100,250,500]
        [--real 20] [--flips 3] [--failovers 2] [--session-ms 4000] [--pace-ms 10]
        [--no-failing] [--out FILE]
    python3 bench/bench_scale.py --report FILE.json [FILE.json ...]   # reprint, rows merged
    BG_BUILD_DIR=... python3 bench/bench_scale.py --overflow 3900 [--watch 40]  # /status > 1 MB
Also measured: a rolling re-registration of the green stand-ins (--pace-ms) and a switch to a
colour whose every agent answers 502 (/status with a last_error everywhere; --no-failing skips).
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness as h  # noqa: E402
from bgsys import System  # noqa: E402

STANDIN = REPO / "tests" / "tools" / "standin_agents.py"
# The stand-ins' own session: long, so that a ZooKeeper stalled by a loaded machine does not
# expire the whole fleet at once (the controllers' session is --session-ms).
STANDIN_SESSION_MS = 15000


def retry(fn, *a, timeout=90):
    """fn(*a), retried while ZooKeeper does not answer (a loaded machine stalls it for 15 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn(*a)
        except h.ZkError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def zstat(zk, path):
    return retry(h.zk_stat, zk, path)


def zls(zk, path):
    return retry(h.zk_ls, zk, path)


def rss_anon_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return None


def log_ts(ts):
    """The daemons' ts=2026-11-28T09:52:00.123Z -> epoch seconds."""
    return (time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone +
            int(ts[20:23]) / 1000)


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs)) if xs else None


class Fleet:
    """n blue + n green instances: stand-ins (two processes) or real bg-agents."""

    def __init__(self, t, s, n, kind, session_ms):
        self.t, self.s, self.n, self.kind = t, s, n, kind
        self.stats_urls = []
        t0 = time.monotonic()
        if kind == "standin":
            procs = []
            for color in ("blue", "green"):
                procs.append(t.proc([sys.executable, str(STANDIN), "--zk", s.zk.connect,
                                     "--root", s.root, "--color", color, "--count", str(n),
                                     "--session-ms", str(STANDIN_SESSION_MS)],
                                    name=f"standin-{color}"))
            for p in procs:
                m = p.wait_log(r"standin_ready .*ports=(\d+)\.\.", timeout=120)
                self.stats_urls.append(f"http://127.0.0.1:{m.group(1)}/standin/stats")
            self.procs = procs
        else:
            agents = [s.agent(f"{c}-{i}", c, start=False, session_timeout_ms=session_ms)
                      for c in ("blue", "green") for i in range(1, n + 1)]
            for a in agents:
                a.start(wait=False)
            for a in agents:
                a.proc.wait_log(r"event=registered", timeout=120)
            self.procs = [a.proc for a in agents]
        self.start_ms = round((time.monotonic() - t0) * 1000)

    def restart_green(self, pace_ms, session_ms, extra=()):
        """Stop the green stand-ins (their nodes go at once) and register them again, one every
        pace_ms (a rolling start of the standby colour). Returns the new process."""
        self.procs[1].stop()
        p = self.t.proc([sys.executable, str(STANDIN), "--zk", self.s.zk.connect, "--root",
                         self.s.root, "--color", "green", "--count", str(self.n),
                         "--session-ms", str(STANDIN_SESSION_MS), "--pace-ms", str(pace_ms),
                         *extra],
                        name="standin-green")
        self.procs[1] = p
        return p

    def puts(self):
        """Status PUTs the whole fleet has accepted so far (stand-ins only)."""
        if not self.stats_urls or None in self.stats_urls:
            return None
        return sum(h.http_json("GET", u, timeout=5)[1]["puts"] for u in self.stats_urls)

    def stop(self):
        for p in self.procs:
            p.stop()


def cpu_s(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def zk_packets(zk):
    txt = h.four_letter("127.0.0.1", zk.port, "mntr", timeout=5) or ""
    m = re.search(r"zk_packets_received\s+(\d+)", txt)
    return int(m.group(1)) if m else None


def rolling_registration(s, fleet, pace_ms, session_ms):
    """The standby colour (green) registers again one instance every pace_ms while the leader
    runs: the leader's CPU, ZooKeeper requests, /status writes, and the lag from the last
    registration to /status listing every green instance."""
    leader = retry(s.leader)
    green_gone = lambda st: not any(i.get("color") == "green" for i in st.get("instances", []))
    old = fleet.procs[1]
    old.stop()
    wait_status(s, green_gone, 120)
    time.sleep(1)
    v0 = zstat(s.zk, s.root + "/status")["version"]
    c0, k0 = cpu_s(leader.pid), zk_packets(s.zk)
    t0 = time.monotonic()
    p = fleet.restart_green(pace_ms, session_ms)
    m = p.wait_log(r"standin_ready .*ports=(\d+)\.\.", timeout=600)
    t_reg = time.monotonic()
    fleet.stats_urls[1] = f"http://127.0.0.1:{m.group(1)}/standin/stats"
    n = fleet.n

    def all_green(st):
        g = [i for i in st.get("instances", []) if i.get("color") == "green"]
        return len(g) == n and st["phase"] == "converged"
    _, t_seen = wait_status(s, all_green, 300)
    v1 = zstat(s.zk, s.root + "/status")["version"]
    c1, k1 = cpu_s(leader.pid), zk_packets(s.zk)
    return {"pace_ms": pace_ms, "register_ms": round((t_reg - t0) * 1000),
            "lag_after_last_ms": round((t_seen - t_reg) * 1000),
            "leader_cpu_s": round(c1 - c0, 2),
            "zk_requests": None if k0 is None or k1 is None else k1 - k0 - n,
            "status_writes": v1 - v0,
            "rss_anon_kb": rss_anon_kb(leader.pid)}


def colour_up(st, color):
    """Instances of color /status counts UP (its "counts", or its list when it has none)."""
    c = (st.get("counts") or {}).get(color)
    if c is not None:
        return c.get("UP", 0)
    return sum(i.get("color") == color and i.get("status") == "UP"
               for i in st.get("instances", []))


def failing_colour(s, fleet, session_ms, ctls):
    """Worst case for /status: every green agent answers 502 with a long backend-failure reason
    (all Eureka servers unreachable), then a switch to green (blocked; blue stays UP). /status
    bytes with a last_error on every green instance. Then the leader is killed during the
    blocked switch: how long until the new leader's /status shows blue UP again."""
    old = fleet.procs[1]
    old.stop()
    green_gone = lambda st: not any(i.get("color") == "green" for i in st.get("instances", []))
    wait_status(s, green_gone, 120)
    p = fleet.restart_green(0, session_ms, extra=("--fail-http", "502"))
    p.wait_log(r"standin_ready", timeout=300)
    fleet.stats_urls[1] = None
    n = fleet.n
    wait_status(s, lambda st: (st.get("counts") or {}).get("green", {}).get("instances") == n or
                sum(i.get("color") == "green" for i in st.get("instances", [])) == n, 120)
    t0 = time.monotonic()
    rc, out, err = s.bgctl("switch", "green", "--wait", "--timeout", "300s", timeout=330)
    took = round((time.monotonic() - t0) * 1000)

    def all_failed(st):
        g = [i for i in st.get("instances", []) if i.get("color") == "green"]
        return g and all(i.get("last_error") for i in g) and (
            (st.get("counts") or {}).get("green", {}).get("failing") == n or len(g) == n)
    st, _ = wait_status(s, all_failed, 300)
    size = zstat(s.zk, s.root + "/status")["dataLength"]
    err0 = next(i["last_error"] for i in st["instances"] if i.get("color") == "green")
    hist, hbytes = zls(s.zk, s.root + "/history") or [], None
    if hist:
        hbytes = zstat(s.zk, f"{s.root}/history/{sorted(hist)[-1]}")["dataLength"]
    r = {"bgctl_rc": rc, "bgctl_ms": took, "bgctl_out": (out + err).strip()[-300:],
         "phase": st["phase"], "status_bytes": size, "last_error_bytes": len(err0),
         "last_error": err0, "history_entry_bytes": hbytes, "blue_up": colour_up(st, "blue"),
         "listed": len(st.get("instances", [])), "truncated": st.get("truncated", False)}
    # A leader change during the blocked switch: the new leader knows nothing of either colour.
    leader = retry(s.leader)
    standby = next((p for p in ctls if p is not leader and p.alive()), None)
    if leader is not None and standby is not None:
        mark = standby.mark()
        t0w, t0 = time.time(), time.monotonic()
        leader.kill(signal.SIGKILL)
        leader.wait(5)
        m = standby.wait_log(r"ts=(\S+) .*event=leader_elected", timeout=session_ms / 1000 + 60,
                             since=mark)
        sid = ctl_id(standby)
        try:
            st2, t_up = wait_status(s, lambda st: st.get("leader") == sid and
                                    colour_up(st, "blue") == n, 300)
            r["takeover_elected_ms"] = round((log_ts(m.group(1)) - t0w) * 1000)
            r["takeover_blue_up_ms"] = round((t_up - t0) * 1000)
            r["takeover_phase"] = st2["phase"]
        except h.HarnessError as e:
            r["takeover_error"] = str(e)[:300]
        leader.start()
        leader.wait_log(r"event=election_joined", timeout=30)
    # Back to blue for whatever follows.
    retry(h.zk_set, s.zk, s.root + "/active_color", "blue")
    return r


def ctl_id(p):
    return p.name[len("controller-"):]


def start_controllers(s, tag, batch, session_ms):
    return [s.controller(f"{tag}{i}", batch_size=batch, resync="10m",
                         session_timeout_ms=session_ms, call_timeout="5s") for i in (1, 2)]


def wait_status(s, pred, timeout, interval=0.03):
    """Poll /status until pred(status); returns (status, monotonic time seen)."""
    deadline = time.monotonic() + timeout
    st = None
    while True:
        try:
            st = s.status()
        except h.ZkError:  # a ZooKeeper stalled by a loaded machine: keep polling
            st = None
        if st and pred(st):
            return st, time.monotonic()
        if time.monotonic() > deadline:
            raise h.HarnessError(f"/status not as expected within {timeout}s: "
                                 f"{ {k: st.get(k) for k in ('phase', 'desired', 'applied', 'leader', 'reason')} if st else None}")
        time.sleep(interval)


def sizes_now(s):
    zk, root = s.zk, s.root
    st = zstat(zk, root + "/status")
    hist = zls(zk, root + "/history") or []
    hbytes = None
    if hist:
        hs = zstat(zk, f"{root}/history/{sorted(hist)[-1]}")
        hbytes = hs["dataLength"] if hs else None
    return st["dataLength"] if st else None, hbytes, len(hist)


def switches(s, fleet, ctls, flips):
    """flips x bgctl switch --wait; returns lists e2e ms, controller ms, PUTs per switch."""
    e2e, internal, puts = [], [], []
    color = retry(s.status)["applied"]
    for _ in range(flips):
        color = "green" if color == "blue" else "blue"
        leader = retry(s.leader)
        mark = leader.mark()
        p0 = fleet.puts()
        rc, out, err = s.bgctl("switch", color, "--wait", "--timeout", "600s", timeout=660)
        if rc != 0:
            raise h.HarnessError(f"switch to {color} failed: rc={rc} {out} {err}")
        e2e.append(int(re.search(r"in (\d+) ms", out).group(1)))
        m = leader.wait_log(rf"event=switch_end from=\w+ to={color} result=converged ms=(\d+)",
                            timeout=30, since=mark)
        internal.append(int(m.group(1)))
        p1 = fleet.puts()
        puts.append(None if p0 is None else p1 - p0)
    return e2e, internal, puts


def failovers(s, fleet, ctls, rounds, session_ms):
    out = []
    for _ in range(rounds):
        wait_status(s, lambda st: st["phase"] == "converged", 300)
        leader = retry(s.leader)
        standby = next(p for p in ctls if p is not leader)
        v0 = zstat(s.zk, s.root + "/status")["version"]
        mark = standby.mark()
        p0 = fleet.puts()
        t0w, t0 = time.time(), time.monotonic()
        leader.kill(signal.SIGKILL)
        leader.wait(5)
        m = standby.wait_log(r"ts=(\S+) .*event=leader_elected", timeout=session_ms / 1000 + 60,
                             since=mark)
        elected = round((log_ts(m.group(1)) - t0w) * 1000)
        sid = ctl_id(standby)
        _, t_written = wait_status(s, lambda st: st.get("leader") == sid, 120)
        st, t_conv = wait_status(s, lambda st: st.get("leader") == sid and
                                 st["phase"] == "converged", 300)
        v1 = zstat(s.zk, s.root + "/status")["version"]
        p1 = fleet.puts()
        out.append({"elected_ms": elected, "status_written_ms": round((t_written - t0) * 1000),
                    "converged_ms": round((t_conv - t0) * 1000),
                    "puts": None if p0 is None else p1 - p0,
                    "status_writes": v1 - v0 if v1 >= v0 else None,
                    "standby_rss_anon_kb": rss_anon_kb(standby.pid)})
        h.log(f"failover: {out[-1]}")
        leader.start()
        leader.wait_log(r"event=election_joined", timeout=30)
    return out


def run_size(t, n, kind, args):
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    row = {"per_color": n, "fleet": kind, "session_timeout_ms": args.session_ms,
           "loadavg_start": os.getloadavg()[0]}
    fleet = Fleet(t, s, n, kind, args.session_ms)
    row["fleet_start_ms"] = fleet.start_ms
    h.log(f"{kind} {n}+{n}: fleet registered in {fleet.start_ms} ms")
    try:
        # --- batch_size 1
        t0 = time.monotonic()
        ctls = start_controllers(s, "a", 1, args.session_ms)
        _, tc = wait_status(s, lambda st: st["phase"] == "converged" and
                            st["applied"] == "blue", 600)
        row["initial_converge_ms"] = round((tc - t0) * 1000)
        row["initial_puts"] = fleet.puts()
        time.sleep(1)
        leader = retry(s.leader)
        row["rss_anon_idle_kb"] = rss_anon_kb(leader.pid)
        row["status_bytes"], row["history_entry_bytes"], _ = sizes_now(s)
        t1 = time.monotonic()
        rc, out, _ = s.bgctl("status")
        row["bgctl_status_ms"] = round((time.monotonic() - t1) * 1000)
        e2e, internal, puts = switches(s, fleet, ctls, args.flips)
        row["b1"] = {"e2e_ms": e2e, "ctl_ms": internal, "puts": puts}
        leader = retry(s.leader)
        row["rss_anon_after_switch_kb"] = rss_anon_kb(leader.pid)
        row["status_bytes_after"], row["history_entry_bytes"], row["history_entries"] = \
            sizes_now(s)
        h.log(f"{kind} {n}+{n} batch 1: e2e {e2e} ctl {internal} puts {puts}")
        # --- failover (idle)
        row["failover"] = failovers(s, fleet, ctls, args.failovers, args.session_ms)
        row["rss_anon_after_failover_kb"] = rss_anon_kb(retry(s.leader).pid)
        # --- batch_size 32: restart both controllers (a takeover by a fresh process)
        for p in ctls:
            p.stop()
        t0 = time.monotonic()
        p0 = fleet.puts()
        ctls = start_controllers(s, "b", 32, args.session_ms)
        _, tc = wait_status(s, lambda st: st.get("leader", "").startswith("b") and
                            st["phase"] == "converged", 600)
        row["restart_takeover_ms"] = round((tc - t0) * 1000)
        row["restart_takeover_puts"] = None if p0 is None else fleet.puts() - p0
        e2e, internal, puts = switches(s, fleet, ctls, args.flips)
        row["b32"] = {"e2e_ms": e2e, "ctl_ms": internal, "puts": puts}
        row["rss_anon_after_b32_kb"] = rss_anon_kb(retry(s.leader).pid)
        h.log(f"{kind} {n}+{n} batch 32: e2e {e2e} ctl {internal} puts {puts}")
        if kind == "standin" and args.pace_ms:
            row["rolling"] = rolling_registration(s, fleet, args.pace_ms, args.session_ms)
            h.log(f"{kind} {n}+{n} rolling registration: {row['rolling']}")
        if kind == "standin" and args.failing:
            row["failing"] = failing_colour(s, fleet, args.session_ms, ctls)
            h.log(f"{kind} {n}+{n} failing colour: {row['failing']}")
        for p in ctls:
            p.stop()
    except (h.HarnessError, AssertionError) as e:  # keep what was measured; go on
        row["error"] = str(e)[:2000]
        h.log(f"{kind} {n}+{n}: FAILED: {str(e)[:500]}")
    finally:
        row["loadavg_end"] = os.getloadavg()[0]
        fleet.stop()
        zk.stop()
    return row


def overflow(t, n, watch_s, args):
    """n+n healthy stand-ins and one controller: is /status written once the instances listed
    in full would pass ZooKeeper's 1 MB jute.maxbuffer (about 7,600 instances)? Watches up to
    watch_s seconds (less once converged); counts the leader's /status write failures and
    reconnects, and records the time to converge, /status's size and what it left out."""
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    fleet = Fleet(t, s, n, "standin", args.session_ms)
    t0 = time.monotonic()
    ctl = s.controller("o1", resync="10m", session_timeout_ms=args.session_ms)
    converged_s, st = None, None
    while time.monotonic() - t0 < watch_s:
        try:
            st = s.status()
        except h.ZkError:
            st = None
        if st and st.get("phase") == "converged" and st.get("applied") == "blue":
            converged_s = round(time.monotonic() - t0, 1)
            time.sleep(1)  # one more write, if any
            break
        time.sleep(0.5)
    log = ctl.log_text()
    stat = zstat(zk, s.root + "/status")
    st = retry(s.status) or {}
    r = {"per_color": n, "watch_s": watch_s,
         "status_bytes": stat and stat["dataLength"], "status_version": stat and stat["version"],
         "converged": converged_s is not None, "converged_s": converged_s,
         "listed": len(st.get("instances", [])), "truncated": st.get("truncated", False),
         "omitted": st.get("omitted"), "counts": st.get("counts"),
         "status_write_failed": log.count("event=status_write_failed"),
         "zk_disconnected": log.count("event=zk_disconnected"),
         "zk_call_slow": log.count("event=zk_call_slow"),
         "calls_ok": log.count("event=instance_status"), "instances": 2 * n,
         "asked": sum(int(x) for x in re.findall(r"event=instances_probed asked=(\d+)", log)),
         "rss_anon_kb": rss_anon_kb(ctl.pid)}
    print(f"\n/status overflow check, {n}+{n} stand-ins, one controller, up to {watch_s} s: "
          f"/status {r['status_bytes']} B (version {r['status_version']}), {r['listed']} "
          f"instances listed, truncated {r['truncated']}, omitted {r['omitted']}; converged "
          f"{r['converged']} ({converged_s} s after the controller started), "
          f"status_write_failed {r['status_write_failed']}, zk_disconnected "
          f"{r['zk_disconnected']}, zk_call_slow {r['zk_call_slow']}, status PUTs "
          f"{r['calls_ok']} and questions (GET) {r['asked']} for {2 * n} instances, leader "
          f"RssAnon {r['rss_anon_kb']} kB")
    ctl.stop()
    fleet.stop()
    zk.stop()
    return r


def fmt(v):
    return "-" if v is None else str(v)


def print_tables(res):
    rows = res["rows"]
    print("\nFleet: 'standin' = LIGHTWEIGHT STAND-IN agents (tests/tools/standin_agents.py, one "
          "Python process per colour, one ZooKeeper session per colour, agent API only);")
    print("       'real' = real bg-agent processes (health backend). Controllers, bgctl and "
          "ZooKeeper (standalone, loopback) are real.")
    print(f"Controllers: 2 (leader + standby), settle 0, resync 10m, call_timeout 5s, session "
          f"timeout {res['session_ms']} ms. Medians of {res['flips']} switches / "
          f"{res['failovers']} failovers.\n")
    print("Switch (bgctl switch --wait: set /active_color -> /status converged), ms")
    print(f"{'fleet':>8} {'instances':>10} {'init conv':>10} {'b1 e2e':>8} {'b1 ctl':>8} "
          f"{'b1 PUTs':>8} {'b32 e2e':>8} {'b32 ctl':>8} {'b32 PUTs':>9}")
    for r in rows:
        print(f"{r['fleet']:>8} {str(r['per_color']) + '+' + str(r['per_color']):>10} "
              f"{fmt(r.get('initial_converge_ms')):>10} {fmt(med(r.get('b1', {}).get('e2e_ms', []))):>8} "
              f"{fmt(med(r.get('b1', {}).get('ctl_ms', []))):>8} {fmt(med(r.get('b1', {}).get('puts', []))):>8} "
              f"{fmt(med(r.get('b32', {}).get('e2e_ms', []))):>8} {fmt(med(r.get('b32', {}).get('ctl_ms', []))):>8} "
              f"{fmt(med(r.get('b32', {}).get('puts', []))):>9}")
    print("\nFailover of the idle leader (kill -9), ms from the kill; and a restart of both "
          "controllers (takeover by a fresh process)")
    print(f"{'fleet':>8} {'instances':>10} {'elected':>8} {'/status written':>16} "
          f"{'converged':>10} {'PUTs':>6} {'restart->conv':>14} {'PUTs':>6}")
    for r in rows:
        f = r.get("failover", [])
        print(f"{r['fleet']:>8} {str(r['per_color']) + '+' + str(r['per_color']):>10} "
              f"{fmt(med([x['elected_ms'] for x in f])):>8} "
              f"{fmt(med([x['status_written_ms'] for x in f])):>16} "
              f"{fmt(med([x['converged_ms'] for x in f])):>10} "
              f"{fmt(med([x['puts'] for x in f])):>6} "
              f"{fmt(r.get('restart_takeover_ms')):>14} {fmt(r.get('restart_takeover_puts')):>6}")
    print("\nSizes and memory (leader's RssAnon from /proc/PID/status, kB)")
    print(f"{'fleet':>8} {'instances':>10} {'/status B':>10} {'B/inst':>7} {'/history B':>11} "
          f"{'RssAnon idle':>13} {'after b1':>9} {'after fo':>9} {'after b32':>10} "
          f"{'bgctl status ms':>16}")
    for r in rows:
        sb = r.get("status_bytes_after") or r.get("status_bytes")
        print(f"{r['fleet']:>8} {str(r['per_color']) + '+' + str(r['per_color']):>10} "
              f"{fmt(sb):>10} {fmt(round(sb / (2 * r['per_color'])) if sb else None):>7} "
              f"{fmt(r.get('history_entry_bytes')):>11} {fmt(r.get('rss_anon_idle_kb')):>13} "
              f"{fmt(r.get('rss_anon_after_switch_kb')):>9} "
              f"{fmt(r.get('rss_anon_after_failover_kb')):>9} "
              f"{fmt(r.get('rss_anon_after_b32_kb')):>10} {fmt(r.get('bgctl_status_ms')):>16}")
    rr = [r for r in rows if r.get("rolling")]
    if rr:
        print("\nRolling registration: the standby colour's N stand-ins register again, one "
              "every pace ms, while the leader runs")
        print(f"{'instances':>10} {'pace ms':>8} {'register ms':>12} {'lag after last ms':>18} "
              f"{'leader CPU s':>13} {'ZK requests':>12} {'/status writes':>15} "
              f"{'MB /status written':>19}")
        for r in rr:
            x = r["rolling"]
            sb = r.get("status_bytes_after") or 0
            print(f"{str(r['per_color']) + '+' + str(r['per_color']):>10} {x['pace_ms']:>8} "
                  f"{x['register_ms']:>12} {x['lag_after_last_ms']:>18} {x['leader_cpu_s']:>13} "
                  f"{fmt(x['zk_requests']):>12} {x['status_writes']:>15} "
                  f"{x['status_writes'] * sb / 1e6:>19.1f}")
    fr = [r for r in rows if r.get("failing")]
    if fr:
        print("\nEvery green agent answers 502 with a backend-failure reason; switch to green "
              "(batch 32): /status with a last_error on every green instance")
        print(f"{'instances':>10} {'bgctl rc':>9} {'bgctl ms':>9} {'phase':>9} {'blue UP*':>9} "
              f"{'/status B':>10} {'B/inst':>7} {'last_error B':>13} {'/history B':>11} "
              f"{'kill: elected':>14} {'blue UP again':>14}")
        for r in fr:
            x = r["failing"]
            print(f"{str(r['per_color']) + '+' + str(r['per_color']):>10} {x['bgctl_rc']:>9} "
                  f"{x['bgctl_ms']:>9} {x['phase']:>9} {x['blue_up']:>9} {x['status_bytes']:>10} "
                  f"{round(x['status_bytes'] / (2 * r['per_color'])):>7} "
                  f"{x['last_error_bytes']:>13} {fmt(x['history_entry_bytes']):>11} "
                  f"{fmt(x.get('takeover_elected_ms')):>14} {fmt(x.get('takeover_blue_up_ms')):>14}")
        x = max(fr, key=lambda r: r["per_color"])
        per_fail = (x["failing"]["status_bytes"] - (x.get("status_bytes_after") or 0) / 2) / \
            x["per_color"]
        print(f"  a failing instance costs ~{per_fail:.0f} B of /status (last_error cut to 120 B); "
              f"past its 512 KB budget /status lists the failing ones first and counts the rest.")
        print("  * blue instances /status counts UP when the switch was blocked. Then kill -9 of "
              "the leader: ms from the kill to the standby's election, and to its /status "
              "counting every blue instance UP again")
        print(f"  last_error example: {x['failing']['last_error'][:200]}")
    for r in rows:
        if r.get("error"):
            print(f"\n{r['fleet']} {r['per_color']}+{r['per_color']} FAILED: {r['error'][:300]}")
    print("\nLoad average (1 min) at start/end of each size: " + ", ".join(
        f"{r['per_color']}+{r['per_color']} {r['fleet']}: {r['loadavg_start']:.1f}/"
        f"{r['loadavg_end']:.1f}" for r in rows))
    st = [r for r in rows if r["fleet"] == "standin" and r.get("status_bytes_after")]
    if st:
        big = max(st, key=lambda r: r["per_color"])
        per = big["status_bytes_after"] / (2 * big["per_color"])
        print(f"\n/status grows ~{per:.0f} B per instance listed: past about "
              f"{int(512 * 1024 / per)} instances it is kept under its 512 KB budget (settled "
              f"instances counted, not listed), well inside ZooKeeper's 1 MB jute.maxbuffer.")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,250,500", help="stand-in instances per colour")
    ap.add_argument("--real", default="20", help="real bg-agents per colour (0: none)")
    ap.add_argument("--flips", type=int, default=3)
    ap.add_argument("--failovers", type=int, default=2)
    ap.add_argument("--session-ms", type=int, default=4000)
    ap.add_argument("--no-failing", dest="failing", action="store_false",
                    help="skip the all-agents-fail /status size step")
    ap.add_argument("--pace-ms", type=float, default=10,
                    help="rolling re-registration of green, ms between two (0: skip)")
    ap.add_argument("--out", default=None,
                    help="JSON results (default bench/out/scale.json; --overflow: "
                         "bench/out/scale-overflow.json)")
    ap.add_argument("--overflow", type=int, metavar="N",
                    help="only the /status > 1 MB check: N+N healthy stand-ins (3900 is over)")
    ap.add_argument("--watch", type=int, default=40, metavar="S",
                    help="--overflow: watch at most S seconds (default 40)")
    ap.add_argument("--report", nargs="+", metavar="JSON",
                    help="only reprint the tables of earlier runs (rows of all files merged)")
    args = ap.parse_args()
    if args.out is None:
        args.out = str(HERE / "out" / ("scale-overflow.json" if args.overflow else "scale.json"))
    if args.report:
        runs = [json.loads(Path(f).read_text()) for f in args.report]
        merged = dict(runs[0], rows=[r for run in runs for r in run["rows"]])
        merged["flips"] = "/".join(sorted({str(r["flips"]) for r in runs}))
        merged["failovers"] = "/".join(sorted({str(r["failovers"]) for r in runs}))
        print_tables(merged)
        return
    if args.overflow:
        with h.Test("bench-scale-overflow") as t:
            r = overflow(t, args.overflow, args.watch, args)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"overflow": r}, indent=2))
        return
    res = {"rows": [], "flips": args.flips, "failovers": args.failovers,
           "session_ms": args.session_ms, "machine": {"nproc": os.cpu_count()},
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    plan = [(int(n), "real") for n in args.real.split(",") if int(n) > 0] + \
           [(int(n), "standin") for n in args.sizes.split(",") if int(n) > 0]
    with h.Test("bench-scale") as t:
        for n, kind in plan:
            row = run_size(t, n, kind, args)
            if row.get("error"):  # once more: a loaded machine can stall ZooKeeper for 15 s
                h.log(f"{kind} {n}+{n}: trying the size once more")
                row = dict(run_size(t, n, kind, args), first_error=row["error"])
            res["rows"].append(row)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(res, indent=2))
    print_tables(res)
    print(f"\nJSON: {args.out}")


if __name__ == "__main__":
    main()
