#!/usr/bin/env bash
# demo.sh -- the quick start: install what is missing, build, and run the whole system on
# this machine: a private ZooKeeper, two controllers, two blue and two green demo instances
# with their agents, and HAProxy in front (or, with --nginx, nginx driven by bg-router); then
# switch blue -> green -> blue while you watch, and show a bad deploy (green's application
# broken) being refused and then, once it is fixed, the switch completing by itself.
# Usage: scripts/demo.sh [--nginx] [--keep] [--help]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
usage() {
    cat <<'TXT'
Usage: scripts/demo.sh [--nginx] [--keep] [--help]

Installs what is missing (scripts/deps.sh), builds build/release, and runs a private ZooKeeper,
2 controllers, 2 blue + 2 green demo instances with their agents and a balancer in front, all
on free 127.0.0.1 ports with logs in .demo/; switches blue -> green and back while printing who
answers through the balancer, then shows a bad deploy refused and completing once fixed.
Everything it started is stopped when it exits.

  --nginx   nginx instead of HAProxy: bg-router (kind nginx) writes nginx's upstream file from
            what the controller has marked UP, tests it (nginx -t), reloads nginx and confirms
            the reload through nginx; the controller waits for the router at every switch.
            Installs the nginx package if it is missing.
  --keep    leave everything running until Enter (also when run in a terminal)
  --help    this text
TXT
}
keep=0
lb=haproxy
for arg in "$@"; do
    case $arg in
        --keep) keep=1 ;;
        --nginx) lb=nginx ;;
        -h | --help) usage; exit 0 ;;
        *) echo "demo.sh: unknown option '$arg'" >&2; usage >&2; exit 64 ;;
    esac
done

if [ "$lb" = nginx ]; then scripts/deps.sh --demo-nginx; else scripts/deps.sh --demo; fi
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

read -r ZKP HAP ADM P1 P2 P3 P4 A1 A2 A3 A4 C1 C2 CFP RTP < <(python3 -c '
import socket
s=[socket.socket() for _ in range(15)]
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

LB=HAProxy
[ "$lb" = nginx ] && LB=nginx
echo "== 2 controllers, 2 blue + 2 green instances with agents, $LB on 127.0.0.1:$HAP"
for i in 1 2; do
    cat >"$d/controller-$i.yaml" <<CFG
zookeeper: {connect: "$ZK", root: "/", session_timeout_ms: 4000}
switch: {settle: 0s, unconfirmed: hold}   # the defaults, spelled out
id: controller-$i
CFG
    "$B/controller/bg-controller" -c "$d/controller-$i.yaml" >"$d/controller-$i.log" 2>&1 &
    pids+=($!)
done
apps=(blue-1:$P1:$A1:blue:1.0 blue-2:$P2:$A2:blue:1.0 green-1:$P3:$A3:green:2.0 green-2:$P4:$A4:green:2.0)
servers=""
declare -A apppid
for a in "${apps[@]}"; do
    IFS=: read -r name port aport color version <<<"$a"
    "$B/tests/tools/bg-demo-app" --listen "127.0.0.1:$port" --name "$name" --version "$version" \
        >"$d/$name-app.log" 2>&1 &
    pids+=($!)
    apppid[$name]=$!
    cat >"$d/$name-agent.yaml" <<CFG
zookeeper: {connect: "$ZK", root: "/", session_timeout_ms: 4000}
instance: {id: "$name", color: $color, app: "DEMO", version: "$version", address: "127.0.0.1:$port"}
http: {listen: "127.0.0.1:$aport"}
check: {http: "http://127.0.0.1:$port/healthz", interval: 500ms, timeout: 1s, rise: 2, fall: 2}
# the health backend (GET /health for HAProxy's check) is always on: with HAProxy's
# http-check send-state it confirms from HAProxy's own view of the server; 404 while out of
# service (application healthy) with http-check disable-on-404: a standby sits in NOLB and
# each step of a switch takes one check
backends:
  - {type: health, out_of_service_code: 404}
CFG
    "$B/agent/bg-agent" -c "$d/$name-agent.yaml" >"$d/$name-agent.log" 2>&1 &
    pids+=($!)
    servers+="    server $name 127.0.0.1:$port check port $aport"$'\n'
done
start_haproxy() {
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
    http-check send-state          # X-Haproxy-Server-State: the agents confirm exactly
    http-check disable-on-404      # a standby's 404: NOLB at once (no fall), 200: UP (no rise)
    http-check expect status 200
    default-server inter 500 rise 2 fall 3
$servers
CFG
    haproxy -f "$d/haproxy.cfg" -db >"$d/haproxy.log" 2>&1 &
    pids+=($!)
}
# nginx has no active health checks: bg-router writes its upstream block from /status
# (the UP instances' instance.address), runs nginx -t, reloads and confirms through nginx
# (GET /bg-router/generation on 127.0.0.1:$CFP); the controller waits for it (DESIGN §13).
start_nginx() {
    local p=$d/nginx
    mkdir -p "$p/tmp" "$p/logs"
    cat >"$p/nginx.conf" <<CFG
worker_processes 1;
pid $p/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    include $p/upstream.conf;      # written by bg-router: upstream shop { server ...; }
    server {
        listen 127.0.0.1:$HAP;
        location / {
            proxy_pass http://shop;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CFG
    ngx="nginx -p $p -c $p/nginx.conf -e stderr"
    cat >"$d/router.yaml" <<CFG
zookeeper: {connect: "$ZK", root: "/", session_timeout_ms: 4000}
router: {id: lb-1, kind: nginx}
nginx:
  upstream: shop
  file: $p/upstream.conf
  test: "$ngx -t -q"
  reload: "$ngx -s reload"
  confirm: "127.0.0.1:$CFP"
http: {listen: "127.0.0.1:$RTP"}
CFG
    "$B/router/bg-router" -c "$d/router.yaml" >"$d/router.log" 2>&1 &
    pids+=($!)
    # nginx cannot start before the file it includes exists: the router writes and tests it
    # once the controller has marked instances UP (its first reload fails and is retried).
    for _ in $(seq 300); do
        [ -s "$p/upstream.conf" ] && break
        sleep 0.1
    done
    $ngx -g "daemon off;" >"$d/nginx.log" 2>&1 &
    pids+=($!)
}
if [ "$lb" = nginx ]; then start_nginx; else start_haproxy; fi

# bgctl wait exits 2 at once while /status says blocked; the agents start unhealthy until their
# check has passed `rise` times, so ask again until it converges.
wait_converged() { # tries
    for _ in $(seq "$1"); do
        "$B/controller/bgctl" -z "$ZK" wait --timeout 2s 2>/dev/null && return 0
        sleep 0.5
    done
    "$B/controller/bgctl" -z "$ZK" wait --timeout 2s
}
wait_converged 40
if [ "$lb" = nginx ]; then # until nginx runs the router's file (its first reload was retried)
    for _ in $(seq 100); do
        curl -s "http://127.0.0.1:$RTP/health" | grep -q '"pending":false' && break
        sleep 0.1
    done
fi
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
show_router() {
    [ "$lb" = nginx ] || return 0
    echo "-- bg-router lb-1 (GET /health): $(curl -s "http://127.0.0.1:$RTP/health")"
    echo "-- nginx's upstream file, as bg-router wrote it:"
    sed -n '1p;/^upstream/,/^}/p' "$d/nginx/upstream.conf" | sed 's/^/   /' 
}
show_router
echo
echo "== traffic through $LB (who answers), then: bgctl switch green --wait"
(trap - EXIT INT TERM; watch_traffic 2) &
watcher=$!
sleep 1
"$B/controller/bgctl" -z "$ZK" switch green --wait --timeout 30s
wait "$watcher" 2>/dev/null || true
watch_traffic 1
show_router
echo
echo "== rollback without --wait (as zkCli set /active_color): bgctl status while it waits"
"$B/controller/bgctl" -z "$ZK" rollback
for _ in $(seq 50); do # until the leader has written that it is switching (or is done)
    st=$("$B/controller/bgctl" -z "$ZK" status)
    grep -q "^phase: *switching" <<<"$st" && break
    grep -q "^applied: *blue" <<<"$st" && break
    sleep 0.1
done
echo "$st"
"$B/controller/bgctl" -z "$ZK" wait --timeout 30s
watch_traffic 1
echo
app_port() { case $1 in blue-1) echo "$P1" ;; blue-2) echo "$P2" ;; green-1) echo "$P3" ;; green-2) echo "$P4" ;; esac; }
echo "== a bad deploy: green's application is broken (GET /healthz 503, every request 500)"
for name in green-1 green-2; do
    curl -s -X POST "http://127.0.0.1:$(app_port "$name")/admin/break" >/dev/null
