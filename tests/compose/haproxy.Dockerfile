# Stand-in for the stock haproxy:2.6 image (docker/compose.yaml), built from Debian 12's
# haproxy 2.6 package where no image registry is reachable (tests/compose/run_compose.sh tags
# it docker.io/library/haproxy:2.6). Same contract as far as the compose file uses it: reads
# /usr/local/etc/haproxy/haproxy.cfg, runs in the foreground (master-worker) as user haproxy,
# stops on SIGUSR1.
FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \
        && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
