#!/usr/bin/env bash
# demo.sh -- the quick start: install what is missing, build, and run the whole system on
# this machine: a private ZooKeeper, two controllers, two blue and two green demo instances
# with their agents, and HAProxy in front; then switch blue -> green -> blue while you watch.
# Usage: scripts/demo.sh [--keep]   (--keep: leave everything running until Enter/Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
keep=0
[ "${1:-}" = "--keep" ] && keep=1

scripts/deps.sh --demo
echo "== building"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
B=$top/build/release
d=$top/.demo
rm -rf "$d"
mkdir -p "$d/zk"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

read -r ZKP HAP ADM P1 P2 P3 P4 A1 A2 A3 A4 C1 C2 < <(python3 -c '
import socket
s=[socket.socket() for _ in range(13)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')

echo "== ZooKeeper on 127.0.0.1:$ZKP (logs in .demo/)"
cat >"$d/zk/zoo.cfg" <<CFG
tickTime=200
dataDir=$d/zk/data
clientPort=$ZKP
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=ruok,srvr,stat,mntr
admin.enableServer=false
forceSync=no
CFG
cp=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar
for j in netty-handler netty-common netty-transport netty-buffer netty-codec netty-resolver \
         netty-transport-native-epoll netty-transport-native-unix-common; do
    cp=$cp:/usr/share/java/$j.jar
done
java -Xmx256m -XX:+UseSerialGC -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain \
    "$d/zk/zoo.cfg" >"$d/zookeeper.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ "$( (exec 3<>/dev/tcp/127.0.0.1/$ZKP && echo ruok >&3 && cat <&3) 2>/dev/null)" = imok ] && break
    sleep 0.1
done
ZK=127.0.0.1:$ZKP
"$B/controller/bgctl" -z "$ZK" init --color blue

echo "== 2 controllers, 2 blue + 2 green instances with agents, HAProxy on 127.0.0.1:$HAP"
for i in 1 2; do
    cat >"$d/controller-$i.yaml" <<CFG
zookeeper: {connect: "$ZK", root: "/", session_timeout_ms: 2000}
switch: {batch_size: 1, min_ready: 1, settle: 0s, call_timeout: 2s, retries: 3, resync: 30s}
id: controller-$i
CFG
    "$B/controller/bg-controller" -c "$d/controller-$i.yaml" >"$d/controller-$i.log" 2>&1 &
    pids+=($!)
done
apps=(blue-1:$P1:$A1:blue:1.0 blue-2:$P2:$A2:blue:1.0 green-1:$P3:$A3:green:2.0 green-2:$P4:$A4:green:2.0)
servers=""
for a in "${apps[@]}"; do
    IFS=: read -r name port aport color version <<<"$a"
    "$B/tests/tools/bg-demo-app" --listen "127.0.0.1:$port" --name "$name" --version "$version" \
        >"$d/$name-app.log" 2>&1 &
    pids+=($!)
    cat >"$d/$name-agent.yaml" <<CFG
zookeeper: {connect: "$ZK", root: "/", session_timeout_ms: 2000}
instance: {id: "$name", color: $color, app: "DEMO", version: "$version"}
http: {listen: "127.0.0.1:$aport"}
backends:
  - {type: health, confirm_timeout: 1s}
CFG
    "$B/agent/bg-agent" -c "$d/$name-agent.yaml" >"$d/$name-agent.log" 2>&1 &
    pids+=($!)
    servers+="    server $name 127.0.0.1:$port check port $aport inter 100 rise 1 fall 1"$'\n'
done
cat >"$d/haproxy.cfg" <<CFG
global
    stats socket $d/haproxy.sock level admin
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind 127.0.0.1:$HAP
    default_backend app
backend app
    option httpchk GET /health
    http-check expect status 200
$servers
CFG
haproxy -f "$d/haproxy.cfg" -db >"$d/haproxy.log" 2>&1 &
pids+=($!)

"$B/controller/bgctl" -z "$ZK" wait --timeout 20s
sleep 0.5
echo
"$B/controller/bgctl" -z "$ZK" status
watch_traffic() { # seconds
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        printf '%s ' "$(curl -s --max-time 1 "http://127.0.0.1:$HAP/" | cut -d' ' -f1)"
        sleep 0.1
    done
    echo
}
echo
echo "== traffic through HAProxy (who answers), then: bgctl switch green --wait"
(trap - EXIT INT TERM; watch_traffic 2) &
watcher=$!
sleep 1
"$B/controller/bgctl" -z "$ZK" switch green --wait --timeout 30s
wait "$watcher" 2>/dev/null || true
watch_traffic 1
echo
echo "== rollback: bgctl rollback --wait"
"$B/controller/bgctl" -z "$ZK" rollback --wait --timeout 30s
watch_traffic 1
echo
"$B/controller/bgctl" -z "$ZK" history
echo
if [ "$keep" = 1 ] || [ -t 0 ]; then
    cat <<TXT
Everything is still running. Try, in another terminal:
  $B/controller/bgctl -z $ZK status
  /usr/share/zookeeper/bin/zkCli.sh -server $ZK set /active_color green
  curl http://127.0.0.1:$HAP/
Logs are in $d/. Press Enter to stop.
TXT
    read -r _ || true
fi
