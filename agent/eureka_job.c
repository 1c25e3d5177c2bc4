/* eureka_job.c -- the Eureka backend's job machine: the next request, and the meaning of
 * each answer (a confirmation's retries, one re-registration after a 404). Pure. */
#include "eureka_job.h"
#include "util.h"

#include <string.h>

void bg_eu_job_start(struct bg_eu_job *j, bool fg, bool has_target, enum bg_status target, bool reg,
                     int64_t now)
{
    *j = (struct bg_eu_job){.active = true,
                            .fg = fg,
                            .has_target = has_target,
                            .reg = reg,
                            .target = target,
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
    if (sent == BG_EU_STATUS) {
        if (!ok)
            return BG_EU_STATUS_FAILED;
        j->url = a->url;
        j->step = BG_EU_CONFIRM;
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
