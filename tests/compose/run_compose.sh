#!/usr/bin/env bash
# run_compose.sh -- build and run the docker demo (docker/compose.yaml) with podman and
# podman-compose, as CI does on a Debian 12 machine that reaches no image registry:
#   0. the compose file is valid for Docker Compose too (docker-compose config: its schema);
#   1. debian:12: `debootstrap --variant=minbase bookworm` from the configured Debian mirror,
#      tarred (cached in the work dir) and `podman import`ed as docker.io/library/debian:12
#      (and :12-slim), the names the stock short names resolve to;
#   2. stand-ins for the compose file's third-party images from Debian's packages, under the
#      stock names (zookeeper:3.8, haproxy:2.6: tests/compose/*.Dockerfile);
#   3. the project's image (docker/Dockerfile, named bluegreen-demo as in compose.yaml);
#   4. podman-compose up; wait for init, both controllers and all four agents;
#   5. inside the network: N requests through HAProxy all answered by blue, `bgctl switch green
#      --wait`, N all answered by green, `bgctl switch blue --wait`, N all blue again;
#   6. podman-compose down, and nothing of the project left running.
# Each step prints its time. Exit 0: all passed; 1: a step failed (said why, with the
# containers' logs); 77: skipped (not root, or podman cannot run at all), said loudly.
#
# podman's settings stay private to this run (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF,
# CONTAINERS_REGISTRIES_CONF under the work dir; nothing in /etc is written): runc (crun
# refuses the hybrid cgroup layout of these machines), default ulimits nofile=20000 and
# nproc=4096 (podman's defaults exceed the hard limits here), the CNI network backend with the
# dnsname plugin (Debian 12's aardvark-dns stalls DNS for seconds when containers start or
# stop), images and containers in a private graphroot under the work dir (kept: a re-run reuses
# the base tarball and the image layers).
#
# Usage: tests/compose/run_compose.sh [WORKDIR]   (default build/compose in the repository)
# Environment: BG_DEBIAN_MIRROR (default: the first Debian mirror in /etc/apt/sources.list*),
# BG_COMPOSE_REQUESTS (requests per colour check, default 40), BG_COMPOSE_KEEP=1 (leave the
# demo running: no down).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-$REPO/build/compose}
N=${BG_COMPOSE_REQUESTS:-40}
COMPOSE_FILE=$REPO/docker/compose.yaml
T0=$SECONDS
step_t0=$SECONDS
step_name=""

say() { printf '[%4ds] %s\n' "$((SECONDS - T0))" "$*"; }
step() { # name: ends the previous step (prints its time), starts the next
    [ -n "$step_name" ] && say "step done: $step_name ($((SECONDS - step_t0)) s)"
    step_name=$1
    step_t0=$SECONDS
    say "== $1"
}
skip() {
    echo "######################################################################"
    echo "## run_compose: SKIPPED: $*"
    echo "######################################################################"
    exit 77
}

[ "$(id -u)" -eq 0 ] || skip "not root (podman with a private graphroot and CNI needs root)"
command -v podman >/dev/null || skip "podman is not installed (scripts/deps.sh --test installs it)"
for tool in podman-compose docker-compose runc debootstrap; do
    command -v "$tool" >/dev/null || {
        echo "run_compose: FAIL: $tool is not installed (scripts/deps.sh --test installs it)"
        exit 1
    }
done
[ -x /usr/lib/cni/dnsname ] || {
    echo "run_compose: FAIL: the CNI dnsname plugin is missing" \
        "(golang-github-containernetworking-plugin-dnsname; scripts/deps.sh --test)"
    exit 1
}

mkdir -p "$W"
W=$(cd "$W" && pwd)
# One per work dir (two work dirs may run at once): the compose project (its containers, CNI
# network and its IPAM state in /var/lib/cni) and podman's state that must live on tmpfs
# (reboot detection), in /run.
wid=$(printf '%s' "$W" | md5sum | cut -c1-8)
PROJECT=bgcompose$wid
RUNDIR=/run/bg-compose-$wid
mkdir -p "$W/cni" "$RUNDIR"
cat >"$W/containers.conf" <<CONF
# Written by tests/compose/run_compose.sh; private to its runs.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$W/cni"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$RUNDIR/libpod"
CONF
cat >"$W/storage.conf" <<CONF
# Written by tests/compose/run_compose.sh; private to its runs.
[storage]
driver = "overlay"
graphroot = "$W/storage"
runroot = "$RUNDIR/storage"
CONF
cat >"$W/registries.conf" <<CONF
# Written by tests/compose/run_compose.sh: short names mean Docker Hub's, as with Docker; the
# images are all built or imported locally under those names, and nothing is pulled.
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
CONF
export CONTAINERS_CONF=$W/containers.conf
export CONTAINERS_STORAGE_CONF=$W/storage.conf
export CONTAINERS_REGISTRIES_CONF=$W/registries.conf

