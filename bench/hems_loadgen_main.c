/*
 * hems-loadgen: simulated HeNBs (TR-069 CPEs) against a real hemsd. See docs/loadgen.md.
 *
 * The parent parses the options, forks --workers processes (each runs hm_lg_worker_run()
 * over its own devices), prints a progress line each second from what the workers send
 * on their pipes, samples the server's /proc/<pid>, merges the workers' final statistics
 * and writes the report (stdout table, --json file).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "bench/loadgen_cpe.h"
#include "bench/loadgen_plot.h"
#include "core/buf.h"

#define MAX_WORKERS 256

static const char *const scenario_names[] = {"healthz", "periodic", "boot", "hold",
                                             "discovery", "alarms", "pm"};

struct child {
    pid_t pid;
    int fd;
    bool eof, reported;
    struct hm_buf in;
    unsigned long long p_ok, p_fail, p_exch, p_err, p_held, p_p99;
    struct hm_lg_stats *st;
};

struct server_sample {
    bool ok;
    double cpu_s, user_s; /* utime+stime, utime */
    long rss_kb;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hems-loadgen --target HOST:PORT [options]\n"
            "Scenario:\n"
            "  --scenario S         healthz | periodic | boot | hold | discovery | alarms\n"
            "                       [healthz]; discovery: boot at --target (an Initial HeMS),\n"
            "                       follow the ManagementServer.URL it sets (http://IPv4:port/\n"
            "                       path) and boot there; alarms: periodic sessions whose\n"
            "                       Informs carry FaultMgmt alarm events (raise, then clear);\n"
            "                       pm: each session POSTs the device's TS 32.435 file of its\n"
            "                       next 15-minute period to --pm-path/<TS 32.432 name>\n"
            "  --devices N          simulated devices (all workers)\n"
            "                       [rate x interval, else concurrency, else 1000]\n"
            "  --rate R             open loop: sessions/s (all workers)\n"
            "  --interval S         open loop: seconds between a device's sessions\n"
            "                       (periodic: the PeriodicInformInterval; hold: re-request;\n"
            "                       discovery: periodic Informs once registered)\n"
            "  --jitter F           random fraction of the period added to each start  [0]\n"
            "  --concurrency C      closed loop: sessions in flight (all workers)\n"
            "  --duration S         stop starting sessions after S seconds\n"
            "  --sessions N         stop after N sessions (all workers)\n"
            "  --timeout S          per connect and per HTTP exchange               [30]\n"
            "  --drain S            time allowed for in-flight sessions at the end  [10]\n"
            "HTTP / healthz:\n"
            "  --path P             CWMP URL path                                 [/cwmp]\n"
            "  --healthz-path P     healthz URL path                           [/healthz]\n"
            "  --post               healthz: POST --body-size bytes instead of GET\n"
            "  --body-size N        healthz POST body                              [1024]\n"
            "  --keepalive K        healthz: requests per connection                  [1]\n"
            "  --hold-cwmp          hold: open a CWMP session (Inform) and hold it\n"
            "  --host H             Host header                         [the --target]\n"
            "Devices (CWMP):\n"
            "  --oui X --product-class X --manufacturer X      [00256D, HeNB, HemsLoadgen]\n"
            "  --first-serial N     serial of device 0 (SerialNumber = %%010u)          [1]\n"
            "  --scatter-serials    device i gets serial first + (i * a mod devices), a\n"
            "                       bijection that puts consecutive devices far apart in\n"
            "                       the server's key order (default: first + i, appends)\n"
            "  --cwmp-version V     1.0 | 1.1 | 1.2                                 [1.2]\n"
            "  --alarms N           alarm entries per Inform (1..8)                [1]\n"
            "  --alarms-queued      alarms: QueuedEvent entries with \"2 PERIODIC\" (default:\n"
            "                       ExpeditedEvent entries with \"4 VALUE CHANGE\")\n"
            "  --ipsec-change-every K  every Kth session of a device reports a new IPsec\n"
            "                       inner address (IKEv2SA LocalAddress, 4 VALUE CHANGE)\n"
            "  --cr-port P          answer Connection Requests: worker w listens on\n"
            "                       127.0.0.1:P+w (P = 0: an ephemeral port each), devices\n"
            "                       report ConnectionRequestURL\n"
            "                       http://127.0.0.1:P+w/crq/<index> and open a session with\n"
            "                       \"6 CONNECTION REQUEST\" on each authenticated request\n"
            "  --cr-username U --cr-password P   their Digest credentials     [none: no auth]\n"
            "  --download-fail-pct P  Downloads: P %% of the devices (a stable hash of their\n"
            "                       index) report TransferComplete fault 9010         [0]\n"
            "  --fw-version V       SoftwareVersion reported after a firmware Download\n"
            "                       [the file name of the Download URL]\n"
            "  --fallback-after N   discovery: attempts in a row that find the Serving HeMS\n"
            "                       unreachable (connect failure, timeout, closed without\n"
            "                       an answer; a 503 or 8005 shed does not count) before\n"
            "                       bootstrapping at --target\n"
            "                       (the Initial HeMS) again                           [3]\n"
            "  --pm-path P          pm: upload path prefix                           [/pm]\n"
            "  --pm-after-register  boot/discovery with --model: a device the ACS gave a PM\n"
            "                       upload (URL + credentials by SPV) uploads one file there\n"
            "                       with those credentials after that session\n"
            "  --pm-cells N         pm: cells per file (254 counters each; 2: ~25 KB) [2]\n"
            "  --model CSV          simulate each device with bench/henb_agent.h over this\n"
            "                       data model (genieacs-sim CSV); default: built-in answers\n"
            "  --username U         HTTP Digest user        [the device's OUI-ProductClass-Serial]\n"
            "  --password P         HTTP Digest password: answer 401 challenges (none: fail)\n"
            "  --retry-min S        CWMPRetryMinimumWaitInterval                      [5]\n"
            "  --retry-mult K       CWMPRetryIntervalMultiplier (thousandths)      [2000]\n"
            "  --max-retries N      failed attempts before a session fails           [10]\n"
            "  --strict-backoff     a 503/8005 Retry-After may lengthen the TR-069 backoff\n"
            "                       wait but never shorten it (default: Retry-After wins)\n"
            "TLS (bench/loadgen_tls.h):\n"
            "  --tls                HTTPS to the target (e.g. hemsd's server.cwmps_listen)\n"
            "  --tls-ca FILE        verify the server against this CA (none: no verification)\n"
            "  --tls-cert F --tls-key F   one client certificate for every device\n"
            "  --tls-cert-dir DIR   per-device DIR/dev-<SerialNumber>.pem/.key (ops/make-test-pki.sh)\n"
            "  --tls-resume         each device resumes its previous session (tickets)\n"
            "Processes and measurement:\n"
            "  --workers N          worker processes                                  [1]\n"
            "  --source A-B|A,B     source IPv4 addresses (bind before connect)\n"
            "  --engine E           auto | epoll | io_uring: workers' event engine; auto:\n"
            "                       io_uring for plain TCP (not hold), else epoll  [auto]\n"
            "  --server-pid PID     sample the server's CPU and RSS from /proc/PID\n"
            "  --json FILE          write the machine-readable report (with a per-second timeline)\n"
            "  --plot FILE.svg      draw the timeline: sessions/s, p99 latency, server CPU\n"
            "  --quiet              no progress line        --verbose  log each failure\n");
}

