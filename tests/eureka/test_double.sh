#!/usr/bin/env bash
# test_double.sh -- checks the Eureka double's own protocol rules with curl and jq.
#
# usage: test_double.sh PATH/TO/eureka-double
# Starts its own doubles on free loopback ports and stops them, even on failure.
set -u

BIN=${1:?usage: test_double.sh PATH/TO/eureka-double}
for tool in curl jq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test_double.sh: '$tool' is required (Debian package $tool)" >&2
        exit 2
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/eureka-double-test.XXXXXX")
PIDS=()
DNAMES=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

PASS=0
FAIL=0
ok() {
    PASS=$((PASS + 1))
    echo "ok   - $1"
}
not_ok() {
    FAIL=$((FAIL + 1))
    echo "FAIL - $1"
}
# expect_eq DESCRIPTION WANT GOT
expect_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1: want '$2', got '$3'"; fi
}

# start_double NAME [ARGS...]: starts a double on a free port; sets BASE (its root URL) and
# remembers the PID in DPID and PIDS.
start_double() {
    local name=$1
    shift
    rm -f "$WORK/$name.port"
    "$BIN" --listen 127.0.0.1:0 --port-file "$WORK/$name.port" "$@" 2>"$WORK/$name.log" &
    DPID=$!
    PIDS+=("$DPID")
    DNAMES+=("$name")
    for _ in $(seq 1 100); do
        [ -s "$WORK/$name.port" ] && break
        sleep 0.05
    done
    if [ ! -s "$WORK/$name.port" ]; then
        echo "test_double.sh: $name did not start; its log:" >&2
        cat "$WORK/$name.log" >&2
        exit 1
    fi
    BASE="http://127.0.0.1:$(cat "$WORK/$name.port")"
}

# http METHOD PATH [CURL ARGS...]: sets CODE; the body is in $WORK/body (and BODY).
http() {
    local method=$1 path=$2
    shift 2
    CODE=$(curl -sS -o "$WORK/body" -w '%{http_code}' -X "$method" "$@" "$BASE$path")
    BODY=$(cat "$WORK/body")
}
get_json() { http GET "$1" -H 'Accept: application/json'; }
# register APP JSON [CURL ARGS...]
register() {
    local app=$1 json=$2
    shift 2
    http POST "/eureka/apps/$app" -H 'Content-Type: application/json' --data-binary "$json" "$@"
}
# field APP ID JQ-FILTER: one field of GET /eureka/apps/APP/ID (or "HTTP <code>")
field() {
    get_json "/eureka/apps/$1/$2"
    if [ "$CODE" != 200 ]; then
        echo "HTTP $CODE"
        return
    fi
    jq -r ".instance$3" <<<"$BODY"
}

# A valid registration; variations are made with jq.
INST='{"instance":{"instanceId":"web-1","hostName":"host-1","app":"shop","ipAddr":"127.0.0.1",
"vipAddress":"shop","status":"UP","port":{"$":8080,"@enabled":"true"},
"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$MyDataCenterInfo","name":"MyOwn"},
"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},"lastDirtyTimestamp":"1000"}}'
inst() { jq -c "$1" <<<"$INST"; }

# --- command line ----------------------------------------------------------------------------
"$BIN" --help >"$WORK/help" 2>&1
expect_eq "--help exits 0" 0 $?
grep -q -- '--cache-delay' "$WORK/help"
expect_eq "--help documents --cache-delay" 0 $?
"$BIN" --listen 127.0.0.1:0 --cache-delay soon >/dev/null 2>&1
expect_eq "a malformed --cache-delay exits 2" 2 $?
"$BIN" >/dev/null 2>&1
expect_eq "a missing --listen exits 2" 2 $?

start_double main --state-file "$WORK/state.json"
MAIN_PID=$DPID

