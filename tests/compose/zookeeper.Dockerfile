# Stand-in for the stock zookeeper:3.8 image (docker/compose.yaml), built from Debian 12's
# packages where no image registry is reachable (tests/compose/run_compose.sh tags it
# docker.io/library/zookeeper:3.8). Same contract as far as the compose file uses it: serves
# on 2181, reads ZOO_TICK_TIME and ZOO_4LW_COMMANDS_WHITELIST, data in /data.
FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends default-jre-headless \
        libzookeeper-java && rm -rf /var/lib/apt/lists/*
COPY tests/compose/zookeeper-entrypoint.sh /usr/local/bin/zookeeper-entrypoint.sh
EXPOSE 2181
ENTRYPOINT ["/usr/local/bin/zookeeper-entrypoint.sh"]
