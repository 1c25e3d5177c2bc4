#!/usr/bin/env bash
# deps.sh -- install the Debian packages bluegreen builds, tests and demos with (only the
# missing ones). Needs root or sudo. Usage: scripts/deps.sh [--demo|--test|--compose]
set -euo pipefail

pkgs=(build-essential cmake pkg-config libzookeeper-mt-dev libcurl4-openssl-dev libyaml-dev
      libmicrohttpd-dev libjansson-dev libcmocka-dev zookeeper default-jre-headless curl
      python3 procps)
if [ "${1:-}" = "--demo" ]; then
    pkgs+=(haproxy)
fi
if [ "${1:-}" = "--demo-nginx" ]; then # scripts/demo.sh --nginx: nginx driven by bg-router
    pkgs+=(nginx-light)
fi
# The docker demo run with podman (tests/compose/run_compose.sh, a stage of scripts/test.sh):
# podman-compose; docker-compose (Debian's 1.29, only to check the compose file against Docker
# Compose's schema: no Docker engine); runc (crun refuses these machines' hybrid cgroup
# layout); debootstrap for the debian:12 base; the CNI network backend with the dnsname plugin
# (Debian 12's aardvark-dns stalls DNS for seconds when containers start or stop).
compose_pkgs=(podman podman-compose docker-compose runc debootstrap containernetworking-plugins
              golang-github-containernetworking-plugin-dnsname)
if [ "${1:-}" = "--compose" ]; then
    pkgs+=("${compose_pkgs[@]}")
fi
if [ "${1:-}" = "--test" ]; then
    pkgs+=("${compose_pkgs[@]}")
    # Real balancers and load for the tests; sanitizer runtimes; formatting check; the npm
    # client used to check the Eureka double; gnuplot for the benchmark plots; clang with the
    # libFuzzer and sanitizer runtimes (libclang_rt.fuzzer-x86_64.a) for fuzz/.
    # chromium: the status page test (tests/integration/test_status_page.py) renders GET / headless.
    pkgs+=(haproxy nginx-light wrk clang-format nodejs npm gnuplot-nox jq clang libclang-rt-14-dev
        chromium)
    # The manual pages (scdoc) and their check (man-db); the Debian package (dpkg-dev's
    # dpkg-shlibdeps, file for CPack), its check (lintian; adduser, which it depends on, for
    # installing it) and the completion's test (bash-completion).
    pkgs+=(scdoc man-db dpkg-dev file lintian bash-completion adduser)
    # valgrind (test_hostile_bgctl_uninit) and openssl (test_secure_tls): BG_STRICT=1 fails a
    # test that would skip for want of them.
    pkgs+=(valgrind openssl)
    # promtool, which checks every daemon's /metrics (test_metrics).
    pkgs+=(prometheus)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nginx from any flavour will do.
if printf '%s\n' "${missing[@]}" | grep -qx nginx-light && command -v nginx >/dev/null; then
    missing=("${missing[@]/nginx-light}")
fi
# node/npm may come from elsewhere (e.g. nvm); only install if absent.
for tool in nodejs:node npm:npm; do
    p=${tool%%:*} bin=${tool##*:}
    if printf '%s\n' "${missing[@]}" | grep -qx "$p" && command -v "$bin" >/dev/null; then
        missing=("${missing[@]/$p}")
    fi
done
read -r -a missing <<<"${missing[*]}"
if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx/haproxy/zookeeper services on install where an init system runs;
# the tests start their own on free ports, so stop the system ones if any.
for svc in nginx haproxy zookeeper prometheus; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
        $SUDO systemctl stop "$svc" || true
    fi
done
echo "deps: done"
