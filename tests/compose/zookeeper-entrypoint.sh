#!/bin/sh
# The zookeeper stand-in's entrypoint (tests/compose/zookeeper.Dockerfile): one standalone
# server on 2181 configured from the stock image's environment variables (ZOO_TICK_TIME,
# ZOO_4LW_COMMANDS_WHITELIST), run in the foreground with the classpath the integration
# harness uses (tests/integration/harness.py: zookeeper.jar's manifest brings the rest).
set -eu
mkdir -p /data /conf
cat >/conf/zoo.cfg <<CFG
dataDir=/data
clientPort=2181
tickTime=${ZOO_TICK_TIME:-2000}
initLimit=5
syncLimit=2
admin.enableServer=false
4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST:-srvr}
CFG
cp=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar
cp=$cp:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar
exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.net.preferIPv4Stack=true \
    -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain /conf/zoo.cfg