# --- registration ----------------------------------------------------------------------------
register shop "$INST"
expect_eq "register answers 204" 204 "$CODE"
expect_eq "register answers no body" "" "$BODY"
expect_eq "the app name is upper-cased" SHOP "$(field SHOP web-1 .app)"
expect_eq "the path's app name is case-insensitive" SHOP "$(field shop web-1 .app)"
expect_eq "registered UP" UP "$(field SHOP web-1 .status)"
expect_eq "overriddenStatus is UNKNOWN" UNKNOWN "$(field SHOP web-1 .overriddenStatus)"
expect_eq "legacy overriddenstatus is UNKNOWN" UNKNOWN "$(field SHOP web-1 .overriddenstatus)"
expect_eq "port number" 8080 "$(field SHOP web-1 '.port["$"]')"
expect_eq "port enabled is the string true" '"true"' "$(field SHOP web-1 '.port["@enabled"]|tojson')"
expect_eq "actionType after register" ADDED "$(field SHOP web-1 .actionType)"
expect_eq "lastDirtyTimestamp kept, as a string" '"1000"' "$(field SHOP web-1 '.lastDirtyTimestamp|tojson')"
expect_eq "lastUpdatedTimestamp is a numeric string" true \
    "$(field SHOP web-1 '.lastUpdatedTimestamp|test("^[0-9]+$")')"
expect_eq "leaseInfo.durationInSecs kept" 90 "$(field SHOP web-1 .leaseInfo.durationInSecs)"
expect_eq "dataCenterInfo kept" MyOwn "$(field SHOP web-1 .dataCenterInfo.name)"
expect_eq "the response is JSON" application/json \
    "$(curl -sS -o /dev/null -w '%{content_type}' -H 'Accept: application/json' "$BASE/eureka/apps/SHOP/web-1")"

register SHOP "$(inst 'del(.instance.instanceId) | .instance.hostName="host-2"')"
expect_eq "register without instanceId answers 204" 204 "$CODE"
expect_eq "without instanceId the id is the host name" host-2 "$(field SHOP host-2 .instanceId)"
register SHOP "$(inst 'del(.instance.status) | .instance.instanceId="web-3"')"
expect_eq "register without status answers 204" 204 "$CODE"
expect_eq "without status the instance is UP" UP "$(field SHOP web-3 .status)"

# 400 with Eureka's reasons, in ApplicationResource.addInstance's order.
check_400() { # DESCRIPTION JQ-EDIT REASON
    register SHOP "$(inst "$2")"
    expect_eq "$1 answers 400" 400 "$CODE"
    expect_eq "$1 says why" "$3" "$BODY"
}
check_400 "no instanceId nor hostName" 'del(.instance.instanceId, .instance.hostName)' \
    "Missing instanceId"
check_400 "no hostName" 'del(.instance.hostName)' "Missing hostname"
check_400 "an empty hostName" '.instance.hostName=""' "Missing hostname"
check_400 "no ipAddr" 'del(.instance.ipAddr)' "Missing ip address"
check_400 "no app" 'del(.instance.app)' "Missing appName"
check_400 "another app" '.instance.app="billing"' \
    "Mismatched appName, expecting SHOP but was BILLING"
check_400 "no dataCenterInfo" 'del(.instance.dataCenterInfo)' "Missing dataCenterInfo"
check_400 "no dataCenterInfo name" 'del(.instance.dataCenterInfo.name)' \
    "Missing dataCenterInfo Name"
register SHOP '{"instance": '
expect_eq "malformed JSON answers 400" 400 "$CODE"
register SHOP '{"application":{}}'
expect_eq "a body without instance answers 400" 400 "$CODE"
http POST /eureka/apps/SHOP -H 'Content-Type: application/xml' --data-binary '<instance/>'
expect_eq "an XML body answers 415" 415 "$CODE"
http GET /eureka/apps/SHOP/web-1
expect_eq "a GET without Accept: application/json answers 406" 406 "$CODE"
expect_eq "a rejected registration registered nothing" "HTTP 404" "$(field SHOP nope .status)"

# --- heartbeats ------------------------------------------------------------------------------
http PUT /eureka/apps/SHOP/web-1
expect_eq "heartbeat answers 200" 200 "$CODE"
http PUT "/eureka/apps/SHOP/web-1?status=UP&lastDirtyTimestamp=1000"
expect_eq "heartbeat with the same lastDirtyTimestamp answers 200" 200 "$CODE"
http PUT "/eureka/apps/SHOP/web-1?status=UP&lastDirtyTimestamp=999"
expect_eq "heartbeat with an older lastDirtyTimestamp answers 200" 200 "$CODE"
http PUT "/eureka/apps/SHOP/web-1?status=UP&lastDirtyTimestamp=2000"
expect_eq "heartbeat with a newer lastDirtyTimestamp answers 404 (register again)" 404 "$CODE"
http PUT /eureka/apps/SHOP/nope
expect_eq "heartbeat of an unknown instance answers 404" 404 "$CODE"
http PUT /eureka/apps/NOAPP/web-1
expect_eq "heartbeat of an unknown app answers 404" 404 "$CODE"

