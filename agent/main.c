/* main.c -- bg-agent command line. */
#include "agent.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: bg-agent -c agent.yaml [--check-config]\n"
               "\n"
               "Registers this application instance in ZooKeeper under /<color>/<id>, serves\n"
               "the status API (PUT/GET /v1/status, GET /health, GET /metrics) and applies\n"
               "UP / OUT_OF_SERVICE to the configured backends.\n"
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
    bg_log_init("bg-agent");
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
            printf("bg-agent %s\n", BG_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        fprintf(stderr, "bg-agent: %s\n",
                path == NULL ? "-c agent.yaml is required" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    struct bg_agent_conf conf;
    struct bg_conf_errors errs = {0};
    int rc = bg_conf_load_agent(path, &conf, &errs);
    if (rc != 0) {
        bg_conf_errors_print(&errs, stderr);
        fprintf(stderr, "bg-agent: %zu error(s) in %s\n", errs.n, path);
        bg_conf_errors_free(&errs);
        bg_conf_free_agent(&conf);
        return 1;
    }
    bg_conf_errors_free(&errs);
    if (check) {
        printf("%s: ok\n", path);
        bg_conf_free_agent(&conf);
        return 0;
    }
    struct bg_agent a;
    rc = bg_agent_init(&a, &conf);
    if (rc == 0)
        rc = bg_agent_run(&a);
    bg_agent_free(&a);
    bg_conf_free_agent(&conf);
    bg_info("exit", "rc=%d", rc == 0 ? 0 : 1);
    return rc == 0 ? 0 : 1;
}
