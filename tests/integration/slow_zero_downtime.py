#!/usr/bin/env python3
"""Zero downtime, proven under load: a real HAProxy 2.6 in front of 2 blue + 2 green
bg-demo-app instances, each with its bg-agent (real ZooKeeper, one controller, settle 0).

Run A  HAProxy polls each agent's GET /health   (option httpchk, check port AGENT, inter 100,
       rise 1 fall 1; the agents' health backend has confirm_polls = max(rise, fall) = 1)
Run B  HAProxy polls each agent's haproxy-agent port (agent-check, agent-inter 100: the words
       "ready" / "drain")

In each run wrk keeps 64 keep-alive connections busy through HAProxy while /active_color
flips FLIPS times (default 30; the next flip once /status is converged on the new colour, the
probe below has seen it, and after a random pause). A separate probe client sends one request
after another through HAProxy over a keep-alive connection (as wrk does) and records who
answered (X-Served-By). Passes when

  * wrk reports no non-2xx response and no socket error, and the probe saw no failure;
  * after every flip the responses come only from the new colour within one second: the
    "cutover" (flip -> the first request of the unbroken run of new-colour answers, which
    must be >= 20 long and last until the next flip) is <= 1000 ms;
  * after the cutover, once the old servers have no request in flight, their response
    counters in HAProxy's `show stat` do not move while wrk runs: every client, wrk's 64
    keep-alive connections included, is served by the new colour only.

The flip time is /active_color's mtime as ZooKeeper recorded it (same host, same clock).

The controller runs with the default switch.batch_size 1: a flip is four confirmations in a
row, each waiting for one of HAProxy's polls (inter 100 ms). BG_ZD_BATCH=2 runs it a whole
colour at once (still make before break); bench/bench_lb.py measures both.

This file is also the rig that bench/bench_lb.py uses (import slow_zero_downtime): Probe,
Wrk, HaproxyRig, drive(), summary(). Environment: BG_ZD_FLIPS (flips per run, default 30),
BG_ZD_BATCH (the controller's switch.batch_size, default 1).
"""

import bisect
import http.client
import os
import random
import shutil
import signal
import socket
import statistics
import threading
import time

import harness as h
from bgsys import System

OTHER = {"blue": "green", "green": "blue"}


def other(color):
    return OTHER[color]


def color_of(served_by):
    """"blue-1" -> "blue"; None for anything else (no header, an error page)."""
    if not served_by:
        return None
    c = served_by.split("-", 1)[0]
    return c if c in OTHER else None


