/* route.h -- bg-router's pure half: what ZooKeeper says (member nodes, the leader's /status)
 * turned into the set of servers a balancer must serve, and nginx's upstream file rendered
 * from it. No I/O: unit-tested and fuzzed on their own. */
#ifndef BG_ROUTE_H
#define BG_ROUTE_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BG_ROUTE_WHY_MAX 160 /* bytes of a reason an instance is left out */

/* One instance as the router knows it: from its member node /<color>/<id>. */
struct bg_route_member {
    enum bg_color color;
    char *id;      /* the node's name */
    char *address; /* "host:port", checked with conf/valid.c; NULL: unusable (see why) */
    char why[BG_ROUTE_WHY_MAX]; /* why address is NULL ("" when it is set) */
};

/* One instance the leader's /status lists as UP. */
struct bg_route_up {
    enum bg_color color;
    char *id;
    int weight; /* its "weight" in /status, 1-100 (a canary, DESIGN §12); 0: none (full) */
};

/* What the balancer must serve: instances UP with a valid address, sorted by colour then id
 * (the same input always gives the same order, whatever ZooKeeper's child order). */
struct bg_route_server {
    enum bg_color color;
    char *id;
    char *address;
    int weight; /* 1-100, or 0: none given (full weight, 100) */
};
struct bg_route_set {
    struct bg_route_server *s;
    size_t n;
};

/* Parse the member node /<color>/<name> (data, len bytes; need not be NUL-terminated) into m.
 * Always fills color and id (= name); address only when name is a valid instance id (the
 * renderer puts it in a comment) and the node is a JSON object whose "address" is a valid
 * "host:port" (else why says what was wrong: a bad name, no address, not a string, malformed,
 * not JSON...). Returns BG_OK when the address is usable, else BG_EINVAL. Free with
 * bg_route_member_free. */
int bg_route_member_parse(const char *data, size_t len, enum bg_color color, const char *name,
                          struct bg_route_member *m);
void bg_route_member_free(struct bg_route_member *m);

/* Parse /status: the instances it lists with "status": "UP" (*up malloc'd, *n of them; free
 * with bg_route_up_free). Entries without a colour or id of the right shape are skipped. Returns
 * BG_OK, or BG_EINVAL (with *up NULL, *n 0) when data is not a JSON object with an "instances"
 * array; then why says so. A /status that says "truncated" may leave UP instances out: *truncated
 * tells. */
int bg_route_status_parse(const char *data, size_t len, struct bg_route_up **up, size_t *n,
                          bool *truncated, char *why, size_t whylen);
void bg_route_up_free(struct bg_route_up *up, size_t n);

/* The desired set: members UP in /status with a usable address (copied into out; free with
 * bg_route_set_free). A member UP without a usable address is counted in *dropped (may be
 * NULL). Never fails. */
void bg_route_desired(const struct bg_route_member *m, size_t n, const struct bg_route_up *up,
                      size_t n_up, struct bg_route_set *out, size_t *dropped);
void bg_route_set_free(struct bg_route_set *s);
/* Same servers (colour, id, address, weight) in the same order. */
bool bg_route_set_equal(const struct bg_route_set *a, const struct bg_route_set *b);
/* A deep copy of b into a (a freed first). */
void bg_route_set_copy(struct bg_route_set *a, const struct bg_route_set *b);

/* nginx's upstream file for set: a comment naming the router and generation, then
 * "upstream <name> { <option>; ... server <address>; ... }" (options: nginx.options, each one
 * directive as conf/valid.c's bg_valid_nginx_option, else refused) (each "server <address>
 * weight=<1-100>;" when a server of the set has a weight below 100: a canary, whose weights nginx
 * then follows; "weight=100" for one without); with confirm ("host:port", may be NULL) also a
 * server block listening there that answers GET /bg-router/generation with
 * "<router_id> <generation>\n". Returns the text (caller frees), or NULL with the reason in why
 * when set is empty (nginx refuses an upstream without servers) or a name or address would not
 * be a single safe nginx token (names as conf/valid.c's bg_valid_id, addresses as
 * bg_valid_hostport): nothing malformed is ever rendered. */
char *bg_route_render_nginx(const char *router_id, const char *upstream, char *const *options,
                            size_t n_options, const struct bg_route_set *set, int64_t generation,
                            const char *confirm, char *why, size_t whylen);

#endif
