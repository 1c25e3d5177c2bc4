/* main.c -- bg-controller command line. */
#include "cli.h"
#include "controller.h"

static int load(const char *path, void *conf, struct bg_conf_errors *errs)
{
    return bg_conf_load_controller(path, conf, errs);
}

static void free_conf(void *conf)
{
    bg_conf_free_controller(conf);
}

static int run(void *conf)
{
    struct bg_ctl c;
    int rc = bg_ctl_init(&c, conf);
    if (rc == 0)
        rc = bg_ctl_run(&c);
    bg_ctl_free(&c);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct bg_daemon d = {
        .name = "bg-controller",
        .conf_name = "controller.yaml",
        .about = "Joins the leader election under /election; the leader watches /active_color\n"
                 "and the instances under /blue and /green, and drives every instance to the\n"
                 "status the active colour asks for: the new colour UP one batch after another,\n"
                 "then (after switch.settle) the old colour OUT_OF_SERVICE. It writes /status\n"
                 "and /history. Run two or more copies: the others stand by.",
        .version = BG_VERSION,
        .load = load,
        .free_conf = free_conf,
        .run = run,
    };
    struct bg_controller_conf conf;
    return bg_daemon_main(&d, &conf, argc, argv);
}
