#!/usr/bin/env python3
"""Issue 9: bgctl read an uninitialised Stat when get() failed: `bgctl switch --wait` could set
/active_color but not read it back (an ACL that lets anyone write but not read it), and then
compared a garbage mzxid: a random "changed by someone else" or not. Run under valgrind
(memcheck): no use of uninitialised values; bgctl times out as it should (no controller runs).
Valgrind sees it in an unoptimised build (at -O2 the compiler may test the colour first and
never branch on the garbage). Skipped when valgrind is not installed or bgctl is built with ASan/TSan."""

import shutil
import subprocess

import harness as h
from bgsys import System


def test(t):
    vg = shutil.which("valgrind")
    if vg is None:
        raise h.Skip("valgrind is not installed")
    linked = subprocess.run(["ldd", h.bin("bgctl")], capture_output=True, text=True).stdout
    if "libasan" in linked or "libtsan" in linked:
        raise h.Skip("bgctl is built with a sanitizer, which valgrind cannot run", strict=False)
    zk = t.zookeeper()
    s = System(t, zk)
    s.flip("blue")
    r = h.zkcli(zk, "setAcl", s.root + "/active_color", "world:anyone:w")
    t.check(r.rc == 0, f"write-only ACL set: {r}")
    t.check(h.zkt(zk, "get", s.root + "/active_color").returncode != 0, "not readable now")
    argv = [vg, "-q", "--error-exitcode=99", "--track-origins=yes", h.bin("bgctl"),
            "-z", zk.connect, "-r", s.root, "switch", "green", "--wait", "--timeout", "3s"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    h.log(f"bgctl rc={p.returncode} err={err[-2000:]!r}")
    t.check("uninitialised" not in err, "valgrind reports no use of uninitialised values")
    t.check(p.returncode != 99, f"no valgrind error (rc {p.returncode})")
    t.check("timed out" in err, "bgctl wait timed out, as nothing converges")


h.run(test)
