/* backend.h -- a backend type of agent.yaml: the descriptor each type defines in its one file
 * (agent/backend_<type>.c), the table listing them (agent/backends.c), and what the loader
 * (backend_conf.c) offers a type's load. */
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

/* flags: the type answers the agent's GET /health. At most one entry of it may be written
 * ("a second <name> backend"), and the agent runs one with make()'s defaults, first, when
 * none is written. */
#define BG_BACKEND_SERVES_HEALTH 0x1u
/* flags: the type passes the status call's weight on (DESIGN §12); an agent with none of them
 * says "weighted": false in its node and the controller gives it an instance-count canary. */
#define BG_BACKEND_WEIGHTS 0x2u

struct bg_backend_ops; /* what runs the type in the agent: agent/agent.h */

/* A backend type, both sides: its configuration (name, keys, make, load, free, listen) and
 * what runs it (ops). One per agent/backend_<type>.c. */
struct bg_backend_type {
    const char *name;        /* the value of "type" */
    const char *const *keys; /* NULL-terminated, "type" first, in the order messages list them */
    unsigned flags;          /* BG_BACKEND_* */
    /* The type's settings with every default (allocated; released by free). Cannot fail. */
    void *(*make)(void);
    /* Read the type's keys into settings (from make), recording every problem in e->l.
     * Cannot fail otherwise; settings stays releasable by free whatever was wrong. */
    void (*load)(const struct bg_backend_entry *e, void *settings);
    /* Release settings and everything in them. NULL does nothing. */
    void (*free)(void *settings);
    /* The "host:port" the type listens on, checked against http.listen and the other entries'
     * (NULL: none). May be NULL. */
    const char *(*listen)(const void *settings);
    const struct bg_backend_ops *ops;
};

/* Every type, NULL-terminated, in the order "one of ..." lists them. Defined in
 * agent/backends.c (one line per type), hence linked with the agent's code. */
extern const struct bg_backend_type *const bg_backend_types[];

/* Confirmed propagation through balancers' polls (health, haproxy-agent): keys
 * confirm_timeout, poll_window and confirm_polls. */
struct bg_confirm_conf {
    int64_t confirm_timeout_ms; /* default 0: derived from each balancer's observed poll
                                 * interval; > 0: an upper bound of every wait */
    int64_t poll_window_ms;     /* default 5000: a balancer silent longer stops counting */
    int confirm_polls;          /* polls per balancer without send-state that confirm a change
                                 * (the type's default) */
};
/* The defaults above, with confirm_polls polls. */
struct bg_confirm_conf bg_confirm_conf_defaults(int confirm_polls);
/* Read the three keys: k_confirm is the index of confirm_timeout in the type's keys, the other
 * two follow it. */
void bg_backend_get_confirm(const struct bg_backend_entry *e, int k_confirm,
                            struct bg_confirm_conf *c);

/* backends: load the sequence n (may be NULL) into c->backends, then check the entries
 * against each other and against http.listen. */
void bg_conf_load_backends(struct bg_yaml *l, yaml_node_t *n, struct bg_agent_conf *c);
void bg_conf_free_backends(struct bg_agent_conf *c);

#endif