static int parse_target(const char *s, struct hm_lg_config *c)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(&c->target, res->ai_addr, sizeof(c->target));
    freeaddrinfo(res);
    if (!c->host[0])
        snprintf(c->host, sizeof(c->host), "%s", s);
    return 0;
}

static int parse_sources(const char *s, struct hm_lg_config *c)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        struct in_addr a, b;
        if (dash)
            *dash = 0;
        if (inet_pton(AF_INET, tok, &a) != 1)
            return -EINVAL;
        b = a;
        if (dash && inet_pton(AF_INET, dash + 1, &b) != 1)
            return -EINVAL;
        for (uint32_t x = ntohl(a.s_addr); x <= ntohl(b.s_addr); x++) {
            if (c->n_sources >= HM_LG_MAX_SOURCES)
                return -E2BIG;
            c->sources[c->n_sources++].s_addr = htonl(x);
        }
    }
    return c->n_sources ? 0 : -EINVAL;
}

static struct server_sample sample_server(pid_t pid)
{
    struct server_sample s = {0};
    if (pid <= 0)
        return s;
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return s;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* fields after the command name (which may contain spaces): state is field 3,
     * utime 14 and stime 15 */
    char *p = strrchr(buf, ')');
    if (!p)
        return s;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return s;
    s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    s.user_s = (double)ut / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return s;
    while (fgets(buf, sizeof(buf), f))
        if (sscanf(buf, "VmRSS: %ld kB", &s.rss_kb) == 1)
            break;
    fclose(f);
    s.ok = true;
    return s;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    hm_lg_stop_requested = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Consumes complete lines of <c>'s input. */
static void child_lines(struct child *c)
{
    size_t off = 0;
    for (;;) {
        char *nl = memchr(c->in.base + off, '\n', c->in.len - off);
        if (!nl)
            break;
        char *line = c->in.base + off;
        size_t len = (size_t)(nl - line);
        if (len > 2 && line[0] == 'P') {
            *nl = 0;
            (void)sscanf(line + 2, "%llu %llu %llu %llu %llu %llu", &c->p_ok, &c->p_fail,
                         &c->p_exch, &c->p_err, &c->p_held, &c->p_p99);
        } else if (len > 2 && line[0] == 'R') {
            c->st = hm_xcalloc(1, sizeof(*c->st));
            if (hm_lg_stats_from_json(line + 2, len - 2, c->st) == 0)
                c->reported = true;
            else
                fprintf(stderr, "hems-loadgen: bad report from worker %d\n", (int)c->pid);
        }
        off = (size_t)(nl - c->in.base) + 1;
    }
    memmove(c->in.base, c->in.base + off, c->in.len - off);
    c->in.len -= off;
}

static json_t *hist_obj(const struct hm_lg_hist *h)
{
    return json_pack("{s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)h->count,
                     "min", (json_int_t)(h->count ? h->min : 0), "mean", hm_lg_hist_mean(h),
                     "p50", (json_int_t)hm_lg_hist_quantile(h, 0.5), "p90",
                     (json_int_t)hm_lg_hist_quantile(h, 0.9), "p99",
                     (json_int_t)hm_lg_hist_quantile(h, 0.99), "p999",
                     (json_int_t)hm_lg_hist_quantile(h, 0.999), "max", (json_int_t)h->max);
}

static uint64_t error_total(const struct hm_lg_stats *st)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < HM_LG_E__COUNT; i++)
        if (i != HM_LG_E_UNFINISHED)
            t += st->err[i];
    return t;
}

struct run {
    const struct hm_lg_config *cfg;
    pid_t server_pid;
    struct server_sample s0, s1;
    long rss_peak;
    double loadgen_cpu_s, loadgen_user_s;
    uint64_t loadgen_csw; /* voluntary context switches (sleeps) of all workers */
    struct hm_lg_timeline timeline; /* one point a second (bench/loadgen_plot.h) */
    unsigned nchild;
    struct child *children;
};

