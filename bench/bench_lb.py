#!/usr/bin/env python3
"""bench_lb.py -- a blue/green switch under load at a real balancer: failed requests and
cutover time, bluegreen against the ways the seed articles switch nginx.

Every scenario runs on loopback: 2 blue + 2 green bg-demo-app instances, wrk with 64
keep-alive connections through the balancer for the whole run, and a probe client that sends
one request after another (keep-alive too) and records which colour answered. The colour is
flipped --flips times (default 50); the next flip comes once the previous one is complete
(bluegreen: /status converged) and the probe has seen 20 new-colour answers in a row, after a
random 50-300 ms pause.

  a   bluegreen + HAProxy `option httpchk GET /health` on each agent, inter 100 rise 1 fall 1
  b   bluegreen + HAProxy `agent-check` on each agent's haproxy-agent port, agent-inter 100
  a2  as a, with switch.batch_size 2 (a whole colour at once)
  b2  as b, with switch.batch_size 2
  r   bluegreen + nginx driven by bg-router (kind nginx, confirm on): agents with
      instance.address, the controller waiting for the router (DESIGN 13); one nginx reload
      per change the router makes
  r2  as r, with switch.batch_size 2
  h   bluegreen + HAProxy driven by bg-router (kind haproxy): servers added, weighted, drained
      and deleted through the Runtime API, the backend section kept in haproxy.file; no reload
  h2  as h, with switch.batch_size 2
  c   seed 000/001 style: rewrite nginx's include file (`set $service_url http://green;`,
      upstream blue {...} / green {...}) and `nginx -s reload`
  d   as c with a fixed `sleep` (--sleep, default 1 s) before the switch, as seed 001 does
  e   as c, but stop nginx (graceful `quit`, as `service nginx stop`) and start it again with
      the new file, as seed 000's `service nginx restart`

Columns: requests = wrk's completed requests (req/s: per second); non-2xx and socket errors (connect, read,
write, timeout) from wrk's report; failed = their sum; probe fail = the probe's requests
without a 200; outage = the longest span (ms) from a flip's first to its last failed probe
request; cutover = flip -> the first request of the unbroken run of new-colour answers
(p50/p99/max over all flips; the flip is /active_color's mtime for bluegreen and the moment
the script starts for nginx); reloads/flip = nginx reloads (SIGHUPs its master logged) per
flip ("rst": restarts), with bg-router's own count of changes from its /metrics.

Writes bench/out/lb.json, bench/out/lb.dat and (from bench/out/core.json, written by
bench_core.py) bench/out/switch.dat for bench/plot.gp, and prints a summary against the
project's goals. Figures are printed, not asserted.

Usage: BG_BUILD_DIR=build/release python3 bench/bench_lb.py [--flips 50] [--sleep 1]
           [--scenarios a,b,a2,b2,r,r2,h,h2,c,d,e] [--connections 64] [--core bench/out/core.json]
       python3 bench/bench_lb.py --report-only     (tables and .dat files from the JSONs)
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness as h  # noqa: E402
import routerrig as ng  # noqa: E402
import slow_zero_downtime as zd  # noqa: E402
from bench_core import cpu_seconds, proc_mem  # noqa: E402

GOALS = {
    "cutover_p50_ms": 150,
    "switch_100_ms": 300,
    "failover_over_session_ms": 300,
    "agent_rss_anon_kb": 3 * 1024,
}


# ----------------------------------------------------------------------------------------------
# nginx, switched the way the seed articles do it
# ----------------------------------------------------------------------------------------------

SEED_HTTP = """\
    upstream blue {{
{blue}
        keepalive 32;
    }}
    upstream green {{
{green}
        keepalive 32;
    }}"""

SEED_SERVER = """\
        include {prefix}/service-url.inc;
        location / {{
            proxy_pass $service_url;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""


class NginxRig:
    """nginx (private -p prefix, free loopback port) with upstream blue / green and
    `include service-url.inc` choosing one. mode: "reload" (c), "sleep-reload" (d),
    "restart" (e)."""

    def __init__(self, t, mode, n=2, sleep_s=1.0, label=None, app_kw=None):
        self.t, self.mode, self.n, self.sleep_s = t, mode, n, sleep_s
        self.label = label or f"nginx-{mode}"
        self.app_kw = app_kw or (lambda name: {})  # extra t.demo_app() kwargs per instance
        self.procs = []
        self.apps = {}
        self.flips = 0

    def start(self):
        t = self.t
        self.prefix = t.path(self.label)
        ups = {}
        for color in ("blue", "green"):
            ups[color] = []
            for i in range(1, self.n + 1):
                name = f"{color}-{i}"
                app = t.demo_app(name, version=f"{self.label}-{color}", **self.app_kw(name))
                self.procs.append(app)
                self.apps[name] = app
                ups[color].append(f"        server 127.0.0.1:{app.port};")
        self.ngx = ng.Nginx(t, self.prefix, name=self.label, workers=2, connections=4096,
                            http=SEED_HTTP.format(blue="\n".join(ups["blue"]),
                                                  green="\n".join(ups["green"])),
                            server=SEED_SERVER.format(prefix=self.prefix),
                            comment="# bench_lb.py: nginx in front of blue and green, the "
                                    "colour chosen by an include file\n")
        self.port, self.argv = self.ngx.port, self.ngx.argv
        self.inc = self.prefix / "service-url.inc"
        self.write_include("blue")
        self.ngx.check()
        self.nginx = self.ngx.start()
        self.procs.append(self.nginx)
        self.url = self.ngx.url
        self.color = "blue"
        self.wait_serving("blue")
        self.reload_mark = self.nginx.mark()
        return self

    def write_include(self, color):
        # As seed 000 does: echo "set \$service_url http://...;" | sudo tee service-url.inc
        with open(self.inc, "w") as f:
            f.write(f"set $service_url http://{color};\n")

    def wait_serving(self, color, n=40, timeout=15):
        zd.HaproxyRig.wait_serving(self, color, n, timeout)

    @property
    def fport(self):
        return self.port

    def flip(self, color):
        t0 = time.time()
        if self.mode == "sleep-reload":
            time.sleep(self.sleep_s)  # seed 001: "sleep 60" before editing and reloading
        self.write_include(color)
        if self.mode in ("reload", "sleep-reload"):
            r = h.run_cmd(self.argv + ["-s", "reload"], quiet=True)
            if r.returncode != 0:
                raise h.HarnessError(f"nginx -s reload: {r.stderr}")
        else:  # restart: stop gracefully (as systemd's ExecStop: QUIT), then start again
            self.nginx.kill(signal.SIGQUIT)
            self.nginx.wait(30)
            self.nginx.start()
        self.flips += 1
        self.color = color
        return t0

    def wait_done(self, color, timeout=30):
        return None

    def reloads(self):
        """nginx reloads (SIGHUPs its master logged) since start(); a restart is none."""
        return self.ngx.reloads(self.reload_mark)

    def restarts(self):
        """nginx restarts since start(): one per flip in mode "restart"."""
        return self.flips if self.mode == "restart" else 0

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    def describe(self):
        return {"reload": "nginx: rewrite include + nginx -s reload",
                "sleep-reload": f"nginx: sleep {self.sleep_s:g} s + include + nginx -s reload",
                "restart": "nginx: include + stop (quit) + start"}[self.mode]


# ----------------------------------------------------------------------------------------------
# Running the scenarios
# ----------------------------------------------------------------------------------------------

# key -> (kind, batch_size). "router:<kind>" is bluegreen + a balancer driven by bg-router of
# that kind (routerrig.ROUTER_KINDS: kind -> rig).
SCENARIOS = {
    "a": ("httpchk", 1), "b": ("agent", 1), "a2": ("httpchk", 2), "b2": ("agent", 2),
    "r": ("router:nginx", 1), "r2": ("router:nginx", 2),
    "h": ("router:haproxy", 1), "h2": ("router:haproxy", 2),
    "c": ("reload", None), "d": ("sleep-reload", None), "e": ("restart", None),
}
DEFAULT_SCENARIOS = "a,b,a2,b2,r,r2,h,h2,c,d,e"


def start_rig(t, key, args, zk):
    """The rig of scenario key, started; returns (rig, extra figures measured before load)."""
    kind, batch = SCENARIOS[key]
    if kind.startswith("router:"):
        rkind = kind.split(":", 1)[1]
        return ng.RouterRig(t, zk, kind=rkind, batch_size=batch,
                            label=f"{key}-router-{rkind}").start(), {}
    if kind not in ("httpchk", "agent"):
        return NginxRig(t, kind, sleep_s=args.sleep, label=f"{key}-nginx-{kind}").start(), {}
    rig = zd.HaproxyRig(t, zk, kind, batch_size=batch, label=f"{key}-{kind}").start()
    # Memory of an idle agent and an idle controller (2+2 instances, converged, no load).
    time.sleep(1)
    c_anon, c_rss = proc_mem(rig.ctl.pid)
    a_mem = [proc_mem(a.proc.pid) for a in rig.sys.agents]
    return rig, {"controller_idle_rss_anon_kb": c_anon, "controller_idle_rss_kb": c_rss,
                 "agent_idle_rss_anon_kb": max(m[0] for m in a_mem),
                 "agent_idle_rss_kb": max(m[1] for m in a_mem)}


def balancer_changes(rig, flips):
    """Reloads (and, behind bg-router, the router's changes) over the run, per flip."""
    out = {}
    if hasattr(rig, "reloads"):
        out["reloads"] = rig.reloads()
        out["reloads_per_flip"] = out["reloads"] / max(1, flips)
    if hasattr(rig, "restarts"):
        out["restarts_per_flip"] = rig.restarts() / max(1, flips)
    if hasattr(rig, "applies"):
        out.update(rig.applies())
    return out


def run_scenario(t, key, args, zk):
    rig, extra = start_rig(t, key, args, zk)
    label = rig.describe()
    ctl = getattr(rig, "ctl", None)
    cpu0 = cpu_seconds(ctl.pid) if ctl else None
    r = zd.drive(t, rig, args.flips, connections=args.connections, seed=args.seed)
    if ctl:
        extra["controller_cpu_s_per_100_flips"] = (cpu_seconds(ctl.pid) - cpu0) / \
            args.flips * 100
    extra.update(balancer_changes(rig, args.flips))
    rig.stop()
    r.update(extra)
    r.update({"key": key, "label": label})
    r.pop("wrk_text", None)
    h.log(f"{key}: {label}: failed {r['failed']} (non-2xx {r['non2xx']}, socket "
          f"{r['socket_error_total']}), probe failed {r['probe_failed']}, cutover p50 "
          f"{zd.fmt(r['cutover_p50_ms'])} p99 {zd.fmt(r['cutover_p99_ms'])} ms, reloads "
          f"{r.get('reloads', '-')}")
    return r


# ----------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------

def f0(v):
    return "-" if v is None else f"{v:.0f}"


def per_flip_changes(r):
    """The reloads/flip cell: nginx reloads per flip, "N restart" for a restart, "-" when
    not measured (HAProxy is never reloaded; older JSON files)."""
    if r.get("restarts_per_flip"):
        return f"{r['restarts_per_flip']:.2f} rst"
    if r.get("reloads_per_flip") is None:
        return "-"
    return f"{r['reloads_per_flip']:.2f}"


def lb_table(lb):
    rows = lb["scenarios"]
    head = (f"{'':<3} {'scenario':<64} {'flips':>5} {'requests':>9} {'req/s':>6} {'non-2xx':>7} "
            f"{'sock err':>8} {'failed':>7} {'failed %':>8} {'probe fail':>10} "
            f"{'outage':>6} {'cut p50':>7} {'cut p99':>7} {'cut max':>7} {'reloads/flip':>12}")
    out = [f"Switch under load: wrk -c{lb['connections']} through the balancer, 2 blue + 2 green, "
           f"{lb['flips']} flips per scenario (cut = cutover ms)", head, "-" * len(head)]
    for r in rows:
        pctf = 100.0 * r["failed"] / max(1, r["requests"] + r["failed"])
        out.append(f"{r['key']:<3} {r['label']:<64} {r['flips']:>5} {r['requests']:>9} "
                   f"{r['rps']:>6.0f} "
                   f"{r['non2xx']:>7} {r['socket_error_total']:>8} {r['failed']:>7} "
                   f"{pctf:>8.3f} {r['probe_failed']:>10} {f0(r.get('outage_ms_max')):>6} "
                   f"{f0(r['cutover_p50_ms']):>7} "
                   f"{f0(r['cutover_p99_ms']):>7} {f0(r['cutover_max_ms']):>7} "
                   f"{per_flip_changes(r):>12}")
    errs = [f"{r['key']}: " + ", ".join(f"{k} {v}" for k, v in r["socket_errors"].items() if v)
            for r in rows if r["socket_error_total"]]
    if errs:
        out.append("socket errors by kind: " + "; ".join(errs))
    routed = [f"{r['key']}: {r['router_applies']:.0f} changes, {r['router_apply_failures']:.0f} "
              f"failed, {f0(r.get('router_apply_mean_ms'))} ms each (mean, render to confirmed)"
              for r in rows if "router_applies" in r]
    if routed:
        out.append("bg-router (its /metrics, over the run): " + "; ".join(routed))
    return "\n".join(out)


def goals_table(lb, core):
    out = ["Goals (figures are medians unless said otherwise; measured, not asserted)"]
    rows = []
    by = {r["key"]: r for r in (lb or {}).get("scenarios", [])}
    for k in ("a", "b", "a2", "b2", "r", "r2", "h", "h2"):
        if k in by:
            r = by[k]
            rows.append((f"0 failed requests ({k}: {r['label'][len('bluegreen + '):]})", "0",
                         f"{r['failed']} (+{r['probe_failed']} probe)",
                         r["failed"] == 0 and r["probe_failed"] == 0))
    for k in ("a", "b", "a2", "b2"):
        if k in by and by[k]["cutover_p50_ms"] is not None:
            r = by[k]
            rows.append((f"cutover p50, 100 ms checks ({k})", f"<= {GOALS['cutover_p50_ms']} ms",
                         f"{r['cutover_p50_ms']:.0f} ms (p99 {r['cutover_p99_ms']:.0f})",
                         r["cutover_p50_ms"] <= GOALS["cutover_p50_ms"]))
    sw = {x["per_color"]: x for x in (core or {}).get("switch", [])}
    if 100 in sw:
        x = sw[100]
        rows.append(("100+100 switch (bgctl switch --wait, e2e)",
                     f"<= {GOALS['switch_100_ms']} ms",
                     f"{x['e2e_median_ms']} ms (controller {x['controller_median_ms']} ms)",
                     x["e2e_median_ms"] <= GOALS["switch_100_ms"]))
    if core and "failover" in core:
        f = core["failover"]
        lim = f["session_timeout_ms"] + GOALS["failover_over_session_ms"]
        rows.append((f"leader failover after kill -9 (session {f['session_timeout_ms']} ms)",
                     f"<= {lim} ms", f"{f['median_ms']} ms", f["median_ms"] <= lim))
    if core and "idle_agent" in core:
        a = core["idle_agent"]
        rows.append(("agent private memory (RssAnon), idle", "<= 3072 kB",
                     f"{a['rss_anon_kb']} kB (RSS {a['rss_kb']} kB)",
                     a["rss_anon_kb"] <= GOALS["agent_rss_anon_kb"]))
    if 200 in sw:
        x = sw[200]
        rows.append(("agent RssAnon after 200+200 flips (one of 400)", "<= 3072 kB",
                     f"{x['agent_rss_anon_kb']} kB (RSS {x['agent_rss_kb']} kB)",
                     x["agent_rss_anon_kb"] <= GOALS["agent_rss_anon_kb"]))
    w = max([len(r[0]) for r in rows] + [10])
    out.append(f"{'goal':<{w}}  {'target':>12}  {'measured':<34} met")
    for name, target, got, ok in rows:
        out.append(f"{name:<{w}}  {target:>12}  {got:<34} {'yes' if ok else 'NO'}")
    # Resources: memory and CPU, idle and at 200 instances per colour.
    res = ["", "Memory and CPU (kB; RssAnon = private, RSS = total incl. shared libraries)"]
    if "a" in by and "controller_idle_rss_kb" in by["a"]:
        r = by["a"]
        res.append(f"  controller idle (2+2 instances): RssAnon {r['controller_idle_rss_anon_kb']}"
                   f", RSS {r['controller_idle_rss_kb']}; agent idle under HAProxy polling: "
                   f"RssAnon {r['agent_idle_rss_anon_kb']}, RSS {r['agent_idle_rss_kb']}")
    if core and "idle_agent" in core:
        a = core["idle_agent"]
        res.append(f"  agent idle (bench_core): RssAnon {a['rss_anon_kb']}, RSS {a['rss_kb']}")
    for n in sorted(sw):
        x = sw[n]
        res.append(f"  {n}+{n}: controller RssAnon {x['controller_rss_anon_kb']}, RSS "
                   f"{x['controller_rss_kb']}, CPU {x['controller_cpu_s_per_100_flips']:.2f} s"
                   f"/100 flips; agent RssAnon {x['agent_rss_anon_kb']}, RSS {x['agent_rss_kb']}")
    for k in ("a", "b"):
        if k in by and "controller_cpu_s_per_100_flips" in by[k]:
            res.append(f"  controller CPU under load ({k}, 2+2, confirmed by HAProxy): "
                       f"{by[k]['controller_cpu_s_per_100_flips']:.2f} s/100 flips")
    out += res
    if sw:
        out += ["", "Controller switch time vs instances (flip -> /status converged; bench_core)",
                f"  {'per colour':>10} {'flips':>5} {'e2e median ms':>14} "
                f"{'controller median ms':>21}"]
        for n in sorted(sw):
            x = sw[n]
            out.append(f"  {n:>10} {x['flips']:>5} {x['e2e_median_ms']:>14} "
                       f"{x['controller_median_ms']:>21}")
    if core and "failover" in core:
        f = core["failover"]
        out.append(f"\nLeader failover: kill -9 of the leader -> standby leads, session timeout "
                   f"{f['session_timeout_ms']} ms: median {f['median_ms']} ms, all {f['ms']}")
    return "\n".join(out)


SHORT = {"a": "bg+httpchk", "b": "bg+agent-check", "a2": "bg+httpchk batch2",
         "b2": "bg+agent-check batch2", "r": "bg+nginx router", "r2": "bg+nginx router batch2",
         "h": "bg+haproxy router", "h2": "bg+haproxy router batch2",
         "c": "nginx reload", "d": "sleep+nginx reload", "e": "nginx restart"}


def write_dat(lb, core, outdir):
    if lb:
        with open(outdir / "lb.dat", "w") as f:
            f.write("# key name failed probe_failed cut_p50 cut_p99 cut_max failed_per_flip\n")
            for r in lb["scenarios"]:
                lab = SHORT.get(r["key"], r["key"])
                f.write(f"{r['key']} \"{lab}\" {r['failed']} {r['probe_failed']} "
                        f"{r['cutover_p50_ms'] or 0:.1f} {r['cutover_p99_ms'] or 0:.1f} "
                        f"{r['cutover_max_ms'] or 0:.1f} {r['failed'] / max(1, r['flips']):.2f}\n")
        with open(outdir / "cutover.dat", "w") as f:  # one block per scenario, for plot.gp
            for r in lb["scenarios"]:
                f.write(f"\"{SHORT.get(r['key'], r['key'])}\" \"cutover_ms\"\n")
                for x in r["per_flip"]:
                    if x["cutover_ms"] is not None:
                        f.write(f"{x['flip']} {x['cutover_ms']:.1f}\n")
                f.write("\n\n")
    if core and core.get("switch"):
        with open(outdir / "switch.dat", "w") as f:
            f.write("# per_color e2e_median_ms controller_median_ms\n")
            for x in sorted(core["switch"], key=lambda x: x["per_color"]):
                f.write(f"{x['per_color']} {x['e2e_median_ms']} {x['controller_median_ms']}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flips", type=int, default=50, help="flips per scenario (default 50)")
    ap.add_argument("--sleep", type=float, default=1.0,
                    help="seconds of the fixed sleep in scenario d (default 1)")
    ap.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                    help=f"comma-separated, from {','.join(SCENARIOS)} (default all)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seed", type=int, default=None, help="seed of the random pauses")
    ap.add_argument("--out", default=str(HERE / "out" / "lb.json"))
    ap.add_argument("--core", default=str(HERE / "out" / "core.json"),
                    help="bench_core.py's JSON, for the summary (default bench/out/core.json)")
    ap.add_argument("--report-only", action="store_true",
                    help="print the tables from --out and --core without running anything")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    core = json.loads(Path(args.core).read_text()) if Path(args.core).is_file() else None

    if args.report_only:
        lb = json.loads(out.read_text())
    else:
        keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
        bad = [k for k in keys if k not in SCENARIOS]
        if bad:
            ap.error(f"unknown scenario(s) {bad}; known: {', '.join(SCENARIOS)}")
        for exe in ("wrk", "haproxy", "nginx"):
            if not shutil.which(exe):
                sys.exit(f"bench_lb.py: {exe} is not installed")
        lb = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "flips": args.flips,
              "connections": args.connections, "sleep_s": args.sleep,
              "machine": {"nproc": os.cpu_count(), "load_before": os.getloadavg()},
              "build_dir": str(h.build_dir()), "scenarios": []}
        with h.Test("bench-lb") as t:
            zk = t.zookeeper()
            for k in keys:
                t.step(f"scenario {k}")
                lb["scenarios"].append(run_scenario(t, k, args, zk))
        out.write_text(json.dumps(lb, indent=1))
    write_dat(lb, core, out.parent)
    print()
    print(lb_table(lb))
    print()
    print(goals_table(lb, core))
    print(f"\nJSON: {out}" + (f", {args.core}" if core else " (no core.json: run bench_core.py)"))


if __name__ == "__main__":
    main()
