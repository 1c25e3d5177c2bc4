/* cli.c -- shared main() of bg-agent, bg-controller and bg-router. */
#include "cli.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(const struct bg_daemon *d, FILE *f)
{
    fprintf(f,
            "usage: %s -c %s [--check-config]\n"
            "\n"
            "%s\n"
            "\n"
            "  -c, --config FILE   configuration file (required)\n"
            "      --check-config  validate the configuration, print every error, exit 0/1\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "\n"
            "Environment: BG_LOG_LEVEL=debug|info|warn|error\n",
            d->name, d->conf_name, d->about);
}

/* The command line: returns -1 with *path and *check set to go on, or the exit code (0 after
 * --help or --version, 2 for a usage error). */
static int parse_args(const struct bg_daemon *d, int argc, char **argv, const char **path,
                      int *check)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            *path = optarg;
            break;
        case 'k':
            *check = 1;
            break;
        case 'h':
            usage(d, stdout);
            return 0;
        case 'V':
            printf("%s %s\n", d->name, d->version);
            return 0;
        default:
            usage(d, stderr);
            return 2;
        }
    }
    if (*path == NULL || optind != argc) {
        fprintf(stderr, "%s: %s\n", d->name,
                *path == NULL ? "-c FILE is required" : "unexpected argument");
        usage(d, stderr);
        return 2;
    }
    return -1;
}

int bg_daemon_main(const struct bg_daemon *d, void *conf, int argc, char **argv)
{
    bg_log_init(d->name);
    const char *path = NULL;
    int check = 0;
    int rc = parse_args(d, argc, argv, &path, &check);
    if (rc >= 0)
        return rc;
    struct bg_conf_errors errs = {0};
    rc = d->load(path, conf, &errs);
    if (rc != 0) {
        bg_conf_errors_print(&errs, stderr);
        fprintf(stderr, "%s: %zu error(s) in %s\n", d->name, errs.n, path);
        bg_conf_errors_free(&errs);
        d->free_conf(conf);
        return 1;
    }
    if (check) {
        bg_conf_warnings_print(&errs, stderr);
        bg_conf_errors_free(&errs);
        if (d->warnings != NULL)
            d->warnings(conf, stderr);
        printf("%s: ok\n", path);
        d->free_conf(conf);
        return 0;
    }
    /* Unsafe but valid settings (no zookeeper.auth, http.insecure) are said at every start. */
    bg_conf_warnings_log(&errs);
    bg_conf_errors_free(&errs);
    rc = d->run(conf);
    d->free_conf(conf);
    bg_info("exit", "rc=%d", rc == 0 ? 0 : 1);
    return rc == 0 ? 0 : 1;
}
