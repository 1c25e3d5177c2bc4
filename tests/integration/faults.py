"""faults.py: helpers for the fault-tolerance tests (test_fault_*.py, slow_chaos.py).

Timeline     one thread per agent polls GET /health over a keep-alive connection every few ms
             and keeps the answers as runs of equal codes with send/receive wall times, so
             that orderings can be *proven* from the samples (see Timeline's docstring).
events()     parsed key=value log lines of a daemon (ts as epoch seconds).
controller() a bg-controller with an HTTP port (/health says whether it leads).
metric()     one value from a Prometheus text page.

Wall-clock times (time.time()) are used throughout so that samples and the daemons' log
timestamps (ts=...Z, millisecond UTC) can be compared.
"""

import calendar
import http.client
import re
import threading
import time

import harness as h

# ----------------------------------------------------------------------------------------------
# Logs
# ----------------------------------------------------------------------------------------------

_LINE = re.compile(r"^ts=(\S+) level=(\w+) prog=(\S+) event=(\S+)(.*)$")
_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def iso_to_epoch(ts):
    """'2024-05-01T12:00:00.123Z' -> epoch seconds (float)."""
    return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000


def events(proc, event=None, since=0):
    """Parsed log lines of a Proc (every run, from byte offset since): a list of dicts with
    ts (epoch s), level, event and each key=value (quotes removed). event: a name or a set."""
    out = []
    want = {event} if isinstance(event, str) else event
    for line in proc.log_text(since).splitlines():
        m = _LINE.match(line)
        if not m or (want is not None and m.group(4) not in want):
            continue
        d = {"ts": iso_to_epoch(m.group(1)), "level": m.group(2), "event": m.group(4),
             "line": line}
        for k, v in _KV.findall(m.group(5)):
            d[k] = v[1:-1] if v.startswith('"') else v
        out.append(d)
    return out


# ----------------------------------------------------------------------------------------------
# HTTP helpers
# ----------------------------------------------------------------------------------------------

def metric(url, name, labels=None):
    """A sample's value from GET url (Prometheus text), as float; None when absent."""
    code, text, _ = h.http("GET", url, timeout=2)
    if code != 200:
        return None
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels
                   else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def controller(s, id, listen=True, **switch):
    """Start a bg-controller for System s like s.controller(), but with http.listen on a free
    port (p.url: GET p.url + '/health' -> {"leader":..,"epoch":..}). Returns the Proc."""
    port = h.free_port() if listen else None
    conf = h.write_controller_conf(s.t.dir, s.zk, s.root, id=id, token_file=s.token_file,
                                   listen=f"127.0.0.1:{port}" if listen else None, **switch)
    p = s.t.proc([h.bin("bg-controller"), "-c", str(conf)], name=f"controller-{id}")
    p.wait_log(r"event=election_joined", timeout=15)
    p.conf = conf
    p.id = id
    p.url = f"http://127.0.0.1:{port}" if listen else None
    s.controllers.append(p)
    return p


def ctl_health(p, timeout=0.5):
    """A controller's GET /health as a dict, or None (not answering)."""
    try:
        code, obj, _ = h.http_json("GET", p.url + "/health", timeout=timeout)
        return obj if code == 200 else None
    except OSError:
        return None


def expected_health(s, color):
    return {a.id: (200 if a.color == color else 503) for a in s.agents}


def instance(st, id, color=None):
    """The /status instances[] entry of id (and colour), or None."""
    for i in (st or {}).get("instances", []):
        if i["id"] == id and (color is None or i["color"] == color):
            return i
    return None


# ----------------------------------------------------------------------------------------------
# Timeline: per-agent /health sampling
# ----------------------------------------------------------------------------------------------

class Run:
    """Consecutive samples of one agent with the same answer (code 200, 503, ..., or None when
    it did not answer). first_send/first_recv: when the first such sample was sent/answered;
    last_send/last_recv: the same for the last one."""
    __slots__ = ("code", "first_send", "first_recv", "last_send", "last_recv", "n")

    def __init__(self, code, send, recv):
        self.code, self.first_send, self.first_recv = code, send, recv
        self.last_send, self.last_recv, self.n = send, recv, 1

    def __repr__(self):
        return (f"Run({self.code}, {self.first_send:.3f}..{self.last_recv:.3f}, n={self.n})")


