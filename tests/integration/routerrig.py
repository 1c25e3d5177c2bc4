"""routerrig.py: the balancers behind bg-router as the tests and the bench set them up: the one
nginx set-up (test_router_nginx.py, test_router_killed.py, slow_router_nginx.py,
bench/bench_lb.py), HAProxy for kind haproxy (bench_lb.py), and what the slow router tests share
(issue 12).

  nginx_conf()    an nginx.conf for a private prefix: one `server` on a loopback port, temp
                  paths under the prefix, logs to stderr; the caller gives what goes at http
                  level and inside the server (router_http()/ROUTER_SERVER: an include of the
                  router's upstream file and `proxy_pass http://shop`)
  Nginx           nginx -p PREFIX -c PREFIX/nginx.conf: write the conf, `nginx -t`, start it
                  as a non-daemon master (a harness Proc: stopped with the test), reload,
                  count the reloads its log shows
  router_yaml()   a router.yaml for bg-router (kind nginx by default)
  start_router()  bg-router -c router.yaml as a harness Proc
  RouterRig       n blue + n green bg-demo-app instances with agents, one controller, a
                  balancer and a bg-router in front: the bench scenario "bluegreen + <kind>
                  router". The balancer is chosen by kind from ROUTER_KINDS (kind -> class:
                  NginxRouted, HaproxyRouted).

  start_system()  2 blue + 2 green instances with agents (instance.address) and a controller,
                  converged on blue: what the slow router tests put a balancer in front of
  serving_colors() the colours /routers/<id> serves
  flip_once()     `bgctl switch <new> --wait` under load, measured against the probe (slow
                  router tests)

Every port is a free loopback port; nothing listens elsewhere."""

import json
import re
import shutil
import time
import urllib.request

import harness as h
from bgsys import System

# ----------------------------------------------------------------------------------------------
# nginx.conf
# ----------------------------------------------------------------------------------------------