if ! podman info >"$W/podman-info.log" 2>&1; then
    cat "$W/podman-info.log"
    skip "podman cannot run here (podman info failed, above)"
fi
say "podman $(podman version --format '{{.Client.Version}}'), runtime $(podman info --format '{{.Host.OCIRuntime.Name}}'), network $(podman info --format '{{.Host.NetworkBackend}}'), graphroot $W/storage"

compose() { podman-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }
cnt() { echo "${PROJECT}_$1_1"; } # the container podman-compose names after a service

dump_logs() {
    local c
    for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
        echo "---- podman logs $c (last 40 lines)"
        podman logs --tail 40 "$c" 2>&1 || true
    done
    podman ps -a --filter "label=io.podman.compose.project=$PROJECT" || true
}
down() {
    compose down -t 5 >"$W/down.log" 2>&1 || { cat "$W/down.log"; return 1; }
    podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
}
fail() {
    trap - EXIT
    say "FAIL ($step_name): $*"
    dump_logs
    [ "${BG_COMPOSE_KEEP:-0}" = 1 ] || down || true
    say "run_compose: FAILED in step '$step_name' after $((SECONDS - T0)) s"
    exit 1
}
trap 'fail "unexpected error (exit status $?) at line $LINENO"' EXIT

step "leftovers of an earlier run"
compose down -t 2 >/dev/null 2>&1 || true
podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true

step "compose file valid for Docker Compose (docker-compose config)"
# Docker Compose's own schema check (Debian's docker-compose 1.29; no engine needed): the file
# must keep working with Docker, not only with podman-compose, which checks little.
docker-compose -f "$COMPOSE_FILE" config -q >"$W/compose-config.log" 2>&1 ||
    { cat "$W/compose-config.log"; fail "docker-compose config rejects $COMPOSE_FILE"; }

