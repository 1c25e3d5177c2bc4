#!/usr/bin/env python3
"""Bounded chaos soak: a 3-server ensemble, 3 controllers, 2 blue + 2 green agents, and random
faults at random intervals (0.2-2 s) for --seconds N (default 180, or $BG_CHAOS_SECONDS):

  flip         write the other colour to /active_color
  ctl_kill     kill -9 a controller, start it again 0.5-3 s later
  ctl_stop     SIGSTOP a controller for 0.5-4 s (past its 2 s session: a zombie), then SIGCONT
  agent_kill   kill -9 an agent, start it again 0.2-2 s later
  agent_stop   SIGSTOP an agent for 0.2-3 s, then SIGCONT
  zk_kill      kill -9 a ZooKeeper server, start it again 1-4 s later

Bounds: at most one ZooKeeper server down (a restarted one counts as down until it serves),
at most one controller faulted (killed or stopped) and at most two agents faulted at a time.
--seed S replays a run (the seed is printed at the start; default random).

Checking. One thread per agent polls GET /health every ~3 ms (faults.Timeline). An agent is
"not UP" while it answers anything but 200 or does not answer within 0.3 s (a stopped or dead
agent). From the samples, a *zero-UP period* is a stretch of time in which every agent was
surely not UP (the intersection of their sure-not-UP intervals; faults.Timeline explains
"surely"). An agent is *eligible* while its process runs, is not stopped, and it is
registered (from its log: `registered` until `zk_session_lost`/`node_vanished`/its kill).
The *active colour* is the value of the last write of /active_color that landed (its mtime).
What counts: "whenever the active colour has an eligible instance, some instance is UP",
with these grace rules. A zero-UP period is a violation when an eligible active-colour
instance existed during it, and

  V1 (make before break broken): it began with the last UP instance being *told* OUT (200 then
     503 without being restarted) while an eligible active-colour instance existed. The
     controller only takes an instance out while an active-colour instance B is known UP; if
     nothing is UP, B's known UP must be stale. So it is excused only when, within W = 3.5 s
     (agent session 2 s + 1.5 s) before, a fault took B's UP away (an active-colour agent
     killed or stopped while UP, or continued: it may apply calls queued while stopped), or an
     active-colour agent is stopped since it was UP (a known UP is trusted until a call
     fails), or a controller was continued (a zombie acts before it learns it was deposed), or
     the instance told OUT was itself continued (queued calls). If a flip landed within 0.3 s
     before, the same excuses are also looked for in the previous colour (the controller may
     still be acting on it). Faults that merely take the last UP instance away (kill, stop,
     restart: a restarted agent starts OUT_OF_SERVICE) never count as V1 -- they are what
     the grace of V2 is for.
  V2 (no recovery): at some moment of it an eligible active-colour instance had been eligible,
     with the active colour unchanged (flip returned), for G = 5 s without any disturbance of
     the control plane in those 5 s: a kill or stop of the leading controller (or of one that
     did not answer whether it leads), a continued controller, a ZooKeeper server killed,
     restarted or back serving, or a controller logging leader_paused / leader_resumed /
     leadership_lost / leader_elected (ZooKeeper trouble we did not cause, e.g. a quorum lost
     on a starved machine). The controller then had all it needed to make it UP.

The checker is itself checked: --break-before-make replaces the controllers by a naive one
that takes the old colour out 50 ms before marking the new one UP; V1 violations must be
reported (the run fails).

Also counted as violations: a daemon that exits without being killed (crash). After the faults
stop (everything restarted and continued), the system must converge within 30 s: /status
converged on the last colour written (and on its last write, active_mzxid), every /health
right, every agent node registered. A report table is printed; the exit status is non-zero on
any violation or non-convergence.
"""

import argparse
import os
import random
import signal
import statistics
import sys
import threading
import time

import faults as f
import harness as h

