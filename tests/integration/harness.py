#!/usr/bin/env python3
"""harness.py: the integration-test harness (real ZooKeeper, processes, zkt, HTTP, configs).

A test file is:

    import harness as h

    def test(t):                      # t: h.Test (temp dir, tracked processes, checks)
        zk = t.zookeeper()            # a real ZooKeeper on a free loopback port
        root = t.root(zk)             # a unique, created ZooKeeper root for this test
        h.zk_set(zk, root + "/active_color", "blue")
        t.check_eq(h.zk_get(zk, root + "/active_color"), "blue", "colour written")

    h.run(test)

run() prints every check as it goes, stops every process the test started (also on an
exception, SIGTERM from a ctest timeout, or Ctrl-C), prints the tail of each process log when
the test failed, ends with the line "checks: N passed, M failed" and exits 0 (pass), 1 (fail) or
77 (raise h.Skip("why"); give the test SKIP_RETURN_CODE 77 in CMake).

Binaries come from $BG_BUILD_DIR (set by ctest). Environment knobs: BG_KEEP_TMP=1 keeps the
temp dir even on success (it is always kept on failure), BG_TMPDIR chooses where it goes,
BG_LOG_TAIL=N sets how many log lines to print per process on failure (default 40).

Python 3 standard library only.
"""

import atexit
import collections
import ctypes
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "HarnessError", "Skip", "Terminated", "ZkError",
    "log", "free_port", "free_ports", "four_letter", "bin", "run_cmd",
    "Proc", "ZooKeeper", "Ensemble", "Test", "run", "check", "check_eq",
    "wait_until", "http", "http_json",
    "zkt", "zk_get", "zk_get_json", "zk_set", "zk_create", "zk_stat", "zk_ls", "zk_delete",
    "zk_exists", "zk_wait_exists", "zk_wait_gone", "zk_hold", "zkcli", "unique_root",
    "to_yaml", "write_yaml", "write_agent_conf", "write_controller_conf", "write_token",
    "run_wrk", "parse_wrk",
]

REPO = Path(__file__).resolve().parents[2]
JAVA = shutil.which("java") or "/usr/bin/java"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
# zookeeper.jar's manifest Class-Path brings in netty, jute, metrics, commons-*, jackson and
# snappy from /usr/share/java; the server only lacks an slf4j binding (slf4j-simple: stderr).
ZK_JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-simple.jar",
]
JVM_FLAGS = [
    "-Xmx256m", "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",  # C1 only: halves JVM start-up, plenty fast for tests
    "-Xshare:auto", "-XX:-UsePerfData", "-Djava.net.preferIPv4Stack=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
]
BINARIES = {
    "bg-agent": "agent/bg-agent",
    "bg-controller": "controller/bg-controller",
    "bg-router": "router/bg-router",
    "bgctl": "controller/bgctl",
    "zkt": "tests/tools/zkt",
    "bg-demo-app": "tests/tools/bg-demo-app",
    "eureka-double": "tests/eureka/eureka-double",
}
SKIP_EXIT = 77


class HarnessError(Exception):
    """The environment or the harness failed (binary missing, server would not start, ...)."""


class Skip(Exception):
    """Raise to skip a test (exit code 77). With BG_STRICT=1 in the environment (scripts/test.sh,
    hence CI, which installs every tool the tests use) a skip is a failure, unless the skip is
    raised with strict=False (a combination that cannot run anywhere, e.g. valgrind on a
    sanitizer build): a missing browser or balancer must not let a run pass unchecked."""

    def __init__(self, why, strict=True):
        super().__init__(why)
        self.strict = strict


class Terminated(BaseException):
    """SIGTERM/SIGHUP arrived (a ctest timeout): unwinds the test so that cleanup runs."""


class CheckFailed(AssertionError):
    """A check() that failed; already counted and printed."""


class ZkError(HarnessError):
    """zkt failed in an unexpected way (rc 1, 2 = no connection, ...)."""

    def __init__(self, argv, rc, stderr):
        self.argv, self.rc, self.stderr = argv, rc, stderr
        super().__init__(f"zkt {' '.join(argv)}: exit {rc}: {stderr.strip()}")


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------

_T0 = time.monotonic()
_print_lock = threading.Lock()


def log(msg):
    """Print one harness line, prefixed with the seconds since start. Thread-safe."""
    with _print_lock:
        print(f"[{time.monotonic() - _T0:7.3f}] {msg}", flush=True)


def _tail(text, n):
    lines = text.splitlines()
    return "\n".join(lines[-n:]) if lines else "(empty)"


# ----------------------------------------------------------------------------------------------
# Ports
# ----------------------------------------------------------------------------------------------

_ports_given = set()
_ports_lock = threading.Lock()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port, host):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))  # no SO_REUSEADDR: a port in TIME_WAIT counts as taken
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(host="127.0.0.1"):
    """A TCP port that is free on host now and was not handed out before by this process.

    Picked at random below the kernel's ephemeral range (so that the many outgoing connections
    of wrk, ZooKeeper clients etc. cannot take it between now and the server's bind) and
    checked by binding it; falls back to binding port 0."""
    low = _ephemeral_low()
    with _ports_lock:
        if low > 12000:
            for _ in range(200):
                port = random.randrange(10000, low)
                if port not in _ports_given and _bindable(port, host):
                    _ports_given.add(port)
                    return port
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port


