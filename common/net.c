/* net.c -- sockets for the daemons' listeners (see net.h): the agent's HAProxy agent-check
 * port and the HTTP servers (common/httpd.c) resolve and name their peers here. */
#include "net.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* getaddrinfo for "host:port"; the caller frees *ai. */
static int lookup(const char *hostport, bool passive, struct addrinfo **ai, char *err,
                  size_t errlen)
{
    char host[256];
    int port;
    if (bg_split_hostport(hostport, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "listen address \"%s\" is not host:port", hostport);
        return BG_EINVAL;
    }
    const char *node = host;
    if (passive && (host[0] == '\0' || strcmp(host, "*") == 0))
        node = NULL; /* every address */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    *ai = NULL;
    int rc = getaddrinfo(node, ports, &hints, ai);
    if (rc != 0 || *ai == NULL) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        if (*ai != NULL)
            freeaddrinfo(*ai);
        *ai = NULL;
        return BG_EINVAL;
    }
    return BG_OK;
}

int bg_net_resolve(const char *hostport, bool passive, struct sockaddr_storage *ss,
                   socklen_t *sslen, char *err, size_t errlen)
{
    struct addrinfo *ai;
    if (lookup(hostport, passive, &ai, err, errlen) != BG_OK)
        return BG_EINVAL;
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    if (sslen != NULL)
        *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return BG_OK;
}

int bg_net_listen(const char *hostport, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (bg_net_resolve(hostport, true, &ss, &len, err, errlen) != BG_OK)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", hostport, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void bg_net_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
                  (socklen_t)len);
}