SESSION_MS = 2000
W = SESSION_MS / 1000 + 1.5
G = 5.0
CONVERGE_BOUND = 30.0
KINDS = {"flip": 3, "ctl_kill": 1, "ctl_stop": 1, "agent_kill": 1.5, "agent_stop": 1.5,
         "zk_kill": 1}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("BG_CHAOS_SECONDS", "180")))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--break-before-make", action="store_true",
                    help="self-test of the checker: replace the controllers by a naive one "
                         "that takes the old colour out first (violations expected)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    return args


class StatusMonitor(threading.Thread):
    """Reads /status every 100 ms: [(t, phase, applied, active_mzxid)]."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s = s
        self.samples = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                st = h.zk_get_json(self.s.zk, self.s.root + "/status")
                if st:
                    self.samples.append((time.time(), st["phase"], st["applied"],
                                         st.get("active_mzxid")))
            except (h.ZkError, ValueError, KeyError):
                pass
            self.stop_ev.wait(0.1)


class Chaos:
    def __init__(self, t, s, ens, rng):
        self.t, self.s, self.ens, self.rng = t, s, ens, rng
        self.events = []  # (t, kind, target, detail)
        self.pending = []  # (due, fn, description)
        self.counts = {k: 0 for k in KINDS}
        self.agent_faulted = set()
        self.ctl_faulted = set()
        self.zk_down = set()
        self.zk_restarting = set()
        self.color = "blue"
        self.flips = []  # (t_landed, colour, mzxid, t_started, t_returned)
        self.expected_dead = set()  # Proc names killed by us and not yet restarted

    def ev(self, kind, target, detail=""):
        now = time.time()
        self.events.append((now, kind, target, detail))
        h.log(f"chaos: {kind} {target} {detail}")
        return now

    # -- faults --

    def flip(self):
        self.color = "green" if self.color == "blue" else "blue"
        t0 = time.time()
        try:
            h.zk_set(self.s.zk, self.s.root + "/active_color", self.color)
        except h.ZkError as e:  # ZooKeeper mid-election: the write may or may not have landed
            h.log(f"chaos: flip to {self.color} failed ({e}); retrying")
            h.wait_until(lambda: _try_set(self.s, self.color), timeout=20,
                         msg="a flip goes through")
        t1 = self.ev("flip", self.color, f"({(time.time() - t0) * 1000:.0f} ms)")
        st = None
        try:
            st = f.zk_retry(h.zk_stat, self.s.zk, self.s.root + "/active_color")
        except h.ZkError:
            pass
        # When the write landed: the node's mtime (ZooKeeper's clock is this machine's). A
        # later write (none: only we write) would make this wrong; unknown -> returned.
        landed = st["mtime"] / 1000 if st and st.get("mtime") else None
        self.flips.append((landed or t1, self.color, st["mzxid"] if st else None,
                           None if landed else t0, t1))

    def ctl_victim(self):
        if self.ctl_faulted or not self.s.controllers:
            return None
        return self.rng.choice(self.s.controllers)

    def ctl_kill(self):
        p = self.ctl_victim()
        if p is None:
            return False
        lead = (f.ctl_health(p, timeout=0.3) or {"leader": None}).get("leader")
        p.kill(signal.SIGKILL)
        p.popen.wait()
        self.expected_dead.add(p.name)
        self.ctl_faulted.add(p.name)
        self.ev("ctl_kill", p.name, f"leader={lead}")
        self.later(self.rng.uniform(0.5, 3), lambda: self._ctl_restart(p), f"restart {p.name}")
        return True

    def _ctl_restart(self, p):
        p.start()
        self.expected_dead.discard(p.name)
        self.ctl_faulted.discard(p.name)
        self.ev("ctl_start", p.name)

    def ctl_stop(self):
        p = self.ctl_victim()
        if p is None:
            return False
        lead = (f.ctl_health(p, timeout=0.3) or {"leader": None}).get("leader")
        p.kill(signal.SIGSTOP)
        self.ctl_faulted.add(p.name)
        self.ev("ctl_stop", p.name, f"leader={lead}")
        self.later(self.rng.uniform(0.5, 4), lambda: self._ctl_cont(p), f"SIGCONT {p.name}")
        return True

    def _ctl_cont(self, p):
        p.kill(signal.SIGCONT)
        self.ctl_faulted.discard(p.name)
        self.ev("ctl_cont", p.name)

    def agent_victim(self):
        free = [a for a in self.s.agents if a.id not in self.agent_faulted]
        if len(self.agent_faulted) >= 2 or not free:
            return None
        return self.rng.choice(free)

    def agent_kill(self):
        a = self.agent_victim()
        if a is None:
            return False
        a.proc.kill(signal.SIGKILL)
        a.proc.popen.wait()
        self.expected_dead.add(a.proc.name)
        self.agent_faulted.add(a.id)
        self.ev("agent_kill", a.id)
        self.later(self.rng.uniform(0.2, 2), lambda: self._agent_restart(a), f"restart {a.id}")
        return True

    def _agent_restart(self, a):
        a.proc.start()
        self.expected_dead.discard(a.proc.name)
        self.agent_faulted.discard(a.id)
        self.ev("agent_start", a.id)

    def agent_stop(self):
        a = self.agent_victim()
        if a is None:
            return False
        a.proc.kill(signal.SIGSTOP)
        self.agent_faulted.add(a.id)
        self.ev("agent_stop", a.id)
        self.later(self.rng.uniform(0.2, 3), lambda: self._agent_cont(a), f"SIGCONT {a.id}")
        return True

    def _agent_cont(self, a):
        a.proc.kill(signal.SIGCONT)
        self.agent_faulted.discard(a.id)
        self.ev("agent_cont", a.id)

    def zk_kill(self):
        if self.zk_down or self.zk_restarting:
            return False
        i = self.rng.randrange(len(self.ens.servers))
        lead = self.ens.servers[i].mode()
        self.ens.kill(i)
        self.expected_dead.add(self.ens.servers[i].proc.name)
        self.zk_down.add(i)
        self.ev("zk_kill", self.ens.servers[i].name, f"mode={lead}")
        self.later(self.rng.uniform(1, 4), lambda: self._zk_start(i),
                   f"restart {self.ens.servers[i].name}")
        return True

    def _zk_start(self, i):
        self.ens.start(i, wait=False)
        self.expected_dead.discard(self.ens.servers[i].proc.name)
        self.zk_down.discard(i)
        self.zk_restarting.add(i)
        self.ev("zk_start", self.ens.servers[i].name)

    def poll_zk(self):
        for i in list(self.zk_restarting):
            if self.ens.servers[i].mode() in ("leader", "follower"):
                self.zk_restarting.discard(i)
                self.ev("zk_serving", self.ens.servers[i].name)

    # -- scheduling --

    def later(self, delay, fn, what):
        self.pending.append((time.time() + delay, fn, what))

    def run_due(self, all_now=False):
        now = time.time()
        due = [p for p in self.pending if all_now or p[0] <= now]
        self.pending = [p for p in self.pending if p not in due]
        for _, fn, _ in sorted(due, key=lambda p: p[0]):
            fn()

    def crashed(self):
        procs = [a.proc for a in self.s.agents] + self.s.controllers + \
            [z.proc for z in self.ens.servers]
        return [p.name for p in procs if not p.alive() and p.name not in self.expected_dead]

    def inject(self):
        kinds = list(KINDS)
        for _ in range(10):
            k = self.rng.choices(kinds, weights=[KINDS[x] for x in kinds])[0]
            if k == "flip":
                self.flip()
                ok = True
            else:
                ok = getattr(self, k)()
            if ok:
                self.counts[k] += 1
                return


def _try_set(s, color):
    try:
        h.zk_set(s.zk, s.root + "/active_color", color)
        return True
    except h.ZkError:
        return False


# ----------------------------------------------------------------------------------------------
# Analysis
# ----------------------------------------------------------------------------------------------

def intervals_from(toggles, t_end):
    """[(t, on)] sorted -> [(start, end)] where on."""
    out, start = [], None
    for tt, on in toggles:
        if on and start is None:
            start = tt
        elif not on and start is not None:
            out.append((start, tt))
            start = None
    if start is not None:
        out.append((start, t_end))
    return out


def eligibility(chaos, t_begin, t_end):
    """{agent id: [(start, end)]} when running, not stopped and registered."""
    out = {}
    for a in chaos.s.agents:
        evs = []  # (t, key, value)
        for tt, kind, target, _ in chaos.events:
            if target != a.id:
                continue
            if kind == "agent_kill":
                evs += [(tt, "run", False), (tt, "reg", False)]
            elif kind == "agent_start":
                evs.append((tt, "run", True))
            elif kind == "agent_stop":
                evs.append((tt, "stop", True))
            elif kind == "agent_cont":
                evs.append((tt, "stop", False))
        for e in f.events(a.proc, {"registered", "zk_session_lost", "node_vanished"}):
            evs.append((e["ts"], "reg", e["event"] == "registered"))
        evs.sort(key=lambda x: x[0])
        state = {"run": True, "stop": False, "reg": False}
        toggles = []
        for tt, key, val in evs:
            state[key] = val
            toggles.append((tt, state["run"] and not state["stop"] and state["reg"]))
        out[a.id] = [(max(s0, t_begin), min(s1, t_end)) for s0, s1 in
                     intervals_from(toggles, t_end) if s1 > t_begin]
    return out


def active_at(chaos, tt):
    c = "blue"
    for t1, color, _, _, _ in chaos.flips:
        if t1 <= tt:
            c = color
    return c


def flip_in_flight(chaos, tt):
    """Was a flip being written at tt whose landing time is unknown (colour ambiguous)?"""
    return any(t0 is not None and t0 - 0.05 <= tt <= t1 + 0.05
               for _, _, _, t0, t1 in chaos.flips)


def flipped_just_before(chaos, tt, window=0.3):
    """The colour before a flip that landed within window s before tt, else None."""
    prev = "blue"
    for t1, color, _, _, _ in chaos.flips:
        if t1 > tt:
            break
        if tt - window <= t1 and color != prev:
            return prev
        prev = color
    return None


def last_flip_before(chaos, tt):
    ts = [t4 for _, _, _, _, t4 in chaos.flips if t4 <= tt]
    return ts[-1] if ts else 0.0


def containing(ivs, tt):
    for a, b in ivs:
        if a <= tt <= b:
            return (a, b)
    return None


def analyse(chaos, tl, t_begin, t_end):
    s = chaos.s
    elig = eligibility(chaos, t_begin, t_end)
    color_of = {a.id: a.color for a in s.agents}
    zeros = tl.zero_up(t_begin, t_end)
    ev = chaos.events
    # Control-plane disturbances: our faults on the leading controller or ZooKeeper, and
    # whatever the controllers themselves saw (ZooKeeper trouble we did not cause, e.g. a
    # quorum lost while the machine is starved): leader paused/resumed/lost/elected.
    ctl_disturbances = sorted(
        [tt for tt, k, tg, d in ev if k in ("zk_kill", "zk_start", "zk_serving", "ctl_cont")
         or (k in ("ctl_kill", "ctl_stop") and "leader=False" not in d)] +
        [e["ts"] for p in s.controllers for e in f.events(
            p, {"leader_paused", "leader_resumed", "leadership_lost", "leader_elected"})])
    results = []
    for p0, p1 in zeros:
        act = active_at(chaos, p0)
        cands = [a for a in elig if color_of[a] == act and any(
            x0 < p1 and x1 > p0 for x0, x1 in elig[a])]
        r = {"start": p0, "end": p1, "active": act, "eligible": cands, "verdict": "ok",
             "why": ""}
        results.append(r)
        if not cands:
            r["why"] = "no eligible instance of the active colour"
            continue
        # How did it begin? The agent whose sure-not-UP stretch starts at p0 left UP last.
        leaver, how = None, None
        for a in tl.probes:
            runs = tl.runs(a)
            for x0, _, group in tl.not_up_stretches(a):
                if abs(max(x0, t_begin) - p0) > 1e-9:
                    continue
                i = next(k for k, q in enumerate(runs) if q.first_send == group[0].first_send)
                if i > 0 and runs[i - 1].code == 200:
                    leaver, how = a, group[0].code
                    prev = runs[i - 1]
                    if any(k in ("agent_kill", "agent_start") and tg == a and
                           prev.last_send - 0.05 <= tt <= p0 + 0.05 for tt, k, tg, _ in ev):
                        how = "restart"
                break
            if leaver:
                break
        r["leaver"], r["how"] = leaver, how
        eligible_at_p0 = [a for a in cands if containing(elig[a], p0)]
        if how == 503 and eligible_at_p0:
            excuses = stale_ready_excuses(chaos, tl, act, leaver, p0)
            prev = flipped_just_before(chaos, p0)
            if prev:  # the controller may still have been acting for the previous colour
                excuses += [f"{x} (previous colour {prev})" for x in
                            stale_ready_excuses(chaos, tl, prev, leaver, p0)]
            if flip_in_flight(chaos, p0):
                excuses.append("a flip was being written (colour ambiguous)")
            if excuses:
                r["why"] = "told OUT, excused: " + ", ".join(sorted(set(excuses)))
            else:
                r["verdict"] = "V1"
                r["why"] = f"{leaver} was told OUT while {eligible_at_p0} ({act}) were " \
                           f"eligible and not UP"
                continue
        # V2: an eligible active instance undisturbed for G at some moment of the period.
        disturb = ctl_disturbances
        for a in cands:
            for x0, x1 in elig[a]:
                lo, hi = max(x0, p0), min(x1, p1)
                if hi <= lo:
                    continue
                # earliest moment in [lo, hi] with G undisturbed before it
                tt = max(lo, x0 + G, last_flip_before(chaos, hi) + G)
                for d in disturb:
                    if d <= tt and d > tt - G:
                        tt = d + G
                for d in disturb:  # once more after moving forward
                    if d <= tt and d > tt - G:
                        tt = d + G
                if tt <= hi and active_at(chaos, tt) == act:
                    r["verdict"] = "V2"
                    r["why"] = f"{a} eligible and undisturbed since {tt - G - t_begin:.1f}s, " \
                               f"still nothing UP at {tt - t_begin:.1f}s"
                    break
            if r["verdict"] == "V2":
                break
        if r["verdict"] == "ok" and not r["why"]:
            r["why"] = f"began by {how} of {leaver}; recovered within the grace"
    return results


def was_up_before(tl, id, tt):
    """Did id's last answer before tt say 200?"""
    last = None
    for r in tl.runs(id):
        if r.first_send >= tt:
            break
        last = r
    return last is not None and last.code == 200