step "debian:12 base image (debootstrap --variant=minbase bookworm; the tarball is cached)"
BASE_TAR=$W/debian-12-minbase.tar
mirror=${BG_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE '^(deb|URIs:)( +\[[^]]*\])? +https?://[^ ]+' | grep -v security | head -1 |
        awk '{print $NF}') || true
    mirror=${mirror:-http://deb.debian.org/debian}
fi
if [ ! -s "$BASE_TAR" ]; then
    say "debootstrap from $mirror"
    # An interrupted debootstrap may have left proc/sys mounted in its tree: unmount first.
    findmnt -rn -o TARGET | grep "^$W/rootfs/" | sort -r | xargs -r umount -l || true
    rm -rf "$W/rootfs"
    debootstrap --variant=minbase bookworm "$W/rootfs" "$mirror" >"$W/debootstrap.log" 2>&1 ||
        { tail -20 "$W/debootstrap.log"; fail "debootstrap failed (log: $W/debootstrap.log)"; }
    # As the stock image: no package lists, no apt cache.
    rm -rf "$W/rootfs"/var/lib/apt/lists/* "$W/rootfs"/var/cache/apt/*.bin
    tar -C "$W/rootfs" --numeric-owner -cf "$BASE_TAR.tmp" . || fail "tar of the base tree"
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$W/rootfs"
else
    say "cached: $BASE_TAR"
fi
if ! podman image exists docker.io/library/debian:12; then
    podman import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' "$BASE_TAR" docker.io/library/debian:12 >/dev/null ||
        fail "podman import of $BASE_TAR"
fi
podman tag docker.io/library/debian:12 docker.io/library/debian:12-slim

# podman build as CI needs it: host network for apt (no registry, only the Debian mirror),
# never pull, the repository as context less docker/Dockerfile.dockerignore (buildah 1.28
# does not read <Dockerfile>.dockerignore by itself).
build() { # tag dockerfile
    local tag=$1 file=$2 log
    log=$W/build-$(basename "$file").log
    podman build --pull=never --network host --ignorefile "$REPO/docker/Dockerfile.dockerignore" \
        -f "$file" -t "$tag" "$REPO" >"$log" 2>&1 ||
        { tail -30 "$log"; fail "podman build -f $file failed (log: $log)"; }
}
step "stand-in images zookeeper:3.8 and haproxy:2.6 from Debian packages"
build docker.io/library/zookeeper:3.8 "$REPO/tests/compose/zookeeper.Dockerfile"
build docker.io/library/haproxy:2.6 "$REPO/tests/compose/haproxy.Dockerfile"

step "project image bluegreen-demo (docker/Dockerfile)"
build localhost/bluegreen-demo:latest "$REPO/docker/Dockerfile"

step "podman-compose up"
BG_DEMO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export BG_DEMO_PORT
compose up -d --no-build >"$W/up.log" 2>&1 || { tail -30 "$W/up.log"; fail "podman-compose up failed (log: $W/up.log)"; }

CTL=$(cnt controller-1)
bgctl() { podman exec "$CTL" bgctl -z zookeeper:2181 "$@"; }

step "init done, controllers and the four agents up"
rc=$(timeout 120 podman wait "$(cnt init)") || fail "init did not finish within 120 s"
[ "$rc" = 0 ] || fail "init exited $rc"
deadline=$((SECONDS + 120))
until bgctl status >"$W/status.txt" 2>&1 &&
    [ "$(grep -cE '(blue|green)-[12]' "$W/status.txt")" -ge 4 ]; do
    [ $SECONDS -lt $deadline ] || { cat "$W/status.txt"; fail "not all four instances registered within 120 s"; }
    sleep 1
done
cat "$W/status.txt"
grep -q '^leader: .' "$W/status.txt" || fail "no controller leads (bgctl status above)"
# podman-compose 1.0.3 exits 0 even when a container failed to start: check each one runs.
for svc in zookeeper controller-1 controller-2 blue-1 blue-2 green-1 green-2 haproxy; do
    [ "$(podman inspect -f '{{.State.Running}}' "$(cnt "$svc")" 2>&1)" = true ] ||
        fail "container $(cnt "$svc") (service $svc) is not running"
done

# who answers: N requests through HAProxy, from inside the network (controller-1's curl).
served_by() {
    podman exec "$CTL" sh -c "for i in \$(seq $N); do curl -s -m 5 -o /dev/null -D - http://haproxy:8080/ | tr -d '\r' | sed -n 's/^X-Served-By: //Ip'; echo; done" |
        grep -v '^$' || true
}
expect_colour() { # colour timeout-s: wait until one round is all COLOUR, then check another
    local colour=$1 deadline=$((SECONDS + $2)) answers
    while :; do
        answers=$(served_by)
        if [ "$(grep -c "^$colour-[12]$" <<<"$answers")" = "$N" ]; then
            break
        fi
        [ $SECONDS -lt $deadline ] || {
            sort <<<"$answers" | uniq -c
            fail "not all $N requests through HAProxy answered by $colour within $2 s"
        }
        sleep 1
    done
    say "$N of $N requests answered by $colour: $(sort <<<"$answers" | uniq -c | tr -s ' \n' ' ')"
}
step "blue answers through HAProxy"
expect_colour blue 90

step "bgctl switch green --wait, then all green at once"
bgctl switch green --wait || fail "bgctl switch green --wait failed"
expect_colour green 0

step "bgctl switch blue --wait, then all blue at once"
bgctl switch blue --wait || fail "bgctl switch blue --wait failed"
expect_colour blue 0

step "the published port (host 127.0.0.1:$BG_DEMO_PORT) answers"
body=$(curl -s -m 5 "http://127.0.0.1:$BG_DEMO_PORT/") || fail "no answer on 127.0.0.1:$BG_DEMO_PORT"
case $body in blue-[12]*) say "host port: $body" ;; *) fail "host port answered '$body'" ;; esac

if [ "${BG_COMPOSE_KEEP:-0}" = 1 ]; then
    trap - EXIT
    say "BG_COMPOSE_KEEP=1: left running; to stop it:"
    echo "  CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF" \
        "CONTAINERS_REGISTRIES_CONF=$CONTAINERS_REGISTRIES_CONF" \
        "podman-compose -p $PROJECT -f $COMPOSE_FILE down"
    exit 0
fi
step "podman-compose down"
down || fail "podman-compose down failed"
left=$(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}')
[ -z "$left" ] || fail "containers left after down: $left"
step_name_last=$step_name
trap - EXIT
say "step done: $step_name_last ($((SECONDS - step_t0)) s)"
say "run_compose: PASSED in $((SECONDS - T0)) s"
