/* main.c -- bg-router command line. */
#include "cli.h"
#include "router.h"

static int load(const char *path, void *conf, struct bg_conf_errors *errs)
{
    return bg_conf_load_router(path, conf, errs);
}

static void free_conf(void *conf)
{
    bg_conf_free_router(conf);
}

static int run(void *conf)
{
    struct bg_router r;
    int rc = bg_router_init(&r, conf);
    if (rc == 0)
        rc = bg_router_run(&r);
    bg_router_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct bg_daemon d = {
        .name = "bg-router",
        .conf_name = "router.yaml",
        .about = "Runs beside a load balancer (kind nginx) and makes it serve exactly the\n"
                 "instances the controller has marked UP in /status: renders nginx's upstream\n"
                 "file, tests the whole configuration before swapping it in, reloads, confirms,\n"
                 "and publishes what it serves in /routers/<id>.",
        .version = BG_VERSION,
        .load = load,
        .free_conf = free_conf,
        .run = run,
    };
    struct bg_router_conf conf;
    return bg_daemon_main(&d, &conf, argc, argv);
}
