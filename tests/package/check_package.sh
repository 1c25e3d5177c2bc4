#!/usr/bin/env bash
# check_package.sh -- install the Debian package on this machine, check what it installed, run
# the INSTALLED bg-agent, bg-controller and bgctl against a test ZooKeeper (a switch and a
# rollback converge: tests/package/installed_system.py), then purge the package and check that
# it left nothing behind but the bluegreen user.
#
# Usage: tests/package/check_package.sh [DEB] [TOOLS_BUILD_DIR]
#   DEB              default: the newest dist/bluegreen_*.deb (scripts/package.sh builds it)
#   TOOLS_BUILD_DIR  a build with the tests on, for the harness's zkt (default build/release)
# Needs root (apt-get install/purge): exits 77 with a message otherwise. Installs and then
# PURGES the package "bluegreen" on this machine (a bluegreen installed before is replaced).
# Ends with "checks: N passed, M failed"; exit 0 all passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: check_package.sh installs a package with apt-get: run it as root (CI does)"
    exit 77
fi
deb=${1:-$(ls -t dist/bluegreen_*.deb 2>/dev/null | head -1)}
tools=${2:-build/release}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    echo "check_package.sh: no package (build it: scripts/package.sh)" >&2
    exit 1
fi
if [ ! -x "$tools/tests/tools/zkt" ]; then
    echo "check_package.sh: $tools/tests/tools/zkt not built (cmake --build $tools --target zkt)" >&2
    exit 1
fi
case $deb in /*) ;; *) deb=$repo/$deb ;; esac

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # description command...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
t0=$SECONDS
tmp=$(mktemp -d)
export DEBIAN_FRONTEND=noninteractive
cleanup() {
    if dpkg-query -W -f='${Status}' bluegreen 2>/dev/null | grep -q installed; then
        apt-get purge -y -qq -o DPkg::Lock::Timeout=300 bluegreen >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

version=$(dpkg-deb --field "$deb" Version)
echo "== install $deb (version $version, $(stat -c %s "$deb") bytes)"
if before=$(dpkg-query -W -f='${Version}' bluegreen 2>/dev/null) && [ -n "$before" ]; then
    echo "note: bluegreen $before was installed before; it is replaced, then purged"
fi
if apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "$deb" >"$tmp/apt.log" 2>&1; then
    ok "apt-get install $(basename "$deb")"
else
    bad "apt-get install $(basename "$deb")"
    cat "$tmp/apt.log"
    echo "checks: $pass passed, $fail failed"
    exit 1
fi
check "dpkg says bluegreen $version is installed" \
    test "$(dpkg-query -W -f='${Status} ${Version}' bluegreen)" = "install ok installed $version"

echo "== what it installed"
for b in bg-agent bg-controller bg-router bgctl; do
    check "/usr/bin/$b --version: $b ${version%%-*}" \
        test "$(/usr/bin/$b --version 2>&1)" = "$b ${version%%-*}"
done
if pw=$(getent passwd bluegreen); then
    uid=$(cut -d: -f3 <<<"$pw") shell=$(cut -d: -f7 <<<"$pw")
    check "system user bluegreen (uid $uid < 1000, shell $shell)" \
        test "$uid" -lt 1000 -a "${shell##*/}" = nologin
else
    bad "postinst created the user bluegreen"
fi
check "group bluegreen" sh -c "getent group bluegreen >/dev/null"
check "/etc/bluegreen root:bluegreen 0750" \
    test "$(stat -c '%U:%G %a' /etc/bluegreen 2>/dev/null)" = "root:bluegreen 750"
for u in bg-agent bg-controller bg-router; do
    f=/usr/lib/systemd/system/$u.service
    check "$f runs /usr/bin/$u" grep -qx "ExecStart=/usr/bin/$u -c /etc/bluegreen/${u#bg-}.yaml" "$f"
done
if grep -rqs 'path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
    echo "note: dpkg is configured not to install manual pages here: not checked"
else
    for p in man1/bgctl.1 man8/bg-agent.8 man8/bg-controller.8 man8/bg-router.8; do
        name=$(basename "$p" | cut -d. -f1)
        check "man $name renders from /usr/share/man/$p.gz" \
            sh -c "man -w $name | grep -qx /usr/share/man/$p.gz &&
                   MANWIDTH=80 man $name 2>&1 | grep -q '^SYNOPSIS'"
    done
fi
check "bash completion /usr/share/bash-completion/completions/bgctl completes commands" \
    test "$(bash -c '. /usr/share/bash-completion/completions/bgctl; COMP_LINE="bgctl sw";
        COMP_POINT=8; _bgctl; echo "${COMPREPLY[*]}"')" = switch

# The example configurations as the units would run them (token path made local).
printf 'example-token\n' >"$tmp/token"
for c in agent controller; do
    sed "s|/etc/bluegreen/token|$tmp/token|" "/usr/share/bluegreen/examples/$c.yaml" >"$tmp/$c.yaml"
    check "bg-$c -c examples/$c.yaml --check-config" \
        sh -c "/usr/bin/bg-$c -c $tmp/$c.yaml --check-config >/dev/null 2>&1"
done

echo "== the installed daemons and bgctl against a test ZooKeeper"
fake=$tmp/build
mkdir -p "$fake/agent" "$fake/controller" "$fake/tests/tools"
ln -s /usr/bin/bg-agent "$fake/agent/bg-agent"
ln -s /usr/bin/bg-controller "$fake/controller/bg-controller"
ln -s /usr/bin/bgctl "$fake/controller/bgctl"
ln -s "$(cd "$tools" && pwd)/tests/tools/zkt" "$fake/tests/tools/zkt"
if BG_BUILD_DIR=$fake PYTHONDONTWRITEBYTECODE=1 timeout 180 \
    python3 tests/package/installed_system.py >"$tmp/system.log" 2>&1; then
    ok "installed_system.py: $(grep -a '^checks:' "$tmp/system.log" | tail -1)"
else
    cat "$tmp/system.log"
    bad "installed_system.py"
fi

echo "== purge"
if apt-get purge -y -qq -o DPkg::Lock::Timeout=300 bluegreen >"$tmp/apt.log" 2>&1; then
    ok "apt-get purge bluegreen"
else
    bad "apt-get purge bluegreen"
    cat "$tmp/apt.log"
fi
check "dpkg: bluegreen no longer installed" \
    sh -c "! dpkg-query -W -f='\${Status}' bluegreen 2>/dev/null | grep -q 'ok installed'"
left=$(ls -d /usr/bin/bg-agent /usr/bin/bg-controller /usr/bin/bg-router /usr/bin/bgctl /usr/share/bluegreen \
    /usr/share/doc/bluegreen /usr/lib/systemd/system/bg-agent.service \
    /usr/share/bash-completion/completions/bgctl /etc/bluegreen 2>/dev/null)
check "nothing left behind${left:+: $left}" test -z "$left"
check "the bluegreen user stays (postrm keeps system users)" sh -c "getent passwd bluegreen >/dev/null"

echo "package check took $((SECONDS - t0)) s"
echo "checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