static json_t *build_report(const struct run *r, const struct hm_lg_stats *st)
{
    const struct hm_lg_config *c = r->cfg;
    char target[64];
    snprintf(target, sizeof(target), "%s:%u", inet_ntoa(c->target.sin_addr),
             ntohs(c->target.sin_port));
    double el = st->elapsed_s > 0 ? st->elapsed_s : 1e-9;
    json_t *o = json_object();
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "scenario", json_string(scenario_names[c->scenario]));
    json_object_set_new(o, "mode", json_string(c->concurrency ? "closed" : "open"));
    json_object_set_new(o, "target", json_string(target));
    json_object_set_new(o, "config",
                        json_pack("{s:i,s:I,s:f,s:f,s:f,s:i,s:f,s:I,s:f,s:i,s:I,s:b,s:s,s:s,s:s}",
                                  "workers", (int)c->workers, "devices", (json_int_t)c->devices,
                                  "rate", c->rate, "interval", c->interval, "jitter", c->jitter,
                                  "concurrency", (int)c->concurrency, "duration", c->duration,
                                  "sessions", (json_int_t)c->sessions, "timeout", c->timeout,
                                  "keepalive", (int)c->keepalive, "first_serial",
                                  (json_int_t)c->first_serial, "scatter_serials", c->scatter_serials,
                                  "oui", c->oui, "product_class",
                                  c->product_class, "cpe",
                                  c->model_csv[0] ? "henb_agent" : "builtin"));
    json_object_set_new(o, "elapsed_s", json_real(st->elapsed_s));
    json_object_set_new(o, "timeline", hm_lg_timeline_json(&r->timeline));
    json_object_set_new(o, "sessions",
                        json_pack("{s:I,s:I,s:I,s:f}", "started", (json_int_t)st->sessions_started,
                                  "ok", (json_int_t)st->sessions_ok, "failed",
                                  (json_int_t)st->sessions_failed, "per_s",
                                  (double)st->sessions_ok / el));
    json_object_set_new(o, "exchanges", json_pack("{s:I,s:f}", "count", (json_int_t)st->exchanges,
                                                  "per_s", (double)st->exchanges / el));
    json_object_set_new(o, "connects", json_integer((json_int_t)st->connects));
    json_object_set_new(o, "retries", json_integer((json_int_t)st->attempts_retried));
    {
        /* sessions by the retries they needed, and the most of one session / device */
        json_t *rh = json_object();
        unsigned most = 0;
        for (unsigned i = 0; i < HM_LG_RETRY_SLOTS; i++) {
            if (!st->retry_hist[i])
                continue;
            char k[8];
            snprintf(k, sizeof(k), "%u%s", i, i == HM_LG_RETRY_SLOTS - 1 ? "+" : "");
            json_object_set_new(rh, k, json_integer((json_int_t)st->retry_hist[i]));
            most = i;
        }
        json_object_set_new(o, "retries_hist", rh);
        json_object_set_new(o, "retries_max", json_integer(most));
        json_object_set_new(o, "retries_device_max",
                            json_integer((json_int_t)st->retries_dev_max));
    }
    json_object_set_new(o, "auth_challenges", json_integer((json_int_t)st->auth_challenges));
    json_object_set_new(o, "missed_slots", json_integer((json_int_t)st->missed_slots));
    if (c->scenario == HM_LG_DISCOVERY)
        json_object_set_new(o, "discovery",
                            json_pack("{s:I,s:I,s:I}", "redirects", (json_int_t)st->redirects,
                                      "registered", (json_int_t)st->registered, "fallbacks",
                                      (json_int_t)st->fallbacks));
    if (c->ipsec_every)
        json_object_set_new(o, "ipsec_changes", json_integer((json_int_t)st->ipsec_changes));
    if (c->cr)
        json_object_set_new(o, "connection_requests",
                            json_pack("{s:I,s:I,s:I,s:I,s:I}", "received",
                                      (json_int_t)st->cr_received, "challenges",
                                      (json_int_t)st->cr_challenges, "refused",
                                      (json_int_t)st->cr_refused, "bad", (json_int_t)st->cr_bad,
                                      "sessions", (json_int_t)st->cr_sessions));
    if (st->dl_started)
        json_object_set_new(o, "downloads",
                            json_pack("{s:I,s:I,s:I,s:I,s:I}", "started",
                                      (json_int_t)st->dl_started, "fetched",
                                      (json_int_t)st->dl_fetched, "injected_failures",
                                      (json_int_t)st->dl_injected, "errors",
                                      (json_int_t)st->dl_errors, "transfer_complete_acked",
                                      (json_int_t)st->dl_tc_acked));
    if (c->scenario == HM_LG_PM || c->pm_after_register)
        json_object_set_new(o, "pm", json_pack("{s:I,s:I,s:I,s:f,s:f}", "files",
                                               (json_int_t)st->pm_files, "duplicates",
                                               (json_int_t)st->pm_duplicates, "bytes",
                                               (json_int_t)st->pm_bytes, "files_per_s",
                                               (double)st->pm_files / el, "mb_per_s",
                                               (double)st->pm_bytes / el / 1e6));
    if (c->scenario == HM_LG_ALARMS)
        json_object_set_new(o, "alarms", json_pack("{s:I,s:f}", "sent",
                                                   (json_int_t)st->alarms_sent, "per_s",
                                                   (double)st->alarms_sent / el));
    json_object_set_new(o, "held", json_pack("{s:I,s:I}", "peak", (json_int_t)st->held_peak,
                                             "at_end", (json_int_t)st->held_now));
    json_object_set_new(o, "bytes", json_pack("{s:I,s:I}", "sent", (json_int_t)st->bytes_sent,
                                              "received", (json_int_t)st->bytes_received));
    json_object_set_new(o, "latency_us",
                        json_pack("{s:o,s:o,s:o,s:o,s:o}", "session", hist_obj(&st->session),
                                  "exchange", hist_obj(&st->exchange), "connect",
                                  hist_obj(&st->connect), "admitted", hist_obj(&st->admitted),
                                  "served", hist_obj(&st->served)));
    json_t *e = json_object();
    for (unsigned i = 0; i < HM_LG_E__COUNT; i++)
        json_object_set_new(e, hm_lg_err_names[i], json_integer((json_int_t)st->err[i]));
    json_object_set_new(e, "total", json_integer((json_int_t)error_total(st)));
    json_object_set_new(o, "errors", e);
    json_t *hs = json_object();
    for (unsigned i = 0; i < HM_ARRAY_SIZE(st->http_status); i++) {
        if (!st->http_status[i])
            continue;
        char k[8];
        snprintf(k, sizeof(k), "%u", i);
        json_object_set_new(hs, k, json_integer((json_int_t)st->http_status[i]));
    }
    json_object_set_new(o, "http_status", hs);
    json_t *fs = json_object();
    for (unsigned i = 0; i < HM_LG_FAULT_SLOTS; i++) {
        if (!st->faults[i])
            continue;
        char k[12];
        snprintf(k, sizeof(k), "%u", hm_lg_fault_code(i));
        json_object_set_new(fs, k, json_integer((json_int_t)st->faults[i]));
    }
    if (st->err[HM_LG_E_RETRY_8005])
        json_object_set_new(fs, "8005", json_integer((json_int_t)st->err[HM_LG_E_RETRY_8005]));
    if (st->fault_other)
        json_object_set_new(fs, "other", json_integer((json_int_t)st->fault_other));
    json_object_set_new(o, "cwmp_faults", fs);
    json_t *ar = json_object();
    for (unsigned i = 0; i < HM_CWMP__COUNT; i++)
        if (st->acs_requests[i])
            json_object_set_new(ar, hm_cwmp_method_name(i),
                                json_integer((json_int_t)st->acs_requests[i]));
    json_object_set_new(o, "acs_requests", ar);
    json_t *ws = json_array();
    for (unsigned i = 0; i < r->nchild; i++) {
        const struct hm_lg_stats *w = r->children[i].st;
        if (!w)
            continue;
        json_array_append_new(ws, json_pack("{s:I,s:I,s:I,s:I}", "sessions_ok",
                                            (json_int_t)w->sessions_ok, "sessions_failed",
                                            (json_int_t)w->sessions_failed, "exchanges",
                                            (json_int_t)w->exchanges, "errors",
                                            (json_int_t)error_total(w)));
    }
    json_object_set_new(o, "workers", ws);
    double done = st->sessions_ok ? (double)st->sessions_ok : 1.0;
    json_object_set_new(o, "loadgen",
                        json_pack("{s:f,s:f,s:I,s:I,s:f,s:f}", "cpu_s", r->loadgen_cpu_s,
                                  "user_s", r->loadgen_user_s, "sleeps",
                                  (json_int_t)r->loadgen_csw, "worker_max_rss_kb",
                                  (json_int_t)st->max_rss_kb,
                                  "cpu_us_per_session",
                                  r->loadgen_cpu_s * 1e6 / done, "user_us_per_session",
                                  r->loadgen_user_s * 1e6 / done));
    if (r->s0.ok && r->s1.ok) {
        double scpu = r->s1.cpu_s - r->s0.cpu_s;
        double suser = r->s1.user_s - r->s0.user_s;
        json_object_set_new(o, "server",
                            json_pack("{s:i,s:f,s:f,s:f,s:f,s:I,s:I,s:I}", "pid",
                                      (int)r->server_pid, "cpu_s", scpu, "user_s", suser,
                                      "cpu_us_per_session", scpu * 1e6 / done,
                                      "user_us_per_session", suser * 1e6 / done,
                                      "rss_kb_start", (json_int_t)r->s0.rss_kb, "rss_kb_end",
                                      (json_int_t)r->s1.rss_kb, "rss_kb_peak",
                                      (json_int_t)r->rss_peak));
        json_object_set_new(o, "cpu_ratio_loadgen_to_server",
                            scpu > 0 ? json_real(r->loadgen_cpu_s / scpu) : json_null());
        json_object_set_new(o, "user_cpu_ratio_loadgen_to_server",
                            suser > 0 ? json_real(r->loadgen_user_s / suser) : json_null());
        if (st->held_peak)
            json_object_set_new(o, "server_rss_bytes_per_held",
                                json_real((double)(r->rss_peak - r->s0.rss_kb) * 1024.0 /
                                          (double)st->held_peak));
    }
    return o;
}

