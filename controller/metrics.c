/* metrics.c -- the controller's GET /metrics: counters kept by controller.c, gauges computed
 * from the members as last read, and the switch and call latency histograms. */
#include "metrics.h"

#include "controller.h"
#include "prom.h"
#include "util.h"

/* A switch, from the flip seen to converged: 50 ms .. 10 min. */
static const double switch_le[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600};

void bg_ctl_metrics_init(struct bg_ctl *c)
{
    bg_prom_hist_init(&c->switch_seconds, switch_le, BG_ARRAY_LEN(switch_le));
    for (size_t i = 0; i < BG_ARRAY_LEN(c->call_seconds); i++)
        bg_prom_hist_init(&c->call_seconds[i], bg_prom_latency_le, bg_prom_latency_n);
}

/* Per colour: registered, UP (the agent confirmed it applied UP) and healthy instances. */
static void per_color(struct bg_prom *p, const struct bg_ctl *c)
{
    double reg[2] = {0, 0}, up[2] = {0, 0}, healthy[2] = {0, 0};
    for (size_t i = 0; i < c->n; i++) {
        const struct bg_member *m = &c->m[i];
        if (m->color != BG_BLUE && m->color != BG_GREEN)
            continue;
        reg[m->color]++;
        up[m->color] += m->endpoint != NULL && m->known == BG_KNOWN_UP;
        healthy[m->color] += m->endpoint != NULL && m->healthy;
    }
    static const struct {
        const char *name, *help;
    } fam[3] = {
        {"bg_controller_instances_registered",
         "Instances registered in ZooKeeper, by colour (as the leader last read them)."},
        {"bg_controller_instances_up", "Instances whose agent confirmed UP, by colour."},
        {"bg_controller_instances_healthy",
         "Instances whose application health check passes, by colour."},
    };
    const double *v[3] = {reg, up, healthy};
    for (int f = 0; f < 3; f++) {
        bg_prom_family(p, fam[f].name, "gauge", fam[f].help);
        for (int col = BG_BLUE; col <= BG_GREEN; col++)
            bg_prom_sample(p, fam[f].name, v[f][col], "color", bg_color_name(col),
                           (const char *)NULL);
    }
}

/* One sample per colour, 1 for the colour named (none when it is unknown). */
static void color_gauge(struct bg_prom *p, const char *name, const char *help, enum bg_color is)
{
    bg_prom_family(p, name, "gauge", help);
    for (int col = BG_BLUE; col <= BG_GREEN; col++)
        bg_prom_sample(p, name, col == (int)is, "color", bg_color_name(col), (const char *)NULL);
}

/* Traffic shaping (DESIGN §12): the canary's request, the weight each colour's instances are
 * given, the share expected, and drains. */
static void shaping(struct bg_prom *p, const struct bg_ctl *c)
{
    struct bg_plan_input in = {.desired = c->desired,
                               .m = c->m,
                               .n = c->n,
                               .min_ready = c->conf->sw.min_ready,
                               .canary = c->canary};
    struct bg_shape s;
    bg_shape_init(&s, &in);
    bg_prom_family(p, "bg_controller_canary_percent", "gauge",
                   "The share (%) /canary asks for, by colour (0: no canary in effect).");
    bg_prom_family(p, "bg_controller_weight", "gauge",
                   "The weight (1-100, % of the configured weight) each colour's UP instances "
                   "are given.");
    for (int col = BG_BLUE; col <= BG_GREEN; col++) {
        bool canary = s.canary && s.canary_color == (enum bg_color)col;
        bg_prom_sample(p, "bg_controller_canary_percent", canary ? s.percent : 0, "color",
                       bg_color_name(col), (const char *)NULL);
        bg_prom_sample(p, "bg_controller_weight", canary ? s.w_canary : s.w_active, "color",
                       bg_color_name(col), (const char *)NULL);
    }
    bg_prom_gauge(p, "bg_controller_canary_share_percent",
                  "The canary colour's expected share of the traffic (%) from the weights or "
                  "instance count.",
                  s.canary ? s.share : 0);
    bg_prom_gauge(p, "bg_controller_canary_instance_mode",
                  "1 when the canary is an instance-count canary (an instance cannot weight).",
                  s.canary && s.by_count);
    bg_prom_gauge(p, "bg_controller_drained_instances",
                  "Instances taken out by /drain/<id> (leader only).", s.drained);
    bg_prom_gauge(p, "bg_controller_drains_refused",
                  "Drains refused: they would leave the active colour below min_ready.", s.refused);
    bg_shape_free(&s);
}

