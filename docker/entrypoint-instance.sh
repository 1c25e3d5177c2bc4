#!/bin/sh
# One demo instance: bg-demo-app on :8080 and its bg-agent on :9101, in one container.
# Environment: ID, COLOR, VERSION, ZK (connect string).
set -eu
cat >/tmp/agent.yaml <<CFG
zookeeper: {connect: "${ZK}", root: "/", session_timeout_ms: 4000}
instance: {id: "${ID}", color: ${COLOR}, endpoint: "http://${ID}:9101", app: "DEMO", version: "${VERSION}"}
http: {listen: "0.0.0.0:9101"}
CFG
bg-demo-app --listen 0.0.0.0:8080 --name "${ID}" --version "${VERSION}" &
exec bg-agent -c /tmp/agent.yaml