# --- status overrides ------------------------------------------------------------------------
http PUT "/eureka/apps/SHOP/web-1/status?value=OUT_OF_SERVICE"
expect_eq "PUT status OUT_OF_SERVICE answers 200" 200 "$CODE"
expect_eq "status is OUT_OF_SERVICE" OUT_OF_SERVICE "$(field SHOP web-1 .status)"
expect_eq "overriddenStatus is OUT_OF_SERVICE" OUT_OF_SERVICE "$(field SHOP web-1 .overriddenStatus)"
expect_eq "actionType after a status change" MODIFIED "$(field SHOP web-1 .actionType)"
http PUT /eureka/apps/SHOP/web-1
expect_eq "heartbeat under an override answers 200" 200 "$CODE"
expect_eq "a heartbeat keeps the override" OUT_OF_SERVICE "$(field SHOP web-1 .status)"
register SHOP "$(inst '.instance.lastDirtyTimestamp="3000"')"
expect_eq "re-register UP under an override answers 204" 204 "$CODE"
expect_eq "registering UP keeps the OUT_OF_SERVICE override" OUT_OF_SERVICE "$(field SHOP web-1 .status)"
expect_eq "registering UP keeps overriddenStatus" OUT_OF_SERVICE "$(field SHOP web-1 .overriddenStatus)"
expect_eq "the override is in the state file" OUT_OF_SERVICE "$(jq -r '.overrides["web-1"]' "$WORK/state.json")"
http PUT "/eureka/apps/SHOP/nope/status?value=OUT_OF_SERVICE"
expect_eq "PUT status of an unknown instance answers 404" 404 "$CODE"
http PUT "/eureka/apps/SHOP/web-1/status?value=out_of_service"
expect_eq "PUT status with a value Eureka cannot parse answers 500" 500 "$CODE"
http PUT "/eureka/apps/SHOP/web-1/status"
expect_eq "PUT status without a value answers 500" 500 "$CODE"

http DELETE "/eureka/apps/SHOP/web-1/status?value=UP"
expect_eq "DELETE status answers 200" 200 "$CODE"
expect_eq "DELETE status sets the given status" UP "$(field SHOP web-1 .status)"
expect_eq "DELETE status clears overriddenStatus" UNKNOWN "$(field SHOP web-1 .overriddenStatus)"
expect_eq "DELETE status removes the override" null "$(jq -r '.overrides["web-1"]' "$WORK/state.json")"
http DELETE "/eureka/apps/SHOP/nope/status?value=UP"
expect_eq "DELETE status of an unknown instance answers 404" 404 "$CODE"

# LeaseExistsRule: with no override, an existing OUT_OF_SERVICE lease wins over a client's UP.
http PUT "/eureka/apps/SHOP/web-1/status?value=OUT_OF_SERVICE"
http DELETE "/eureka/apps/SHOP/web-1/status?value=OUT_OF_SERVICE"
expect_eq "override removed, status OUT_OF_SERVICE" "OUT_OF_SERVICE UNKNOWN" \
    "$(field SHOP web-1 .status) $(field SHOP web-1 .overriddenStatus)"
register SHOP "$(inst '.instance.lastDirtyTimestamp="4000"')"
expect_eq "an existing OUT_OF_SERVICE lease wins over a registration's UP" OUT_OF_SERVICE \
    "$(field SHOP web-1 .status)"
register SHOP "$(inst '.instance.lastDirtyTimestamp="4001"')" -H 'x-netflix-discovery-replication: true'
expect_eq "a replicated registration is not held by the existing lease" UP "$(field SHOP web-1 .status)"
http DELETE "/eureka/apps/SHOP/web-1/status?value=DOWN"
expect_eq "DELETE status without an override changes nothing" UP "$(field SHOP web-1 .status)"