static void print_hist(const char *name, const struct hm_lg_hist *h)
{
    if (!h->count)
        return;
    printf("  %-9s %9llu %9.0f %9llu %9llu %9llu %9llu %9llu\n", name,
           (unsigned long long)h->count, hm_lg_hist_mean(h),
           (unsigned long long)hm_lg_hist_quantile(h, 0.5),
           (unsigned long long)hm_lg_hist_quantile(h, 0.9),
           (unsigned long long)hm_lg_hist_quantile(h, 0.99),
           (unsigned long long)hm_lg_hist_quantile(h, 0.999), (unsigned long long)h->max);
}

static void print_summary(const struct run *r, const struct hm_lg_stats *st)
{
    const struct hm_lg_config *c = r->cfg;
    double el = st->elapsed_s > 0 ? st->elapsed_s : 1e-9;
    printf("hems-loadgen: scenario %s, %s loop, %u worker(s), %llu device(s), %.2f s\n",
           scenario_names[c->scenario], c->concurrency ? "closed" : "open", c->workers,
           (unsigned long long)c->devices, st->elapsed_s);
    printf("  sessions  ok %llu  failed %llu  (%.1f/s)   exchanges %llu (%.1f/s)   connects %llu\n",
           (unsigned long long)st->sessions_ok, (unsigned long long)st->sessions_failed,
           (double)st->sessions_ok / el, (unsigned long long)st->exchanges,
           (double)st->exchanges / el, (unsigned long long)st->connects);
    if (c->scenario == HM_LG_DISCOVERY)
        printf("  discovery redirects %llu  registered %llu of %llu devices  fallbacks %llu\n",
               (unsigned long long)st->redirects, (unsigned long long)st->registered,
               (unsigned long long)c->devices, (unsigned long long)st->fallbacks);
    if (c->ipsec_every)
        printf("  ipsec     inner address changes reported %llu\n",
               (unsigned long long)st->ipsec_changes);
    if (c->cr)
        printf("  conn req  received %llu  challenged %llu  refused %llu  bad %llu  "
               "sessions %llu\n", (unsigned long long)st->cr_received,
               (unsigned long long)st->cr_challenges, (unsigned long long)st->cr_refused,
               (unsigned long long)st->cr_bad, (unsigned long long)st->cr_sessions);
    if (st->dl_started)
        printf("  downloads started %llu  fetched %llu  injected failures %llu  errors %llu  "
               "TransferComplete acked %llu\n", (unsigned long long)st->dl_started,
               (unsigned long long)st->dl_fetched, (unsigned long long)st->dl_injected,
               (unsigned long long)st->dl_errors, (unsigned long long)st->dl_tc_acked);
    if (c->scenario == HM_LG_PM || c->pm_after_register)
        printf("  pm        files %llu (%.1f/s, %.2f MB/s), %llu already spooled (200)\n",
               (unsigned long long)st->pm_files, (double)st->pm_files / el,
               (double)st->pm_bytes / el / 1e6, (unsigned long long)st->pm_duplicates);
    if (c->scenario == HM_LG_ALARMS)
        printf("  alarms    sent %llu (%.1f/s), committed before each InformResponse\n",
               (unsigned long long)st->alarms_sent, (double)st->alarms_sent / el);
    if (st->held_peak)
        printf("  held      peak %llu  at end %llu   (loadgen worker peak RSS %llu kB)\n",
               (unsigned long long)st->held_peak, (unsigned long long)st->held_now,
               (unsigned long long)st->max_rss_kb);
    printf("  latency (us)  count      mean       p50       p90       p99     p99.9       max\n");
    print_hist("session", &st->session);
    print_hist("exchange", &st->exchange);
    print_hist("connect", &st->connect);
    print_hist("admitted", &st->admitted);
    print_hist("served", &st->served);
    printf("  errors   ");
    bool any = false;
    for (unsigned i = 0; i < HM_LG_E__COUNT; i++) {
        if (st->err[i]) {
            printf(" %s %llu", hm_lg_err_names[i], (unsigned long long)st->err[i]);
            any = true;
        }
    }
    printf("%s\n", any ? "" : " none");
    printf("  http     ");
    for (unsigned i = 0; i < HM_ARRAY_SIZE(st->http_status); i++)
        if (st->http_status[i])
            printf(" %u:%llu", i, (unsigned long long)st->http_status[i]);
    printf("\n");
    bool acs = false;
    for (unsigned i = 0; i < HM_CWMP__COUNT; i++) {
        if (st->acs_requests[i]) {
            printf("%s %s:%llu", acs ? "" : "  acs rpcs ", hm_cwmp_method_name(i),
                   (unsigned long long)st->acs_requests[i]);
            acs = true;
        }
    }
    if (acs)
        printf("\n");
    double done = st->sessions_ok ? (double)st->sessions_ok : 1.0;
    printf("  cpu (us/session, user+sys / user)   loadgen %.1f / %.1f", r->loadgen_cpu_s * 1e6 / done,
           r->loadgen_user_s * 1e6 / done);
    if (r->s0.ok && r->s1.ok) {
        double scpu = r->s1.cpu_s - r->s0.cpu_s, suser = r->s1.user_s - r->s0.user_s;
        printf("   server %.1f / %.1f   ratio %.3f / %.3f", scpu * 1e6 / done,
               suser * 1e6 / done, scpu > 0 ? r->loadgen_cpu_s / scpu : 0.0,
               suser > 0 ? r->loadgen_user_s / suser : 0.0);
        printf("\n  server rss  start %ld kB  peak %ld kB  end %ld kB", r->s0.rss_kb, r->rss_peak,
               r->s1.rss_kb);
    }
    printf("\n");
}