class Probe(threading.Thread):
    """Polls one agent's /health forever (until stop), keeping Runs."""

    def __init__(self, agent, interval=0.002, timeout=0.3):
        super().__init__(daemon=True, name=f"probe-{agent.id}")
        self.agent = agent
        host, port = agent.listen.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.interval, self.timeout = interval, timeout
        self.runs = []
        self.samples = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()

    def _get(self, conn):
        conn.request("GET", "/health")
        r = conn.getresponse()
        r.read()
        return r.status

    def run(self):
        conn = None
        while not self.stop_ev.is_set():
            send = time.time()
            code = None
            for attempt in range(2):  # a closed keep-alive connection is retried once, fresh
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port,
                                                          timeout=self.timeout)
                    code = self._get(conn)
                    break
                except (OSError, http.client.HTTPException) as e:
                    if conn is not None:
                        conn.close()
                    conn = None
                    if isinstance(e, (TimeoutError, ConnectionRefusedError)) or attempt:
                        break
                    send = time.time()
            recv = time.time()
            with self.lock:
                self.samples += 1
                last = self.runs[-1] if self.runs else None
                if last is not None and last.code == code:
                    last.last_send, last.last_recv = send, recv
                    last.n += 1
                else:
                    self.runs.append(Run(code, send, recv))
            if self.interval:
                self.stop_ev.wait(self.interval)
        if conn is not None:
            conn.close()

    def snapshot(self):
        with self.lock:
            return [_copy_run(r) for r in self.runs]


def _copy_run(r):
    c = Run(r.code, r.first_send, r.first_recv)
    c.last_send, c.last_recv, c.n = r.last_send, r.last_recv, r.n
    return c


class Timeline:
    """Samples every agent's /health, one thread each, every `interval` seconds.

    What the samples prove (no assumption about clocks beyond one machine's wall clock):
    * An answer was produced at some instant in [send, recv] of its sample.
    * Assuming an agent does not change twice between two consecutive samples (transitions
      are driven by HTTP calls, far slower than the sampling period), within a run of equal
      answers the agent held that answer from the first answer's production to the last
      one's: surely during [first_recv, last_send] (empty when the run has one sample).
    * Hence "agent X left UP after agent Y became UP" is proven when X's last 200 sample was
      *sent* after Y's first 200 sample was *received*.
    * A moment with no agent UP is proven when the sure-not-UP intervals of all agents
      intersect (zero_up()). Gaps between runs are unknown and never count.
    """

    def __init__(self, agents, interval=0.002, timeout=0.3):
        self.probes = {a.id: Probe(a, interval, timeout) for a in agents}

    def start(self):
        for p in self.probes.values():
            p.start()
        return self

    def stop(self):
        for p in self.probes.values():
            p.stop_ev.set()
        for p in self.probes.values():
            p.join(5)
        return self

    @property
    def samples(self):
        return sum(p.samples for p in self.probes.values())

    def runs(self, id):
        return self.probes[id].snapshot()

    def wait_samples(self, n=3, timeout=5):
        """Wait until every probe has n samples (the agents are being polled)."""
        h.wait_until(lambda: all(p.samples >= n for p in self.probes.values()),
                     timeout=timeout, msg="every probe has samples")

    def codes_since(self, id, t):
        """The distinct answers of id in samples sent at or after t, in order."""
        out = []
        for r in self.runs(id):
            if r.last_send >= t and (not out or out[-1] != r.code):
                out.append(r.code)
        return out

    def transitions(self, id, since=0.0):
        """[(prev_code, code, prev.last_send, run.first_recv)] for runs starting after since:
        the change happened within (prev.last_send, run.first_recv)."""
        rs = self.runs(id)
        return [(a.code, b.code, a.last_send, b.first_recv)
                for a, b in zip(rs, rs[1:]) if b.first_send >= since]

    def first_change(self, id, since, to_code):
        """First transition of id to to_code after since: (lo, hi) bounds of when it
        happened, or None."""
        for prev, code, lo, hi in self.transitions(id, since):
            if code == to_code and prev != to_code:
                return lo, hi
        return None

    def not_up_stretches(self, id):
        """[(start, end, runs)]: maximal stretches of consecutive non-200 runs of id and the
        span in which id was surely not UP. Within a run of 503s that span is [first_recv,
        last_send]; a run without answers counts from sending its first to receiving (or
        giving up on) its last sample. Consecutive non-200 runs (e.g. 503 then no answer)
        form one stretch: being UP in between would take two changes between two samples."""
        out, group = [], []
        for r in self.runs(id) + [None]:
            if r is not None and r.code != 200:
                group.append(r)
                continue
            if group:
                a = group[0].first_send if group[0].code is None else group[0].first_recv
                b = group[-1].last_recv if group[-1].code is None else group[-1].last_send
                if b > a:
                    out.append((a, b, group))
                group = []
        return out

    def not_up(self, id, t0=0.0, t1=float("inf")):
        """Sure-not-UP intervals of id within [t0, t1] (see not_up_stretches)."""
        out = []
        for a, b, _ in self.not_up_stretches(id):
            a, b = max(a, t0), min(b, t1)
            if b > a:
                out.append((a, b))
        return out

    def zero_up(self, t0=0.0, t1=float("inf"), ids=None, min_len=0.0):
        """Proven periods (start, end) within [t0, t1] in which none of the agents (ids, default
        all) answered 200, longer than min_len seconds."""
        ids = list(ids or self.probes)
        cur = [(t0, t1)]
        for id in ids:
            cur = _intersect(cur, self.not_up(id, t0, t1))
            if not cur:
                break
        return [(a, b) for a, b in cur if b - a > min_len]