def stale_ready_excuses(chaos, tl, act, leaver, p0):
    """Why a controller may have taken the last UP instance out without being wrong: it only
    does so while some active-colour instance B is known UP; when nothing is UP at p0, B's
    known UP was stale because a fault took B's UP away (B killed, stopped, restarted or
    continued within W while it was UP, or B stopped at p0 after being UP), or a zombie
    controller acted (a controller continued within W), or the one told OUT was itself
    continued within W (it applied calls queued while it was stopped)."""
    out = []
    color_of = {a.id: a.color for a in chaos.s.agents}
    for tt, k, tg, _ in chaos.events:
        if tt > p0:
            break
        recent = tt >= p0 - W
        if recent and k == "ctl_cont":
            out.append(f"{k} {tg}")
        if recent and k == "agent_cont" and tg == leaver:
            out.append(f"{k} {tg} (the one told OUT)")
        if color_of.get(tg) != act or k not in ("agent_kill", "agent_stop", "agent_cont"):
            continue
        if recent and (k == "agent_cont" or was_up_before(tl, tg, tt)):
            out.append(f"{k} {tg} while UP" if k != "agent_cont" else f"{k} {tg}")
    for a in chaos.s.agents:
        if a.color != act:
            continue
        stops = [tt for tt, k, tg, _ in chaos.events if tg == a.id and k == "agent_stop"
                 and tt <= p0]
        conts = [tt for tt, k, tg, _ in chaos.events if tg == a.id and k == "agent_cont"
                 and tt <= p0]
        if stops and (not conts or conts[-1] < stops[-1]) and was_up_before(tl, a.id,
                                                                            stops[-1]):
            out.append(f"{a.id} stopped while UP")
    return out