# DownOrStartingRule: an instance saying DOWN or STARTING is believed, override or not.
http PUT "/eureka/apps/SHOP/web-1/status?value=OUT_OF_SERVICE"
register SHOP "$(inst '.instance.status="DOWN" | .instance.lastDirtyTimestamp="5000"')"
expect_eq "a registration saying DOWN is believed over an override" DOWN "$(field SHOP web-1 .status)"
http PUT /eureka/apps/SHOP/web-1
expect_eq "a heartbeat of a DOWN instance answers 200" 200 "$CODE"
expect_eq "a heartbeat keeps DOWN" DOWN "$(field SHOP web-1 .status)"
register SHOP "$(inst '.instance.lastDirtyTimestamp="5001"')"
expect_eq "registering UP again restores the override's status" OUT_OF_SERVICE "$(field SHOP web-1 .status)"

# The UNKNOWN hazard: PUT value=UNKNOWN makes every heartbeat answer 404.
http PUT "/eureka/apps/SHOP/web-1/status?value=UNKNOWN"
expect_eq "PUT status UNKNOWN answers 200" 200 "$CODE"
http PUT /eureka/apps/SHOP/web-1
expect_eq "a heartbeat under an UNKNOWN override answers 404" 404 "$CODE"
register SHOP "$(inst '.instance.lastDirtyTimestamp="6000"')"
expect_eq "registering UP under an UNKNOWN override stays UNKNOWN" UNKNOWN "$(field SHOP web-1 .status)"
http DELETE "/eureka/apps/SHOP/web-1/status?value=UP"
http PUT /eureka/apps/SHOP/web-1
expect_eq "after DELETE status the heartbeat answers 200 again" 200 "$CODE"
expect_eq "after DELETE status value=UP the instance is UP" UP "$(field SHOP web-1 .status)"

# Registering with an overriddenStatus stores it (Eureka's initial state transfer).
register SHOP "$(inst '.instance.instanceId="web-4" | .instance.overriddenStatus="OUT_OF_SERVICE"')"
expect_eq "registering with overriddenStatus OUT_OF_SERVICE pins it" "OUT_OF_SERVICE OUT_OF_SERVICE" \
    "$(field SHOP web-4 .status) $(field SHOP web-4 .overriddenStatus)"

# --- reads -----------------------------------------------------------------------------------
get_json /eureka/apps
expect_eq "GET /eureka/apps answers 200" 200 "$CODE"
expect_eq "versions__delta" 1 "$(jq -r .applications.versions__delta <<<"$BODY")"
expect_eq "apps__hashcode counts by status" OUT_OF_SERVICE_1_UP_3_ \
    "$(jq -r .applications.apps__hashcode <<<"$BODY")"
expect_eq "the registry lists app SHOP with 4 instances" "SHOP 4" \
    "$(jq -r '.applications.application[] | "\(.name) \(.instance|length)"' <<<"$BODY")"
get_json /eureka/apps/
expect_eq "GET /eureka/apps/ (trailing slash) answers 200" "200 SHOP" \
    "$CODE $(jq -r '.applications.application[0].name' <<<"$BODY")"
get_json /eureka/apps/shop/
expect_eq "GET /eureka/apps/shop/ answers the application" "200 SHOP 4" \
    "$CODE $(jq -r '.application | "\(.name) \(.instance|length)"' <<<"$BODY")"
get_json /eureka/apps/SHOP/web-1/
expect_eq "GET /eureka/apps/SHOP/web-1/ answers the instance" "200 web-1" \
    "$CODE $(jq -r .instance.instanceId <<<"$BODY")"
http PUT /eureka/apps/SHOP/web-1/
expect_eq "heartbeat with a trailing slash answers 200" 200 "$CODE"
get_json /eureka/v2/apps/SHOP/web-1
expect_eq "the /eureka/v2 root works too" "200 web-1" "$CODE $(jq -r .instance.instanceId <<<"$BODY")"
get_json /eureka/apps/NOAPP
expect_eq "GET an unknown app answers 404" 404 "$CODE"
get_json /eureka/apps/SHOP/nope
expect_eq "GET an unknown instance answers 404" 404 "$CODE"
get_json /eureka/apps/SHOP/web-1/status/x
expect_eq "GET a deeper path answers 404" 404 "$CODE"
get_json /eureka/status
expect_eq "GET outside /eureka/apps answers 404" 404 "$CODE"
http PATCH /eureka/apps/SHOP/web-1
expect_eq "an unsupported method answers 405" 405 "$CODE"