def _intersect(xs, ys):
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if b > a:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def fmt_periods(ps, t_ref=0.0):
    return ", ".join(f"[{a - t_ref:+.3f}s..{b - t_ref:+.3f}s ({(b - a) * 1000:.0f} ms)]"
                     for a, b in ps) or "none"


def make_before_break(t, tl, new_ids, old_ids, since, proven=True):
    """Check from the samples that every old instance left UP only after every new one was UP.
    proven=True (use when a settle separates them): each old one's last 200 was sent after
    every new one's first 200 came back. proven=False (settle 0: both may fall within one
    sampling period): no sample contradicts it, i.e. no old one was surely OUT while a new
    one was surely still OUT. Returns (all_new_up_by, first_old_out_after)."""
    ups, still_out = {}, {}
    for g in new_ids:
        ch = tl.first_change(g, since, 200)
        t.check(ch is not None, f"{g} became UP after the flip (samples: "
                                f"{tl.runs(g)[-3:]})")
        still_out[g], ups[g] = ch
    outs, surely_out = {}, {}
    for b in old_ids:
        ch = tl.first_change(b, since, 503)
        t.check(ch is not None, f"{b} left UP after the flip (samples: {tl.runs(b)[-3:]})")
        outs[b], surely_out[b] = ch
    all_up = max(ups.values())
    first_out = min(outs.values())
    if proven:
        t.check(first_out >= all_up,
                f"make before break proven per agent: last UP answer of the old colour sent "
                f"{(first_out - all_up) * 1000:.0f} ms after every new instance answered UP "
                f"(new UP by {ups}, old still UP at {outs})")
    else:
        t.check(min(surely_out.values()) >= max(still_out.values()),
                f"make before break not contradicted: no old instance surely OUT while a new "
                f"one was surely still OUT (new OUT until {still_out}, old OUT by {surely_out})")
    return all_up, first_out


def system(t, zk, blue=2, green=2, controllers=2, agent_kw=None, color="blue", **switch):
    """Like bgsys.standard(): agents blue-1.., green-1.., controllers c1.. (with HTTP ports,
    see controller()), active colour `color`, converged. zk: ZooKeeper or Ensemble."""
    from bgsys import System
    s = System(t, zk)
    flip(s, color)
    for i in range(1, blue + 1):
        s.agent(f"blue-{i}", "blue", **(agent_kw or {}))
    for i in range(1, green + 1):
        s.agent(f"green-{i}", "green", **(agent_kw or {}))
    for i in range(1, controllers + 1):
        controller(s, f"c{i}", **switch)
    wait_converged(s, color)
    return s


def leader_of(s, timeout=10):
    """The controller Proc whose /health says it leads (waits for exactly one)."""
    def one():
        ls = [p for p in s.controllers if p.alive() and (ctl_health(p) or {}).get("leader")]
        return ls[0] if len(ls) == 1 else None
    return h.wait_until(one, timeout=timeout, msg="exactly one controller leads")


def wait_log_any(procs, regex, timeout=10, since=None):
    """The first of procs to log regex (since: {proc: mark} or None for the current run)."""
    rx = re.compile(regex, re.M)

    def found():
        for p in procs:
            off = p.run_offset if since is None else since[p]
            if rx.search(p.log_text(off)):
                return p
        return None
    return h.wait_until(found, timeout=timeout, msg=f"one of {[p.name for p in procs]} logs "
                                                    f"/{regex}/")


# ----------------------------------------------------------------------------------------------
# ZooKeeper reads that survive a starved machine
# ----------------------------------------------------------------------------------------------

def zk_retry(fn, *args, tries=4, **kw):
    """fn(*args) (a harness zk_* call), again when zkt could not talk to ZooKeeper at all
    (exit 2: on a machine starved by parallel tests a session may take > 5 s). Only for reads
    and idempotent writes (setting the same data twice is the same as once)."""
    for i in range(tries):
        try:
            return fn(*args, **kw)
        except h.ZkError as e:
            if e.rc != 2 or i == tries - 1:
                raise
            h.log(f"zkt could not connect ({e.stderr.strip()[:120]}); again")
    return None


def status(s):
    """/status of System s (parsed), None when missing."""
    return zk_retry(h.zk_get_json, s.zk, s.root + "/status")


def flip(s, color):
    zk_retry(h.zk_set, s.zk, s.root + "/active_color", color)


def wait_phase(s, phase, desired=None, timeout=20):
    """Like System.wait_phase, with status()."""
    def ok():
        st = status(s)
        return st if st and st["phase"] == phase and (desired is None or
                                                      st["desired"] == desired) else None
    return h.wait_until(ok, timeout=timeout, msg=f"/status reaches {phase} {desired or ''}")


def wait_converged(s, color, timeout=20):
    """Like System.wait_converged, with status()."""
    def ok():
        st = status(s)
        return st if st and st["phase"] == "converged" and st["applied"] == color else None
    return h.wait_until(ok, timeout=timeout, msg=f"converged on {color}")