enum {
    OPT_TARGET = 256, OPT_SCENARIO, OPT_DEVICES, OPT_RATE, OPT_INTERVAL, OPT_JITTER, OPT_CONC, OPT_DURATION,
    OPT_SESSIONS, OPT_TIMEOUT, OPT_DRAIN, OPT_PATH, OPT_HPATH, OPT_POST, OPT_BODY, OPT_KEEPALIVE, OPT_HOLDCWMP,
    OPT_HOST, OPT_OUI, OPT_PCLASS, OPT_MANUF, OPT_SERIAL, OPT_SCATTER, OPT_CWMPVER, OPT_RMIN, OPT_RMULT, OPT_MAXRETRY,
    OPT_WORKERS, OPT_USER, OPT_PASS, OPT_MODEL, OPT_ALARMS, OPT_ALARMS_Q, OPT_PM_PATH, OPT_PM_CELLS, OPT_PM_AFTER, OPT_FALLBACK, OPT_CR_PORT, OPT_CR_USER, OPT_CR_PASS, OPT_DL_FAIL, OPT_FW_VERSION, OPT_IPSEC, OPT_SOURCE, OPT_SPID, OPT_JSON, OPT_PLOT, OPT_QUIET, OPT_VERBOSE, OPT_HELP,
};

/* --tls options (bench/loadgen_tls.h) */
enum { OPT_TLS = 1024, OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_DIR, OPT_TLS_RESUME };
enum { OPT_ENGINE = 1100, OPT_STRICT_BACKOFF };

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, NULL, OPT_TARGET},
        {"scenario", required_argument, NULL, OPT_SCENARIO},
        {"devices", required_argument, NULL, OPT_DEVICES},
        {"rate", required_argument, NULL, OPT_RATE},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"jitter", required_argument, NULL, OPT_JITTER},
        {"concurrency", required_argument, NULL, OPT_CONC},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"sessions", required_argument, NULL, OPT_SESSIONS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"path", required_argument, NULL, OPT_PATH},
        {"healthz-path", required_argument, NULL, OPT_HPATH},
        {"post", no_argument, NULL, OPT_POST},
        {"body-size", required_argument, NULL, OPT_BODY},
        {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
        {"hold-cwmp", no_argument, NULL, OPT_HOLDCWMP},
        {"host", required_argument, NULL, OPT_HOST},
        {"oui", required_argument, NULL, OPT_OUI},
        {"product-class", required_argument, NULL, OPT_PCLASS},
        {"manufacturer", required_argument, NULL, OPT_MANUF},
        {"first-serial", required_argument, NULL, OPT_SERIAL},
        {"scatter-serials", no_argument, NULL, OPT_SCATTER},
        {"cwmp-version", required_argument, NULL, OPT_CWMPVER},
        {"retry-min", required_argument, NULL, OPT_RMIN},
        {"retry-mult", required_argument, NULL, OPT_RMULT},
        {"max-retries", required_argument, NULL, OPT_MAXRETRY},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"model", required_argument, NULL, OPT_MODEL},
        {"alarms", required_argument, NULL, OPT_ALARMS},
        {"alarms-queued", no_argument, NULL, OPT_ALARMS_Q},
        {"pm-path", required_argument, NULL, OPT_PM_PATH},
        {"pm-after-register", no_argument, NULL, OPT_PM_AFTER},
        {"fallback-after", required_argument, NULL, OPT_FALLBACK},
        {"cr-port", required_argument, NULL, OPT_CR_PORT},
        {"ipsec-change-every", required_argument, NULL, OPT_IPSEC},
        {"cr-username", required_argument, NULL, OPT_CR_USER},
        {"cr-password", required_argument, NULL, OPT_CR_PASS},
        {"download-fail-pct", required_argument, NULL, OPT_DL_FAIL},
        {"fw-version", required_argument, NULL, OPT_FW_VERSION},
        {"pm-cells", required_argument, NULL, OPT_PM_CELLS},
        {"username", required_argument, NULL, OPT_USER},
        {"password", required_argument, NULL, OPT_PASS},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"engine", required_argument, NULL, OPT_ENGINE},
        {"strict-backoff", no_argument, NULL, OPT_STRICT_BACKOFF},
        {"server-pid", required_argument, NULL, OPT_SPID},
        {"json", required_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"verbose", no_argument, NULL, OPT_VERBOSE},
        {"help", no_argument, NULL, OPT_HELP},
        {"tls", no_argument, NULL, OPT_TLS},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-cert-dir", required_argument, NULL, OPT_TLS_DIR},
        {"tls-resume", no_argument, NULL, OPT_TLS_RESUME},
        {0},
    };
    static struct hm_lg_config cfg; /* ~1 KB of sources: not on the stack */
    struct hm_lg_config *c = &cfg;
    *c = (struct hm_lg_config){
        .cwmp_path = "/cwmp", .healthz_path = "/healthz", .body_size = 1024, .keepalive = 1,
        .workers = 1, .timeout = 30, .drain = 10, .retry_min = 5, .retry_mult = 2.0,
        .max_retries = 10, .oui = "00256D", .product_class = "HeNB",
        .manufacturer = "HemsLoadgen", .first_serial = 1, .cwmp_ver = HM_CWMP_V1_2,
    };
    const char *target = NULL, *json_path = NULL, *plot_path = NULL;
    pid_t server_pid = 0;
    bool quiet = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_TARGET: target = optarg; break;
        case OPT_SCENARIO: {
            unsigned i;
            for (i = 0; i < HM_ARRAY_SIZE(scenario_names); i++)
                if (strcmp(optarg, scenario_names[i]) == 0)
                    break;
            if (i == HM_ARRAY_SIZE(scenario_names)) {
                fprintf(stderr, "hems-loadgen: unknown scenario '%s'\n", optarg);
                return 2;
            }
            c->scenario = (uint8_t)i;
            break;
        }
        case OPT_DEVICES: c->devices = strtoull(optarg, NULL, 10); break;
        case OPT_RATE: c->rate = strtod(optarg, NULL); break;
        case OPT_INTERVAL: c->interval = strtod(optarg, NULL); break;
        case OPT_JITTER: c->jitter = strtod(optarg, NULL); break;
        case OPT_CONC: c->concurrency = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_DURATION: c->duration = strtod(optarg, NULL); break;
        case OPT_SESSIONS: c->sessions = strtoull(optarg, NULL, 10); break;
        case OPT_TIMEOUT: c->timeout = strtod(optarg, NULL); break;
        case OPT_DRAIN: c->drain = strtod(optarg, NULL); break;
        case OPT_PATH: snprintf(c->cwmp_path, sizeof(c->cwmp_path), "%s", optarg); break;
        case OPT_HPATH: snprintf(c->healthz_path, sizeof(c->healthz_path), "%s", optarg); break;
        case OPT_POST: c->healthz_post = true; break;
        case OPT_BODY: c->body_size = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_KEEPALIVE: c->keepalive = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_HOLDCWMP: c->hold_cwmp = true; break;
        case OPT_HOST: snprintf(c->host, sizeof(c->host), "%s", optarg); break;
        case OPT_OUI: snprintf(c->oui, sizeof(c->oui), "%s", optarg); break;
        case OPT_PCLASS: snprintf(c->product_class, sizeof(c->product_class), "%s", optarg); break;
        case OPT_MANUF: snprintf(c->manufacturer, sizeof(c->manufacturer), "%s", optarg); break;
        case OPT_SERIAL: c->first_serial = strtoull(optarg, NULL, 10); break;
        case OPT_SCATTER: c->scatter_serials = true; break;
        case OPT_CWMPVER:
            if (strcmp(optarg, "1.0") == 0)
                c->cwmp_ver = HM_CWMP_V1_0;
            else if (strcmp(optarg, "1.1") == 0)
                c->cwmp_ver = HM_CWMP_V1_1;
            else if (strcmp(optarg, "1.2") == 0)
                c->cwmp_ver = HM_CWMP_V1_2;
            else {
                fprintf(stderr, "hems-loadgen: --cwmp-version: 1.0, 1.1 or 1.2\n");
                return 2;
            }
            break;
        case OPT_RMIN: c->retry_min = strtod(optarg, NULL); break;
        case OPT_RMULT: c->retry_mult = strtod(optarg, NULL) / 1000.0; break;
        case OPT_MAXRETRY: c->max_retries = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_ALARMS:
            c->alarms = (uint32_t)strtoul(optarg, NULL, 10);
            if (c->alarms < 1 || c->alarms > HM_LG_MAX_ALARMS) {
                fprintf(stderr, "hems-loadgen: --alarms must be 1..%d\n", HM_LG_MAX_ALARMS);
                return 2;
            }
            break;
        case OPT_CR_PORT: {
            unsigned long p = strtoul(optarg, NULL, 10);
            if (p > 65535 - MAX_WORKERS) {
                fprintf(stderr, "hems-loadgen: --cr-port must be 0..%d\n", 65535 - MAX_WORKERS);
                return 2;
            }
            c->cr = true;
            c->cr_port = (uint16_t)p;
            break;
        }
        case OPT_DL_FAIL: {
            char *end;
            unsigned long p = strtoul(optarg, &end, 10);
            if (*end || p > 100) {
                fprintf(stderr, "hems-loadgen: --download-fail-pct must be 0..100\n");
                return 2;
            }
            c->download_fail_pct = (uint32_t)p;
            break;
        }
        case OPT_FW_VERSION:
            if (!*optarg || strlen(optarg) >= sizeof(c->fw_version)) {
                fprintf(stderr, "hems-loadgen: --fw-version must be 1..%zu characters\n",
                        sizeof(c->fw_version) - 1);
                return 2;
            }
            snprintf(c->fw_version, sizeof(c->fw_version), "%s", optarg);
            break;
        case OPT_IPSEC:
            c->ipsec_every = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case OPT_CR_USER:
            snprintf(c->cr_username, sizeof(c->cr_username), "%s", optarg);
            break;
        case OPT_CR_PASS:
            snprintf(c->cr_password, sizeof(c->cr_password), "%s", optarg);
            break;
        case OPT_FALLBACK:
            c->fallback_after = (uint32_t)strtoul(optarg, NULL, 10);
            if (c->fallback_after < 1) {
                fprintf(stderr, "hems-loadgen: --fallback-after must be at least 1\n");
                return 2;
            }
            break;
        case OPT_PM_PATH:
            if (strlen(optarg) >= sizeof(c->pm_path) || optarg[0] != '/') {
                fprintf(stderr, "hems-loadgen: --pm-path must be an absolute path under 64 bytes\n");
                return 2;
            }
            snprintf(c->pm_path, sizeof(c->pm_path), "%s", optarg);
            break;
        case OPT_PM_AFTER:
            c->pm_after_register = true;
            break;
        case OPT_PM_CELLS:
            c->pm_cells = (uint32_t)strtoul(optarg, NULL, 10);
            if (c->pm_cells < 1 || c->pm_cells > 64) {
                fprintf(stderr, "hems-loadgen: --pm-cells must be 1..64\n");
                return 2;
            }
            break;
        case OPT_ALARMS_Q:
            c->alarms_queued = true;
            break;
        case OPT_MODEL:
            if (access(optarg, R_OK) != 0) {
                fprintf(stderr, "hems-loadgen: cannot read --model %s\n", optarg);
                return 2;
            }
            snprintf(c->model_csv, sizeof(c->model_csv), "%s", optarg);
            break;
        case OPT_USER: snprintf(c->username, sizeof(c->username), "%s", optarg); break;
        case OPT_PASS: snprintf(c->password, sizeof(c->password), "%s", optarg); break;
        case OPT_WORKERS: c->workers = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_SOURCE:
            if (parse_sources(optarg, c)) {
                fprintf(stderr, "hems-loadgen: bad --source '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_STRICT_BACKOFF: c->strict_backoff = true; break;
        case OPT_ENGINE:
            if (strcmp(optarg, "auto") == 0)
                c->engine = HM_LG_ENGINE_AUTO;
            else if (strcmp(optarg, "epoll") == 0)
                c->engine = HM_LG_ENGINE_EPOLL;
            else if (strcmp(optarg, "io_uring") == 0 || strcmp(optarg, "uring") == 0)
                c->engine = HM_LG_ENGINE_URING;
            else {
                fprintf(stderr, "hems-loadgen: bad --engine '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_SPID: server_pid = (pid_t)strtol(optarg, NULL, 10); break;
        case OPT_JSON: json_path = optarg; break;
        case OPT_PLOT: plot_path = optarg; break;
        case OPT_QUIET: quiet = true; break;
        case OPT_VERBOSE: c->verbose = true; break;
        case OPT_TLS: c->tls = true; break;
        case OPT_TLS_CA: snprintf(c->tls_ca, sizeof(c->tls_ca), "%s", optarg); break;
        case OPT_TLS_CERT: snprintf(c->tls_cert, sizeof(c->tls_cert), "%s", optarg); break;
        case OPT_TLS_KEY: snprintf(c->tls_key, sizeof(c->tls_key), "%s", optarg); break;
        case OPT_TLS_DIR: snprintf(c->tls_cert_dir, sizeof(c->tls_cert_dir), "%s", optarg); break;
        case OPT_TLS_RESUME: c->tls_resume = true; break;
        case 'h':
        case OPT_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!target || parse_target(target, c)) {
        fprintf(stderr, "hems-loadgen: --target HOST:PORT is required (IPv4)\n");
        usage(stderr);
        return 2;
    }
    if (c->workers < 1 || c->workers > MAX_WORKERS || c->keepalive < 1 || c->timeout <= 0 ||
        c->retry_min < 0 || c->retry_mult < 1.0 || c->jitter < 0 || c->jitter > 1) {
        fprintf(stderr, "hems-loadgen: invalid option value\n");
        return 2;
    }
    if (c->scenario == HM_LG_ALARMS && !c->alarms)
        c->alarms = 1;
    if (!c->pm_path[0])
        snprintf(c->pm_path, sizeof(c->pm_path), "/pm");
    if (!c->pm_cells)
        c->pm_cells = 2;
    if (!c->fallback_after)
        c->fallback_after = 3;
    bool open_periodic = (c->scenario == HM_LG_HEALTHZ || c->scenario == HM_LG_PERIODIC ||
                          c->scenario == HM_LG_ALARMS || c->scenario == HM_LG_PM) &&
                         !c->concurrency && c->rate > 0 && c->interval > 0;
    if (!c->devices && open_periodic)
        c->devices = (uint64_t)(c->rate * c->interval + 0.5); /* the fleet that gives R/s */
    else if (!c->devices)
        c->devices = c->concurrency ? c->concurrency : 1000;
    else if (open_periodic)
        fprintf(stderr, "hems-loadgen: --devices and --interval given: the rate is %.1f/s, "
                        "--rate is ignored\n", (double)c->devices / c->interval);
    if (!c->devices)
        c->devices = 1;
    if (c->devices < c->workers)
        c->workers = (uint32_t)c->devices;
    if (c->devices / c->workers > 0xFFFFFFFFull) {
        fprintf(stderr, "hems-loadgen: too many devices per worker\n");
        return 2;
    }
    bool periodic_like = c->scenario == HM_LG_HEALTHZ || c->scenario == HM_LG_PERIODIC ||
                         c->scenario == HM_LG_ALARMS || c->scenario == HM_LG_PM;
    if (periodic_like && !c->concurrency && c->rate <= 0 && c->interval <= 0) {
        fprintf(stderr, "hems-loadgen: give --rate, --interval (open loop) or --concurrency "
                        "(closed loop)\n");
        return 2;
    }
    if (c->scenario == HM_LG_DISCOVERY && c->interval > 0 && !c->duration) {
        fprintf(stderr, "hems-loadgen: discovery with --interval needs --duration\n");
        return 2;
    }
    if (!c->duration && !c->sessions && !hm_lg_boot_like(c->scenario)) {
        fprintf(stderr, "hems-loadgen: give --duration or --sessions\n");
        return 2;
    }

    /* Each worker may hold about devices/workers sockets: lift the soft fd limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && c->devices / c->workers + 64 > rl.rlim_cur &&
        (c->scenario == HM_LG_HOLD || !c->concurrency))
        fprintf(stderr, "hems-loadgen: warning: %llu devices per worker may exceed the open "
                        "file limit %llu; add --workers\n",
                (unsigned long long)(c->devices / c->workers), (unsigned long long)rl.rlim_cur);
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C / SIGTERM end the run early but still report (inherited by the workers) */
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct run r = {.cfg = c, .server_pid = server_pid, .nchild = c->workers};
    r.children = hm_xcalloc(c->workers, sizeof(*r.children));
    r.s0 = sample_server(server_pid);
    r.rss_peak = r.s0.rss_kb;
    if (server_pid && !r.s0.ok)
        fprintf(stderr, "hems-loadgen: warning: cannot read /proc/%d\n", (int)server_pid);
    c->t0_ns = mono_ns() + 100000000ull; /* every worker starts its clock at the same t0 */
    fflush(NULL);
    for (unsigned i = 0; i < c->workers; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) == -1) {
            perror("hems-loadgen: pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid == -1) {
            perror("hems-loadgen: fork");
            return 1;
        }
        if (pid == 0) {
            close(p[0]);
            for (unsigned j = 0; j < i; j++)
                close(r.children[j].fd);
            int rc = hm_lg_worker_run(c, i, p[1]);
            if (rc)
                fprintf(stderr, "hems-loadgen: worker %u: %s\n", i, hm_strerror(rc));
            _exit(rc ? 1 : 0);
        }
        close(p[1]);
        r.children[i] = (struct child){.pid = pid, .fd = p[0]};
    }

    uint64_t start = c->t0_ns, next = start + 1000000000ull;
    unsigned open_fds = c->workers;
    unsigned long long last_ok = 0, last_fail = 0, last_err = 0;
    struct server_sample last_srv = r.s0;
    uint64_t last_srv_ns = mono_ns();
    struct pollfd *pfd = hm_xcalloc(c->workers, sizeof(*pfd));
    bool tty = isatty(2), forwarded = false;
    while (open_fds) {
        if (hm_lg_stop_requested && !forwarded) {
            /* a SIGTERM to the parent alone must reach the workers too */
            for (unsigned i = 0; i < c->workers; i++)
                kill(r.children[i].pid, SIGTERM);
            forwarded = true;
        }
        unsigned n = 0;
        for (unsigned i = 0; i < c->workers; i++)
            if (!r.children[i].eof)
                pfd[n++] = (struct pollfd){.fd = r.children[i].fd, .events = POLLIN};
        uint64_t now = mono_ns();
        int ms = next > now ? (int)((next - now) / 1000000 + 1) : 0;
        int pr = poll(pfd, n, ms);
        if (pr == -1 && errno != EINTR) {
            perror("hems-loadgen: poll");
            break;
        }
        for (unsigned i = 0; i < c->workers; i++) {
            struct child *ch = &r.children[i];
            if (ch->eof)
                continue;
            bool ready = false;
            for (unsigned k = 0; k < n; k++)
                if (pfd[k].fd == ch->fd && pfd[k].revents)
                    ready = true;
            if (!ready)
                continue;
            hm_buf_reserve(&ch->in, 65536);
            ssize_t got = read(ch->fd, ch->in.base + ch->in.len, ch->in.cap - ch->in.len);
            if (got > 0) {
                ch->in.len += (size_t)got;
                child_lines(ch);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                ch->eof = true;
                close(ch->fd);
                open_fds--;
            }
        }
        now = mono_ns();
        if (now >= next) {
            struct server_sample s = sample_server(server_pid);
            if (s.ok && s.rss_kb > r.rss_peak)
                r.rss_peak = s.rss_kb;
            unsigned long long ok = 0, fail = 0, exch = 0, err = 0, held = 0, p99 = 0;
            for (unsigned i = 0; i < c->workers; i++) {
                struct child *ch = &r.children[i];
                ok += ch->p_ok, fail += ch->p_fail, exch += ch->p_exch, err += ch->p_err;
                held += ch->p_held;
                if (ch->p_p99 > p99)
                    p99 = ch->p_p99;
            }
            double cpu = s.ok && last_srv.ok && now > last_srv_ns
                             ? (s.cpu_s - last_srv.cpu_s) * 1e11 / (double)(now - last_srv_ns)
                             : -1;
            struct hm_lg_point pt = {(double)(now - start) / 1e9, ok - last_ok, fail - last_fail,
                                     err - last_err, p99, cpu, s.ok ? s.rss_kb : -1};
            hm_lg_timeline_add(&r.timeline, &pt);
            if (!quiet) {
                fprintf(stderr,
                        "%s[%5.0fs] sessions %llu (+%llu/s) failed %llu exchanges %llu errors "
                        "%llu held %llu p99(1s) %llu us",
                        tty ? "\r" : "", (double)(now - start) / 1e9, ok, ok - last_ok, fail,
                        exch, err, held, p99);
                if (cpu >= 0)
                    fprintf(stderr, " server cpu %.0f%% rss %ld MB", cpu, s.rss_kb / 1024);
                fprintf(stderr, "%s", tty ? "   " : "\n");
            }
            last_ok = ok, last_fail = fail, last_err = err;
            last_srv = s;
            last_srv_ns = now;
            next += 1000000000ull;
            if (next < now)
                next = now + 1000000000ull;
        }
    }
    if (!quiet && tty)
        fprintf(stderr, "\n");
    free(pfd);

    int exit_code = 0;
    for (unsigned i = 0; i < c->workers; i++) {
        int status = 0;
        if (waitpid(r.children[i].pid, &status, 0) == -1 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0 || !r.children[i].reported) {
            fprintf(stderr, "hems-loadgen: worker %u failed\n", i);
            exit_code = 1;
        }
    }
    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
        r.loadgen_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        r.loadgen_csw = (uint64_t)ru.ru_nvcsw;
        r.loadgen_cpu_s = r.loadgen_user_s + (double)ru.ru_stime.tv_sec +
                          (double)ru.ru_stime.tv_usec / 1e6;
    }
    r.s1 = sample_server(server_pid);
    if (r.s1.ok && r.s1.rss_kb > r.rss_peak)
        r.rss_peak = r.s1.rss_kb;

    struct hm_lg_stats *all = hm_xcalloc(1, sizeof(*all));
    for (unsigned i = 0; i < c->workers; i++)
        if (r.children[i].st)
            hm_lg_stats_merge(all, r.children[i].st);
    print_summary(&r, all);
    if (json_path) {
        json_t *rep = build_report(&r, all);
        if (json_dump_file(rep, json_path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
            fprintf(stderr, "hems-loadgen: cannot write %s\n", json_path);
            exit_code = 1;
        }
        json_decref(rep);
    }
    if (plot_path) {
        char title[256];
        snprintf(title, sizeof(title), "hems-loadgen %s: %llu sessions ok, %llu failed, %.1f s",
                 scenario_names[c->scenario], (unsigned long long)all->sessions_ok,
                 (unsigned long long)all->sessions_failed, all->elapsed_s);
        int pr = hm_lg_plot_svg(plot_path, &r.timeline, title);
        if (pr < 0) {
            fprintf(stderr, "hems-loadgen: cannot write %s: %s\n", plot_path, hm_strerror(pr));
            exit_code = 1;
        }
    }
    hm_lg_timeline_free(&r.timeline);
    for (unsigned i = 0; i < c->workers; i++) {
        free(r.children[i].st);
        hm_buf_free(&r.children[i].in);
    }
    free(r.children);
    free(all);
    return exit_code;
}