def refused_port(host="127.0.0.1"):
    """A port on host that refuses connections until this test process ends: bound and never
    listened on (a fixed port such as 1 is not enough: a test running beside this one, as
    root, may listen there)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    _held_sockets.append(sock)
    return sock.getsockname()[1]


_held_sockets = []  # refused_port's sockets, open until the process exits


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports (see free_port)."""
    return [free_port(host) for _ in range(n)]


def four_letter(host, port, cmd, timeout=1.0):
    """Send a ZooKeeper four-letter word; the answer as text, or None if unreachable."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------
# Binaries and commands
# ----------------------------------------------------------------------------------------------

def build_dir():
    d = os.environ.get("BG_BUILD_DIR")
    if d:
        return Path(d)
    fallback = REPO / "build"
    if fallback.is_dir():
        return fallback
    raise HarnessError("BG_BUILD_DIR is not set (ctest sets it); run e.g. "
                       "BG_BUILD_DIR=/path/to/build python3 " + Path(sys.argv[0]).name)


def bin(name):
    """Absolute path of a built binary: bg-agent, bg-controller, bgctl, zkt, bg-demo-app,
    eureka-double. Raises HarnessError naming the path and the build target when missing."""
    rel = BINARIES.get(name)
    if rel is None:
        raise HarnessError(f"unknown binary {name!r}; known: {', '.join(sorted(BINARIES))}")
    p = build_dir() / rel
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise HarnessError(f"{name} not found at {p} (BG_BUILD_DIR={build_dir()}); "
                           f"build it: cmake --build {build_dir()} --target {name}")
    return str(p)


def run_cmd(argv, timeout=30, input=None, env=None, cwd=None, quiet=False):
    """Run a short command to completion. Returns subprocess.CompletedProcess with text
    stdout/stderr (never raises on a non-zero exit; raises AssertionError on timeout).
    env is merged into os.environ (a None value removes a variable)."""
    argv = [str(a) for a in argv]
    if isinstance(input, str):
        input = input.encode()
    try:
        r = subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                           env=_merge_env(env), cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(argv)}: still running after {timeout}s; "
                             f"stderr: {(e.stderr or b'').decode(errors='replace')[-2000:]}")
    res = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    if not quiet:
        log(f"$ {' '.join(argv)} -> rc={res.returncode}")
    return res


def _merge_env(env):
    e = os.environ.copy()
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = str(v)
    return e


# ----------------------------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------------------------

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _child_setup():
    # Die with the harness even if it is SIGKILLed. Linux ties this to the spawning *thread*,
    # hence Proc only asks for it when started from the main thread.
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """A background process whose stdout+stderr go to log_path (appended across restarts).

    Proc(argv, log_path, name=None, env=None, cwd=None, stdin=None, start=True)
      .pid .name .argv .log_path .returncode (None while running)
      .start()            start (again, after it stopped); returns self
      .alive()            running?
      .kill(sig=SIGKILL)  send a signal, do not wait
      .stop(timeout=5)    SIGTERM, wait, then SIGKILL; returns the exit code (-N: signal N)
      .wait(timeout=10)   wait for exit; returns the exit code (AssertionError on timeout)
      .log_text(since=0)  the log from byte offset since
      .mark()             current log size: pass as since= to see only what comes next
      .wait_log(regex, timeout=10, since=None) -> re.Match (multi-line regex; since defaults
                          to where the current run's output starts). Fails fast if the
                          process exits without logging it.
    """

    def __init__(self, argv, log_path, name=None, env=None, cwd=None, stdin=None, start=True):
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.name = name or Path(self.argv[0]).name
        self.env = env
        self.cwd = cwd
        self.stdin = stdin
        self.popen = None
        self.run_offset = 0
        self.tail_lines = None  # lines of log printed on failure (None: BG_LOG_TAIL or 40)
        if start:
            self.start()

    def start(self):
        if self.alive():
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as f:
            self.run_offset = f.tell()
            main = threading.current_thread() is threading.main_thread()
            try:
                self.popen = subprocess.Popen(
                    self.argv, stdout=f, stderr=subprocess.STDOUT,
                    stdin=self.stdin if self.stdin is not None else subprocess.DEVNULL,
                    env=_merge_env(self.env), cwd=self.cwd,
                    preexec_fn=_child_setup if main else None)
            except OSError as e:
                raise HarnessError(f"cannot start {self.name} ({' '.join(self.argv)}): {e}")
        log(f"started {self.name} pid={self.popen.pid} log={self.log_path.name}")
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    @property
    def returncode(self):
        return self.popen.poll() if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout=5):
        if self.popen is None:
            return None
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} pid={self.pid} ignored SIGTERM for {timeout}s: SIGKILL")
                self.kill(signal.SIGKILL)
                self.popen.wait()
            log(f"stopped {self.name} pid={self.pid} rc={self.popen.returncode}")
        return self.popen.returncode

    def wait(self, timeout=10):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} pid={self.pid} still running after {timeout}s; "
                                 f"log tail:\n{_tail(self.log_text(), 20)}")

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mark(self):
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def wait_log(self, regex, timeout=10, since=None):
        rx = re.compile(regex, re.M) if isinstance(regex, str) else regex
        since = self.run_offset if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            exited = not self.alive()
            m = rx.search(self.log_text(since))
            if m:
                return m
            if exited:
                raise AssertionError(
                    f"{self.name} exited (rc={self.returncode}) without logging /{rx.pattern}/;"
                    f" log tail:\n{_tail(self.log_text(since), 20)}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name} did not log /{rx.pattern}/ within {timeout}s; "
                    f"log tail:\n{_tail(self.log_text(since), 20)}")
            time.sleep(0.02)

    def _procs(self):
        return [self]

    def __repr__(self):
        return f"<Proc {self.name} pid={self.pid} alive={self.alive()}>"


# ----------------------------------------------------------------------------------------------
# ZooKeeper
# ----------------------------------------------------------------------------------------------

def _check_zk_installed():
    missing = [j for j in ZK_JARS if not os.path.exists(j)]
    if missing or not os.path.exists(JAVA):
        raise HarnessError(f"ZooKeeper server cannot run: missing {missing or JAVA} "
                           "(apt-get install zookeeper default-jre-headless)")


class ZooKeeper:
    """One real ZooKeeper 3.8 server (standalone, or a member of an Ensemble).

    ZooKeeper(workdir, name="zk", port=None, tick_ms=200, min_session_ms=None,
              max_session_ms=60000, extra_cfg=None)
      .start(timeout=30)  write zoo.cfg, start java, wait until it serves (ruok=imok and srvr
                          reports a Mode); raises HarnessError with the log tail on failure.
                          Keeps the data dir across stop/start.
      .stop(timeout=10)   SIGTERM, then SIGKILL     .kill()  SIGKILL at once
      .restart()          .alive()  .pid  .port  .connect ("127.0.0.1:PORT")  .log_path
      .four(cmd)          a four-letter word's answer (ruok, srvr, stat, mntr) or None
      .mode()             "standalone" | "leader" | "follower" | None (not serving)
    """

    def __init__(self, workdir, name="zk", port=None, tick_ms=200, min_session_ms=None,
                 max_session_ms=60000, extra_cfg=None, myid=None, servers=None):
        _check_zk_installed()
        self.dir = Path(workdir)
        self.name = name
        self._auto_port = port is None
        self.port = port or free_port()
        self.tick_ms = tick_ms
        self.min_session_ms = min_session_ms or 2 * tick_ms
        self.max_session_ms = max_session_ms
        self.extra_cfg = dict(extra_cfg or {})
        self.myid = myid
        self.servers = servers  # [(myid, peer_port, election_port, client_port)] for ensembles
        self.data_dir = self.dir / "data"
        self.cfg_path = self.dir / "zoo.cfg"
        self.log_path = self.dir / "zookeeper.log"
        self.proc = None
        self.start_seconds = None

    @property
    def connect(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def _write_cfg(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = collections.OrderedDict([
            ("tickTime", self.tick_ms),
            ("initLimit", 25),
            ("syncLimit", 10),
            ("dataDir", self.data_dir),
            ("maxClientCnxns", 0),
            ("4lw.commands.whitelist", "ruok,srvr,stat,mntr"),
            ("admin.enableServer", "false"),
            ("forceSync", "no"),
            ("preAllocSize", 1024),  # KiB of transaction log preallocated (default 64 MiB)
            ("minSessionTimeout", self.min_session_ms),
            ("maxSessionTimeout", self.max_session_ms),
        ])
        if self.servers is None:
            cfg["clientPortAddress"] = "127.0.0.1"  # only valid together with clientPort
            cfg["clientPort"] = self.port
        else:
            (self.data_dir / "myid").write_text(f"{self.myid}\n")
            for sid, peer, election, client in self.servers:
                cfg[f"server.{sid}"] = f"127.0.0.1:{peer}:{election};127.0.0.1:{client}"
        cfg.update(self.extra_cfg)
        self.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))

    def spawn(self):
        """Start java without waiting (Ensemble starts all members, then waits)."""
        if self.alive():
            raise HarnessError(f"{self.name} is already running")
        self._write_cfg()
        argv = [JAVA, *JVM_FLAGS, "-cp", ":".join(ZK_JARS),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.cfg_path)]
        self._t_start = time.monotonic()
        if self.proc is None:
            self.proc = Proc(argv, self.log_path, name=self.name)
            self.proc.tail_lines = 15  # verbose and seldom the culprit; the full log is kept
        else:
            self.proc.argv = argv
            self.proc.start()
        return self

    def start(self, timeout=30):
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except HarnessError:
                text = self.proc.log_text(self.proc.run_offset)
                if (self._auto_port and self.servers is None and not self.alive()
                        and "Address already in use" in text and attempt < 2):
                    self.port = free_port()
                    log(f"{self.name}: port taken, retrying on {self.port}")
                    continue
                raise
        return self

    def four(self, cmd, timeout=1.0):
        return four_letter("127.0.0.1", self.port, cmd, timeout)

    def mode(self):
        out = self.four("srvr")
        m = re.search(r"^Mode: (\w+)", out or "", re.M)
        return m.group(1) if m else None

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise HarnessError(
                    f"{self.name} exited (rc={self.proc.returncode}) before serving; "
                    f"{self.log_path}:\n{_tail(self.proc.log_text(self.proc.run_offset), 40)}")
            if self.four("ruok", 0.5) == "imok" and self.mode() is not None:
                self.start_seconds = time.monotonic() - self._t_start
                log(f"{self.name} serving on {self.connect} (mode {self.mode()}) after "
                    f"{self.start_seconds:.2f}s")
                return self
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"{self.name} not serving on {self.connect} after {timeout}s; "
                    f"{self.log_path}:\n{_tail(self.proc.log_text(self.proc.run_offset), 40)}")
            time.sleep(0.02)

    def stop(self, timeout=10):
        return self.proc.stop(timeout) if self.proc else None

    def kill(self):
        if self.proc:
            self.proc.kill(signal.SIGKILL)
            self.proc.popen.wait()
            log(f"killed {self.name} pid={self.proc.pid}")

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def _procs(self):
        return [self.proc] if self.proc else []

    def __repr__(self):
        return f"<ZooKeeper {self.name} {self.connect} alive={self.alive()}>"


class Ensemble:
    """n ZooKeeper servers on loopback (myid 1..n; indexes below are 0-based).

    Ensemble(workdir, n=3, tick_ms=200, name="ens", **zk_kwargs)
      .servers            [ZooKeeper]
      .connect            "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
      .start_all(timeout=60)  start every member, then wait_quorum
      .wait_quorum(timeout=30) every live member serves and exactly one leads; returns leader index
      .start(i, wait=True) .stop(i) .kill(i) .alive(i)
      .leader_index()     index of the member whose srvr says "Mode: leader", or None
      .wait_leader(timeout=20, exclude=None)  wait for a leader (other than exclude); its index
      .stop_all() .kill_all()
    """

    def __init__(self, workdir, n=3, tick_ms=200, name="ens", **zk_kwargs):
        self.dir = Path(workdir)
        self.name = name
        ports = free_ports(3 * n)
        table = [(i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]) for i in range(n)]
        self.servers = [
            ZooKeeper(self.dir / f"{name}-{sid}", name=f"{name}-{sid}", port=client,
                      tick_ms=tick_ms, myid=sid, servers=table, **zk_kwargs)
            for sid, _peer, _election, client in table]
        self.start_seconds = None

    @property
    def connect(self):
        return ",".join(s.connect for s in self.servers)

    def start_all(self, timeout=60):
        t0 = time.monotonic()
        for s in self.servers:
            if not s.alive():
                s.spawn()
        self.wait_quorum(timeout)
        self.start_seconds = time.monotonic() - t0
        log(f"{self.name}: quorum of {len(self.servers)} after {self.start_seconds:.2f}s, "
            f"leader {self.servers[self.leader_index()].name}")
        return self

    def wait_quorum(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            live = [s for s in self.servers if s.alive()]
            if 2 * len(live) <= len(self.servers):
                raise HarnessError(f"{self.name}: only {len(live)} of {len(self.servers)} "
                                   "members alive, no quorum possible")
            modes = [s.mode() for s in live]
            if all(m in ("leader", "follower") for m in modes) and modes.count("leader") == 1:
                return self.leader_index()
            if time.monotonic() >= deadline:
                tails = "\n".join(
                    f"--- {s.name} (mode {m}):\n{_tail(s.proc.log_text(s.proc.run_offset), 15)}"
                    for s, m in zip(live, modes))
                raise HarnessError(f"{self.name}: no quorum after {timeout}s\n{tails}")
            time.sleep(0.05)

    def leader_index(self):
        for i, s in enumerate(self.servers):
            if s.alive() and s.mode() == "leader":
                return i
        return None

    def wait_leader(self, timeout=20, exclude=None):
        """Wait until some live member other than exclude leads; return its index. Index 0 is a
        leader like any other (a truthiness test on leader_index() would wait forever for it)."""
        def found():
            i = self.leader_index()
            return (i,) if i is not None and i != exclude else None
        return wait_until(found, timeout=timeout, msg=f"{self.name}: a leader other than "
                          f"{exclude}")[0]

    def alive(self, i):
        return self.servers[i].alive()

    def start(self, i, wait=True, timeout=30):
        s = self.servers[i]
        s.spawn()
        if wait:
            s.wait_ready(timeout)
        return s

    def stop(self, i, timeout=10):
        return self.servers[i].stop(timeout)

    def kill(self, i):
        self.servers[i].kill()

    def stop_all(self):
        for s in self.servers:
            s.stop()

    def kill_all(self):
        for s in self.servers:
            s.kill()

    def _procs(self):
        return [p for s in self.servers for p in s._procs()]

    def __repr__(self):
        return f"<Ensemble {self.name} {self.connect}>"


# ----------------------------------------------------------------------------------------------
# The test context and runner
# ----------------------------------------------------------------------------------------------

_current = None


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "test"


def unique_root(name="t"):
    """A fresh ZooKeeper root path, "/t/<name>-<6 hex>"."""
    return f"/t/{_safe(name)}-{secrets.token_hex(3)}"


class Test:
    """One test: a temp dir, every process it started, and its checks. A context manager;
    run(fn) makes one and passes it to fn.

    Test(name=None)     .name .dir (Path; kept on failure or with BG_KEEP_TMP=1)
      .path(*parts)     a path inside the temp dir
      .root(zk=None)    unique_root(name); also created (with parents) when zk is given
      .log(msg) / .step(msg)
      .check(cond, msg) / .check_eq(actual, expected, msg)  print, count, raise on failure
      .track(obj)       stop obj (Proc, ZooKeeper, Ensemble) at the end
      .proc(argv, name=None, env=None, cwd=None, stdin=None) -> Proc (started, tracked;
                        log in <dir>/<name>.log)
      .zookeeper(**kw) -> ZooKeeper (started, tracked; kw as ZooKeeper())
      .ensemble(n=3, **kw) -> Ensemble (started with quorum, tracked)
      .demo_app(name, version="1.0", port=None, delay_ms=None, fail_file=None, flap_ms=None,
                broken=False, start=True) -> Proc with .port, .url, .health_url, .admin(),
                        answering once it listens
      .zk_hold(zk, path, data="", sequential=False) -> Proc holding an ephemeral node
                        (see zk_hold); .created is the node's path
    """

    def __init__(self, name=None):
        self.name = _safe(name or Path(sys.argv[0]).stem)
        base = os.environ.get("BG_TMPDIR")
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"bg-{self.name}-", dir=base))
        self.passed = 0
        self.failed = 0
        self._tracked = []
        self._log_names = set()
        self._cleaned = False
        self._zk_count = 0

    # -- context manager --

    def __enter__(self):
        global _current
        _current = self
        log(f"test {self.name}: temp dir {self.dir}")
        return self

    def __exit__(self, et, ev, tb):
        global _current
        failed = et is not None and not issubclass(et, Skip)
        if failed:
            if not issubclass(et, CheckFailed):
                log(f"ERROR: {et.__name__}: {ev}")
            with _print_lock:
                traceback.print_exception(et, ev, tb, file=sys.stdout)
                sys.stdout.flush()
        self.cleanup(failed)
        _current = None
        return False

    def cleanup(self, failed=False):
        """Stop everything (SIGTERM to all, then SIGKILL after 5 s); on failure print each
        process log's tail and keep the temp dir. Idempotent."""
        if self._cleaned:
            return
        self._cleaned = True
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        if threading.current_thread() is threading.main_thread():
            for s in old:
                signal.signal(s, signal.SIG_IGN)  # finish cleaning up whatever arrives
        try:
            procs = [p for obj in reversed(self._tracked) for p in obj._procs()]
            live = [p for p in procs if p.alive()]
            for p in live:
                p.kill(signal.SIGTERM)
            deadline = time.monotonic() + 5
            for p in live:
                try:
                    p.popen.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log(f"{p.name} pid={p.pid} ignored SIGTERM: SIGKILL")
                    p.kill(signal.SIGKILL)
                    p.popen.wait()
            if live:
                log(f"stopped {len(live)} process(es): " +
                    ", ".join(f"{p.name}={p.returncode}" for p in live))
            if failed:
                n = int(os.environ.get("BG_LOG_TAIL", "40"))
                seen = set()
                for p in procs:
                    if p.log_path in seen:
                        continue
                    seen.add(p.log_path)
                    with _print_lock:
                        print(f"----- tail of {p.log_path} ({p.name}, rc={p.returncode}) -----")
                        print(_tail(p.log_text(), p.tail_lines or n), flush=True)
                log(f"temp dir kept: {self.dir}")
            elif os.environ.get("BG_KEEP_TMP"):
                log(f"temp dir kept (BG_KEEP_TMP): {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        finally:
            if threading.current_thread() is threading.main_thread():
                for s, h in old.items():
                    signal.signal(s, h)

    # -- checks and output --

    def log(self, msg):
        log(msg)

    def step(self, msg):
        log(f"== {msg}")

    def check(self, cond, msg):
        if cond:
            self.passed += 1
            log(f"ok   {msg}")
            return cond
        self.failed += 1
        log(f"FAIL {msg}")
        raise CheckFailed(msg)

    def check_eq(self, actual, expected, msg):
        if actual == expected:
            return self.check(True, f"{msg} (= {actual!r})")
        return self.check(False, f"{msg}: expected {expected!r}, got {actual!r}")

    # -- resources --

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    def root(self, zk=None):
        r = unique_root(self.name)
        if zk is not None:
            zk_create(zk, r, parents=True)
        return r

    def track(self, obj):
        self._tracked.append(obj)
        return obj

    def _log_path(self, name):
        base = _safe(name)
        cand, k = base, 1
        while cand in self._log_names:
            k += 1
            cand = f"{base}-{k}"
        self._log_names.add(cand)
        return self.dir / f"{cand}.log"

    def proc(self, argv, name=None, env=None, cwd=None, stdin=None):
        name = name or Path(str(argv[0])).name
        p = Proc(argv, self._log_path(name), name=name, env=env, cwd=cwd, stdin=stdin,
                 start=False)
        self.track(p)
        return p.start()

    def zookeeper(self, **kw):
        self._zk_count += 1
        name = kw.pop("name", f"zk{self._zk_count}")
        zk = self.track(ZooKeeper(self.dir / name, name=name, **kw))
        return zk.start()

    def ensemble(self, n=3, **kw):
        self._zk_count += 1
        name = kw.pop("name", f"ens{self._zk_count}")
        timeout = kw.pop("timeout", 60)
        ens = self.track(Ensemble(self.dir, n=n, name=name, **kw))
        return ens.start_all(timeout)

    def demo_app(self, name, version="1.0", port=None, delay_ms=None, host="127.0.0.1",
                 fail_file=None, flap_ms=None, broken=False, start=True):
        """bg-demo-app NAME on host:port (free port unless given). fail_file / flap_ms /
        broken: see bg-demo-app --help (broken = /healthz 503, other requests 500).
        start=False returns the Proc unstarted (an application that is down): .start() it
        later, then .wait_listening(). Proc has .port, .url, .health_url, .admin(verb)."""
        port = port or free_port()
        argv = [bin("bg-demo-app"), "--listen", f"{host}:{port}", "--name", name,
                "--version", version]
        if delay_ms:
            argv += ["--delay-ms", str(delay_ms)]
        if fail_file:
            argv += ["--fail-file", str(fail_file)]
        if flap_ms:
            argv += ["--flap-ms", str(flap_ms)]
        if broken:
            argv.append("--broken")
        p = Proc(argv, self._log_path(f"app-{name}"), name=f"app-{name}", start=False)
        self.track(p)
        p.port = port
        p.url = f"http://{host}:{port}/"
        p.health_url = f"http://{host}:{port}/healthz"
        p.wait_listening = lambda timeout=5: p.wait_log(r"event=listening", timeout=timeout)
        p.admin = lambda verb: http("POST" if verb in ("break", "fix") else "GET",
                                    f"http://{host}:{port}/admin/{verb}", timeout=2)
        if start:
            p.start()
            p.wait_listening()
        return p

    def zk_hold(self, zk, path, data="", sequential=False):
        return zk_hold(self, zk, path, data, sequential)


def check(cond, msg):
    """check() on the current Test (or a plain assertion outside one)."""
    if _current is not None:
        return _current.check(cond, msg)
    if not cond:
        raise CheckFailed(msg)
    return cond


def check_eq(actual, expected, msg):
    if _current is not None:
        return _current.check_eq(actual, expected, msg)
    if actual != expected:
        raise CheckFailed(f"{msg}: expected {expected!r}, got {actual!r}")
    return True


def _on_signal(signum, frame):
    raise Terminated(f"signal {signal.Signals(signum).name} (ctest timeout?)")


def _atexit_cleanup():
    if _current is not None:
        _current.cleanup(failed=True)


atexit.register(_atexit_cleanup)


def run(test_fn, name=None):
    """Run test_fn(t) in a fresh Test; print "checks: N passed, M failed"; exit 0/1/77."""
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    t = Test(name)
    rc = 0
    try:
        with t:
            test_fn(t)
    except Skip as e:
        if e.strict and os.environ.get("BG_STRICT") == "1":
            log(f"FAILED {t.name}: it would skip ({e}), and BG_STRICT=1 requires it to run")
            t.failed += 1
            rc = 1
        else:
            log(f"SKIP {t.name}: {e}")
            rc = SKIP_EXIT
    except BaseException as e:  # noqa: B902 - Terminated and KeyboardInterrupt too
        if not isinstance(e, CheckFailed):
            t.failed += 1  # the error counts as a failed check
        rc = 1
    print(f"checks: {t.passed} passed, {t.failed} failed", flush=True)
    if rc == 0:
        log(f"PASS {t.name}")
    elif rc == 1:
        log(f"FAIL {t.name}")
    sys.exit(rc)


# ----------------------------------------------------------------------------------------------
# Waiting and HTTP
# ----------------------------------------------------------------------------------------------

def wait_until(fn, timeout=10, interval=0.02, msg=None, ignore=()):
    """Call fn until it returns something truthy; return that. On timeout raise
    AssertionError("timed out after Ns waiting for: msg"). Exceptions of the types in
    ignore (e.g. OSError for a server still starting) count as falsy."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except ignore as e:  # noqa: PERF203
            last_exc = e
        if time.monotonic() >= deadline:
            what = msg or getattr(fn, "__name__", "condition")
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}{extra}")
        time.sleep(interval)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore http_proxy


def http(method, url, body=None, headers=None, timeout=2):
    """One HTTP request. body: bytes, str, or dict/list (sent as JSON). Returns
    (status, body_text, headers with lower-cased names); 4xx/5xx are returned, not raised.
    Connection errors raise OSError (urllib.error.URLError or socket.timeout)."""
    hdrs = dict(headers or {})
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
            return r.status, text, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        return e.code, text, {k.lower(): v for k, v in (e.headers or {}).items()}


def http_json(method, url, body=None, headers=None, timeout=2):
    """http() with the answer parsed as JSON: (status, obj or None if not JSON, headers)."""
    status, text, hdrs = http(method, url, body, headers, timeout)
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    return status, obj, hdrs


# ----------------------------------------------------------------------------------------------
# ZooKeeper helpers (zkt: ~10 ms a call; zkCli.sh: ~0.6 s)
# ----------------------------------------------------------------------------------------------

def _connect(target):
    return target if isinstance(target, str) else target.connect


def zkt(target, *args, timeout_ms=5000, input=None):
    """Run zkt -z CONNECT -q -t timeout_ms ARGS. Returns CompletedProcess (bytes stdout,
    text stderr); never raises on an exit code. target: connect string, ZooKeeper or Ensemble."""
    argv = [bin("zkt"), "-z", _connect(target), "-q", "-t", str(timeout_ms), *map(str, args)]
    try:
        r = subprocess.run(argv, input=input, capture_output=True,
                           timeout=timeout_ms / 1000 + 10)
    except subprocess.TimeoutExpired:
        raise ZkError(argv[1:], None, "zkt hung")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def _zkt_ok(target, *args, ok=(0,), **kw):
    r = zkt(target, *args, **kw)
    if r.returncode not in ok:
        raise ZkError([str(a) for a in args], r.returncode, r.stderr)
    return r


def zk_get(target, path, binary=False):
    """The node's data (str, or bytes with binary=True), or None when there is no node."""
    r = _zkt_ok(target, "get", path, ok=(0, 3))
    if r.returncode == 3:
        return None
    return r.stdout if binary else r.stdout.decode("utf-8", "replace")


def zk_get_json(target, path):
    """The node's data parsed as JSON; None when there is no node or it is empty."""
    s = zk_get(target, path)
    return json.loads(s) if s else None


def zk_set(target, path, data):
    """Set data (str, bytes, or dict/list as JSON), creating the node and parents if missing."""
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    _zkt_ok(target, "setfile", path, "-", input=data)


def zk_create(target, path, data="", ephemeral=False, sequential=False, parents=False):
    """Create a persistent (or sequential) node; returns its path. Raises ZkError if it
    exists (rc 4) or the parent is missing (rc 3) and parents is False. An ephemeral node dies
    with zkt's session at once: use zk_hold to keep one."""
    args = ["create", path, data]
    if ephemeral:
        args.append("-e")
    if sequential:
        args.append("-s")
    if parents:
        args.append("-p")
    r = _zkt_ok(target, *args)
    out = r.stdout.decode().strip()
    return out or path


def zk_stat(target, path):
    """The node's Stat as a dict (czxid, mzxid, pzxid, ctime, mtime, version, cversion,
    aversion, ephemeralOwner "0x..", numChildren, dataLength), or None if no node."""
    r = _zkt_ok(target, "stat", path, ok=(0, 3))
    return None if r.returncode == 3 else json.loads(r.stdout)


def zk_ls(target, path):
    """Sorted child names, or None if no node."""
    r = _zkt_ok(target, "ls", path, ok=(0, 3))
    return None if r.returncode == 3 else r.stdout.decode().splitlines()


def zk_delete(target, path, recursive=False):
    """Delete (recursively with recursive=True). True if deleted, False if there was no
    node; ZkError if it has children and recursive is False."""
    r = _zkt_ok(target, "delete", *(["-r"] if recursive else []), path, ok=(0, 3))
    return r.returncode == 0


def zk_exists(target, path):
    return _zkt_ok(target, "exists", path, ok=(0, 3)).returncode == 0


def zk_wait_exists(target, path, timeout=10):
    """Wait (with a watch) until path exists. True, or False on timeout."""
    ms = int(timeout * 1000)
    return _zkt_ok(target, "wait-exists", path, ms, ok=(0, 5),
                   timeout_ms=max(ms, 5000)).returncode == 0


def zk_wait_gone(target, path, timeout=10):
    """Wait (with a watch) until path is gone. True, or False on timeout."""
    ms = int(timeout * 1000)
    return _zkt_ok(target, "wait-gone", path, ms, ok=(0, 5),
                   timeout_ms=max(ms, 5000)).returncode == 0


def zk_hold(t, target, path, data="", sequential=False, session_ms=4000):
    """Create an ephemeral node held by a background `zkt create -e --hold` (a fake agent
    registration). Returns the tracked Proc once the node exists; proc.created is its path.
    proc.stop() closes the session (node gone at once); proc.kill() leaves it to expire."""
    args = [bin("zkt"), "-z", _connect(target), "-q", "-s", session_ms, "create", path, data,
            "-e", "-p", "--hold"]
    if sequential:
        args.append("-s")
    p = t.proc(args, name=f"hold-{path.rsplit('/', 1)[-1]}")
    m = p.wait_log(r"^(/\S*)$", timeout=10)
    p.created = m.group(1)
    return p


class ZkCliResult(collections.namedtuple("ZkCliResult", "rc out err")):
    """zkcli()'s answer; .data is stdout without zkCli's connection chatter."""

    _NOISE = re.compile(r"^(Connecting to .*|WATCHER::|WatchedEvent state:.*|\s*)$")

    @property
    def data(self):
        return "\n".join(ln for ln in self.out.splitlines() if not self._NOISE.match(ln))


def zkcli(target, *args, timeout=30, script=None):
    """Run the real /usr/share/zookeeper/bin/zkCli.sh -server CONNECT ARGS (e.g. "set",
    "/active_color", "green"); returns ZkCliResult(rc, out, err) (+ .data). ~0.6 s a call.
    script: a list of command lines typed into an interactive zkCli.sh instead of ARGS
    (e.g. ["addauth digest bg:secret", "set /active_color green"]); "quit" is appended."""
    if not os.path.exists(ZKCLI):
        raise HarnessError(f"{ZKCLI} missing (apt-get install zookeeper)")
    env = {"JVMFLAGS": "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto "
                       + os.environ.get("JVMFLAGS", "")}
    argv = [ZKCLI, "-waitforconnection", "-timeout", "5000", "-server", _connect(target),
            *map(str, args)]
    stdin = None if script is None else "\n".join([*script, "quit", ""])
    r = run_cmd(argv, timeout=timeout, env=env, quiet=True, input=stdin)
    log(f"$ zkCli.sh {' '.join(map(str, args)) or '; '.join(script or [])} -> rc={r.returncode}")
    return ZkCliResult(r.returncode, r.stdout, r.stderr)


# ----------------------------------------------------------------------------------------------
# Configuration files (DESIGN §6)
# ----------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_/.][A-Za-z0-9_./@+-]*$")
_NUMERIC = re.compile(r"^[-+]?(\.?\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+)$")
_YAML_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ".inf", ".nan"}


def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN.match(s) and not _NUMERIC.match(s) and s.lower() not in _YAML_SPECIAL:
        return s
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _yaml_lines(obj, indent):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append(f"{pad}{_scalar(k)}:")
                out += _yaml_lines(v, indent + 2)
            elif isinstance(v, list) and v and any(isinstance(x, (dict, list)) for x in v):
                out.append(f"{pad}{_scalar(k)}:")
                out += _yaml_lines(v, indent + 2)
            else:
                out.append(f"{pad}{_scalar(k)}: {_inline(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                sub = _yaml_lines(v, indent + 2)
                out.append(f"{pad}- {sub[0].lstrip()}")
                out += sub[1:]
            else:
                out.append(f"{pad}- {_inline(v)}")
    else:
        out.append(pad + _scalar(obj))
    return out


def _inline(v):
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_inline(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return _scalar(v)


def to_yaml(obj):
    """Block-style YAML for dicts/lists/scalars (strings quoted when not plainly safe)."""
    return "\n".join(_yaml_lines(obj, 0)) + "\n"


def write_yaml(path, obj):
    """Write obj as YAML (or a str verbatim, for deliberately broken files); returns Path."""
    path = Path(path)
    path.write_text(obj if isinstance(obj, str) else to_yaml(obj))
    return path


def write_token(dir, token="test-token-0123456789", name="token"):
    """Write a bearer token file; returns its Path."""
    p = Path(dir) / name
    p.write_text(token + "\n")
    p.chmod(0o600)
    return p


def _ms(v):
    return f"{v}ms" if isinstance(v, int) and not isinstance(v, bool) else v


def write_agent_conf(dir, zk_connect, root, id, color, listen, token_file=None, backends=None,
                     session_timeout_ms=2000, endpoint=None, app="DEMO", version="1.0",
                     filename=None, extra=None, address=None, check=None):
    """Write <dir>/<filename or agent-<id>.yaml>; returns its Path. zk_connect may be a
    ZooKeeper/Ensemble. backends: list of dicts, e.g. [{"type": "health"},
    {"type": "haproxy-agent", "listen": "127.0.0.1:9201"}, {"type": "exec", "command": "..."}].
    address: instance.address (the application's host:port). check: the application health
    check (DESIGN §11), e.g. {"http": "http://127.0.0.1:8080/healthz", "interval": 200,
    "rise": 2}; int durations mean milliseconds.
    extra: dict merged into the top level (to add or override keys)."""
    conf = {
        "zookeeper": {"connect": _connect(zk_connect), "root": root,
                      "session_timeout_ms": session_timeout_ms},
        "instance": {"id": id, "color": color, "endpoint": endpoint or f"http://{listen}",
                     "app": app, "version": version},
        "http": {"listen": listen},
    }
    if address is not None:
        conf["instance"]["address"] = address
    if check is not None:
        conf["check"] = {k: _ms(v) if k in ("interval", "timeout") else v
                         for k, v in check.items()}
    if token_file is not None:
        conf["http"]["token_file"] = str(token_file)
    if backends:
        conf["backends"] = list(backends)
    conf.update(extra or {})
    return write_yaml(Path(dir) / (filename or f"agent-{id}.yaml"), conf)


SWITCH_DEFAULTS = {"batch_size": 1, "min_ready": 1, "settle": "0s", "call_timeout": "2s",
                   "retries": 3, "backoff": "100ms"}


def write_controller_conf(dir, zk_connect, root, listen=None, token_file=None, id=None,
                          session_timeout_ms=2000, filename=None, extra=None, **switch):
    """Write <dir>/<filename or controller-<id>.yaml>; returns its Path. switch keys
    (batch_size, min_ready, settle, call_timeout, retries, resync, backoff) override
    SWITCH_DEFAULTS; an int duration means milliseconds (settle=500 -> "500ms")."""
    sw = dict(SWITCH_DEFAULTS)
    sw.update({k: _ms(v) if k in ("settle", "call_timeout", "resync", "backoff",
                                  "min_healthy_time") else v
               for k, v in switch.items()})
    conf = {
        "zookeeper": {"connect": _connect(zk_connect), "root": root,
                      "session_timeout_ms": session_timeout_ms},
        "switch": sw,
    }
    if listen is not None or token_file is not None:
        conf["http"] = {}
        if listen is not None:
            conf["http"]["listen"] = listen
        if token_file is not None:
            conf["http"]["token_file"] = str(token_file)
    if id is not None:
        conf["id"] = id
    conf.update(extra or {})
    return write_yaml(Path(dir) / (filename or f"controller-{id or 'c'}.yaml"), conf)


# ----------------------------------------------------------------------------------------------
# Load (wrk)
# ----------------------------------------------------------------------------------------------

def parse_wrk(text):
    """wrk's report as a dict: requests, seconds, rps, non2xx, errors {connect, read, write,
    timeout}, error_total, latency_avg (text), text (the whole report)."""
    r = {"text": text, "requests": 0, "seconds": 0.0, "rps": 0.0, "non2xx": 0,
         "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "latency_avg": None}
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s|m)\b", text)
    if m:
        r["requests"] = int(m.group(1))
        unit = {"s": 1.0, "ms": 0.001, "m": 60.0}[m.group(3)]
        r["seconds"] = float(m.group(2)) * unit
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Latency\s+(\S+)", text)
    if m:
        r["latency_avg"] = m.group(1)
    r["error_total"] = sum(r["errors"].values()) + r["non2xx"]
    return r


def run_wrk(url, duration=3, connections=64, threads=2, extra=()):
    """Run wrk to completion and return parse_wrk() of its report."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise HarnessError("wrk not installed (apt-get install wrk)")
    r = run_cmd([wrk, f"-c{connections}", f"-t{threads}", f"-d{duration}s", *extra, url],
                timeout=duration + 30)
    if r.returncode != 0:
        raise HarnessError(f"wrk failed rc={r.returncode}: {r.stderr or r.stdout}")
    return parse_wrk(r.stdout)
