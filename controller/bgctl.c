/* bgctl.c -- the operator's and CI's command line: options, the command table, main, and the
 * ZooKeeper reads every command shares (the commands: bgctl_switch.c, bgctl_status.c). */
#include "bgctl.h"
#include "traffic.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "zk.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct command {
    const char *name;
    const char *help; /* its lines of the usage text */
    /* Check the command's arguments before connecting: 0, or EXIT_USAGE (said on stderr). */
    int (*check)(struct ctl *c, const char *name, int nargs, char **args);
    int (*run)(struct ctl *c); /* connected: the exit status */
};

/* ----------------------------------------------------------------------------------------
 * ZooKeeper helpers.
 * ------------------------------------------------------------------------------------- */

/* zerror() plus what to do about the one error users can fix themselves. */
const char *bgctl_why(int rc)
{
    if (rc == ZNOAUTH)
        return "not authorised (the nodes are protected by zookeeper.auth: pass -a USER:PASS "
               "or set BG_ZK_AUTH)";
    return zerror(rc);
}

/* Read a node into a malloc'd NUL-terminated buffer (NULL if missing or on error). */
char *bgctl_get(struct ctl *c, const char *rel, int watch, struct Stat *st, int *rc_out)
{
    char path[1024];
    bg_zk_path(&c->zk, rel, path, sizeof(path));
    int cap = 1 << 20;
    char *buf = bg_xmalloc((size_t)cap + 1);
    int len = cap;
    struct Stat tmp;
    int rc = bg_zk_get(&c->zk, path, watch, buf, &len, st ? st : &tmp);
    if (rc_out)
        *rc_out = rc;
    if (rc != ZOK) {
        free(buf);
        if (st != NULL)
            memset(st, 0, sizeof(*st)); /* never leave the caller's Stat undefined */
        if (rc == ZNONODE && watch)
            bg_zk_exists(&c->zk, path, 1, st ? st : &tmp);
        return NULL;
    }
    buf[len < 0 ? 0 : len] = '\0';
    return buf;
}

