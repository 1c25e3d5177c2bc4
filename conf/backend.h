/* backend.h -- the table of backend types of agent.yaml (conf-internal). One descriptor per
 * type, each in its own conf/backend_<type>.c; backend_conf.c lists them and does what every
 * entry shares (the "type" key, key matching, defaults, listen clashes). */
#ifndef BG_BACKEND_H
#define BG_BACKEND_H

#include "conf_yaml.h"

/* One backends[i] entry being loaded, as a type's load sees it. */
struct bg_backend_entry {
    struct bg_yaml *l;
    yaml_node_t *n;                    /* the entry's mapping */
    const char *path;                  /* "backends[i]" */
    const char *kind;                  /* "for type <name>", for "missing required key" */
    const struct bg_yaml_slot *s;      /* s[k] is the type's keys[k] */
    const char *const *w;              /* w[k] is "backends[i].<keys[k]>" */
    const struct bg_instance_conf *in; /* for defaults taken from the instance section */
};

struct bg_backend_desc {
    const char *name;        /* the value of "type" */
    const char *const *keys; /* NULL-terminated, "type" first, in the order messages list them */
    /* Called after the shared defaults (bg_backend_defaults) and before load; may be NULL. */
    void (*defaults)(struct bg_backend_conf *b);
    /* Read the type's keys into b, recording every problem. Cannot fail otherwise. */
    void (*load)(const struct bg_backend_entry *e, struct bg_backend_conf *b);
};

extern const struct bg_backend_desc bg_backend_health_desc;
extern const struct bg_backend_desc bg_backend_eureka_desc;
extern const struct bg_backend_desc bg_backend_haproxy_agent_desc;
extern const struct bg_backend_desc bg_backend_exec_desc;

/* confirm_timeout, poll_window and confirm_polls (health and haproxy-agent): k_confirm is the
 * index of confirm_timeout in the type's keys, the other two follow it. */
void bg_backend_get_confirm(const struct bg_backend_entry *e, int k_confirm,
                            struct bg_backend_conf *b);

/* backends: load the sequence n (may be NULL) into c->backends, then check the entries
 * against each other and against http.listen. */
void bg_conf_load_backends(struct bg_yaml *l, yaml_node_t *n, struct bg_agent_conf *c);
void bg_conf_free_backends(struct bg_agent_conf *c);

#endif
