#!/bin/sh
# One demo instance: bg-demo-app on :8080 and its bg-agent on :9101, in one container.
# Environment: ID, COLOR, VERSION, ZK (connect string), BG_TOKEN (the API token shared with
# the controllers: an agent listening beyond loopback refuses to start without one).
# Optional (tests/integration/test_docker_entrypoints.py runs this script outside a
# container): HOST (the name others reach this instance by, default ID), APP_PORT (8080),
# AGENT_PORT (9101), ROOT (the ZooKeeper root, /), BG_CONF_DIR (/tmp).
set -eu
BG_CONF_DIR=${BG_CONF_DIR:-/tmp}
HOST=${HOST:-${ID}}
APP_PORT=${APP_PORT:-8080}
AGENT_PORT=${AGENT_PORT:-9101}
: "${BG_TOKEN:?set BG_TOKEN (the token the controllers send; see compose.yaml)}"
umask 077
printf '%s\n' "${BG_TOKEN}" >"${BG_CONF_DIR}/token"
cat >"${BG_CONF_DIR}/agent.yaml" <<CFG
zookeeper: {connect: "${ZK}", root: "${ROOT:-/}", session_timeout_ms: 4000}
instance: {id: "${ID}", color: ${COLOR}, endpoint: "http://${HOST}:${AGENT_PORT}", app: "DEMO", version: "${VERSION}", address: "${HOST}:${APP_PORT}"}
http: {listen: "0.0.0.0:${AGENT_PORT}", token_file: ${BG_CONF_DIR}/token}
check: {http: "http://127.0.0.1:${APP_PORT}/", interval: 500ms, timeout: 300ms}
backends:
  - {type: health, out_of_service_code: 404}
CFG
bg-agent --check-config -c "${BG_CONF_DIR}/agent.yaml" >/dev/null
bg-demo-app --listen "0.0.0.0:${APP_PORT}" --name "${ID}" --version "${VERSION}" &
exec bg-agent -c "${BG_CONF_DIR}/agent.yaml"
