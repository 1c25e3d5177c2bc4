#!/usr/bin/env python3
"""Issue #8, malformed check configuration is refused by `bg-agent --check-config`, each
error naming file:line:column (1-based) and what is wrong; several errors are all reported;
a good check passes; no check at all passes with a warning."""

import re

import harness as h

HEAD = """\
zookeeper: {connect: "127.0.0.1:1", root: "/t", session_timeout_ms: 2000}
instance: {id: "web-1", color: blue, address: "127.0.0.1:8080"}
http: {listen: "127.0.0.1:9101"}
"""  # lines 1-3; the check starts on line 4

CASES = [
    # (name, check block (from line 4), {lines where the error may point}, words it must say)
    ("http and tcp both given",
     'check:\n  http: "http://127.0.0.1:8080/healthz"\n  tcp: "127.0.0.1:8080"\n',
     {4, 5, 6}, ("tcp",)),
    ("rise 0",
     'check:\n  http: "http://127.0.0.1:8080/healthz"\n  rise: 0\n', {6}, ("rise",)),
    ("fall 0",
     'check:\n  tcp: "127.0.0.1:8080"\n  fall: 0\n', {6}, ("fall",)),
    ("bad URL",
     'check:\n  http: "not a url"\n', {5}, ("http",)),
    ("ftp URL",
     'check:\n  http: "ftp://127.0.0.1/x"\n', {5}, ("http",)),
    ("tcp without a port",
     'check:\n  tcp: "127.0.0.1"\n', {5}, ("tcp",)),
    ("unknown key",
     'check:\n  http: "http://127.0.0.1:8080/healthz"\n  retries: 3\n', {6}, ("retries",)),
    ("none of http, tcp, exec",
     'check:\n  interval: 1s\n', {4, 5}, ("check",)),
    ("empty exec",
     'check:\n  exec: []\n', {5}, ("exec",)),
    ("bad duration",
     'check:\n  tcp: "127.0.0.1:8080"\n  timeout: fast\n', {6}, ("timeout",)),
]


def errors(path, out):
    """[(line, column, message)] of the lines "PATH:LINE:COLUMN: message" in out."""
    rx = re.compile(re.escape(str(path)) + r":(\d+):(\d+): (.*)$", re.M)
    return [(int(a), int(b), m) for a, b, m in rx.findall(out)]


def check_config(path):
    return h.run_cmd([h.bin("bg-agent"), "-c", path, "--check-config"], timeout=20)


def test(t):
    for i, (name, block, lines, words) in enumerate(CASES):
        p = t.path(f"agent-{i}.yaml")
        p.write_text(HEAD + block)
        r = check_config(p)
        out = r.stdout + r.stderr
        errs = errors(p, out)
        hit = [e for e in errs if e[0] in lines and all(w in e[2] for w in words)]
        t.check(r.returncode != 0 and hit and not any(e[0] < 4 for e in errs),
                f"{name}: refused (rc={r.returncode}), file:line:column on line "
                f"{sorted(lines)} naming {words}: {out.strip()!r}")

    t.step("every error is reported, not only the first")
    p = t.path("agent-many.yaml")
    p.write_text(HEAD + 'check:\n  http: "not a url"\n  rise: 0\n  bogus: 1\n')
    r = check_config(p)
    out = r.stdout + r.stderr
    found = {e[0] for e in errors(p, out)}
    t.check(r.returncode != 0 and {5, 6, 7} <= found,
            f"three errors on lines 5, 6, 7 all reported: {out.strip()!r}")

    t.step("good checks pass; no check passes with a warning")
    good = [
        'check:\n  http: "http://127.0.0.1:8080/healthz"\n  interval: 500ms\n  timeout: 1s\n'
        '  rise: 2\n  fall: 3\n',
        'check: {tcp: "127.0.0.1:8080"}\n',
        'check:\n  exec: ["/bin/true", "--x"]\n  interval: 2s\n',
    ]
    for i, block in enumerate(good):
        p = t.path(f"agent-good-{i}.yaml")
        p.write_text(HEAD + block)
        r = check_config(p)
        t.check_eq(r.returncode, 0, f"good check {block.strip()!r} accepted "
                                    f"({(r.stdout + r.stderr).strip()!r})")
    p = t.path("agent-nocheck.yaml")
    p.write_text(HEAD)
    r = check_config(p)
    out = r.stdout + r.stderr
    t.check(r.returncode == 0 and re.search(r"warn", out, re.I) and "check" in out,
            f"no check: accepted with a warning: {out.strip()!r}")


h.run(test)