http PUT "/eureka/apps/SHOP/web-3/metadata?zone=a&color=blue"
expect_eq "PUT metadata answers 200" 200 "$CODE"
expect_eq "metadata is merged" "a blue" "$(field SHOP web-3 '.metadata | "\(.zone) \(.color)"')"
http PUT "/eureka/apps/SHOP/nope/metadata?zone=a"
expect_eq "PUT metadata of an unknown instance answers 500, as Eureka does" 500 "$CODE"

# --- cancel and delta ------------------------------------------------------------------------
http DELETE /eureka/apps/SHOP/web-4
expect_eq "cancel answers 200" 200 "$CODE"
expect_eq "a cancelled instance is gone" "HTTP 404" "$(field SHOP web-4 .status)"
expect_eq "cancel removes the override" null "$(jq -r '.overrides["web-4"]' "$WORK/state.json")"
http DELETE /eureka/apps/SHOP/web-4
expect_eq "cancel of an unknown instance answers 404" 404 "$CODE"
register SHOP "$(inst '.instance.instanceId="web-4"')"
expect_eq "registering again after cancel is UP (no stale override)" UP "$(field SHOP web-4 .status)"
get_json /eureka/apps/delta
expect_eq "GET /eureka/apps/delta answers 200" 200 "$CODE"
expect_eq "the delta shows web-4's latest change" ADDED \
    "$(jq -r '.applications.application[].instance[] | select(.instanceId=="web-4") | .actionType' <<<"$BODY")"
http DELETE /eureka/apps/SHOP/host-2
get_json /eureka/apps/delta
expect_eq "the delta shows a cancel as DELETED" DELETED \
    "$(jq -r '.applications.application[].instance[] | select(.instanceId=="host-2") | .actionType' <<<"$BODY")"

# --- request log -----------------------------------------------------------------------------
get_json /_double/log
expect_eq "GET /_double/log answers 200" 200 "$CODE"
expect_eq "the log records the status value sent" true \
    "$(jq '[.[] | select(.query.value=="UNKNOWN" and .method=="PUT")] | length == 1' <<<"$BODY")"
expect_eq "the log records the replication header" 1 \
    "$(jq '[.[] | select(.headers["x-netflix-discovery-replication"]=="true")] | length' <<<"$BODY")"
expect_eq "the log records the answer" 415 \
    "$(jq '[.[] | select(.headers["content-type"]=="application/xml")][0].status' <<<"$BODY")"
expect_eq "the log leaves out /_double/ requests" 0 \
    "$(jq '[.[] | select(.path|startswith("/_double"))] | length' <<<"$BODY")"
http DELETE /_double/log
get_json /_double/log
expect_eq "DELETE /_double/log empties it" "200 0" "$CODE $(jq length <<<"$BODY")"

# --- restart hook ----------------------------------------------------------------------------
http PUT "/eureka/apps/SHOP/web-1/status?value=OUT_OF_SERVICE"
http POST /_double/restart
expect_eq "POST /_double/restart answers 200" 200 "$CODE"
expect_eq "restart reports the dropped override" 1 "$(jq .overrides_dropped <<<"$BODY")"
expect_eq "after a restart the instance has its own status" "UP UNKNOWN" \
    "$(field SHOP web-1 .status) $(field SHOP web-1 .overriddenStatus)"
http PUT /eureka/apps/SHOP/web-1
expect_eq "after a restart the heartbeat answers 200" 200 "$CODE"
expect_eq "after a restart a heartbeat does not bring the override back" UP \
    "$(field SHOP web-1 .status)"
register SHOP "$(inst '.instance.lastDirtyTimestamp="7000"')"
expect_eq "after a restart a registration is UP" UP "$(field SHOP web-1 .status)"
expect_eq "after a restart the state file has no overrides" '{}' \
    "$(jq -c .overrides "$WORK/state.json")"
http POST "/_double/restart?forget=everything"
expect_eq "restart with a bad forget answers 400" 400 "$CODE"
http POST "/_double/restart?forget=all"
expect_eq "restart?forget=all answers 200" 200 "$CODE"
expect_eq "restart?forget=all forgets instances" "HTTP 404" "$(field SHOP web-1 .status)"
http PUT /eureka/apps/SHOP/web-1
expect_eq "after restart?forget=all the heartbeat answers 404" 404 "$CODE"
get_json /eureka/apps
expect_eq "after restart?forget=all the registry is empty" 0 \
    "$(jq '.applications.application | length' <<<"$BODY")"

