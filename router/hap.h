/* hap.h -- bg-router kind haproxy, the pure half: HAProxy's Runtime API answers parsed (`show
 * servers state`, `show info`), the commands that bring a backend to a server set, and the check
 * that it is there. No I/O: unit-tested and fuzzed on their own (haproxy.c does the talking). */
#ifndef BG_HAP_H
#define BG_HAP_H

#include "route.h"

#include <stdbool.h>
#include <stddef.h>

/* srv_admin_state bits (HAProxy's SRV_ADMF_*, management guide "show servers state"). */
#define BG_HAP_FMAINT 0x01 /* forced into maintenance (set server state maint) */
#define BG_HAP_IMAINT 0x02 /* inherited from a tracked server */
#define BG_HAP_CMAINT                                                                              \
    0x04                   /* "disabled" in the configuration: set with FMAINT, stays after ready  \
                            */
#define BG_HAP_FDRAIN 0x08 /* forced into drain (set server state drain) */
#define BG_HAP_IDRAIN 0x10
#define BG_HAP_RMAINT 0x20 /* address resolution failed */
#define BG_HAP_NOT_SERVING (BG_HAP_FMAINT | BG_HAP_IMAINT | BG_HAP_RMAINT)
/* What set server ... state ready cannot clear (a tracked server's, a failed resolution). */
#define BG_HAP_INHERITED (BG_HAP_IMAINT | BG_HAP_IDRAIN | BG_HAP_RMAINT)
#define BG_HAP_NO_NEW (BG_HAP_NOT_SERVING | BG_HAP_FDRAIN | BG_HAP_IDRAIN)

#define BG_HAP_WEIGHT_FULL 100 /* a server without a canary weight */
/* What add server gives a server besides its address and weight: the idle-connection pool a
 * server of the configuration has by default (a run-time one has none). */
#define BG_HAP_POOL "pool-max-conn -1 pool-purge-delay 5s"

/* One server of the backend as `show servers state <backend>` (format 1) lists it. */
struct bg_hap_server {
    char *name;
    char *addr; /* srv_addr ("-" when HAProxy has none) */
    int port;   /* srv_port */
    int admin;  /* srv_admin_state, BG_HAP_* bits */
    int weight; /* srv_uweight */
};
struct bg_hap_state {
    struct bg_hap_server *s;
    size_t n;
};

/* Parse the answer to `show servers state <backend>` (len bytes, need not be NUL-terminated):
 * the rows of that backend. Returns BG_OK, or BG_EINVAL with why (HAProxy's own message when it
 * answered with one, e.g. "Can't find backend."; a format other than 1; a row with too few or
 * malformed fields; a server listed twice) and *out empty. Free with bg_hap_state_free. */
int bg_hap_state_parse(const char *text, size_t len, const char *backend, struct bg_hap_state *out,
                       char *why, size_t whylen);
void bg_hap_state_free(struct bg_hap_state *st);

/* The process id in the answer to `show info` ("Pid: N"); 0 when there is none. */
long bg_hap_info_pid(const char *text, size_t len);

/* address ("host:port", as conf/valid.c's bg_valid_address) split for HAProxy: ip receives the
 * IP address without brackets. BG_OK only for an IPv4 or IPv6 literal: HAProxy does not resolve
 * the names of servers added at run time (they would stay in maintenance). */
int bg_hap_split_address(const char *address, char *ip, size_t iplen, int *port);

/* Runtime API commands, one per line, without the newline. */
struct bg_hap_cmds {
    char **c;
    size_t n;
};
void bg_hap_cmds_free(struct bg_hap_cmds *c);

/* The commands that make backend serve exactly want (as bg_route_desired builds it) when it holds
 * have: for a server of want that is missing, `add server` (with its weight) then `set server
 * ... state ready` (HAProxy adds servers in maintenance); for one that is there, `set server ...
 * addr`, `weight`, `state ready` as needed; then `set server ... state drain` for every other
 * server still taking new requests (make before break inside one change). Servers are named after
 * instance ids. Returns BG_OK, or BG_EINVAL with why when want cannot be applied as it is (an
 * address that is not an IP literal, the same id in both colours): nothing is planned then. */
int bg_hap_plan(const char *backend, const struct bg_route_set *want,
                const struct bg_hap_state *have, struct bg_hap_cmds *out, char *why, size_t whylen);

/* The commands that remove what is drained: for each server of have that is not in want and takes
 * no new requests (drain or maintenance), `set server ... state maint` (if not already) and
 * `del server` (HAProxy refuses while it still has connections: tried again later). */
void bg_hap_sweep(const char *backend, const struct bg_route_set *want,
                  const struct bg_hap_state *have, struct bg_hap_cmds *out);

/* True when have serves exactly want: every server of want present at its address and weight and
 * taking requests, every other one taking no new request. Else false with the first difference in
 * why. */
bool bg_hap_confirm(const struct bg_route_set *want, const struct bg_hap_state *have, char *why,
                    size_t whylen);

/* The backend section as set serves it, for haproxy.file (HAProxy loads it after haproxy.cfg, so a
 * reload keeps the servers): a comment naming the router and generation, "backend <backend>",
 * the option lines as given, then "server <id> <ip:port> weight <W>" per server of set. Returns
 * the text (caller frees), or NULL with why when a server could not be written as one safe line
 * (as bg_hap_plan refuses it) or an option holds a control character. */
char *bg_hap_render_backend(const char *router_id, const char *backend, char *const *options,
                            size_t n_options, const struct bg_route_set *set, int64_t generation,
                            char *why, size_t whylen);

/* True when answer (to cmd) says the command worked: HAProxy answers "" (white space only),
 * "New server registered." or "Server deleted." on success and a sentence on failure. */
bool bg_hap_answer_ok(const char *answer);

#endif
