/* member.c -- an instance node's data, and the instances as /status lists them (pure,
 * unit-tested). */
#include "json.h"
#include "plan.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Visible ASCII only: an endpoint ends up in URLs, logs and /status (no controls, no white
 * space, no quote or backslash, nothing that is not ASCII: internationalised host names are
 * written in punycode). */
static bool plain_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

char *bg_parse_member_data(const char *data, size_t len, char *why, size_t whylen)
{
    char host[256];
    int port;
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    if (j != NULL) {
        json_t *e = json_is_object(j) ? json_object_get(j, "endpoint") : NULL;
        char *out = NULL;
        const char *s = json_string_value(e);
        if (s == NULL)
            snprintf(why, whylen, "node data has no \"endpoint\" string");
        else if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
            snprintf(why, whylen, "endpoint must start with http:// or https://");
        else if (s[strncmp(s, "http://", 7) == 0 ? 7 : 8] == '\0' ||
                 s[strncmp(s, "http://", 7) == 0 ? 7 : 8] == '/')
            snprintf(why, whylen, "endpoint has no host");
        else if (strlen(s) > 400 || !plain_ascii(s, strlen(s)))
            snprintf(why, whylen,
                     "endpoint is too long or has white space, control or non-ASCII characters");
        else
            out = bg_xstrdup(s);
        if (out != NULL) {
            size_t l = strlen(out);
            while (l > 0 && out[l - 1] == '/')
                out[--l] = '\0';
        }
        json_decref(j);
        return out;
    }
    /* A bare host:port, as hand-made layouts use. */
    if (len > 0 && len < 200 && memchr(data, '\0', len) == NULL) {
        char tmp[200];
        memcpy(tmp, data, len);
        tmp[len] = '\0';
        bg_trim(tmp);
        if (strpbrk(tmp, "/{") == NULL && plain_ascii(tmp, strlen(tmp)) &&
            bg_split_hostport(tmp, host, sizeof(host), &port) == 0 && port > 0)
            return bg_xasprintf("http://%s", tmp);
    }
    char clean[64];
    bg_sanitize(data, len > 40 ? 40 : len, clean, sizeof(clean));
    snprintf(why, whylen,
             "node data is neither JSON with an endpoint nor host:port (%zu bytes: "
             "%s)",
             len, clean);
    return NULL;
}

bool bg_parse_member_health(const char *data, size_t len, char *check, size_t checklen)
{
    check[0] = '\0';
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return true; /* a bare host:port (or garbage, which is unusable anyway) */
    }
    bool healthy = true;
    json_t *h = json_object_get(j, "healthy");
    if (h != NULL && !json_is_boolean(h)) {
        healthy = false;
        snprintf(check, checklen, "node's \"healthy\" is not true or false");
    } else if (h != NULL) {
        healthy = json_is_true(h);
    }
    const char *msg = json_string_value(json_object_get(j, "check"));
    if (msg != NULL && check[0] == '\0')
        bg_sanitize(msg, strlen(msg), check, checklen);
    json_decref(j);
    return healthy;
}

bool bg_parse_member_weighted(const char *data, size_t len)
{
    json_t *j = json_loadb(data, len, 0, NULL);
    bool w = json_is_object(j) && json_is_true(json_object_get(j, "weighted"));
    json_decref(j);
    return w;
}

/* ----------------------------------------------------------------------------------------
 * An agent's failure answer.
 * ------------------------------------------------------------------------------------- */

/* Append text to out[*used..] for a log value and JSON: quotes become ', backslashes /,
 * controls ? (other UTF-8 is kept; the caller repairs a cut character). */
static void append_clean(char *out, size_t outlen, size_t *used, const char *text, size_t len)
{
    for (size_t i = 0; i < len && *used + 1 < outlen; i++) {
        char c = text[i];
        if (c == '"')
            c = '\'';
        else if (c == '\\')
            c = '/';
        else if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        out[(*used)++] = c;
    }
    out[*used] = '\0';
}

static void append_str(char *out, size_t outlen, size_t *used, const char *text)
{
    append_clean(out, outlen, used, text, strlen(text));
}

