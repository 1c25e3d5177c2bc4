#!/usr/bin/env python3
"""check_build.py -- build docker/Dockerfile without a container engine, step by step.

This project's machines have no Docker engine and cannot pull images. debian:12 and
debian:12-slim are a `debootstrap --variant=minbase bookworm` tree, so this script makes one
from the configured Debian mirror and runs the Dockerfile on copies of it: each stage's RUN lines
with `chroot ROOTFS /bin/sh -c ...` (proc mounted, the host's resolv.conf, no terminal, as
`docker build` runs them), COPY from the build context (the repository, less
docker/Dockerfile.dockerignore) or from an earlier stage. Then, in the last stage's tree, each
program the image ships must find all its libraries (ldd) and answer --version/--help, and the
ENTRYPOINT must exist.

It understands what docker/Dockerfile uses: FROM [AS], RUN (shell form, with line
continuations), COPY [--from=STAGE] SRC... DEST, ENTRYPOINT (exec form). Anything else stops it.
What it does not reproduce: image layers, USER/ENV defaults (none are used), and the 12-slim
image's dpkg excludes of /usr/share/{doc,man} (which change no program).

Usage (root; debootstrap installed: apt-get install debootstrap):
  docker/check_build.py [--dockerfile FILE] [--workdir DIR] [--mirror URL] [--keep]
--workdir keeps the debootstrapped base (base/) for the next run (default
/var/tmp/bg-docker-check); --keep also keeps each stage's tree. Exit 0: every step and check
passed; 1: a step failed (its output is shown); 2: usage or environment.
"""

import argparse
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASES = {"debian:12", "debian:12-slim", "debian:bookworm", "debian:bookworm-slim"}


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def die(msg, code=1):
    log(f"FAIL {msg}")
    sys.exit(code)


def parse_dockerfile(path):
    """[(stage_name, base, [(instruction, args_text, line_no)])]"""
    lines = path.read_text().splitlines()
    stages, cur, buf, start = [], None, "", 0
    for no, raw in enumerate(lines, 1):
        if not buf and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if buf and raw.lstrip().startswith("#"):
            continue  # comment lines inside a continued instruction
        if not buf:
            start = no
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        text = (buf + raw).strip()
        buf = ""
        instr, _, args = text.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.I)
            if not m:
                die(f"{path}:{start}: cannot read FROM {args}", 2)
            cur = (m.group(2) or str(len(stages)), m.group(1), [])
            stages.append(cur)
        elif cur is None:
            die(f"{path}:{start}: {instr} before FROM", 2)
        elif instr in ("RUN", "COPY", "ENTRYPOINT"):
            cur[2].append((instr, args.strip(), start))
        else:
            die(f"{path}:{start}: {instr} is not supported by this script", 2)
    return stages


def ignore_patterns(dockerfile):
    p = Path(str(dockerfile) + ".dockerignore")
    if not p.exists():
        p = REPO / ".dockerignore"
    if not p.exists():
        return []
    return [ln.strip() for ln in p.read_text().splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def ignored(rel, patterns):
    """rel: a path relative to the context root (POSIX)."""
    for pat in patterns:
        pat = pat.rstrip("/")
        if pat.startswith("**/"):
            if any(fnmatch.fnmatch(part, pat[3:]) for part in rel.split("/")):
                return True
        elif fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel.split("/")[0], pat):
            return True
    return False


