#!/bin/sh
# One demo controller. Environment: ZK (connect string), BG_TOKEN (sent to the agents);
# optional: HTTP_PORT (9100: /health, /metrics), ROOT (the ZooKeeper root, /),
# BG_CONF_DIR (/tmp).
set -eu
BG_CONF_DIR=${BG_CONF_DIR:-/tmp}
HTTP_PORT=${HTTP_PORT:-9100}
: "${BG_TOKEN:?set BG_TOKEN (the token the agents expect; see compose.yaml)}"
umask 077
printf '%s\n' "${BG_TOKEN}" >"${BG_CONF_DIR}/token"
cat >"${BG_CONF_DIR}/controller.yaml" <<CFG
zookeeper: {connect: "${ZK}", root: "${ROOT:-/}", session_timeout_ms: 4000}
http: {listen: "0.0.0.0:${HTTP_PORT}", token_file: ${BG_CONF_DIR}/token}
switch: {settle: 0s}
CFG
bg-controller --check-config -c "${BG_CONF_DIR}/controller.yaml" >/dev/null
exec bg-controller -c "${BG_CONF_DIR}/controller.yaml"
