/* eureka_job.c -- the Eureka backend's job machine: the next request, and the meaning of
 * each answer (a confirmation's retries, one re-registration after a 404); and the
 * registration body it sends. Pure. */
#include "eureka_job.h"
#include "json.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>

#include <string.h>

void bg_eu_job_start(struct bg_eu_job *j, bool fg, bool has_target, enum bg_status target, bool reg,
                     int64_t now)
{
    *j = (struct bg_eu_job){.active = true,
                            .fg = fg,
                            .has_target = has_target,
                            .reg = reg,
                            .target = target,
                            .weight = -1,
                            .step = reg ? BG_EU_REGISTER : BG_EU_STATUS,
                            .started = now};
}

const char *bg_eu_job_own_status(const struct bg_eu_job *j)
{
    return j->has_target && j->target == BG_STATUS_UP ? "UP" : "STARTING";
}

enum bg_eu_step bg_eu_job_next(struct bg_eu_job *j, const char *registered_as)
{
    if (j->step == BG_EU_REGISTER && registered_as != NULL &&
        strcmp(registered_as, bg_eu_job_own_status(j)) == 0)
        j->step = BG_EU_STATUS;
    if (j->step == BG_EU_STATUS && !j->has_target)
        j->step = BG_EU_DONE;
    return j->step;
}

/* A confirmation read: done when the registry says what we want, else read again after a
 * gap, unless the reads or the caller's time are used up. */
static enum bg_eu_outcome confirm_feed(struct bg_eu_job *j, const struct bg_eu_answer *a, bool ok,
                                       int64_t now)
{
    const char *want = j->target == BG_STATUS_UP ? "UP" : "OUT_OF_SERVICE";
    const char *seen = ok ? a->status : NULL;
    j->confirm_tries++;
    if (seen != NULL && strcmp(seen, want) == 0)
        return BG_EU_CONFIRMED;
    bool late = j->limit_ms > 0 && now + BG_EU_CONFIRM_GAP_MS >= j->limit_ms;
    if (j->confirm_tries < BG_EU_CONFIRM_TRIES && !late) {
        j->not_before = now + BG_EU_CONFIRM_GAP_MS;
        return BG_EU_NEXT;
    }
    return seen != NULL ? BG_EU_MISMATCH : BG_EU_UNCONFIRMED;
}

enum bg_eu_outcome bg_eu_job_feed(struct bg_eu_job *j, enum bg_eu_step sent,
                                  const struct bg_eu_answer *a, int64_t now)
{
    bool ok = a->transport_ok && a->code >= 200 && a->code < 300;
    bool gone = a->transport_ok && a->code == 404;
    if (sent == BG_EU_REGISTER) {
        if (!ok)
            return BG_EU_REGISTER_FAILED;
        j->step = BG_EU_STATUS;
        return BG_EU_REGISTERED;
    }
    if (gone && j->reg && j->registers == 0) {
        /* The registry lost us: register again, then repeat the status call. */
        j->registers++;
        j->step = BG_EU_REGISTER;
        return BG_EU_LOST;
    }
    if (gone)
        return BG_EU_NOT_REGISTERED;
    if (sent == BG_EU_STATUS && j->step == BG_EU_METADATA) {
        if (!ok)
            return BG_EU_STATUS_FAILED; /* the weight was not set: the apply failed */
        j->step = BG_EU_CONFIRM;
        j->confirm_tries = 0;
        return BG_EU_NEXT;
    }
    if (sent == BG_EU_STATUS) {
        if (!ok)
            return BG_EU_STATUS_FAILED;
        j->url = a->url;
        bool weigh = j->target == BG_STATUS_UP && j->weight >= 0 && j->weight <= 100;
        j->step = weigh ? BG_EU_METADATA : BG_EU_CONFIRM;
        j->confirm_tries = 0;
        return BG_EU_NEXT;
    }
    return confirm_feed(j, a, ok, now);
}

