/* sections.h -- the zookeeper and http sections, shared by agent.yaml and controller.yaml
 * (conf-internal). Each loader sets the section's defaults first, so an absent or broken
 * section still leaves usable values; the matching free wipes secrets before freeing. */
#ifndef BG_SECTIONS_H
#define BG_SECTIONS_H

#include "conf_yaml.h"

/* zookeeper: n may be NULL (absent: only the defaults are set). */
void bg_conf_load_zk(struct bg_yaml *l, yaml_node_t *n, struct bg_zk_conf *zk);
/* The warning for a zookeeper section without auth (nothing when the section is absent). */
void bg_conf_warn_zk_auth(struct bg_yaml *l, const yaml_node_t *n, const struct bg_zk_conf *zk);
/* http: controller selects the controller's variant, which may omit listen and takes ca_file.
 * Reads token_file and the TLS files at once; fills h->server. */
void bg_conf_load_http(struct bg_yaml *l, yaml_node_t *n, bool controller, struct bg_http_conf *h);
void bg_conf_free_zk(struct bg_zk_conf *zk);
void bg_conf_free_http(struct bg_http_conf *h);

#endif
