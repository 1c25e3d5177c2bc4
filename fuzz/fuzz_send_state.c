/* fuzz_send_state.c -- libFuzzer target: HAProxy's X-Haproxy-Server-State header value
 * ("http-check send-state") through bg_server_state_parse, and what is built on the result:
 * the verdicts (out / up), the state word, and one poll into a confirmation tracker with its
 * description. Anyone who can reach an agent's GET /health can send the header; its node and
 * name end up in GET /v1/status, /status in ZooKeeper and the logs.
 *
 * Findings besides a crash: a read past the given length (the input is handed over without a
 * terminating NUL; ASan sees the end of the buffer), a return other than 0 / -1, a state or
 * number out of range, x without y, a node or name that is unterminated, not printable ASCII or
 * has a quote or backslash, "up" and "out" at once, a text that is not JSON-safe, and a parse
 * that depends on bytes after a NUL differently from the C-string path GET /health uses. */
#include "confirm.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void require_field(const char *s, size_t cap, const char *what)
{
    const char *nul = memchr(s, '\0', cap);
    bg_fuzz_require(nul != NULL, what);
    for (const char *p = s; p < nul; p++)
        bg_fuzz_require(*p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\', what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bg_server_state ss;
    memset(&ss, 0x5a, sizeof(ss)); /* the parser must set every field it returns */
    /* A heap copy of exactly size bytes: ASan catches a read past the value. */
    char *exact = malloc(size > 0 ? size : 1);
    bg_fuzz_require(exact != NULL, "malloc");
    if (size > 0)
        memcpy(exact, data, size);
    int rc = bg_server_state_parse(exact, size, &ss);
    bg_fuzz_require(rc == 0 || rc == -1, "bg_server_state_parse: unexpected return");
    if (rc == 0) {
        bg_fuzz_require((unsigned)ss.state <= (unsigned)BG_SS_DRAIN, "state out of range");
        bg_fuzz_require(ss.x >= 0 && ss.x <= 1000000 && ss.y >= 0 && ss.y <= 1000000,
                        "x/y out of range");
        bg_fuzz_require(ss.y > 0 || ss.x == 0, "x without y");
        bg_fuzz_require(ss.weight >= -1 && ss.farm_weight >= -1, "weight below -1");
        bg_fuzz_require((ss.weight == -1) == (ss.farm_weight == -1), "weight half set");
        require_field(ss.name, sizeof(ss.name), "name not printable/terminated");
        require_field(ss.node, sizeof(ss.node), "node not printable/terminated");
        bg_fuzz_require(!(bg_server_state_up(&ss) && bg_server_state_out(&ss)),
                        "a server both fully up and out");
        char w[48];
        memset(w, 'x', sizeof(w));
        bg_server_state_word(&ss, w, sizeof(w));
        bg_fuzz_require(memchr(w, '\0', sizeof(w)) != NULL && w[0] != '\0', "state word");
        bg_fuzz_require_json_safe(w, "state word");

        /* Deterministic: the same bytes parse the same. */
        struct bg_server_state again;
        bg_fuzz_require(bg_server_state_parse(exact, size, &again) == 0 &&
                            memcmp(&again, &ss, sizeof(ss)) == 0,
                        "two parses of one value differ");

        /* One poll into a tracker and its description (node and name from the input). */
        struct bg_confirm c;
        bg_confirm_init(&c, 5000, 0, 3);
        struct bg_poll p = {.addr = "127.0.0.1", .ss = &ss, .answered_current = true};
        bg_confirm_polled(&c, &p, 1000);
        bg_confirm_start(&c, size % 2 == 0, 1001);
        bg_confirm_polled(&c, &p, 2000);
        char d[400], msg[200] = "";
        bg_confirm_describe(&c, &c.peer[0], d, sizeof(d));
        bg_fuzz_require_json_safe(d, "bg_confirm_describe");
        int r = bg_confirm_check(&c, 2100, msg, sizeof(msg)); /* 1 (waiting) writes no msg */
        bg_fuzz_require(r >= -1 && r <= 1, "bg_confirm_check");
        bg_fuzz_require_json_safe(msg, "bg_confirm_check message");
    }

    /* GET /health hands the parser a C string (strlen of the header): the same as the bytes
     * up to the first NUL. */
    char *cstr = bg_fuzz_cstr(data, size);
    size_t clen = strlen(cstr);
    struct bg_server_state a, b;
    int ra = bg_server_state_parse(cstr, clen, &a);
    int rb = bg_server_state_parse(exact, clen, &b);
    bg_fuzz_require(ra == rb && (ra != 0 || memcmp(&a, &b, sizeof(a)) == 0),
                    "C-string and counted parse differ");
    free(cstr);
    free(exact);
    return 0;
}
