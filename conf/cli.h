/* cli.h -- the command line the daemons share: -c FILE [--check-config], --help, --version. */
#ifndef BG_CLI_H
#define BG_CLI_H

#include "conf.h"

struct bg_daemon {
    const char *name;      /* "bg-agent" */
    const char *about;     /* what it does, for --help */
    const char *conf_name; /* "agent.yaml" */
    const char *version;
    /* Load the configuration into conf (a struct of the daemon's own type). */
    int (*load)(const char *path, void *conf, struct bg_conf_errors *errs);
    void (*free_conf)(void *conf);
    /* Print warnings about a valid configuration (one line each, "file: warning: ...") for
     * --check-config. May be NULL. */
    void (*warnings)(const void *conf, FILE *f);
    /* Run the daemon with a valid configuration; returns 0 on a clean stop. */
    int (*run)(void *conf);
};

/* Parse the command line, load and validate the configuration, then run (or only check).
 * Exit status: 0 ok, 1 configuration or start-up error, 2 usage error. */
int bg_daemon_main(const struct bg_daemon *d, void *conf, int argc, char **argv);

#endif