def naive_controller(s, stop_ev, gap=0.05):
    """--break-before-make: a deliberately wrong, edge-triggered controller (no ZooKeeper
    session; reads /active_color every 50 ms): on a change it takes the old colour OUT first
    and marks the new colour UP `gap` s later, and never drives restarted agents. The checker
    must report V1 (and usually V2) violations against it."""
    last, epoch = None, 10**9
    while not stop_ev.is_set():
        try:
            c = h.zk_get(s.zk, s.root + "/active_color")
        except h.ZkError:
            c = None
        if c in ("blue", "green") and c != last:
            epoch += 1
            for want in ("OUT_OF_SERVICE", "UP"):
                for a in s.agents:
                    if (a.color == c) == (want == "UP"):
                        try:
                            a.put(want, epoch)
                        except OSError:
                            pass
                time.sleep(gap)
            last = c
        stop_ev.wait(0.05)


def flip_convergence(chaos, mon):
    """[(colour, ms or None)] for each flip: time until /status converged on it (None when
    the next flip came first)."""
    out = []
    for i, (_, color, mz, _, t1) in enumerate(chaos.flips):
        nxt = chaos.flips[i + 1][4] if i + 1 < len(chaos.flips) else float("inf")
        hit = next((ts for ts, ph, ap, am in mon.samples if t1 <= ts < nxt and
                    ph == "converged" and ap == color and (mz is None or am == mz)), None)
        out.append((color, None if hit is None else (hit - t1) * 1000))
    return out