int bg_eu_outcome_rc(enum bg_eu_outcome o)
{
    switch (o) {
    case BG_EU_NEXT:
    case BG_EU_REGISTERED:
    case BG_EU_LOST:
    case BG_EU_CONFIRMED:
        return 0;
    case BG_EU_NOT_REGISTERED:
        return BG_ENOTFOUND;
    case BG_EU_REGISTER_FAILED:
    case BG_EU_STATUS_FAILED:
    case BG_EU_MISMATCH:
    case BG_EU_UNCONFIRMED:
        break;
    }
    return BG_EHTTP;
}

/* ----------------------------------------------------------------------------------------
 * Request bodies.
 * ------------------------------------------------------------------------------------- */

char *bg_eu_register_body(const struct bg_eureka_conf *c, const struct bg_instance_conf *in,
                          const char *status, int64_t dirty_ts)
{
    const char *host = c->host_name ? c->host_name : (c->ip_addr ? c->ip_addr : "localhost");
    const char *ip = c->ip_addr ? c->ip_addr : host;
    const char *vip = c->vip_address ? c->vip_address : c->app;
    char home[300], health[300], dirty[32];
    snprintf(home, sizeof(home), "http://%s:%d/", host, c->port);
    /* The agent's /health tells the truth about this instance's traffic state. */
    snprintf(health, sizeof(health), "%s/health", in->endpoint ? in->endpoint : "");
    snprintf(dirty, sizeof(dirty), "%lld", (long long)dirty_ts);
    json_int_t renew = c->renew_interval_ms / 1000 > 0 ? c->renew_interval_ms / 1000 : 1;
    json_int_t dur = c->duration_ms / 1000 > renew ? c->duration_ms / 1000 : renew + 1;
    /* The shape of Eureka's JSON codec (EurekaJacksonCodec), field by field. */
    json_t *inst = json_object();
    json_object_set_new(inst, "instanceId", json_string(c->instance_id));
    json_object_set_new(inst, "hostName", json_string(host));
    json_object_set_new(inst, "app", json_string(c->app));
    json_object_set_new(inst, "ipAddr", json_string(ip));
    json_object_set_new(inst, "vipAddress", json_string(vip));
    json_object_set_new(inst, "secureVipAddress", json_string(vip));
    json_object_set_new(inst, "status", json_string(status));
    json_object_set_new(inst, "overriddenStatus", json_string("UNKNOWN"));
    json_object_set_new(inst, "port", json_pack("{s:i, s:s}", "$", c->port, "@enabled", "true"));
    json_object_set_new(inst, "securePort", json_pack("{s:i, s:s}", "$", 443, "@enabled", "false"));
    json_object_set_new(inst, "countryId", json_integer(1));
    json_object_set_new(inst, "dataCenterInfo",
                        json_pack("{s:s, s:s}", "@class",
                                  "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name",
                                  "MyOwn"));
    json_object_set_new(
        inst, "leaseInfo",
        json_pack("{s:I, s:I}", "renewalIntervalInSecs", renew, "durationInSecs", dur));
    json_object_set_new(inst, "metadata",
                        json_pack("{s:s, s:s}", "bluegreen.color", bg_color_name(in->color),
                                  "bluegreen.version", in->version ? in->version : ""));
    json_object_set_new(inst, "homePageUrl", json_string(home));
    json_object_set_new(inst, "statusPageUrl", json_string(home));
    json_object_set_new(inst, "healthCheckUrl", json_string(health));
    json_object_set_new(inst, "lastDirtyTimestamp", json_string(dirty));
    json_object_set_new(inst, "isCoordinatingDiscoveryServer", json_string("false"));
    json_t *root = json_pack("{s:o}", "instance", inst);
    char *s = bg_json_dumps_safe(root, JSON_COMPACT, "eureka_register");
    json_decref(root);
    return s;
}
