/* main.c -- bg-agent command line. */
#include "agent.h"
#include "cli.h"

#include <stdio.h>

static int load(const char *path, void *conf, struct bg_conf_errors *errs)
{
    return bg_conf_load_agent(path, conf, errs);
}

static void free_conf(void *conf)
{
    bg_conf_free_agent(conf);
}

static void warnings(const void *conf, FILE *f)
{
    const struct bg_agent_conf *c = conf;
    if (c->check.type == BG_CHECK_NONE)
        fprintf(f,
                "%s: warning: no check: configured; the application counts as healthy "
                "whether it works or not (see check: http, tcp or exec)\n",
                c->path);
}

static int run(void *conf)
{
    struct bg_agent a;
    int rc = bg_agent_init(&a, conf);
    if (rc == 0)
        rc = bg_agent_run(&a);
    bg_agent_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct bg_daemon d = {
        .name = "bg-agent",
        .conf_name = "agent.yaml",
        .about = "Registers this application instance in ZooKeeper under /<color>/<id>, serves\n"
                 "the status API (PUT/GET /v1/status, GET /health, GET /metrics) and applies\n"
                 "UP / OUT_OF_SERVICE to the configured backends.",
        .version = BG_VERSION,
        .load = load,
        .free_conf = free_conf,
        .warnings = warnings,
        .run = run,
    };
    struct bg_agent_conf conf;
    return bg_daemon_main(&d, &conf, argc, argv);
}