# ----------------------------------------------------------------------------------------------

def test(t, args):
    rng = random.Random(args.seed)
    t.log(f"chaos seed {args.seed} (replay: {sys.argv[0]} --seed {args.seed} --seconds "
          f"{args.seconds:g})")
    ens = t.ensemble()
    s = f.system(t, ens, blue=2, green=2, controllers=3, call_timeout=500, retries=1,
                 agent_kw={"session_timeout_ms": SESSION_MS})
    naive_stop = threading.Event()
    if args.break_before_make:
        t.log("SELF-TEST: controllers replaced by a naive break-before-make one")
        for p in s.controllers:
            p.stop()
        s.controllers.clear()
        threading.Thread(target=naive_controller, args=(s, naive_stop), daemon=True).start()
    tl = f.Timeline(s.agents, interval=0.003).start()
    tl.wait_samples()
    mon = StatusMonitor(s)
    mon.start()
    chaos = Chaos(t, s, ens, rng)
    crashes = []

    t.step(f"chaos for {args.seconds:g} s")
    t_begin = time.time()
    deadline = t_begin + args.seconds
    next_fault = t_begin + rng.uniform(0.2, 2)
    while time.time() < deadline:
        chaos.run_due()
        chaos.poll_zk()
        if time.time() >= next_fault:
            chaos.inject()
            next_fault = time.time() + rng.uniform(0.2, 2)
        c = chaos.crashed()
        if c:
            crashes += [(time.time(), x) for x in c if x not in [y for _, y in crashes]]
            for name in c:
                chaos.expected_dead.add(name)  # report once
            h.log(f"chaos: CRASH {c}")
        time.sleep(0.02)

    t.step("faults stop: restart and continue everything")
    chaos.run_due(all_now=True)
    for a in s.agents:
        if not a.proc.alive():
            a.proc.start()
        a.proc.kill(signal.SIGCONT)
    for p in s.controllers:
        if not p.alive():
            p.start()
        p.kill(signal.SIGCONT)
    for i, z in enumerate(ens.servers):
        if not z.alive():
            ens.start(i, wait=False)
    t_restored = time.time()
    final = chaos.color
    mzxid = None

    def converged():
        nonlocal mzxid
        if mzxid is None:
            mzxid = f.zk_retry(h.zk_stat, s.zk, s.root + "/active_color")["mzxid"]
        st = f.status(s)
        if not st or (st["phase"], st["applied"], st["active_mzxid"]) != ("converged", final,
                                                                         mzxid):
            return False
        if not all(h.zk_exists(s.zk, a.node) for a in s.agents):
            return False
        return s.healths() == f.expected_health(s, final)
    ok = True
    try:
        h.wait_until(converged, timeout=5 if args.break_before_make else CONVERGE_BOUND,
                     interval=0.1, ignore=(h.ZkError,),
                     msg=f"converged on {final}")
    except AssertionError as e:
        ok = False
        t.log(f"NOT CONVERGED: {e}; /status {f.status(s)}; /health {s.healths()}")
    t_final = time.time() - t_restored
    t_end = t_restored
    time.sleep(0.5)
    tl.stop()
    naive_stop.set()
    mon.stop_ev.set()
    mon.join(5)

    t.step("analysis")
    results = analyse(chaos, tl, t_begin, t_end)
    v1 = [r for r in results if r["verdict"] == "V1"]
    v2 = [r for r in results if r["verdict"] == "V2"]
    for r in results:
        t.log(f"zero-UP {r['start'] - t_begin:8.3f}s +{(r['end'] - r['start']) * 1000:6.0f} ms "
              f"active={r['active']} eligible={r['eligible']} {r['verdict']}: {r['why']}")
    conv = flip_convergence(chaos, mon)
    times = [ms for _, ms in conv if ms is not None]
    n_samples = tl.samples
    rows = [(k, chaos.counts[k]) for k in KINDS]
    lines = ["", "=" * 64, f"chaos report (seed {args.seed}, {args.seconds:g} s)", "-" * 64]
    lines += [f"  {k:<28}{v:>8}" for k, v in rows]
    lines += [f"  {'faults total':<28}{sum(chaos.counts.values()):>8}",
              f"  {'flips':<28}{len(chaos.flips):>8}",
              f"  {'/health samples (4 agents)':<28}{n_samples:>8}",
              f"  {'sample rounds (samples/4)':<28}{n_samples // 4:>8}",
              f"  {'zero-UP periods (proven)':<28}{len(results):>8}",
              f"  {'  with no eligible active':<28}"
              f"{sum(1 for r in results if not r['eligible']):>8}",
              f"  {'violations V1 (MBB broken)':<28}{len(v1):>8}",
              f"  {'violations V2 (no recovery)':<28}{len(v2):>8}",
              f"  {'crashes':<28}{len(crashes):>8}",
              f"  {'flips converged before next':<28}{len(times):>5} of {len(conv)}",
              f"  {'worst flip -> converged ms':<28}{max(times) if times else 0:>8.0f}",
              f"  {'median flip -> converged ms':<28}"
              f"{statistics.median(times) if times else 0:>8.0f}",
              f"  {'final convergence ms':<28}{t_final * 1000:>8.0f}"
              f"{'' if ok else '  (NOT CONVERGED)'}",
              "=" * 64]
    with h._print_lock:
        print("\n".join(lines), flush=True)
    t.check(n_samples > 1000, f"the checker sampled ({n_samples} samples)")
    t.check_eq([(round(r["start"] - t_begin, 3), r["why"]) for r in v1], [],
               "no V1 violation (make before break)")
    t.check_eq([(round(r["start"] - t_begin, 3), r["why"]) for r in v2], [],
               "no V2 violation (recovery within the grace)")
    t.check_eq(crashes, [], "no daemon crashed")
    t.check(ok, f"converged on {final} within {CONVERGE_BOUND:g} s after the faults stopped "
                f"({t_final * 1000:.0f} ms)")
    st = f.status(s)
    t.check_eq((st["phase"], st["applied"]), ("converged", final), "/status at the end")
    t.check_eq(s.healths(), f.expected_health(s, final), "every /health at the end")


if __name__ == "__main__":
    ARGS = parse_args()
    sys.argv = sys.argv[:1]
    h.run(lambda t: test(t, ARGS))