def pct(values, p):
    """The p-th percentile (nearest rank) of values, None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ----------------------------------------------------------------------------------------------
# Clients: the probe (who answers?) and wrk (the load)
# ----------------------------------------------------------------------------------------------

class Probe(threading.Thread):
    """Sends GET / to host:port one request after another over one keep-alive connection (a
    new one after a failure or a close) and records (t_send, t_recv, status, colour, served_by)
    with wall-clock times. status 0 means no answer (connection refused/reset/timeout)."""

    def __init__(self, port, host="127.0.0.1", timeout=5):
        super().__init__(daemon=True)
        self.host, self.port, self.timeout = host, port, timeout
        self.lock = threading.Lock()
        self.records = []
        self.total = 0
        self.failures = []  # (t_send, status, served_by or error text)
        self.stop_ev = threading.Event()

    def run(self):
        conn = None
        while not self.stop_ev.is_set():
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            t0 = time.time()
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                code, by = r.status, r.getheader("X-Served-By")
                if r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                code, by = 0, f"{type(e).__name__}: {e}"
                conn.close()
                conn = None
            t1 = time.time()
            rec = (t0, t1, code, color_of(by) if code == 200 else None, by)
            with self.lock:
                self.records.append(rec)
                self.total += 1
                if code != 200:
                    self.failures.append((t0, code, by))
            if code == 0:
                time.sleep(0.001)  # do not spin on a refused connection
        if conn is not None:
            conn.close()

    def since(self, t):
        """Records answered at or after wall-clock time t."""
        with self.lock:
            recs = self.records
            i = bisect.bisect_left(recs, t, key=lambda r: r[1])
            return recs[i:]

    def forget_before(self, t):
        """Drop records answered before t (keeps memory flat over long runs)."""
        with self.lock:
            i = bisect.bisect_left(self.records, t, key=lambda r: r[1])
            del self.records[:i]

    def stop(self):
        self.stop_ev.set()
        self.join(10)


def analyse_flip(records, flip_t, new_color):
    """Cutover of one flip from the probe's records answered after flip_t: the unbroken run of
    new-colour 200s at the end, and when it started. Returns {"cutover_ms", "streak",
    "old_after" (old-colour answers after the flip), "seen", "outage_ms" (first failed
    request's start -> last failed request's end, 0 without failures)}; cutover_ms is None when
    the last record is not new-colour."""
    last_bad = None
    old_after = 0
    first_fail = last_fail = None
    for i, r in enumerate(records):
        if not (r[2] == 200 and r[3] == new_color):
            last_bad = i
            if r[2] == 200:
                old_after += 1
            else:
                first_fail = r[0] if first_fail is None else first_fail
                last_fail = r[1]
    # outage: from the first failed request's start to the last failed one's end
    outage = 0.0 if first_fail is None else (last_fail - first_fail) * 1000
    streak = len(records) - (0 if last_bad is None else last_bad + 1)
    if streak == 0:
        return {"cutover_ms": None, "streak": 0, "old_after": old_after, "seen": len(records),
                "outage_ms": outage}
    first = records[0 if last_bad is None else last_bad + 1]
    # The first new-colour request may have been sent just before the flip (a request
    # answered after the flip); the cutover cannot be earlier than the flip.
    return {"cutover_ms": max(0.0, (first[0] - flip_t) * 1000), "streak": streak,
            "old_after": old_after, "seen": len(records), "outage_ms": outage}


class Wrk:
    """wrk -cN -tT -d<long> --latency running in the background until stop() (SIGINT makes
    wrk print its report, over the time it actually ran)."""

    def __init__(self, t, url, connections=64, threads=2, name="wrk", timeout="5s"):
        exe = shutil.which("wrk")
        if not exe:
            raise h.Skip("wrk not installed")
        self.proc = t.proc([exe, f"-c{connections}", f"-t{threads}", "-d3600s",
                            f"--timeout={timeout}", url], name=name)
        self.mark = self.proc.mark()
        self.t0 = time.time()

    def stop(self):
        self.proc.kill(signal.SIGINT)
        self.proc.wait(20)
        r = h.parse_wrk(self.proc.log_text(self.mark))
        r["wall_s"] = time.time() - self.t0
        return r


# ----------------------------------------------------------------------------------------------
# The bluegreen + HAProxy rig
# ----------------------------------------------------------------------------------------------

def haproxy_admin(sock_path, cmd):
    """One command on HAProxy's admin socket; the answer as text."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock_path))
        s.sendall(cmd.encode() + b"\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    return out.decode()


def haproxy_answered(sock_path, backend="be"):
    """{server: (responses it answered (hrsp_1xx..5xx + other), requests in flight (scur))}
    from `show stat`: a server whose count does not move answered nobody in between (wrk
    included)."""
    lines = haproxy_admin(sock_path, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for ln in lines[1:]:
        row = dict(zip(header, ln.split(",")))
        if row.get("pxname") == backend and row.get("svname") not in ("BACKEND", None):
            out[row["svname"]] = (sum(int(row.get(k) or 0) for k in (
                "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")),
                int(row.get("scur") or 0))
    return out


def haproxy_config(fport, servers, mode, inter=100, rise=1, fall=1, admin_sock=None):
    """HAProxy 2.6 configuration. servers: [(name, app_port, agent_http_port, agent_check_port)].

    Why these settings (bench/README.md has the longer story):
      * keep-alive on both sides (HAProxy's default http-keep-alive mode, http-reuse safe):
        every request on a client keep-alive connection is load-balanced again, so wrk's
        connections move to the new colour without being closed; a server that is DOWN (run A)
        or DRAIN (weight 0, run B) gets no new request, while requests already at it finish.
      * no on-marked-down shutdown-sessions: it would cut in-flight requests.
      * no option http-server-close: it gains nothing here (requests are balanced one by one
        either way) and costs a new server connection per request.
    """
    lines = [
        "global",
        "  maxconn 4096",
    ]
    if admin_sock:
        lines.append(f"  stats socket {admin_sock} level admin")
    lines += [
        "defaults",
        "  mode http",
        "  timeout connect 1s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  timeout http-keep-alive 30s",
        "frontend fe",
        f"  bind 127.0.0.1:{fport}",
        "  default_backend be",
        "backend be",
        "  balance roundrobin",
    ]
    if mode == "httpchk":
        lines += ["  option httpchk GET /health",
                  f"  default-server inter {inter} rise {rise} fall {fall}"]
        for name, app, agent_http, _ in servers:
            lines.append(f"  server {name} 127.0.0.1:{app} check port {agent_http}")
    elif mode == "agent":
        # The agent decides the colour (ready/drain); a plain TCP check every second still
        # takes a dead application out, which the agent's word alone would not.
        for name, app, _, agent_port in servers:
            lines.append(f"  server {name} 127.0.0.1:{app} check inter 1s agent-check "
                         f"agent-addr 127.0.0.1 agent-port {agent_port} agent-inter {inter}")
    else:
        raise ValueError(mode)
    return "\n".join(lines) + "\n"


class HaproxyRig:
    """2+2 (or n+n) demo apps with agents, one controller (settle 0), HAProxy in front.

    mode "httpchk": HAProxy checks GET /health on the agent's HTTP port (health backend with
    confirm_polls = max(rise, fall)); mode "agent": HAProxy agent-check on the agent's
    haproxy-agent backend."""

    def __init__(self, t, zk, mode, n=2, inter=100, rise=1, fall=1, batch_size=1,
                 label=None):
        self.t, self.zk, self.mode = t, zk, mode
        self.n, self.inter, self.rise, self.fall = n, inter, rise, fall
        self.batch_size = batch_size
        self.label = label or mode
        self.procs = []

    def start(self):
        t = self.t
        self.sys = s = System(t, self.zk)
        s.flip("blue")
        servers = []
        polls = max(self.rise, self.fall)
        for color in ("blue", "green"):
            for i in range(1, self.n + 1):
                name = f"{color}-{i}"
                app = t.demo_app(name, version=f"{self.label}-{color}")
                self.procs.append(app)
                if self.mode == "httpchk":
                    backends = [{"type": "health", "confirm_polls": polls,
                                 "confirm_timeout": "1500ms", "poll_window": "5s"}]
                    aport = None
                else:
                    aport = h.free_port()
                    backends = [{"type": "haproxy-agent", "listen": f"127.0.0.1:{aport}",
                                 "confirm_polls": 1, "confirm_timeout": "1500ms",
                                 "poll_window": "5s"}]
                a = s.agent(name, color, start=False, backends=backends)
                servers.append((name, app.port, a.port, aport))
        for a in s.agents:
            a.start(wait=False)
        for a in s.agents:
            a.proc.wait_log(r"event=registered", timeout=20)
            self.procs.append(a.proc)
        self.ctl = s.controller(f"zd-{self.label}", batch_size=self.batch_size, settle="0s",
                                resync="30s")
        self.procs.append(self.ctl)
        s.wait_converged("blue", timeout=30)
        self.fport = h.free_port()
        self.admin_sock = t.path(f"haproxy-{self.label}.sock")
        cfg = t.path(f"haproxy-{self.label}.cfg")
        cfg.write_text(haproxy_config(self.fport, servers, self.mode, self.inter, self.rise,
                                      self.fall, self.admin_sock))
        self.cfg = cfg
        r = h.run_cmd(["haproxy", "-c", "-f", cfg], quiet=True)
        if r.returncode != 0:
            raise h.HarnessError(f"haproxy -c rejects {cfg}: {r.stdout}{r.stderr}")
        self.haproxy = t.proc(["haproxy", "-db", "-f", cfg], name=f"haproxy-{self.label}")
        self.procs.append(self.haproxy)
        self.url = f"http://127.0.0.1:{self.fport}/"
        self.color = "blue"
        self.wait_serving("blue")
        return self

    def wait_serving(self, color, n=40, timeout=15):
        """Until n consecutive requests through HAProxy are answered 200 by `color`."""
        def ok():
            conn = http.client.HTTPConnection("127.0.0.1", self.fport, timeout=2)
            try:
                for _ in range(n):
                    conn.request("GET", "/")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200 or color_of(r.getheader("X-Served-By")) != color:
                        return False
                return True
            finally:
                conn.close()
        h.wait_until(ok, timeout=timeout, interval=0.05, ignore=(OSError,),
                     msg=f"HAProxy {self.label} serving only {color}")

    def flip(self, color):
        """Set /active_color; returns the flip's wall-clock time (the node's mtime)."""
        self.mark = self.ctl.mark()
        self.sys.flip(color)
        st = h.zk_stat(self.zk, self.sys.root + "/active_color")
        self.color = color
        return st["mtime"] / 1000.0

    def wait_done(self, color, timeout=30):
        """Wait for the controller's switch_end (converged on color) and /status converged;
        returns the controller's own switch ms."""
        m = self.ctl.wait_log(rf"event=switch_end from=\w+ to={color} result=converged "
                              rf"ms=(\d+)", timeout=timeout, since=self.mark)
        self.sys.wait_converged(color, timeout=timeout)
        return int(m.group(1))

    def answered(self):
        """{server: (responses so far, in flight)} (see haproxy_answered)."""
        return haproxy_answered(self.admin_sock)

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    def describe(self):
        batch = f", batch_size {self.batch_size}" if self.batch_size != 1 else ""
        if self.mode == "httpchk":
            rf = f" rise {self.rise} fall {self.fall}" if (self.rise, self.fall) != (1, 1) else ""
            return f"bluegreen + HAProxy httpchk /health, inter {self.inter}{rf}{batch}"
        return f"bluegreen + HAProxy agent-check, agent-inter {self.inter}{batch}"


# ----------------------------------------------------------------------------------------------
# The driver: load, flips, measurements
# ----------------------------------------------------------------------------------------------

def drive(t, rig, flips, connections=64, threads=2, pause=(0.05, 0.3), streak=20,
          warmup=1.0, seed=None, flip_timeout=30):
    """Run wrk and the probe through rig.url while flipping `flips` times. rig needs .url,
    .color (the colour serving now), .flip(color) -> flip wall time, .wait_done(color) ->
    switch ms or None. Returns a result dict (wrk report, probe counts, per-flip figures)."""
    rng = random.Random(seed)
    probe = Probe(int(rig.url.rsplit(":", 1)[1].strip("/")))
    probe.start()
    wrk = Wrk(t, rig.url, connections=connections, threads=threads,
              name=f"wrk-{getattr(rig, 'label', 'x')}")
    time.sleep(warmup)
    per_flip = []
    color = rig.color
    try:
        for i in range(flips):
            new = other(color)
            flip_t = rig.flip(new)
            switch_ms = rig.wait_done(new, timeout=flip_timeout)
            deadline = time.monotonic() + flip_timeout
            while True:  # the probe must see an unbroken run of `streak` new-colour answers
                res = analyse_flip(probe.since(flip_t), flip_t, new)
                if res["streak"] >= streak:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            # Every client, wrk included, must now be served by the new colour only: the old
            # servers' response counters must not move (read after in-flight requests ended).
            # Every client, wrk included, must now be served by the new colour only: once the
            # requests the old servers still had in flight are done, their response counters
            # must not move.
            answered = getattr(rig, "answered", None)
            before = None
            if answered:
                until = time.monotonic() + 3
                while True:
                    before = answered()
                    if all(v[1] == 0 for k, v in before.items() if color_of(k) == color) or \
                            time.monotonic() > until:
                        break
                    time.sleep(0.01)
            time.sleep(rng.uniform(*pause))
            after = answered() if answered else None
            res = analyse_flip(probe.since(flip_t), flip_t, new)  # still unbroken?
            res.update({"flip": i + 1, "to": new, "switch_ms": switch_ms})
            if before is not None:
                res["old_served_in_pause"] = sum(after[k][0] - before[k][0] for k in after
                                                 if color_of(k) == color)
                res["new_served_in_pause"] = sum(after[k][0] - before[k][0] for k in after
                                                 if color_of(k) == new)
            per_flip.append(res)
            h.log(f"{getattr(rig, 'label', '')} flip {i + 1}/{flips} -> {new}: cutover "
                  f"{res['cutover_ms'] if res['cutover_ms'] is None else round(res['cutover_ms'])}"
                  f" ms, streak {res['streak']}, old answers after flip {res['old_after']}, "
                  f"switch {fmt(switch_ms)} ms" + (
                      f", balancer answers in the pause old/new {res['old_served_in_pause']}/"
                      f"{res['new_served_in_pause']}" if "old_served_in_pause" in res else ""))
            probe.forget_before(flip_t)
            color = new
    finally:
        report = wrk.stop()
        probe.stop()
    cut = [f["cutover_ms"] for f in per_flip if f["cutover_ms"] is not None]
    sw = [f["switch_ms"] for f in per_flip if f.get("switch_ms") is not None]
    return {
        "flips": flips,
        "requests": report["requests"], "rps": report["rps"], "seconds": report["seconds"],
        "non2xx": report["non2xx"], "socket_errors": report["errors"],
        "socket_error_total": sum(report["errors"].values()),
        "failed": report["error_total"],
        "probe_requests": probe.total, "probe_failed": len(probe.failures),
        "probe_failures": [list(f) for f in probe.failures[:20]],
        "cutover_ms": cut,
        "cutover_p50_ms": pct(cut, 50), "cutover_p99_ms": pct(cut, 99),
        "cutover_max_ms": max(cut) if cut else None,
        "cutover_median_ms": statistics.median(cut) if cut else None,
        "unfinished_flips": sum(1 for f in per_flip if f["cutover_ms"] is None
                                or f["streak"] < streak),
        "switch_ms": sw, "switch_p50_ms": pct(sw, 50),
        "outage_ms_max": max([f["outage_ms"] for f in per_flip] or [0]),
        "outage_ms_total": sum(f["outage_ms"] for f in per_flip),
        "old_served_after_cutover": sum(f.get("old_served_in_pause", 0) for f in per_flip),
        "per_flip": per_flip, "wrk_text": report["text"],
    }


def fmt(v, nd=0):
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def summary(rows):
    """A table of drive() results: [(label, result)]."""
    head = (f"{'run':<62} {'requests':>9} {'non-2xx':>8} {'sock err':>8} {'probe fail':>10} "
            f"{'flips':>5} {'cut p50':>8} {'cut p99':>8} {'cut max':>8}")
    out = [head, "-" * len(head)]
    for label, r in rows:
        out.append(f"{label:<62} {r['requests']:>9} {r['non2xx']:>8} "
                   f"{r['socket_error_total']:>8} {r['probe_failed']:>10} {r['flips']:>5} "
                   f"{fmt(r['cutover_p50_ms']):>8} {fmt(r['cutover_p99_ms']):>8} "
                   f"{fmt(r['cutover_max_ms']):>8}")
    out.append("cut = cutover ms: flip (/active_color mtime) -> first request of the unbroken "
               "run of new-colour answers at the balancer")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------------------------------

def test(t):
    for exe in ("haproxy", "wrk"):
        if not shutil.which(exe):
            raise h.Skip(f"{exe} not installed")
    flips = int(os.environ.get("BG_ZD_FLIPS", "30"))
    batch = int(os.environ.get("BG_ZD_BATCH", "1"))
    zk = t.zookeeper()
    rows = []
    for mode in ("httpchk", "agent"):
        t.step(f"run {'A' if mode == 'httpchk' else 'B'}: {mode}, {flips} flips under wrk -c64, "
               f"batch_size {batch}")
        rig = HaproxyRig(t, zk, mode, batch_size=batch).start()
        r = drive(t, rig, flips)
        label = rig.describe()
        rows.append((label, r))
        h.log("wrk report:\n" + r["wrk_text"])
        t.log(f"{label}: {r['requests']} requests ({r['rps']:.0f}/s), non-2xx {r['non2xx']}, "
              f"socket errors {r['socket_errors']}, probe {r['probe_requests']} requests "
              f"{r['probe_failed']} failed; cutover ms p50 {fmt(r['cutover_p50_ms'])} "
              f"p99 {fmt(r['cutover_p99_ms'])} max {fmt(r['cutover_max_ms'])}; controller "
              f"switch ms p50 {fmt(r['switch_p50_ms'])}")
        t.check(r["requests"] > 1000, f"{mode}: wrk got answers ({r['requests']})")
        t.check_eq(r["non2xx"], 0, f"{mode}: no non-2xx response in wrk's report")
        t.check_eq(r["socket_errors"], {"connect": 0, "read": 0, "write": 0, "timeout": 0},
                   f"{mode}: no socket error in wrk's report")
        t.check_eq(r["probe_failures"], [], f"{mode}: every probe request answered 200")
        late = [(f["flip"], f["cutover_ms"], f["streak"]) for f in r["per_flip"]
                if f["cutover_ms"] is None or f["cutover_ms"] > 1000 or f["streak"] < 20]
        t.check_eq(late, [], f"{mode}: after each of {flips} flips only the new colour answers"
                             f" the probe within 1 s, >= 20 requests in a row until the next flip")
        t.check_eq([(f["flip"], f["old_served_in_pause"]) for f in r["per_flip"]
                    if f["old_served_in_pause"] or not f["new_served_in_pause"]], [],
                   f"{mode}: after the cutover HAProxy's old-colour servers answer nobody, "
                   f"wrk's 64 keep-alive connections included (show stat response counters)")
        rig.stop()
    print("\n" + summary(rows) + "\n", flush=True)


if __name__ == "__main__":
    h.run(test)