void bg_agent_error_text(const char *body, size_t len, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    size_t used = 0;
    out[0] = '\0';
    json_t *j = body != NULL && len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *error = json_string_value(json_object_get(j, "error"));
    const char *backend = json_string_value(json_object_get(j, "backend"));
    const char *reason = json_string_value(json_object_get(j, "reason"));
    int more = 0;
    if (reason == NULL) {
        /* {"backends": [{"type": .., "ok": false, "reason": ..}, ..]}: the first that failed. */
        size_t i;
        json_t *b;
        json_array_foreach(json_object_get(j, "backends"), i, b)
        {
            if (!json_is_false(json_object_get(b, "ok")))
                continue;
            if (reason == NULL) {
                reason = json_string_value(json_object_get(b, "reason"));
                backend = json_string_value(json_object_get(b, "type"));
            } else {
                more++;
            }
        }
    }
    if (error == NULL && reason == NULL) {
        append_clean(out, outlen, &used, body ? body : "", body ? len : 0);
    } else {
        if (error != NULL)
            append_str(out, outlen, &used, error);
        if (backend != NULL) {
            append_str(out, outlen, &used, used ? " (" : "(");
            append_str(out, outlen, &used, backend);
            if (more > 0) {
                char n[48];
                snprintf(n, sizeof(n), ", %d more failed", more);
                append_str(out, outlen, &used, n);
            }
            append_str(out, outlen, &used, ")");
        }
        if (reason != NULL) {
            append_str(out, outlen, &used, used ? ": " : "");
            append_str(out, outlen, &used, reason);
        }
    }
    json_decref(j);
    bg_utf8_trim_end(out);
}

/* ----------------------------------------------------------------------------------------
 * /status: the per-instance part, under a byte budget.
 * ------------------------------------------------------------------------------------- */

/* One instance as /status lists it. */
static json_t *status_entry(const struct bg_member *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", bg_json_text(m->id, 0));
    json_object_set_new(o, "color", json_string(bg_color_name(m->color)));
    json_object_set_new(o, "status", json_string(bg_known_name(m->known)));
    json_object_set_new(o, "last_error", bg_json_text(m->last_error, BG_STATUS_ERROR_MAX));
    if (m->endpoint) {
        json_object_set_new(o, "endpoint", bg_json_text(m->endpoint, 0));
        json_object_set_new(o, "healthy", json_boolean(m->healthy));
        if (!m->healthy)
            json_object_set_new(o, "check", bg_json_text(m->check, 0));
    }
    if (m->problem)
        json_object_set_new(o, "problem", bg_json_text(m->problem, 0));
    if (m->known == BG_KNOWN_UP && m->weight > 0) /* the weight the agent confirmed */
        json_object_set_new(o, "weight", json_integer(m->weight));
    if (m->drained) {
        json_object_set_new(o, "drained", json_true());
        json_object_set_new(o, "drain_reason", bg_json_text(m->drain_reason, 0));
    }
    if (m->known != BG_KNOWN_NONE)
        json_object_set_new(o, "confirmed", json_boolean(!m->unconfirmed));
    if (m->unconfirmed) {
        /* The balancers that have not seen the status yet (what the switch waits for). */
        json_t *w = json_array();
        for (int b = 0; b < m->n_waiting && b < BG_WAITING_MAX; b++)
            json_array_append_new(w, bg_json_text(m->waiting[b], 0));
        json_object_set_new(o, "waiting_for", w);
        if (m->n_waiting > BG_WAITING_MAX)
            json_object_set_new(o, "waiting_more", json_integer(m->n_waiting - BG_WAITING_MAX));
    }
    return o;
}

/* Which instances an operator needs to see first when not all fit: 0 something is wrong with
 * it, 1 its status is unknown or not yet confirmed, 2 settled. */
static int status_rank(const struct bg_member *m)
{
    if (m->endpoint == NULL || m->problem != NULL || !m->healthy || m->last_error[0] != '\0' ||
        m->failures > 0)
        return 0;
    if (m->known == BG_KNOWN_NONE || m->unconfirmed)
        return 1;
    return 2;
}

static void count_up(json_t *counts, enum bg_color color, const char *key)
{
    json_t *c = json_object_get(counts, bg_color_name(color));
    if (c == NULL) {
        c = json_object();
        json_object_set_new(counts, bg_color_name(color), c);
    }
    json_t *v = json_object_get(c, key);
    json_object_set_new(c, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

/* Each member's /status entry and its size (and a comma) into entry[] and size[], the
 * per-colour counts into counts. Returns the entries' total size. */
static size_t status_entries(const struct bg_member *m, size_t n, json_t **entry, size_t *size,
                             json_t *counts)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        entry[i] = status_entry(&m[i]);
        size[i] = json_dumpb(entry[i], NULL, 0, JSON_COMPACT) + 1; /* and a comma */
        total += size[i];
        count_up(counts, m[i].color, "instances");
        count_up(counts, m[i].color, bg_known_name(m[i].known));
        if (m[i].endpoint == NULL)
            count_up(counts, m[i].color, "unusable");
        else if (!m[i].healthy)
            count_up(counts, m[i].color, "unhealthy");
        if (m[i].last_error[0] != '\0')
            count_up(counts, m[i].color, "failing");
    }
    return total;
}