done
for _ in $(seq 50); do # the agents see it after fall (2) checks
    "$B/controller/bgctl" -z "$ZK" status | grep -q "green-2 .*UNHEALTHY" &&
        "$B/controller/bgctl" -z "$ZK" status | grep -q "green-1 .*UNHEALTHY" && break
    sleep 0.2
done
"$B/controller/bgctl" -z "$ZK" status | sed -n '/^INSTANCE\|^green-/p'
echo
echo "== bgctl switch green --wait: refused while green is unhealthy; blue keeps serving"
(trap - EXIT INT TERM; watch_traffic 2) &
watcher=$!
sleep 0.5
rc=0
"$B/controller/bgctl" -z "$ZK" switch green --wait --timeout 30s || rc=$?
echo "(bgctl exit status $rc: 2 means blocked)"
wait "$watcher" 2>/dev/null || true
echo
echo "== fix green's application: the switch completes by itself (make before break)"
(trap - EXIT INT TERM; watch_traffic 30) &
watcher=$!
sleep 0.5
for name in green-1 green-2; do
    curl -s -X POST "http://127.0.0.1:$(app_port "$name")/admin/fix" >/dev/null
done
# green turns healthy after rise (2) checks; after a refused switch the controller then waits
# a hold (2 s) before it switches, so that a flapping application cannot cause a switch storm
wait_converged 60
sleep 0.5
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
echo
watch_traffic 1
echo
"$B/controller/bgctl" -z "$ZK" history
echo
if [ "$keep" = 1 ] || [ -t 0 ]; then
    cat <<TXT
Everything is still running. Try, in another terminal:
  $B/controller/bgctl -z $ZK status
  /usr/share/zookeeper/bin/zkCli.sh -server $ZK set /active_color green
  curl http://127.0.0.1:$HAP/                  # through $LB
  curl -X POST http://127.0.0.1:$P3/admin/break     # green-1's application broken (.../admin/fix)
  kill ${apppid[green-1]}                  # green-1's application gone: its agent sees it within 1 s
TXT
    [ "$lb" = nginx ] && cat <<TXT
  curl http://127.0.0.1:$RTP/health          # bg-router: generation, serving, last error
  cat $d/nginx/upstream.conf     # the upstream block bg-router wrote
TXT
    cat <<TXT
Logs are in $d/. Press Enter to stop.
TXT
    read -r _ || true
fi
