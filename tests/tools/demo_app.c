/* bg-demo-app: a tiny application-server stand-in answering every request "NAME VERSION\n".
 *
 * It marks each answer with "X-Served-By: NAME" so that tests behind a balancer can tell
 * which colour served a request. --delay-ms makes every answer slow, like a real application
 * server, so that in-flight requests exist while a switch drains an instance.
 *
 * It can also be a broken deploy, for the application health checks (DESIGN §11): while
 * "broken", GET /healthz answers 503 and every ordinary request 500 (still with X-Served-By,
 * so that a test sees who failed it). Broken is any of: POST /admin/break was the last admin
 * call (POST /admin/fix undoes it), --broken at start, the --fail-file exists (handy from a
 * shell), or the unhealthy half of a --flap-ms period. GET /admin/stats counts the ordinary
 * requests answered, so a test can prove that no traffic reached an instance.
 */

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <microhttpd.h>

struct app {
    char *body;
    size_t body_len;
    char *broken_body;
    const char *name;
    long delay_ms;
    const char *fail_file; /* broken while this file exists (NULL: not used) */
    long flap_ms;          /* > 0: healthy and broken in turn, flap_ms each, healthy first */
    struct timespec started;
    atomic_bool broken;         /* set by POST /admin/break, cleared by POST /admin/fix */
    atomic_ulong served;        /* ordinary requests answered 200 */
    atomic_ulong served_broken; /* ordinary requests answered 500 */
    atomic_ulong health_checks; /* GET /healthz answered */
    /* Shared by every request; MHD reference-counts them. */
    struct MHD_Response *response;
    struct MHD_Response *broken_response;
    struct MHD_Response *health_ok;
    struct MHD_Response *health_bad;
};

static const char HEALTH_PATH[] = "/healthz";

/* Marks a request whose upload has started, so that its body can be drained before answering. */
static int request_marker;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000L + (now.tv_nsec - since->tv_nsec) / 1000000L;
}

/* Is the application broken right now? Any one reason is enough. */
static bool is_broken(struct app *app)
{
    struct stat st;

    if (atomic_load(&app->broken))
        return true;
    if (app->fail_file != NULL && stat(app->fail_file, &st) == 0)
        return true;
    if (app->flap_ms > 0 && (elapsed_ms(&app->started) / app->flap_ms) % 2 == 1)
        return true;
    return false;
}

/* A small answer built per request (MHD copies the text). */
static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned int code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* /admin/...: break, fix, stats. Returns MHD_NO for a path it does not know. */
static enum MHD_Result on_admin(struct app *app, struct MHD_Connection *conn, const char *url,
                                const char *method)
{
    char buf[256];
    bool post = strcmp(method, "POST") == 0;

    if (post && strcmp(url, "/admin/break") == 0) {
        atomic_store(&app->broken, true);
        fprintf(stderr, "level=info event=broken name=%s\n", app->name);
        return answer_text(conn, MHD_HTTP_OK, "broken\n");
    }
    if (post && strcmp(url, "/admin/fix") == 0) {
        atomic_store(&app->broken, false);
        fprintf(stderr, "level=info event=fixed name=%s\n", app->name);
        return answer_text(conn, MHD_HTTP_OK, "fixed\n");
    }
    if (strcmp(url, "/admin/stats") == 0) {
        snprintf(buf, sizeof(buf),
                 "{\"name\":\"%s\",\"served\":%lu,\"served_broken\":%lu,"
                 "\"health_checks\":%lu,\"broken\":%s}\n",
                 app->name, atomic_load(&app->served), atomic_load(&app->served_broken),
                 atomic_load(&app->health_checks), is_broken(app) ? "true" : "false");
        return answer_text(conn, MHD_HTTP_OK, buf);
    }
    return answer_text(conn, MHD_HTTP_NOT_FOUND, "unknown admin request\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    struct app *app = cls;

    (void)version;
    (void)upload_data;
    /* First call: headers only. Later calls carry the body (if any), then a final empty one. */
    if (*state == NULL) {
        *state = &request_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* discard */
        return MHD_YES;
    }
    if (strncmp(url, "/admin/", 7) == 0)
        return on_admin(app, conn, url, method);
    if (strcmp(url, HEALTH_PATH) == 0) {
        atomic_fetch_add(&app->health_checks, 1);
        if (is_broken(app))
            return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, app->health_bad);
        return MHD_queue_response(conn, MHD_HTTP_OK, app->health_ok);
    }
    if (app->delay_ms > 0)
        sleep_ms(app->delay_ms);
    if (is_broken(app)) {
        atomic_fetch_add(&app->served_broken, 1);
        return MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, app->broken_response);
    }
    atomic_fetch_add(&app->served, 1);
    return MHD_queue_response(conn, MHD_HTTP_OK, app->response);
}

