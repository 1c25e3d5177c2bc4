/* bg-demo-app: a tiny application-server stand-in answering every request "NAME VERSION\n".
 *
 * It marks each answer with "X-Served-By: NAME" so that tests behind a balancer can tell
 * which colour served a request. --delay-ms makes every answer slow, like a real application
 * server, so that in-flight requests exist while a switch drains an instance.
 */

#include <errno.h>
#include <netdb.h>
#include <signal.h>
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

#include <microhttpd.h>

struct app {
    char *body;
    size_t body_len;
    const char *name;
    long delay_ms;
    struct MHD_Response *response; /* shared by every request; MHD reference-counts it */
};

/* Marks a request whose upload has started, so that its body can be drained before answering. */
static int request_marker;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    struct app *app = cls;

    (void)url;
    (void)method;
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
    if (app->delay_ms > 0)
        sleep_ms(app->delay_ms);
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
    fprintf(out, "usage: bg-demo-app --listen HOST:PORT --name NAME [--version V] [--delay-ms N]\n"
                 "Answers every request 200 \"NAME VERSION\\n\" with header X-Served-By: NAME.\n"
                 "Port 0 picks a free port (printed as port=N in the start line on stderr).\n"
                 "Stops on SIGTERM/SIGINT.\n");
}

static int build_response(struct app *app, const char *version)
{
    size_t n = strlen(app->name) + 1 + strlen(version) + 2;

    app->body = malloc(n);
    if (app->body == NULL)
        return -1;
    app->body_len = (size_t)snprintf(app->body, n, "%s %s\n", app->name, version);
    app->response =
        MHD_create_response_from_buffer(app->body_len, app->body, MHD_RESPMEM_PERSISTENT);
    if (app->response == NULL)
        return -1;
    if (MHD_add_response_header(app->response, "X-Served-By", app->name) != MHD_YES ||
        MHD_add_response_header(app->response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain") !=
            MHD_YES)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},  {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'}, {"delay-ms", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *version = "1.0";
    struct app app = {0};
    int opt;

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
        case 'd': {
            char *end;
            app.delay_ms = strtol(optarg, &end, 10);
            if (*end != '\0' || app.delay_ms < 0 || app.delay_ms > 3600000) {
                fprintf(stderr, "bg-demo-app: bad --delay-ms '%s'\n", optarg);
                return 1;
            }
            break;
        }
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
    fprintf(stderr, "level=info event=listening listen=%s port=%u name=%s version=%s pid=%ld\n",
            listen, info != NULL ? (unsigned)info->port : 0u, app.name, version, (long)getpid());

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "level=info event=stopping signal=%d name=%s\n", sig, app.name);
    MHD_stop_daemon(d);
    MHD_destroy_response(app.response);
    free(app.body);
    return 0;
}
