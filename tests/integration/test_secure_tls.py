#!/usr/bin/env python3
"""Issue 9 / DESIGN §14: agents serve HTTPS with http.tls (libmicrohttpd + GnuTLS), their
registered endpoint defaults to https://, and a controller with http.ca_file verifies them: a
switch converges. A controller trusting another CA fails every call with a certificate error in
/status (last_error) and does not converge."""

import http.client
import shutil
import ssl
import time

import harness as h
from bgsys import System


def openssl(t, *args):
    r = h.run_cmd(["openssl", *map(str, args)], timeout=60, quiet=True)
    t.check_eq(r.returncode, 0, f"openssl {args[0]} {args[1]}" +
               (f": {r.stderr.strip()[-300:]!r}" if r.returncode else ""))


def make_ca(t, name):
    """A throwaway CA: (cert, key) paths."""
    crt, key = t.path(f"{name}.crt"), t.path(f"{name}.key")
    openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    return crt, key


def make_server_cert(t, ca, name):
    """A certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1) signed by ca."""
    crt, key, csr = t.path(f"{name}.crt"), t.path(f"{name}.key"), t.path(f"{name}.csr")
    ext = t.path(f"{name}.ext")
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(t, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    openssl(t, "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return crt, key


def https_health(port, cafile, timeout=2):
    ctx = ssl.create_default_context(cafile=str(cafile))
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    try:
        c.request("GET", "/health")
        return c.getresponse().status
    except OSError:
        return None
    finally:
        c.close()


def tls_agent(s, id, color, cert):
    port = h.free_port()
    http_conf = {"listen": f"127.0.0.1:{port}", "token_file": str(s.token_file),
                 "tls": {"cert": str(cert[0]), "key": str(cert[1])}}
    # No instance.endpoint: it must default to https://<listen>.
    a = s.agent(id, color, port=port, start=False,
                extra={"instance": {"id": id, "color": color, "app": "DEMO"}, "http": http_conf})
    a.url = f"https://127.0.0.1:{port}"
    return a.start()


def controller(s, id, ca_file):
    conf = h.write_controller_conf(s.t.dir, s.zk, s.root, id=id, retries=1,
                                   extra={"http": {"token_file": str(s.token_file),
                                                   "ca_file": str(ca_file)}})
    p = s.t.proc([h.bin("bg-controller"), "-c", str(conf)], name=f"controller-{id}")
    p.wait_log(r"event=election_joined", timeout=15)
    s.controllers.append(p)
    return p


def test(t):
    if shutil.which("openssl") is None:
        raise h.Skip("openssl not installed")
    ca = make_ca(t, "ca")
    other_ca = make_ca(t, "other-ca")
    cert = make_server_cert(t, ca, "agent")

    zk = t.zookeeper()
    s = System(t, zk, token=True)
    s.flip("blue")
    t.step("agents serve HTTPS; the registered endpoint is https://")
    agents = [tls_agent(s, "blue-1", "blue", cert), tls_agent(s, "green-1", "green", cert)]
    for a in agents:
        node = h.zk_get_json(zk, a.node)
        t.check_eq(node["endpoint"], a.url, f"{a.id}: endpoint defaults to https://<listen>")
        t.check(a.proc.wait_log(r"event=http_listen .*tls=true", timeout=5),
                f"{a.id}: logs tls=true")
    port = int(agents[0].url.rsplit(":", 1)[1])
    t.check_eq(https_health(port, ca[0]), 503, "GET /health over HTTPS, verified against the CA "
                                               "(503: not UP yet)")
    t.check_eq(https_health(port, other_ca[0]), None, "a client trusting another CA refuses it")
    try:
        code = h.http("GET", f"http://127.0.0.1:{port}/health", timeout=2)[0]
    except OSError:
        code = None
    t.check(code != 200, f"plain HTTP on the HTTPS port does not work (got {code})")

    t.step("a controller with http.ca_file verifies the agents: switches converge")
    good = controller(s, "c1", ca[0])
    s.wait_converged("blue")
    t.check_eq({a.id: https_health(int(a.url.rsplit(":", 1)[1]), ca[0]) for a in agents},
               {"blue-1": 200, "green-1": 503}, "blue UP over HTTPS")
    s.flip("green")
    s.wait_converged("green")
    t.check_eq({a.id: https_health(int(a.url.rsplit(":", 1)[1]), ca[0]) for a in agents},
               {"blue-1": 503, "green-1": 200}, "switched to green over HTTPS")
    good.stop()

    t.step("a controller trusting another CA: certificate errors, no convergence")
    bad = controller(s, "c2", other_ca[0])
    s.flip("blue")

    def cert_error():
        st = s.status()
        return st and st.get("leader") == "c2" and any(
            "certificate" in (i.get("last_error") or "").lower() for i in st["instances"])
    h.wait_until(cert_error, timeout=20,
                 msg=lambda: f"no certificate error in /status: {s.status()}")
    st = s.status()
    errs = {i["id"]: i.get("last_error") for i in st["instances"]}
    h.log(f"last_error: {errs}")
    t.check(any("certificate" in (e or "").lower() for e in errs.values()),
            f"/status last_error names the certificate: {errs}")
    time.sleep(2)
    st = s.status()
    t.check(not (st["phase"] == "converged" and st["applied"] == "blue"),
            f"did not converge on blue: phase={st['phase']} applied={st.get('applied')}")
    t.check_eq({a.id: https_health(int(a.url.rsplit(":", 1)[1]), ca[0]) for a in agents},
               {"blue-1": 503, "green-1": 200}, "no agent was changed by the refused calls")
    t.check(bad.alive(), "the controller keeps running")


h.run(test)
