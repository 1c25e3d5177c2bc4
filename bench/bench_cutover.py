#!/usr/bin/env python3
"""bench_cutover.py -- issue 10: cutover vs the number of instances and the check interval.

For each configuration: N blue + N green bg-demo-app instances with bg-agents at their
DEFAULTS, one bg-controller at its defaults (settle 0s), a real HAProxy 2.6 in front, wrk -c64
through it and a pinger (a new request every 20 ms, send time and X-Served-By recorded).
The colour is flipped --flips times with `bgctl switch COLOUR --wait` (tests/integration/
cutrig.py). Per flip:

  cutover   flip -> every request sent later is answered by the new colour
  wait      flip -> `bgctl switch --wait` returned
  old>wait  requests sent after --wait returned that the old colour answered (pinger)
  failed    wrk non-2xx + socket errors + failed pings

Modes: httpchk (option httpchk GET /health, rise 2 fall 3 = HAProxy's defaults), send-state (as
httpchk with `http-check send-state`), send-state-404 (as send-state with `http-check
disable-on-404` and the agents' `out_of_service_code: 404`: a standby answers 404 and sits in
NOLB, so each step of a switch takes one check whatever rise/fall are), agent (agent-check,
agent-inter = the interval).

Usage: BG_BUILD_DIR=build/release python3 bench/bench_cutover.py [--sizes 2,8,32,64]
           [--inters 100,1000,2000] [--modes httpchk,send-state,agent] [--flips 3]
           [--budget SECONDS] [--quick] [--out bench/out/cutover.json] [--tag after]
           [--key-suffix -same]
       python3 bench/bench_cutover.py --report before.json after.json   (table + .dat)
       python3 bench/bench_cutover.py --compare-404 after.json   (404 vs without, same commit)
Each configuration is appended to --out as soon as it finishes; --budget stops before the
next configuration once that many seconds have passed (the rest are listed as skipped).
--key-suffix S stores the rows under "<key>S" (a re-run beside rows already in --out, e.g. the
send-state rows on the commit the send-state-404 rows were measured on); --report leaves them
out, --compare-404 pairs each send-state-404 row with the send-state row carrying the suffix.
Each row records the commit it was measured on ("commit").
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import harness as h  # noqa: E402
import cutrig  # noqa: E402


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run(args):
    sizes = [int(x) for x in args.sizes.split(",")]
    inters = [int(x) for x in args.inters.split(",")]
    modes = args.modes.split(",")
    rise, fall = (int(x) for x in args.rise_fall.split("/"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"tag": args.tag, "commit": os.popen("git rev-parse --short HEAD").read().strip(),
            "rows": []}
    if out.exists():
        data = json.loads(out.read_text())
    # BG_COMMIT: the commit the binaries were built from, when the bench runs off a tree that is
    # not a checkout of it (e.g. a `git archive` copy).
    commit = os.environ.get("BG_COMMIT") or os.popen("git rev-parse --short HEAD").read().strip()
    started = time.time()
    with h.Test("bench_cutover") as t:
        zk = t.zookeeper()
        for n in sizes:
            for inter in inters:
                for mode in modes:
                    key = f"{mode}-n{n}-i{inter}" + ("" if (rise, fall) == (2, 3)
                                                      else f"-r{rise}f{fall}") + args.key_suffix
                    if any(r["key"] == key for r in data["rows"]):
                        continue
                    if time.time() - started > args.budget:
                        print(f"skipped {key}: budget", flush=True)
                        continue
                    rig = cutrig.CutRig(t, zk, mode, n=n, inter=inter, rise=rise, fall=fall,
                                        label=key)
                    row = {"key": key, "mode": mode, "n": n, "inter": inter, "rise": rise,
                           "fall": fall, "commit": commit}
                    if args.key_suffix:
                        row["suffix"] = args.key_suffix
                    t0 = time.time()
                    try:
                        rig.start()
                        row["setup_s"] = time.time() - t0
                        r = cutrig.run_flips(t, rig, args.flips, wait_timeout=args.flip_timeout,
                                             pause=0.5)
                        row.update(r)
                    except Exception as e:  # noqa: BLE001 -- record and go on
                        import traceback
                        row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                        row["traceback"] = traceback.format_exc()[-1500:]
                        print(row["traceback"], flush=True)
                    finally:
                        rig.stop()
                    fl = row.get("flips", [])
                    row["cutover_med_ms"] = med([f["cutover_ms"] for f in fl])
                    row["wait_med_ms"] = med([f["wait_ms"] for f in fl])
                    row["last_old_med_ms"] = med([f["last_old_ms"] for f in fl])
                    row["old_after_wait"] = sum(f["old_after_wait"] for f in fl)
                    row["failed"] = row.get("wrk_failed", 0) + row.get("ping_failed", 0)
                    row["wait_rc"] = [f["rc"] for f in fl]
                    row["wall_s"] = time.time() - t0
                    data["rows"].append(row)
                    out.write_text(json.dumps(data, indent=1))
                    print(line(row), flush=True)
    return data


def fmt(v):
    return "-" if v is None else f"{v:.0f}"


def line(r):
    return (f"{r['key']:<26} cutover {fmt(r['cutover_med_ms']):>7} ms  wait "
            f"{fmt(r['wait_med_ms']):>7} ms  old>wait {r['old_after_wait']:>5}  failed "
            f"{r['failed']:>7}  rc {r['wait_rc']}" + (f"  ERROR {r['error']}" if r.get("error")
                                                      else ""))


def report(before_p, after_p, outdir):
    b = {r["key"]: r for r in json.loads(Path(before_p).read_text())["rows"]
         if not r.get("suffix")}
    a = {r["key"]: r for r in json.loads(Path(after_p).read_text())["rows"]
         if not r.get("suffix")} if after_p else {}
    keys = list(dict.fromkeys(list(b) + list(a)))
    order = {"httpchk": 0, "send-state": 1, "send-state-404": 2, "agent": 3}
    keys.sort(key=lambda k: (k.count("-r"), order.get(k.split("-n")[0], 9),
                             int(k.split("-i")[1].split("-")[0]),
                             int(k.split("-n")[1].split("-")[0])))
    print("| mode | inter ms | N/colour | cutover before | cutover after | ratio | wait before |"
          " wait after | old>wait before | old>wait after | failed before | failed after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    dat = []
    for k in keys:
        rb, ra = b.get(k, {}), a.get(k, {})
        src = rb or ra
        cb, ca = rb.get("cutover_med_ms"), ra.get("cutover_med_ms")
        ratio = f"{ca / cb:.2f}" if cb and ca else "-"

        def g(r, f):
            if not r:
                return "n/r"
            if r.get("error") and not r.get("flips"):
                return "err"
            v = r.get(f)
            return fmt(v) if not isinstance(v, int) else str(v)
        rf = "" if src["mode"] == "agent" else f" r{src.get('rise', 2)}f{src.get('fall', 3)}"
        print(f"| {src['mode']}{rf} | {src['inter']} | {src['n']} | {g(rb, 'cutover_med_ms')} | "
              f"{g(ra, 'cutover_med_ms')} | {ratio} | {g(rb, 'wait_med_ms')} | "
              f"{g(ra, 'wait_med_ms')} | {g(rb, 'old_after_wait')} | {g(ra, 'old_after_wait')}"
              f" | {g(rb, 'failed')} | {g(ra, 'failed')} |")
        dat.append((f"{src['mode']}{rf} {src['inter']}ms", src["n"], cb, ca))
    if outdir:
        # one block per series (mode, interval): N, cutover before, cutover after (ms)
        blocks = {}
        for name, n, cb, ca in dat:
            blocks.setdefault(name, []).append((n, cb, ca))
        text = ""
        for name, rows in blocks.items():
            text += f'"{name}" "before" "after"\n' + "".join(
                f"{n} {'NaN' if cb is None else round(cb)} {'NaN' if ca is None else round(ca)}\n"
                for n, cb, ca in sorted(rows)) + "\n\n"
        Path(outdir, "cutover.dat").write_text(text)


def compare_404(path):
    """send-state-404 rows beside the send-state rows of the same commit (key suffix)."""
    rows = json.loads(Path(path).read_text())["rows"]
    base = {(r["n"], r["inter"], r.get("rise"), r.get("fall")): r for r in rows
            if r["mode"] == "send-state" and r.get("suffix")}
    new = sorted((r for r in rows if r["mode"] == "send-state-404"),
                 key=lambda r: (r["inter"], r["n"]))
    print("| inter ms | N/colour | cutover without 404 | cutover with 404 | ratio | wait without |"
          " wait with | old>wait without / with | failed without / with | commit |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in new:
        o = base.get((r["n"], r["inter"], r.get("rise"), r.get("fall")), {})
        cb, ca = o.get("cutover_med_ms"), r.get("cutover_med_ms")
        ratio = f"{ca / cb:.2f}" if cb and ca else "-"
        ob = "n/r" if not o else str(o.get("old_after_wait"))
        fb = "n/r" if not o else str(o.get("failed"))
        print(f"| {r['inter']} | {r['n']} | {fmt(cb) if o else 'n/r'} | {fmt(ca)} | {ratio} | "
              f"{fmt(o.get('wait_med_ms')) if o else 'n/r'} | {fmt(r.get('wait_med_ms'))} | "
              f"{ob} / {r.get('old_after_wait')} | {fb} / {r.get('failed')} | "
              f"{r.get('commit', '?')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2,8,32,64")
    ap.add_argument("--inters", default="100,1000,2000")
    ap.add_argument("--modes", default="httpchk,send-state,agent")
    ap.add_argument("--flips", type=int, default=3)
    ap.add_argument("--rise-fall", default="2/3", help="HAProxy rise/fall (default 2/3)")
    ap.add_argument("--flip-timeout", type=int, default=240)
    ap.add_argument("--budget", type=float, default=3600)
    ap.add_argument("--quick", action="store_true", help="sizes 2,8; inter 1000; 2 flips")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", default=str(HERE / "out" / "cutover.json"))
    ap.add_argument("--report", nargs="+", metavar="JSON")
    ap.add_argument("--compare-404", metavar="JSON")
    ap.add_argument("--key-suffix", default="")
    ap.add_argument("--outdir", default=str(HERE / "out"))
    args = ap.parse_args()
    if args.compare_404:
        compare_404(args.compare_404)
        return
    if args.report:
        report(args.report[0], args.report[1] if len(args.report) > 1 else None, args.outdir)
        return
    if args.quick:
        args.sizes, args.inters, args.flips = "2,8", "1000", 2
    run(args)


if __name__ == "__main__":
    main()
