/* valid.h -- pure checks of configuration values (conf-internal). Each returns true (or BG_OK)
 * when s is acceptable; none allocates or records anything. */
#ifndef BG_VALID_H
#define BG_VALID_H

#include <stdbool.h>
#include <stddef.h>

/* What the checks below expect, for "expected ..." in messages. */
#define BG_EXPECT_HOSTPORT "\"host:port\" (IPv6 as \"[addr]:port\") with a port between 1 and 65535"
#define BG_EXPECT_URL "an http:// or https:// URL such as \"http://10.0.0.5:9101\""
#define BG_EXPECT_ID "1 to 128 characters from A-Z a-z 0-9 . _ - (not \".\" or \"..\")"
#define BG_EXPECT_NAME "1 to 128 characters from A-Z a-z 0-9 . _ : -"

/* Predicates on a whole string are true when it is acceptable (the shape bg_yaml_get_str
 * takes). Characters: bg_valid_has_space, any byte <= 0x20 or 0x7f (true means NOT
 * acceptable); bg_valid_word, non-empty without white space or control characters. */
bool bg_valid_has_space(const char *s);
bool bg_valid_nonempty(const char *s);
bool bg_valid_word(const char *s);
bool bg_valid_all_digits(const char *s);

/* Names: bg_valid_id for instance and controller ids (also a znode name, hence no "." or
 * ".."); bg_valid_name for application names and Eureka instance ids (they end up in Eureka
 * URL paths). */
bool bg_valid_id(const char *s);
bool bg_valid_name(const char *s);

/* Addresses. bg_valid_split_hostport is stricter than bg_split_hostport: no white space,
 * digits-only port 1..65535, IPv6 only in brackets; host receives the address without
 * brackets. bg_valid_split_url: host and port of an http:// or https:// URL (port 80/443 when
 * not written). Both return BG_OK or BG_EINVAL; bg_valid_hostport and bg_valid_url are true
 * when they would return BG_OK. */
int bg_valid_split_hostport(const char *s, char *host, size_t hostlen, int *port);
int bg_valid_split_url(const char *url, char *host, size_t hostlen, int *port);
bool bg_valid_hostport(const char *s);
bool bg_valid_url(const char *s);
/* An address a balancer's configuration may hold as one token (bg-router; DESIGN §13): a valid
 * "host:port" whose host is a DNS name or IPv4 address (A-Z a-z 0-9 . -, not starting with
 * "-"), or an IPv6 address in brackets. Nothing nginx or HAProxy would read as syntax. */
#define BG_EXPECT_ADDRESS                                                                          \
    "\"host:port\" with a DNS name, IPv4 or [IPv6] host and a port between 1 and 65535"
bool bg_valid_address(const char *s);
/* 0.0.0.0 or ::. */
bool bg_valid_is_wildcard(const char *host);
/* One directive of nginx's upstream block without its ';' (bg-router nginx.options: "keepalive
 * 32", "least_conn", "hash $remote_addr consistent"): 1 to 200 of A-Z a-z 0-9 space _ . : $ / =
 * -, starting with a letter. Nothing that could end the directive or the block. */
#define BG_EXPECT_NGINX_OPTION                                                                     \
    "one nginx directive without ';' (1 to 200 of A-Z a-z 0-9 space _ . : $ / = -, starting "      \
    "with a letter)"
bool bg_valid_nginx_option(const char *s);

#endif