NGINX_CONF = """\
{comment}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log stderr notice;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{http}
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""

UPSTREAM = "shop"  # the upstream name bg-router renders and the server proxies to

ROUTER_SERVER = f"""\
        location / {{
            proxy_pass http://{UPSTREAM};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""


def router_http(prefix):
    """http-level text for nginx behind bg-router: include the upstream file it writes."""
    return f"    include {prefix}/upstream.conf;"


def nginx_conf(prefix, port, http, server, workers=1, connections=1024, comment=""):
    """The text of nginx.conf (see NGINX_CONF); comment: a first line, '# ...\\n'."""
    return NGINX_CONF.format(prefix=prefix, port=port, http=http, server=server,
                             workers=workers, connections=connections, comment=comment)


# ----------------------------------------------------------------------------------------------
# nginx, a non-daemon master under a private prefix
# ----------------------------------------------------------------------------------------------

class Nginx:
    """nginx with -p PREFIX (created, with tmp/ and logs/) and PREFIX/nginx.conf on a free
    loopback port. .argv is `nginx -p ... -c ... -e stderr` (add -t, -s reload, ...); .url is
    http://127.0.0.1:PORT/. http/server: see nginx_conf() (default: behind bg-router)."""

    def __init__(self, t, prefix, http=None, server=ROUTER_SERVER, workers=1, connections=1024,
                 comment="", port=None, name="nginx"):
        if not shutil.which("nginx"):
            raise h.Skip("nginx not installed")
        self.t, self.name = t, name
        self.prefix = prefix
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        self.port = port or h.free_port()
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(nginx_conf(prefix, self.port, router_http(prefix) if http is None
                                        else http, server, workers, connections, comment))
        self.upstream = prefix / "upstream.conf"  # bg-router's file, when behind one
        self.argv = ["nginx", "-p", str(prefix), "-c", str(self.conf), "-e", "stderr"]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = None
        self.procs = []  # every master started, for reloads()

    def check(self):
        """nginx -t on the configuration; HarnessError with its words if it fails."""
        r = h.run_cmd(self.argv + ["-t"], quiet=True)
        if r.returncode != 0:
            raise h.HarnessError(f"nginx -t rejects {self.conf}: {r.stderr}")

    def start(self, name=None):
        """Start the master in the foreground (-g 'daemon off;'); returns its Proc."""
        self.proc = self.t.proc(self.argv + ["-g", "daemon off;"], name=name or self.name)
        self.procs.append(self.proc)
        return self.proc

    def reload(self):
        r = h.run_cmd(self.argv + ["-s", "reload"], quiet=True)
        if r.returncode != 0:
            raise h.HarnessError(f"nginx -s reload: {r.stderr}")

    def reloads(self, since=0):
        """SIGHUPs (reloads) the master logged since its log mark `since` (nginx logs "signal 1
        (SIGHUP) received from PID, reconfiguring", then "reconfiguring" again: one counted)."""
        if self.proc is None:
            return 0
        return len(re.findall(r"\(SIGHUP\) received", self.proc.log_text(since)))

    def stop(self):
        if self.proc is not None:
            self.proc.stop()


# ----------------------------------------------------------------------------------------------
# bg-router
# ----------------------------------------------------------------------------------------------

def router_yaml(path, zk, root, rid="lb-1", kind="nginx", nginx=None, http_listen=None,
                session_timeout_ms=4000, haproxy=None):
    """Write router.yaml at path; returns it. nginx: the `nginx:` section (None: no section,
    e.g. for another kind); haproxy: the `haproxy:` section as it is. zk: a ZooKeeper (its
    .connect) or a connect string."""
    conf = {"zookeeper": {"connect": getattr(zk, "connect", zk), "root": root,
                          "session_timeout_ms": session_timeout_ms},
            "router": {"id": rid, "kind": kind}}
    if nginx is not None:
        conf["nginx"] = {"upstream": UPSTREAM, **nginx}
    if haproxy is not None:
        conf["haproxy"] = haproxy
    if http_listen:
        conf["http"] = {"listen": http_listen}
    return h.write_yaml(path, conf)


def nginx_section(ngx, file=None, confirm_port=None, quiet_test=False, **extra):
    """The router.yaml `nginx:` section driving Nginx ngx: its file, `nginx -t` and `nginx -s
    reload` on its conf, confirm through it on confirm_port (None: no confirmation)."""
    sec = {"file": str(file or ngx.upstream),
           "test": [*ngx.argv, "-t", "-q"] if quiet_test else [*ngx.argv, "-t"],
           "reload": [*ngx.argv, "-s", "reload"]}
    if confirm_port:
        sec["confirm"] = f"127.0.0.1:{confirm_port}"
    sec.update(extra)
    return sec


def start_router(t, conf, name="router"):
    """bg-router -c conf, as a harness Proc."""
    return t.proc([h.bin("bg-router"), "-c", str(conf)], name=name)


def router_node(s, rid="lb-1"):
    """/routers/<rid> of System s as a dict, or None while it is not there."""
    try:
        return json.loads(h.zk_get(s.zk, s.root + "/routers/" + rid))
    except Exception:  # noqa: BLE001 -- not there yet
        return None


def serving_colors(s, rid="lb-1"):
    """The colours /routers/<rid> serves, sorted (None while the node is not there)."""
    n = router_node(s, rid)
    return sorted({x["color"] for x in n["serving"]}) if n else None


# ----------------------------------------------------------------------------------------------
# What the slow router tests share
# ----------------------------------------------------------------------------------------------

def start_system(t, zk, batch_size=2):
    """2 blue + 2 green bg-demo-app instances with agents (instance.address, 4 s sessions) and
    one controller (settle 0s), converged on blue; returns the bgsys System."""
    s = System(t, zk)
    s.flip("blue")
    for color in ("blue", "green"):
        for i in (1, 2):
            app = t.demo_app(f"{color}-{i}")
            s.agent(f"{color}-{i}", color, address=f"127.0.0.1:{app.port}",
                    session_timeout_ms=4000)
    s.controller("c1", batch_size=batch_size, settle="0s")
    s.wait_converged("blue", timeout=30)
    return s


def flip_once(t, s, probe, new):
    """`bgctl switch new --wait` (must exit 0), then until the router serves only new and the
    probe saw 20 new-colour answers in a row. Returns slow_zero_downtime.analyse_flip's figures
    plus wait_ms (bgctl), router_ms (the router serving only new) and stale_after_wait (probe
    requests sent after bgctl returned that the old colour answered)."""
    import slow_zero_downtime as zd  # noqa: PLC0415 -- it imports harness users
    flip_t = time.time()
    rc, _, _ = s.bgctl("switch", new, "--wait")
    t.check_eq(rc, 0, f"bgctl switch {new} --wait")
    returned = time.time()
    h.wait_until(lambda: serving_colors(s) == [new], timeout=20,
                 msg=lambda: f"router never served only {new}")
    served = time.time()
    deadline = time.monotonic() + 20
    while True:
        res = zd.analyse_flip(probe.since(flip_t), flip_t, new)
        if res["streak"] >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    stale = sum(1 for r in probe.since(returned) if r[0] >= returned and r[2] == 200
                and r[3] == zd.other(new))
    res.update({"to": new, "wait_ms": (returned - flip_t) * 1000,
                "router_ms": (served - flip_t) * 1000, "stale_after_wait": stale})
    h.log(f"flip -> {new}: bgctl {res['wait_ms']:.0f} ms, router serving {res['router_ms']:.0f}"
          f" ms, cutover {res['cutover_ms']} ms, old answers after --wait {stale}")
    probe.forget_before(flip_t)
    return res


def router_metric(hport, name):
    """One unlabelled sample of bg-router's /metrics on 127.0.0.1:hport."""
    with urllib.request.urlopen(f"http://127.0.0.1:{hport}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    if not m:
        raise h.HarnessError(f"bg-router /metrics has no {name}")
    return float(m.group(1))


# ----------------------------------------------------------------------------------------------
# The bench rig: bluegreen + a balancer driven by bg-router
# ----------------------------------------------------------------------------------------------

class NginxRouted:
    """kind nginx: an nginx behind bg-router (2 workers, 4096 connections: the bench's load)."""

    kind = "nginx"
    describe = "nginx router (bg-router kind nginx)"

    def __init__(self, t, label):
        self.ngx = Nginx(t, t.path(label), workers=2, connections=4096,
                         comment="# bg-router kind nginx in front of blue and green\n",
                         name=label)

    def router_kw(self):
        """router_yaml() keywords for this kind."""
        # keepalive: idle connections to the instances kept (the seed-style rig's upstreams
        # have them too; without it nginx opens one per request)
        return {"kind": "nginx", "nginx": nginx_section(self.ngx, confirm_port=h.free_port(),
                                                        quiet_test=True,
                                                        options=["keepalive 32"])}

    def start(self, router):
        """Start nginx once bg-router has written its file (nginx cannot start without the
        include; the router's first reload fails and is retried); returns the port."""
        router.wait_log(r"event=nginx_apply_failed", timeout=20)
        self.ngx.check()
        self.ngx.start()
        return self.ngx.port

    def reloads(self, since=0):
        return self.ngx.reloads(since)

    def mark(self):
        return self.ngx.proc.mark()

    def procs(self):
        return [self.ngx.proc]


class HaproxyRouted:
    """kind haproxy: an HAProxy (master-worker, maxconn 8192) whose backend app bg-router keeps
    through the Runtime API and haproxy.file (a second -f): no reload ever."""

    kind = "haproxy"
    describe = "HAProxy runtime router (bg-router kind haproxy)"

    def __init__(self, t, label):
        from test_router_haproxy import HAPROXY_CFG_NO_BACKEND  # noqa: PLC0415 -- a test module
        self.t, self.label = t, label
        self.sock, self.port = t.path(f"{label}-haproxy.sock"), h.free_port()
        self.cfg, self.file = t.path(f"{label}-haproxy.cfg"), t.path(f"{label}-app.cfg")
        self.cfg.write_text(HAPROXY_CFG_NO_BACKEND.format(sock=self.sock, port=self.port)
                            .replace("global\n", "global\n    maxconn 8192\n", 1))
        self.file.write_text("backend app\n    balance roundrobin\n")
        self.proc = None

    def router_kw(self):
        return {"kind": "haproxy", "haproxy": {"socket": str(self.sock), "backend": "app",
                                               "file": str(self.file)}}

    def start(self, router):
        """Start HAProxy (its backend empty until the router fills it); returns the port."""
        self.proc = self.t.proc(["haproxy", "-W", "-db", "-f", str(self.cfg), "-f",
                                 str(self.file)], name=f"haproxy-{self.label}")
        h.wait_until(lambda: self.sock.exists(), timeout=10, msg="HAProxy never opened its socket")
        return self.port

    def reloads(self, since=0):
        return 0  # HAProxy is never reloaded: the Runtime API changes it in place

    def mark(self):
        return self.proc.mark()

    def procs(self):
        return [self.proc]


# kind -> the balancer class RouterRig drives through bg-router (router_kw, start, reloads,
# mark, procs, describe); bench_lb.py's SCENARIOS has a row per kind and batch size.
ROUTER_KINDS = {"nginx": NginxRouted, "haproxy": HaproxyRouted}


class RouterRig:
    """n blue + n green bg-demo-app instances with agents (instance.address), one controller
    (settle 0s, batch_size), a balancer of `kind` (ROUTER_KINDS) and one bg-router (id lb-1,
    /metrics on a free port) in front. Has what slow_zero_downtime.drive() needs (.url,
    .color, .flip, .wait_done) plus .reloads() (balancer reloads) and .applies() (the
    router's changes and their mean time) since start."""

    def __init__(self, t, zk, kind="nginx", n=2, batch_size=1, label=None):
        if kind not in ROUTER_KINDS:
            raise h.HarnessError(f"no router rig for kind {kind!r} (known: {list(ROUTER_KINDS)})")
        self.t, self.zk, self.kind, self.n, self.batch_size = t, zk, kind, n, batch_size
        self.label = label or f"router-{kind}"
        self.procs = []

    def start(self):
        t = self.t
        self.sys = s = System(t, self.zk)
        s.flip("blue")
        for color in ("blue", "green"):
            for i in range(1, self.n + 1):
                name = f"{color}-{i}"
                app = t.demo_app(name, version=f"{self.label}-{color}")
                self.procs.append(app)
                s.agent(name, color, start=False, address=f"127.0.0.1:{app.port}",
                        session_timeout_ms=4000)
        for a in s.agents:
            a.start(wait=False)
        for a in s.agents:
            a.proc.wait_log(r"event=registered", timeout=20)
            self.procs.append(a.proc)
        self.ctl = s.controller(f"rt-{self.label}", batch_size=self.batch_size, settle="0s")
        self.procs.append(self.ctl)
        s.wait_converged("blue", timeout=30)
        self.lb = ROUTER_KINDS[self.kind](t, self.label)
        self.hport = h.free_port()
        conf = router_yaml(t.path(f"router-{self.label}.yaml"), self.zk, s.root,
                           http_listen=f"127.0.0.1:{self.hport}", **self.lb.router_kw())
        self.router = start_router(t, conf, name=f"router-{self.label}")
        self.procs.append(self.router)
        self.port = self.lb.start(self.router)
        self.procs += self.lb.procs()
        h.wait_until(lambda: self.serving() == ["blue"], timeout=30,
                     msg=lambda: f"router never served blue: {router_node(s)}")
        self.url = f"http://127.0.0.1:{self.port}/"
        self.color = "blue"
        self.wait_serving("blue")
        self.reload_mark = self.lb.mark()
        self.metrics0 = {n: router_metric(self.hport, n) for n in (
            "bg_router_applies_total", "bg_router_apply_failures_total",
            "bg_router_apply_seconds_sum", "bg_router_apply_seconds_count")}
        return self

    @property
    def fport(self):
        return self.port

    def serving(self):
        n = router_node(self.sys)
        return sorted({x["color"] for x in n["serving"]}) if n else None

    def wait_serving(self, color, n=40, timeout=15):
        import slow_zero_downtime as zd  # noqa: PLC0415 -- it imports harness users
        zd.HaproxyRig.wait_serving(self, color, n, timeout)

    def flip(self, color):
        """Set /active_color; returns the flip's wall-clock time (the node's mtime)."""
        self.mark = self.ctl.mark()
        self.sys.flip(color)
        st = h.zk_stat(self.zk, self.sys.root + "/active_color")
        self.color = color
        return st["mtime"] / 1000.0

    def wait_done(self, color, timeout=30):
        """The controller's switch_end converged (it waits for the router) and /status
        converged; returns the controller's switch ms."""
        m = self.ctl.wait_log(rf"event=switch_end from=\w+ to={color} result=converged "
                              rf"ms=(\d+)", timeout=timeout, since=self.mark)
        self.sys.wait_converged(color, timeout=timeout)
        return int(m.group(1))

    def reloads(self):
        """Balancer reloads since start() (nginx: SIGHUPs its log shows)."""
        return self.lb.reloads(self.reload_mark)

    def applies(self):
        """What the router did since start() (its /metrics): {"router_applies": changes,
        "router_apply_failures": failed ones, "router_apply_mean_ms": mean time of one change,
        render to confirmed}."""
        names = ("bg_router_applies_total", "bg_router_apply_failures_total",
                 "bg_router_apply_seconds_sum", "bg_router_apply_seconds_count")
        now = {n: router_metric(self.hport, n) for n in names}
        d = {n: now[n] - self.metrics0[n] for n in names}
        return {"router_applies": d[names[0]], "router_apply_failures": d[names[1]],
                "router_apply_mean_ms": 1000 * d[names[2]] / d[names[3]] if d[names[3]]
                else None}

    def stop(self):
        for p in reversed(self.procs):
            p.stop()

    def describe(self):
        batch = f", batch_size {self.batch_size}" if self.batch_size != 1 else ""
        return f"bluegreen + {self.lb.describe}{batch}"

