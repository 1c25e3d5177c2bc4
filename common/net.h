/* net.h -- sockets for the daemons' listeners: resolve "host:port", listen, peer address text. */
#ifndef BG_NET_H
#define BG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Resolve a listen address "host:port" to its first address in *ss (the port numeric). With
 * passive, host "" or "*" means every address (AI_PASSIVE); without, host is resolved as given.
 * Returns BG_OK or BG_EINVAL with err filled ("... is not host:port", "cannot resolve ..."). */
int bg_net_resolve(const char *hostport, bool passive, struct sockaddr_storage *ss,
                   socklen_t *sslen, char *err, size_t errlen);

/* A non-blocking, close-on-exec TCP listener (SO_REUSEADDR) on "host:port", resolved as
 * bg_net_resolve(passive). Returns the descriptor (the caller closes it) or -1 with err filled. */
int bg_net_listen(const char *hostport, char *err, size_t errlen);

/* The numeric address of an IPv4 or IPv6 peer (no port), or "" for any other family or NULL.
 * Never fails; buf must hold INET6_ADDRSTRLEN bytes to never be cut. */
void bg_net_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
