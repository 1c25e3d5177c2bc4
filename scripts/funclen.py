#!/usr/bin/env python3
"""funclen.py -- list C function definitions longer than a limit (default 50 lines).

Usage: scripts/funclen.py [-n LIMIT] [DIR_OR_FILE...]   (default: agent conf controller common)

bgctl's files are in controller/. A definition is a line at column 0 that is not a comment, preprocessor line or declaration and
whose following lines reach a '{' at column 0; it ends at the next '}' at column 0 (the house
style: clang-format, Linux braces). Lines counted: from the signature's first line to the
closing brace, both included. Output: "<lines> <file>:<line> <name>", longest first.
"""
import argparse
import os
import re
import sys

NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if (not line or line[0] in " \t#/*}{") or line.rstrip().endswith(";") or "(" not in line:
            i += 1
            continue
        # the signature may span lines until "{" alone at column 0
        j = i
        while j < n and not lines[j].startswith("{") and not lines[j].rstrip().endswith(";"):
            j += 1
            if j - i > 8:
                break
        if j >= n or not lines[j].startswith("{"):
            i += 1
            continue
        k = j + 1
        while k < n and not lines[k].startswith("}"):
            k += 1
        sig = " ".join(lines[i:j])
        m = NAME.search(sig)
        if m and "=" not in sig[: m.start()]:  # not an initialiser calling a macro
            yield m.group(1), i + 1, k - i + 1
        i = k + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("paths", nargs="*", default=["agent", "conf", "controller", "common"])
    a = ap.parse_args()
    found = []
    for p in a.paths:
        files = [p] if os.path.isfile(p) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith(".c"))
        for path in files:
            for name, line, length in functions(path):
                if length > a.n:
                    found.append((length, path, line, name))
    for length, path, line, name in sorted(found, key=lambda x: (-x[0], x[1])):
        print(f"{length} {path}:{line} {name}")
    print(f"{len(found)} functions over {a.n} lines", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(0)