/* Which entries are listed (listed[]), within budget: most telling first; the first one that
 * does not fit ends the list, so that what is listed is always everything of a higher rank. */
static void status_choose(const struct bg_member *m, size_t n, const size_t *size, size_t budget,
                          bool *listed)
{
    size_t used = 0;
    bool full = false;
    for (int rank = 0; rank <= 2 && !full; rank++) {
        for (size_t i = 0; i < n && !full; i++) {
            if (status_rank(&m[i]) != rank)
                continue;
            if (used + size[i] > budget) {
                full = true;
            } else {
                listed[i] = true;
                used += size[i];
            }
        }
    }
}

size_t bg_status_instances(json_t *status, const struct bg_member *m, size_t n, size_t budget)
{
    json_t **entry = bg_xcalloc(n ? n : 1, sizeof(*entry));
    bool *listed = bg_xcalloc(n ? n : 1, sizeof(*listed));
    size_t *size = bg_xcalloc(n ? n : 1, sizeof(*size));
    json_t *counts = json_object();
    json_object_set_new(counts, "blue", json_pack("{s:i}", "instances", 0));
    json_object_set_new(counts, "green", json_pack("{s:i}", "instances", 0));
    size_t total = status_entries(m, n, entry, size, counts);
    size_t left_out = 0;
    if (total <= budget) {
        for (size_t i = 0; i < n; i++)
            listed[i] = true;
    } else {
        status_choose(m, n, size, budget, listed);
    }
    json_t *inst = json_array();
    json_t *omitted = json_object();
    for (size_t i = 0; i < n; i++) {
        if (listed[i]) {
            json_array_append_new(inst, entry[i]);
        } else {
            json_decref(entry[i]);
            count_up(omitted, m[i].color, bg_known_name(m[i].known));
            left_out++;
        }
    }
    json_object_set_new(status, "instances", inst);
    json_object_set_new(status, "counts", counts);
    if (left_out > 0) {
        json_object_set_new(status, "truncated", json_true());
        json_object_set_new(status, "omitted", omitted);
    } else {
        json_decref(omitted);
    }
    free(entry);
    free(listed);
    free(size);
    return left_out;
}

/* ----------------------------------------------------------------------------------------
 * Matching one read of the members with the previous one, and duplicates: sorted, not
 * compared pairwise (every pass does it, for thousands of members).
 * ------------------------------------------------------------------------------------- */

static int by_node(const void *x, const void *y)
{
    const struct bg_member *a = *(const struct bg_member *const *)x;
    const struct bg_member *b = *(const struct bg_member *const *)y;
    if (a->czxid != b->czxid)
        return a->czxid < b->czxid ? -1 : 1;
    if (a->color != b->color)
        return a->color < b->color ? -1 : 1;
    return strcmp(a->id, b->id);
}

void bg_members_match(const struct bg_member *a, size_t na, const struct bg_member *b, size_t nb,
                      size_t *match)
{
    const struct bg_member **sorted = bg_xcalloc(nb ? nb : 1, sizeof(*sorted));
    for (size_t k = 0; k < nb; k++)
        sorted[k] = &b[k];
    qsort(sorted, nb, sizeof(*sorted), by_node);
    for (size_t i = 0; i < na; i++) {
        const struct bg_member *key = &a[i];
        const struct bg_member **hit =
            nb ? bsearch(&key, sorted, nb, sizeof(*sorted), by_node) : NULL;
        match[i] = hit != NULL ? (size_t)(*hit - b) : SIZE_MAX;
    }
    free(sorted);
}

static int by_id(const void *x, const void *y)
{
    const struct bg_member *a = *(const struct bg_member *const *)x;
    const struct bg_member *b = *(const struct bg_member *const *)y;
    return strcmp(a->id, b->id);
}

size_t bg_members_duplicates(struct bg_member *m, size_t n)
{
    struct bg_member **sorted = bg_xcalloc(n ? n : 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = &m[i];
    qsort(sorted, n, sizeof(*sorted), by_id);
    size_t marked = 0;
    for (size_t start = 0, end; start < n; start = end) {
        /* One run of equal ids: a duplicate when it holds both colours. */
        bool both = false;
        for (end = start + 1; end < n && strcmp(sorted[end]->id, sorted[start]->id) == 0; end++)
            both |= sorted[end]->color != sorted[start]->color;
        for (size_t k = start; both && k < end; k++) {
            struct bg_member *d = sorted[k];
            d->duplicate = true;
            bg_free(&d->endpoint); /* never drive an ambiguous instance */
            if (d->problem == NULL)
                d->problem = bg_xstrdup("id registered under both colours; left as it is until "
                                        "one node goes");
            marked++;
        }
    }
    free(sorted);
    return marked;
}