kill -TERM "$MAIN_PID"
wait "$MAIN_PID"
expect_eq "SIGTERM exits 0" 0 $?
PIDS=()
DNAMES=()

# --- response cache --------------------------------------------------------------------------
start_double cached --cache-delay 1500ms
cache_generation() { curl -sS "$BASE/_double/state" | jq .cache.generation; }
# wait_refresh GENERATION: wait (at most 10 s) until the cache generation differs from it.
wait_refresh() {
    local deadline=$((SECONDS + 10))
    while [ "$(cache_generation)" == "$1" ]; do
        if [ $SECONDS -ge $deadline ]; then
            not_ok "the response cache did not refresh within 10 s"
            break
        fi
        sleep 0.02
    done
}
# Act right after a refresh so the next one is 1.5 s away; retry if one slipped in between.
for attempt in 1 2 3; do
    wait_refresh "$(cache_generation)"
    g1=$(cache_generation)
    register SHOP "$(inst ".instance.instanceId=\"c-$attempt\"")"
    direct=$(field SHOP "c-$attempt" .status)
    get_json /eureka/apps
    cached=$(jq -r --arg id "c-$attempt" \
        '[.applications.application[].instance[] | select(.instanceId==$id)] | length' <<<"$BODY")
    get_json /eureka/apps/SHOP
    cached_app=$CODE
    [ "$(cache_generation)" == "$g1" ] && break
done
expect_eq "a registration is visible at once at /apps/APP/ID" UP "$direct"
expect_eq "a registration is not yet visible at /eureka/apps" 0 "$cached"
expect_eq "a new app is not yet visible at /eureka/apps/APP" 404 "$cached_app"
wait_refresh "$g1"
get_json /eureka/apps
expect_eq "after the cache delay the registration is visible at /eureka/apps" UP \
    "$(jq -r --arg id "c-$attempt" '.applications.application[].instance[] | select(.instanceId==$id) | .status' <<<"$BODY")"
wait_refresh "$(cache_generation)"
http PUT "/eureka/apps/SHOP/c-$attempt/status?value=OUT_OF_SERVICE"
direct=$(field SHOP "c-$attempt" .status)
get_json /eureka/apps
expect_eq "a status change is visible at once at /apps/APP/ID" OUT_OF_SERVICE "$direct"
expect_eq "a status change is not yet visible at /eureka/apps" UP \
    "$(jq -r --arg id "c-$attempt" '.applications.application[].instance[] | select(.instanceId==$id) | .status' <<<"$BODY")"
sleep 1.7
get_json /eureka/apps
expect_eq "after the cache delay the status change is visible at /eureka/apps" OUT_OF_SERVICE \
    "$(jq -r --arg id "c-$attempt" '.applications.application[].instance[] | select(.instanceId==$id) | .status' <<<"$BODY")"

# --- lease eviction --------------------------------------------------------------------------
start_double evicting --evict
register SHOP "$(inst '.instance.instanceId="silent" | .instance.leaseInfo.durationInSecs=1')"
register SHOP "$(inst '.instance.instanceId="beating" | .instance.leaseInfo.durationInSecs=1')"
for _ in 1 2 3 4 5 6 7; do
    http PUT /eureka/apps/SHOP/beating
    sleep 0.3
done
expect_eq "--evict: an instance without heartbeats is evicted after durationInSecs" "HTTP 404" \
    "$(field SHOP silent .status)"
expect_eq "--evict: an instance sending heartbeats stays" UP "$(field SHOP beating .status)"

start_double lazy
register SHOP "$(inst '.instance.instanceId="silent" | .instance.leaseInfo.durationInSecs=1')"
sleep 1.5
expect_eq "without --evict leases never expire" UP "$(field SHOP silent .status)"

# Every double must stop cleanly (under sanitizers, a report makes the exit status non-zero).
for i in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$i]}"
    wait "${PIDS[$i]}"
    expect_eq "double ${DNAMES[$i]} exits 0 on SIGTERM" 0 $?
done
PIDS=()
if [ "$FAIL" -ne 0 ]; then
    for name in "${DNAMES[@]}"; do
        echo "# last lines of double $name's log:"
        tail -n 15 "$WORK/$name.log" | sed 's/^/#   /'
    done
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
