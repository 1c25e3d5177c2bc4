#!/usr/bin/env python3
"""zookeeper.auth protects the nodes: with digest credentials, every node the daemons and
bgctl create (the root and below) gets ALL for that identity and READ for anyone; the
parents above the root stay open. Without the credentials nobody can flip /active_color
(bgctl says how to fix it, and nothing changes); with them bgctl and the real zkCli.sh
(`addauth digest`) flip as usual, and anyone can still read the state."""

import base64
import hashlib
import os

import harness as h
from bgsys import System

AUTH = "bg:s3cret-pass"


def digest_id(cred):
    user = cred.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(cred.encode()).digest()).decode()


def acl_entries(r):
    """(scheme, id, perms) for each entry zkCli.sh getAcl printed, in order."""
    lines = [ln.strip() for ln in r.data.splitlines() if ln.strip()]
    out = []
    for i, ln in enumerate(lines):
        if ln.startswith("'") and "," in ln and i + 1 < len(lines) and lines[i + 1].startswith(":"):
            scheme, ident = ln[1:].split(",", 1)
            out.append((scheme, ident.strip("'"), lines[i + 1][1:].strip()))
    return out


def acl_of(zk, path, auth=None):
    """zkCli.sh getAcl as a sorted list of (scheme, id, perms). ZooKeeper 3.8 shows a digest
    id's hash only to a client with ADMIN permission (others see "user:x")."""
    r = h.zkcli(zk, script=[f"addauth digest {auth}", f"getAcl {path}"]) if auth else \
        h.zkcli(zk, "getAcl", path)
    return sorted(acl_entries(r))


def acls_of_protected(zk, paths):
    """getAcl of several nodes that each hold two entries, in one zkCli.sh (one JVM)."""
    entries = acl_entries(h.zkcli(zk, script=[f"getAcl {p}" for p in paths]))
    if len(entries) != 2 * len(paths):
        return {"entries": entries}  # some node does not have exactly two: fails the check
    return {p: sorted(entries[2 * i:2 * i + 2]) for i, p in enumerate(paths)}


def test(t):
    os.environ.pop("BG_ZK_AUTH", None)  # the "without credentials" steps must be without
    zk = t.zookeeper()
    s = System(t, zk)
    parent = s.root + "/up"  # missing: bgctl init creates it open (above the root)
    s.root = parent + "/svc"  # created by bgctl init, protected
    zkx = {"zookeeper": {"connect": zk.connect, "root": s.root, "session_timeout_ms": 2000,
                         "auth": AUTH}}
    protected = sorted([("digest", "bg:x", "cdrwa"), ("world", "anyone", "r")])

    t.step("bgctl -a init creates protected nodes")
    rc, out, err = s.bgctl("-a", AUTH, "init")
    t.check_eq(rc, 0, f"bgctl -a init: {out.strip()}")
    s.agent("blue-1", "blue", extra=zkx)
    s.agent("green-1", "green", extra=zkx)
    s.controller("c1", extra=zkx)
    s.wait_converged("blue")
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503}, "converged on blue with auth")

    member = [k for k in h.zk_ls(zk, s.root + "/election")][0]
    paths = [s.root + rel for rel in ("", "/active_color", "/blue", "/blue/blue-1",
                                      "/green/green-1", "/status", "/election",
                                      "/election/" + member, "/history")]
    t.check_eq(acls_of_protected(zk, paths), {p: protected for p in paths},
               f"ACL of the root and {len(paths) - 1} nodes below it: creator ALL, anyone READ")
    t.check_eq(acl_of(zk, s.root + "/status", auth=AUTH),
               sorted([("digest", digest_id(AUTH), "cdrwa"), ("world", "anyone", "r")]),
               "with the credentials the digest shows: it is the configured user's")
    t.check_eq(acl_of(zk, parent), [("world", "anyone", "cdrwa")],
               f"{parent}, created above the root by bgctl init, is open")
    rc, out, err = s.bgctl("init")
    t.check_eq(rc, 0, f"bgctl init again, without credentials, is a no-op: {out.strip()}")

    t.step("without credentials: reads work, flips are refused and change nothing")
    rc, out, err = s.bgctl("status")
    t.check(rc == 0 and "blue" in out, f"bgctl status without -a reads (rc {rc})")
    rc, out, err = s.bgctl("switch", "green")
    t.check_eq(rc, 1, "bgctl switch without credentials exits 1")
    t.check("not authorised" in err and "BG_ZK_AUTH" in err, f"... and says why: {err.strip()}")
    rc, out, err = s.bgctl("-a", "bg:wrong", "switch", "green")
    t.check(rc == 1 and "not authorised" in err, "wrong password: refused too")
    r = h.zkcli(zk, "set", s.root + "/active_color", "green")
    t.check("Insufficient permission" in r.out + r.err or "NoAuth" in r.out + r.err,
            f"plain zkCli.sh set is refused: {(r.out + r.err).strip()[-200:]!r}")
    try:
        h.zk_set(zk, s.root + "/status", "{}")
        t.check(False, "zkt (no credentials) overwrote /status")
    except h.ZkError as e:
        t.check("auth" in str(e).lower(), f"zkt cannot overwrite /status: {e}")
    t.check_eq(h.zk_get(zk, s.root + "/active_color"), "blue", "/active_color unchanged")
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503}, "every instance as it was")
    rc, out, err = s.bgctl("-a", "no-colon", "status")
    t.check(rc == 64 and "USER:PASS" in err, f"malformed -a is a usage error: {err.strip()}")

    t.step("with credentials: zkCli.sh addauth + set, then bgctl with BG_ZK_AUTH")
    r = h.zkcli(zk, script=[f"addauth digest {AUTH}", f"set {s.root}/active_color green"])
    t.check_eq(h.zk_get(zk, s.root + "/active_color"), "green",
               f"zkCli.sh after addauth digest sets it (rc {r.rc})")
    s.wait_converged("green")
    t.check_eq(s.healths(), {"blue-1": 503, "green-1": 200}, "switched to green")
    argv = [h.bin("bgctl"), "-z", zk.connect, "-r", s.root, "switch", "blue", "--wait",
            "--timeout", "30s"]
    r = h.run_cmd(argv, env={"BG_ZK_AUTH": AUTH})
    t.check_eq(r.returncode, 0, f"BG_ZK_AUTH=... bgctl switch blue --wait: {r.stdout.strip()}")
    t.check_eq(s.healths(), {"blue-1": 200, "green-1": 503}, "switched back to blue")

    t.step("an agent restarted with the credentials re-creates its protected node")
    a = s.agents[0]
    a.proc.stop()
    a.start()
    t.check_eq(acl_of(zk, a.node), protected, "re-registered node is protected")


h.run(test)