/* The live bg-routers the leader waits for (DESIGN §13), as it last read /routers. */
static void routers(struct bg_prom *p, const struct bg_ctl *c)
{
    bg_prom_gauge(p, "bg_controller_routers", "Live bg-routers (/routers/<id>) seen (leader only).",
                  (double)c->n_routers);
    static const struct {
        const char *name, *help;
    } fam[4] = {
        {"bg_controller_router_serving", "Instances a router's balancer serves, by colour."},
        {"bg_controller_router_failing",
         "1 while a router reports an error with a change pending (it blocks a switch)."},
        {"bg_controller_router_pending", "1 while a router has a change under way."},
        {"bg_controller_router_waited", "1 while the switch waits for this router."},
    };
    bg_prom_family(p, fam[0].name, "gauge", fam[0].help);
    for (size_t i = 0; i < c->n_routers; i++)
        for (int col = BG_BLUE; col <= BG_GREEN; col++)
            bg_prom_sample(p, fam[0].name, c->routers[i].serving[col], "router", c->routers[i].id,
                           "color", bg_color_name(col), (const char *)NULL);
    for (int f = 1; f < 4; f++) {
        bg_prom_family(p, fam[f].name, "gauge", fam[f].help);
        for (size_t i = 0; i < c->n_routers; i++) {
            const struct bg_router_view *r = &c->routers[i];
            bool v = f == 1   ? r->error[0] != '\0'
                     : f == 2 ? r->pending
                              : i < BG_ROUTERS_MAX && ((c->routers_waited >> i) & 1u);
            bg_prom_sample(p, fam[f].name, v, "router", r->id, (const char *)NULL);
        }
    }
}

char *bg_ctl_metrics(struct bg_ctl *c)
{
    size_t unhealthy = 0, unconfirmed = 0;
    for (size_t i = 0; i < c->n; i++) {
        unhealthy += c->m[i].endpoint != NULL && !c->m[i].healthy;
        unconfirmed += c->m[i].endpoint != NULL && c->m[i].unconfirmed;
    }
    struct bg_prom p;
    bg_prom_init(&p);
    bg_prom_gauge(&p, "bg_controller_leader", "1 while this controller leads.", c->leader);
    bg_prom_gauge(&p, "bg_controller_epoch", "This controller's election sequence number.",
                  (double)c->epoch);
    bg_prom_gauge(&p, "bg_controller_instances", "Instances registered (both colours).",
                  (double)c->n);
    bg_prom_counter(&p, "bg_controller_calls_total", "Status calls (PUT /v1/status) to agents.",
                    (double)c->n_calls);
    bg_prom_counter(&p, "bg_controller_call_failures_total",
                    "Status calls that failed (after their retries).", (double)c->n_call_failures);
    bg_prom_counter(&p, "bg_controller_switches_total", "Switches started (first one included).",
                    (double)c->n_switches);
    bg_prom_counter(&p, "bg_controller_passes_total", "Reconcile passes.", (double)c->n_passes);
    bg_prom_family(&p, "bg_controller_phase", "gauge", "The current phase, as a label (value 1).");
    bg_prom_sample(&p, "bg_controller_phase", 1, "phase", bg_phase_name(c->phase),
                   (const char *)NULL);
    bg_prom_gauge(&p, "bg_controller_unhealthy_instances",
                  "Registered instances whose application health check fails.", (double)unhealthy);
    bg_prom_gauge(&p, "bg_controller_fallback",
                  "1 while the desired colour cannot carry traffic and the other colour serves "
                  "instead.",
                  c->fallback);
    bg_prom_gauge(&p, "bg_controller_unconfirmed_instances",
                  "Instances whose last status a balancer has not seen yet (held, with "
                  "switch.unconfirmed: hold).",
                  (double)unconfirmed);
    color_gauge(&p, "bg_controller_desired_color",
                "1 for the colour /active_color asks for (leader only).", c->desired);
    color_gauge(&p, "bg_controller_applied_color",
                "1 for the colour of the last converged state (leader only).", c->applied);
    per_color(&p, c);
    shaping(&p, c);
    routers(&p, c);
    bg_prom_family(&p, "bg_controller_switch_duration_seconds", "histogram",
                   "Switches, from the new colour seen to converged.");
    bg_prom_hist(&p, "bg_controller_switch_duration_seconds", &c->switch_seconds,
                 (const char *)NULL);
    bg_prom_family(&p, "bg_controller_call_duration_seconds", "histogram",
                   "Calls to agents, first attempt to answer (retries included): call=\"status\" "
                   "tells a status (PUT), call=\"probe\" asks it (GET).");
    bg_prom_hist(&p, "bg_controller_call_duration_seconds", &c->call_seconds[0], "call", "status",
                 (const char *)NULL);
    bg_prom_hist(&p, "bg_controller_call_duration_seconds", &c->call_seconds[1], "call", "probe",
                 (const char *)NULL);
    bg_prom_family(&p, "bg_controller_zk_call_duration_seconds", "histogram",
                   "ZooKeeper calls, submitted to answered (or given up for this turn).");
    bg_prom_hist(&p, "bg_controller_zk_call_duration_seconds", &c->zk.call_seconds,
                 (const char *)NULL);
    return bg_prom_finish(&p);
}
