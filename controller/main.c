/* main.c -- bg-controller command line. */
#include "controller.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: bg-controller -c controller.yaml [--check-config]\n"
               "\n"
               "Joins the leader election under /election; the leader watches /active_color\n"
               "and the instances under /blue and /green, and drives every instance to the\n"
               "status the active colour asks for: the new colour UP one batch after another,\n"
               "then (after switch.settle) the old colour OUT_OF_SERVICE. It writes /status\n"
               "and /history. Run two or more copies: the others stand by.\n"
               "\n"
               "  -c, --config FILE   configuration file (required)\n"
               "      --check-config  validate the configuration, print every error, exit 0/1\n"
               "  -h, --help          this text\n"
               "  -V, --version       print the version\n"
               "\n"
               "Environment: BG_LOG_LEVEL=debug|info|warn|error\n");
}

int main(int argc, char **argv)
{
    bg_log_init("bg-controller");
    const char *path = NULL;
    int check = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("bg-controller %s\n", BG_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "bg-controller: %s\n",
                path == NULL ? "-c controller.yaml is required" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    struct bg_controller_conf conf;
    struct bg_conf_errors errs = {0};
    int rc = bg_conf_load_controller(path, &conf, &errs);
    if (rc != 0) {
        bg_conf_errors_print(&errs, stderr);
        fprintf(stderr, "bg-controller: %zu error(s) in %s\n", errs.n, path);
        bg_conf_errors_free(&errs);
        bg_conf_free_controller(&conf);
        return 1;
    }
    bg_conf_errors_free(&errs);
    if (check) {
        printf("%s: ok\n", path);
        bg_conf_free_controller(&conf);
        return 0;
    }
    struct bg_ctl a;
    rc = bg_ctl_init(&a, &conf);
    if (rc == 0)
        rc = bg_ctl_run(&a);
    bg_ctl_free(&a);
    bg_conf_free_controller(&conf);
    bg_info("exit", "rc=%d", rc == 0 ? 0 : 1);
    return rc == 0 ? 0 : 1;
}