def copy_context(src, dest, patterns):
    """COPY <context path> <dest>: the directory's contents, less the ignored paths."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(src):
        reldir = os.path.relpath(dirpath, REPO)
        reldir = "" if reldir == "." else reldir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(reldir + d, patterns)]
        out = dest / os.path.relpath(dirpath, src)
        out.mkdir(parents=True, exist_ok=True)
        for f in filenames:
            if ignored(reldir + f, patterns):
                continue
            s = Path(dirpath) / f
            if s.is_symlink():
                os.symlink(os.readlink(s), out / f)
            else:
                shutil.copy2(s, out / f)
            n += 1
    return n


def copy_into(src, dest_in_root, root, is_dir_dest):
    """Docker's COPY rules for one source: a directory's contents go into dest; a file goes
    to dest (or into it when dest ends with /)."""
    target = root / dest_in_root.lstrip("/")
    if src.is_dir():
        shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
    else:
        if is_dir_dest:
            target.mkdir(parents=True, exist_ok=True)
            target = target / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


class Chroot:
    def __init__(self, root):
        self.root = root
        self.proc = root / "proc"

    def __enter__(self):
        shutil.copy2("/etc/resolv.conf", self.root / "etc/resolv.conf")
        subprocess.run(["mount", "-t", "proc", "proc", str(self.proc)], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", str(self.proc)], check=False)

    def run(self, cmd, timeout=3600):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "LANG": "C.UTF-8"}
        return subprocess.run(["chroot", str(self.root), "/bin/sh", "-c", cmd], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)


def remove_tree(path):
    if path.exists():
        # Never across a mount point (a proc left mounted by an interrupted run).
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dockerfile", default=str(REPO / "docker/Dockerfile"))
    ap.add_argument("--workdir", default="/var/tmp/bg-docker-check")
    ap.add_argument("--mirror", default="http://deb.debian.org/debian")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root (debootstrap, chroot)", 2)
    if shutil.which("debootstrap") is None:
        die("debootstrap is not installed (apt-get install debootstrap)", 2)
    dockerfile = Path(a.dockerfile).resolve()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    stages = parse_dockerfile(dockerfile)
    patterns = ignore_patterns(dockerfile)
    log(f"{dockerfile}: {len(stages)} stage(s): "
        + ", ".join(f"{n} FROM {b}" for n, b, _ in stages))

    base = work / "base"
    if not (base / ".bg-complete").exists():
        remove_tree(base)
        log(f"debootstrap --variant=minbase bookworm {base} {a.mirror}")
        r = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(base), a.mirror],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            die("debootstrap failed", 2)
        (base / ".bg-complete").write_text("")
        log("base tree ready")
    else:
        log(f"reusing {base}")

    trees = {}
    entrypoint = None
    failed = False
    for name, image, steps in stages:
        if image in trees:
            src_tree = trees[image]
        elif image in BASES:
            src_tree = base
        else:
            die(f"FROM {image}: only {sorted(BASES)} or an earlier stage", 2)
        root = work / f"stage-{name}"
        remove_tree(root)
        subprocess.run(["cp", "-a", "--reflink=auto", str(src_tree), str(root)], check=True)
        (root / ".bg-complete").unlink(missing_ok=True)
        trees[name] = root
        log(f"== stage {name} (FROM {image})")
        with Chroot(root) as ch:
            for instr, args, line in steps:
                t0 = time.monotonic()
                if instr == "RUN":
                    r = ch.run(args)
                    took = time.monotonic() - t0
                    if r.returncode != 0:
                        print(r.stdout[-6000:])
                        print(r.stderr[-6000:])
                        log(f"FAIL line {line}: RUN exited {r.returncode} after {took:.0f}s")
                        failed = True
                        break
                    log(f"ok   line {line}: RUN {args[:70]}... ({took:.0f}s)")
                elif instr == "COPY":
                    words = shlex.split(args)
                    frm = None
                    if words[0].startswith("--from="):
                        frm = words.pop(0)[len("--from="):]
                    *srcs, dest = words
                    dir_dest = dest.endswith("/") or len(srcs) > 1
                    for s in srcs:
                        if frm is None:
                            src = (REPO / s).resolve()
                            if src.is_dir():
                                n = copy_context(src, root / dest.lstrip("/"), patterns)
                                log(f"ok   line {line}: COPY {s} {dest} ({n} files)")
                                continue
                        else:
                            if frm not in trees:
                                die(f"line {line}: COPY --from={frm}: no such stage", 2)
                            src = trees[frm] / s.lstrip("/")
                        if not src.exists():
                            log(f"FAIL line {line}: COPY {s}: not found ({src})")
                            failed = True
                            break
                        copy_into(src, dest, root, dir_dest)
                        log(f"ok   line {line}: COPY {'--from=' + frm + ' ' if frm else ''}"
                            f"{s} {dest}")
                    if failed:
                        break
                elif instr == "ENTRYPOINT":
                    entrypoint = (root, json_list(args))
            if failed:
                break
    if not failed:
        failed = not smoke(trees[stages[-1][0]], entrypoint)
    if not a.keep:
        for t in trees.values():
            remove_tree(t)
    log(f"{dockerfile.relative_to(REPO) if dockerfile.is_relative_to(REPO) else dockerfile}: "
        + ("FAILED" if failed else "every step and check passed"))
    return 1 if failed else 0


def json_list(text):
    import json
    try:
        v = json.loads(text)
        return v if isinstance(v, list) else None
    except ValueError:
        return None


def smoke(root, entrypoint):
    """The last stage's programs run: libraries found, --version / --help answered."""
    ok = True
    log("== the image's programs")
    with Chroot(root) as ch:
        for prog, arg, want in (("bg-agent", "--version", "bg-agent "),
                                ("bg-controller", "--version", "bg-controller "),
                                ("bgctl", "--version", "bgctl "),
                                ("bg-demo-app", "--help", "")):
            path = f"/usr/local/bin/{prog}"
            r = ch.run(f"ldd {path}")
            missing = [ln.strip() for ln in r.stdout.splitlines() if "not found" in ln]
            if r.returncode != 0 or missing:
                log(f"FAIL {path}: ldd rc={r.returncode} missing={missing} {r.stderr.strip()}")
                ok = False
                continue
            r = ch.run(f"{path} {arg}")
            out = (r.stdout + r.stderr).strip().splitlines()
            if r.returncode == 0 and out and out[0].startswith(want):
                log(f"ok   {path} {arg}: {out[0][:60]}")
            else:
                log(f"FAIL {path} {arg}: rc={r.returncode} {out[:3]}")
                ok = False
        r = ch.run("test -x /usr/local/bin/entrypoint-instance.sh")
        if r.returncode != 0:
            log("FAIL /usr/local/bin/entrypoint-instance.sh is not there")
            ok = False
    if entrypoint and entrypoint[1]:
        exe = entrypoint[0] / entrypoint[1][0].lstrip("/")
        if os.access(exe, os.X_OK):
            log(f"ok   ENTRYPOINT {entrypoint[1][0]} exists")
        else:
            log(f"FAIL ENTRYPOINT {entrypoint[1][0]} is not an executable in the image")
            ok = False
    return ok


T0 = time.monotonic()
if __name__ == "__main__":
    sys.exit(main())