/* Splits HOST:PORT (or [V6]:PORT) and resolves it. Returns 0, or -1 with a message. */
static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl;

    if (colon == NULL || colon[1] == '\0') {
        fprintf(stderr, "bg-demo-app: --listen wants HOST:PORT, got '%s'\n", listen);
        return -1;
    }
    hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        fprintf(stderr, "bg-demo-app: host too long in '%s'\n", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(hl > 0 ? host : NULL, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bg-demo-app: cannot resolve '%s': %s\n", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bg-demo-app --listen HOST:PORT --name NAME [--version V] [--delay-ms N]\n"
            "                   [--fail-file PATH] [--flap-ms N] [--broken]\n"
            "Answers every request 200 \"NAME VERSION\\n\" with header X-Served-By: NAME.\n"
            "GET /healthz: 200 OK, or 503 while broken; then every other request answers 500.\n"
            "Broken: after POST /admin/break (POST /admin/fix undoes it), with --broken until\n"
            "fixed, while PATH exists (--fail-file), or every other N ms (--flap-ms, healthy\n"
            "first). GET /admin/stats: JSON counts of the requests answered.\n"
            "Port 0 picks a free port (printed as port=N in the start line on stderr).\n"
            "Stops on SIGTERM/SIGINT.\n");
}

/* A persistent text response with X-Served-By; NULL when out of memory. */
static struct MHD_Response *make_response(const struct app *app, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

    if (r == NULL)
        return NULL;
    if (MHD_add_response_header(r, "X-Served-By", app->name) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain") != MHD_YES) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

static int build_response(struct app *app, const char *version)
{
    size_t n = strlen(app->name) + 1 + strlen(version) + sizeof(" broken\n");

    app->body = malloc(n);
    app->broken_body = malloc(n);
    if (app->body == NULL || app->broken_body == NULL)
        return -1;
    app->body_len = (size_t)snprintf(app->body, n, "%s %s\n", app->name, version);
    snprintf(app->broken_body, n, "%s %s broken\n", app->name, version);
    app->response = make_response(app, app->body);
    app->broken_response = make_response(app, app->broken_body);
    app->health_ok = make_response(app, "OK\n");
    app->health_bad = make_response(app, "BROKEN\n");
    if (app->response == NULL || app->broken_response == NULL || app->health_ok == NULL ||
        app->health_bad == NULL)
        return -1;
    return 0;
}

/* Parses a non-negative number of milliseconds (at most an hour); -1 when bad. */
static long parse_ms(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0' || v < 0 || v > 3600000)
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'},
        {"delay-ms", required_argument, NULL, 'd'},
        {"fail-file", required_argument, NULL, 'f'},
        {"flap-ms", required_argument, NULL, 'F'},
        {"broken", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *version = "1.0";
    struct app app = {0};
    int opt;

    clock_gettime(CLOCK_MONOTONIC, &app.started);
    atomic_init(&app.broken, false);
    atomic_init(&app.served, 0);
    atomic_init(&app.served_broken, 0);
    atomic_init(&app.health_checks, 0);
    while ((opt = getopt_long(argc, argv, "l:n:V:d:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen = optarg;
            break;
        case 'n':
            app.name = optarg;
            break;
        case 'V':
            version = optarg;
            break;
        case 'd':
            app.delay_ms = parse_ms(optarg);
            if (app.delay_ms < 0) {
                fprintf(stderr, "bg-demo-app: bad --delay-ms '%s'\n", optarg);
                return 1;
            }
            break;
        case 'f':
            app.fail_file = optarg;
            break;
        case 'F':
            app.flap_ms = parse_ms(optarg);
            if (app.flap_ms <= 0) {
                fprintf(stderr, "bg-demo-app: bad --flap-ms '%s' (1-3600000)\n", optarg);
                return 1;
            }
            break;
        case 'b':
            atomic_store(&app.broken, true);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (listen == NULL || app.name == NULL || optind != argc) {
        usage(stderr);
        return 1;
    }

    struct sockaddr_storage ss;
    socklen_t sslen;
    if (resolve(listen, &ss, &sslen) != 0)
        return 1;
    if (build_response(&app, version) != 0) {
        fprintf(stderr, "bg-demo-app: out of memory\n");
        return 1;
    }

    /* Block the stop signals before MHD starts its threads: they inherit the mask and only
     * sigwait below sees them. A shell starts background jobs with SIGINT ignored, and an
     * ignored signal is discarded even while blocked: restore the default first. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* No MHD_OPTION_LISTENING_ADDRESS_REUSE: that is SO_REUSEPORT, with which a second copy on
     * the same port (a leftover from another test) would silently share the traffic.
     * One thread per connection: a --delay-ms sleep then holds only its own connection, as in
     * a real application server; 64-256 keep-alive connections are 64-256 cheap threads. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, &app, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4096, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)120, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bg-demo-app: cannot listen on %s: %s\n", listen, strerror(errno));
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr,
            "level=info event=listening listen=%s port=%u name=%s version=%s pid=%ld "
            "broken=%s flap_ms=%ld fail_file=%s\n",
            listen, info != NULL ? (unsigned)info->port : 0u, app.name, version, (long)getpid(),
            is_broken(&app) ? "yes" : "no", app.flap_ms, app.fail_file ? app.fail_file : "-");

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "level=info event=stopping signal=%d name=%s\n", sig, app.name);
    MHD_stop_daemon(d);
    MHD_destroy_response(app.response);
    MHD_destroy_response(app.broken_response);
    MHD_destroy_response(app.health_ok);
    MHD_destroy_response(app.health_bad);
    free(app.body);
    free(app.broken_body);
    return 0;
}