json_t *bgctl_get_json(struct ctl *c, const char *rel, int watch)
{
    char *s = bgctl_get(c, rel, watch, NULL, NULL);
    if (s == NULL)
        return NULL;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    return j;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int bgctl_children(struct ctl *c, const char *rel, struct String_vector *kids)
{
    char path[1024];
    bg_zk_path(&c->zk, rel, path, sizeof(path));
    memset(kids, 0, sizeof(*kids));
    int rc = bg_zk_children(&c->zk, path, 0, kids);
    if (rc == ZOK && kids->count > 1)
        qsort(kids->data, (size_t)kids->count, sizeof(char *), cmp_str);
    return rc;
}

static int connect_zk(struct ctl *c, const char *connect, const char *root, const char *auth)
{
    if (bg_zk_open(&c->zk, connect, root, 10000, auth) != 0) {
        fprintf(stderr, "bgctl: cannot start a ZooKeeper client for %s\n", connect);
        return EXIT_ERROR;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    if (bg_zk_wait_connected(&c->zk, 5000) != 0) {
        fprintf(stderr, "bgctl: cannot connect to ZooKeeper at %s within 5 s\n", connect);
        return EXIT_ERROR;
    }
    return 0;
}

/* The current leader's id, from the lowest live /election member, into *out (caller frees;
 * NULL when no controller is running). A persistent member-... made by hand is no controller
 * and never named as the leader. Returns ZOK, or the ZooKeeper error that kept us from knowing
 * (then *out is NULL too: "no controller" must not be said of what could not be read). */
int bgctl_leader_id(struct ctl *c, char **out)
{
    struct bg_election_member *m = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = bg_zk_election_members(&c->zk, 0, &m, &n);
    if (rc != ZOK || n == 0) {
        free(m);
        return rc;
    }
    char rel[600];
    snprintf(rel, sizeof(rel), "/election/%s", m[0].name);
    free(m);
    json_t *j = bgctl_get_json(c, rel, 0);
    const char *id = json_string_value(json_object_get(j, "id"));
    *out = bg_xstrdup(id ? id : "?");
    json_decref(j);
    return ZOK;
}

/* ----------------------------------------------------------------------------------------
 * Arguments and the command table.
 * ------------------------------------------------------------------------------------- */

static int no_args(struct ctl *c, const char *name, int nargs, char **args)
{
    (void)c;
    if (nargs == 0)
        return 0;
    fprintf(stderr, "bgctl: %s: unexpected argument \"%s\"\n", name, args[0]);
    return EXIT_USAGE;
}

static int check_init(struct ctl *c, const char *name, int nargs, char **args)
{
    if (no_args(c, name, nargs, args) != 0)
        return EXIT_USAGE;
    if (bg_parse_color(c->color, strlen(c->color)) == BG_COLOR_INVALID) {
        fprintf(stderr, "bgctl: --color must be blue or green\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int check_switch(struct ctl *c, const char *name, int nargs, char **args)
{
    (void)name;
    if (nargs == 1)
        c->target = bg_parse_color(args[0], strlen(args[0]));
    if (nargs != 1 || c->target == BG_COLOR_INVALID) {
        fprintf(stderr, "bgctl: switch needs one colour: blue or green\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* canary COLOUR --steps P1,P2,... --every DUR: percents rising, 1-99. */
static int check_steps(struct ctl *c, int nargs, char **args)
{
    if (nargs != 1 || (c->target = bg_parse_color(args[0], strlen(args[0]))) == BG_COLOR_INVALID) {
        fprintf(stderr, "bgctl: canary --steps needs one colour (blue|green)\n");
        return EXIT_USAGE;
    }
    if (c->every_ms <= 0) {
        fprintf(stderr, "bgctl: canary --steps needs --every DUR (how long each step holds)\n");
        return EXIT_USAGE;
    }
    int last = 0, n = 0;
    for (const char *p = c->steps; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= last || v > 99 || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "bgctl: --steps: expected rising percents 1-99 such as 10,25,50\n");
            return EXIT_USAGE;
        }
        last = (int)v;
        n++;
        p = *end == ',' ? end + 1 : end;
    }
    if (n == 0) {
        fprintf(stderr, "bgctl: --steps: expected rising percents 1-99 such as 10,25,50\n");
        return EXIT_USAGE;
    }
    c->percent = last;
    return 0;
}

static int check_canary(struct ctl *c, const char *name, int nargs, char **args)
{
    (void)name;
    if (c->abort_canary && nargs == 0)
        return 0;
    if (c->abort_canary) {
        fprintf(stderr, "bgctl: canary --abort takes no colour or percent\n");
        return EXIT_USAGE;
    }
    if (c->steps != NULL)
        return check_steps(c, nargs, args);
    if (c->every_ms > 0) {
        fprintf(stderr, "bgctl: canary --every goes with --steps\n");
        return EXIT_USAGE;
    }
    if (nargs == 2) {
        char data[64], why[160];
        snprintf(data, sizeof(data), "%s %s", args[0], args[1]);
        struct bg_canary cn;
        if (strlen(args[0]) + strlen(args[1]) < 40 &&
            bg_parse_canary(data, strlen(data), &cn, why, sizeof(why)) == 0 &&
            cn.color != BG_COLOR_INVALID) {
            c->target = cn.color;
            c->percent = cn.percent;
            return 0;
        }
    }
    fprintf(stderr, "bgctl: canary needs a colour and a percent (blue|green 1-99), or --abort\n");
    return EXIT_USAGE;
}

static int check_id(struct ctl *c, const char *name, int nargs, char **args)
{
    if (nargs != 1 || !bg_drain_id_ok(args[0])) {
        fprintf(stderr, "bgctl: %s needs one instance id ([A-Za-z0-9._:-], 1-128 bytes)\n", name);
        return EXIT_USAGE;
    }
    c->id = args[0];
    char reason[BG_DRAIN_REASON_MAX + 1], why[160];
    if (c->reason && bg_parse_drain(c->reason, strlen(c->reason), reason, sizeof(reason), why,
                                    sizeof(why)) != 0) {
        fprintf(stderr, "bgctl: --reason: %s\n", why);
        return EXIT_USAGE;
    }
    if (c->reason && strcmp(name, "drain") != 0) {
        fprintf(stderr, "bgctl: --reason is for drain\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* In the order of the usage text. */
static const struct command commands[] = {
    {"init",
     "  init [--color blue|green]   create /blue, /green, /election, /history and\n"
     "                              /active_color (default blue) if missing\n",
     check_init, bgctl_cmd_init},
    {"status", "  status [--json]             active colour, leader, phase, every instance\n",
     no_args, bgctl_cmd_status},
    {"switch",
     "  switch blue|green [--wait] [--timeout DUR]\n"
     "                              set /active_color; with --wait, wait until the\n"
     "                              controller has converged on it\n",
     check_switch, bgctl_cmd_switch},
    {"rollback",
     "  rollback [--wait] [--timeout DUR]\n"
     "                              switch back to the other colour\n",
     no_args, bgctl_cmd_rollback},
    {"wait", "  wait [--timeout DUR]        wait until /status has converged on /active_color\n",
     no_args, bgctl_cmd_wait},
    {"history", "  history [--json] [-n N]     finished and aborted switches, newest last\n",
     no_args, bgctl_cmd_history},
    {"canary",
     "  canary blue|green PERCENT|--abort [--wait] [--timeout DUR]\n"
     "                              send PERCENT (1-99) of the traffic to that colour\n"
     "                              (set /canary); promote with switch; --abort ends\n"
     "                              it (delete /canary: the canary colour goes out);\n"
     "                              --steps 10,25,50 --every 2m walks the percents,\n"
     "                              then promotes (an unhealthy canary aborts)\n",
     check_canary, bgctl_cmd_canary},
    {"drain",
     "  drain ID [--reason TEXT] [--wait] [--timeout DUR]\n"
     "                              take instance ID out of service (/drain/ID);\n"
     "                              refused (exit 2) below min_ready\n",
     check_id, bgctl_cmd_drain},
    {"undrain", "  undrain ID [--wait]         put a drained instance back (delete /drain/ID)\n",
     check_id, bgctl_cmd_undrain},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: bgctl [-z CONNECT] [-r ROOT] COMMAND [ARGS]\n"
               "\n"
               "Commands:\n");
    for (const struct command *k = commands; k->name != NULL; k++)
        fputs(k->help, f);
    fprintf(f, "\n"
               "Options:\n"
               "  -z, --zookeeper CONNECT  ZooKeeper connect string (default $BG_ZK or "
               "127.0.0.1:2181)\n"
               "  -r, --root ROOT          root of this service's nodes (default $BG_ROOT or /)\n"
               "  -a, --auth USER:PASS     ZooKeeper digest credentials, as the daemons'\n"
               "                           zookeeper.auth (default $BG_ZK_AUTH; prefer the\n"
               "                           variable: arguments are visible in ps)\n"
               "  -h, --help               this text\n"
               "\n"
               "DUR is like 500ms, 30s or 2m (default 60s).\n"
               "Exit status: 0 converged/ok, 1 error (e.g. ZooKeeper unreachable), 2 blocked\n"
               "(reason on stderr), 3 timed out, 64 usage error.\n");
}

static const struct command *find_command(const char *name)
{
    for (const struct command *k = commands; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* Where an option that takes a text (-z, -r, -a, --color) keeps it, or NULL. */
static const char **text_option(struct ctl *c, int o)
{
    return o == 'z'   ? &c->connect
           : o == 'r' ? &c->root
           : o == 'a' ? &c->auth
           : o == 'C' ? &c->color
                      : NULL;
}

/* One option of getopt_long: 0 to go on, else the exit status (-h, -V, a usage error). */
static int option(struct ctl *c, int o)
{
    const char **text = text_option(c, o);
    if (text != NULL) {
        *text = optarg;
        return 0;
    }
    switch (o) {
    case 'j':
        c->json = true;
        return 0;
    case 'w':
        c->wait = true;
        return 0;
    case 'n':
        c->limit = atol(optarg);
        return 0;
    case 'A':
        c->abort_canary = true;
        return 0;
    case 'R':
        c->reason = optarg;
        return 0;
    case 'S':
        c->steps = optarg;
        return 0;
    case 'E':
        if (bg_parse_duration(optarg, &c->every_ms) == 0 && c->every_ms > 0)
            return 0;
        fprintf(stderr, "bgctl: --every: expected a duration like 2m, got \"%s\"\n", optarg);
        return EXIT_USAGE;
    case 't':
        if (bg_parse_duration(optarg, &c->timeout_ms) == 0)
            return 0;
        fprintf(stderr, "bgctl: --timeout: expected a duration like 30s, got \"%s\"\n", optarg);
        return EXIT_USAGE;
    case 'h':
        usage(stdout);
        return EXIT_CONVERGED; /* 0, but stop here */
    case 'V':
        printf("bgctl %s\n", BG_VERSION);
        return EXIT_CONVERGED;
    default:
        usage(stderr);
        return EXIT_USAGE;
    }
}

/* The options, with the environment's defaults: -1 to go on, else the exit status. */
static int parse_options(struct ctl *c, int argc, char **argv)
{
    const char *env_auth = getenv("BG_ZK_AUTH");
    c->connect = getenv("BG_ZK") ? getenv("BG_ZK") : "127.0.0.1:2181";
    c->root = getenv("BG_ROOT") ? getenv("BG_ROOT") : "/";
    c->auth = env_auth && env_auth[0] ? env_auth : NULL;
    c->color = "blue";
    c->timeout_ms = 60000;
    c->target = BG_COLOR_INVALID;
    static const struct option opts[] = {{"zookeeper", required_argument, NULL, 'z'},
                                         {"root", required_argument, NULL, 'r'},
                                         {"auth", required_argument, NULL, 'a'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"wait", no_argument, NULL, 'w'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"color", required_argument, NULL, 'C'},
                                         {"abort", no_argument, NULL, 'A'},
                                         {"reason", required_argument, NULL, 'R'},
                                         {"steps", required_argument, NULL, 'S'},
                                         {"every", required_argument, NULL, 'E'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "z:r:a:n:hV", opts, NULL)) != -1) {
        int rc = option(c, o);
        if (rc != 0 || o == 'h' || o == 'V')
            return rc;
    }
    return -1;
}

/* ----------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bg_log_init("bgctl");
    if (getenv("BG_LOG_LEVEL") == NULL)
        bg_log_set_level(BG_LOG_ERROR);
    struct ctl c = {0};
    int rc = parse_options(&c, argc, argv);
    if (rc >= 0)
        return rc;
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    const struct command *cmd = find_command(name);
    /* Arguments first (an unknown command's too), then whether the command exists. */
    rc = (cmd != NULL ? cmd->check : no_args)(&c, name, argc - optind - 1, argv + optind + 1);
    if (rc != 0)
        return rc;
    if (cmd == NULL) {
        fprintf(stderr, "bgctl: unknown command \"%s\"\n", name);
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *auth = c.auth;
    if (auth != NULL && (strchr(auth, ':') == NULL || auth[0] == ':' || strpbrk(auth, " \t\n"))) {
        fprintf(stderr, "bgctl: --auth / BG_ZK_AUTH: expected USER:PASS without white space\n");
        return EXIT_USAGE;
    }
    rc = connect_zk(&c, c.connect, c.root, auth);
    if (rc == 0)
        rc = cmd->run(&c);
    bg_zk_close(&c.zk);
    return rc;
}
