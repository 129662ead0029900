#ifndef HM_LOADGEN_H
#define HM_LOADGEN_H
/*
 * hems-loadgen: simulated HeNBs (TR-069 CPEs) against a real hemsd. See docs/loadgen.md.
 *
 * One worker process runs hm_lg_worker_run(): an event loop (io_uring for plain-TCP
 * sessions, epoll for hold and TLS; enum hm_lg_engine) driving its share of the
 * simulated devices (a ~100-byte struct each, plus I/O buffers borrowed from a free list
 * only while a connection is active). Workers report progress and their final statistics
 * as lines on a pipe (see hm_lg_stats_to_json); the parent merges them.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/loadgen_hist.h"
#include "core/err.h"
#include "proto/cwmp.h"

enum hm_lg_scenario {
    HM_LG_HEALTHZ = 0, /* HTTP engine only: GET (or POST) /healthz */
    HM_LG_PERIODIC,    /* CWMP sessions: Inform "2 PERIODIC", empty POST, answers, 204 */
    HM_LG_BOOT,        /* one "0 BOOTSTRAP"+"1 BOOT" session per device, then done */
    HM_LG_HOLD,        /* open connections and keep them (idle or periodically active) */
    HM_LG_DISCOVERY,   /* boot at the target (an Initial HeMS), follow the ManagementServer.URL
                          it sets to the Serving HeMS, boot there: once per device */
    HM_LG_ALARMS,      /* periodic sessions whose Informs carry FaultMgmt alarm events */
    HM_LG_PM,          /* PM file uploads: POST of a TS 32.435 file per device and period */
};

/* Boot-like scenarios: one registration per device, then done. */
static inline bool hm_lg_boot_like(uint8_t s)
{
    return s == HM_LG_BOOT || s == HM_LG_DISCOVERY;
}

/* Event engine of the workers (docs/loadgen.md, "Engines"). */
enum hm_lg_engine {
    HM_LG_ENGINE_AUTO = 0, /* io_uring for plain-TCP scenarios but hold; epoll otherwise or
                              when io_uring is unavailable */
    HM_LG_ENGINE_EPOLL,    /* epoll everywhere (the engine before io_uring) */
    HM_LG_ENGINE_URING,    /* as auto, but fail rather than fall back to epoll */
};

#define HM_LG_MAX_TARGETS 16  /* distinct ACS URLs a worker may be redirected to */

#define HM_LG_MAX_SOURCES 256

struct hm_lg_config {
    uint8_t scenario;               /* enum hm_lg_scenario */
    struct sockaddr_in target;
    char host[80];                  /* Host header value */
    char cwmp_path[64];             /* "/cwmp" */
    char healthz_path[64];          /* "/healthz" */
    bool healthz_post;              /* POST with <body_size> bytes instead of GET */
    uint32_t body_size;
    uint32_t keepalive;             /* healthz: requests per connection (>= 1) */
    bool hold_cwmp;                 /* hold: Inform and hold the CWMP session, not /healthz */

    uint32_t workers;
    uint64_t devices;               /* total, all workers */
    double rate;                    /* open loop: sessions/s, all workers; 0 = not set */
    double interval;                /* open loop: seconds between a device's sessions */
    double jitter;                  /* fraction of the period added at random, 0..1 */
    uint32_t concurrency;           /* closed loop: sessions in flight, all workers */
    double duration;                /* seconds; 0 = unlimited */
    uint64_t sessions;              /* stop after this many started sessions; 0 = unlimited */
    double timeout;                 /* seconds per exchange (and per connect) */
    double drain;                   /* seconds allowed to finish in-flight sessions */

    double retry_min;               /* TR-069 CWMPRetryMinimumWaitInterval (s) */
    double retry_mult;              /* CWMPRetryIntervalMultiplier / 1000 */
    uint32_t max_retries;           /* consecutive failed attempts before a session fails */
    bool strict_backoff;            /* a Retry-After never shortens the TR-069 backoff */

    char oui[8];
    char product_class[65];
    char manufacturer[65];
    uint64_t first_serial;
    bool scatter_serials;           /* device i gets serial first + perm(i), perm a fixed
                                       bijection of [0, devices) that scatters neighbours
                                       (arrival order unrelated to key order), else first + i */
    uint8_t cwmp_ver;               /* enum hm_cwmp_ver */
    char username[129];             /* Digest user; "" = the device's OUI-ProductClass-Serial */
    char password[129];             /* Digest password; "" = answer no 401 challenge */
    char model_csv[256];            /* data-model CSV for bench/henb_agent.h; "" = built-in */
    uint32_t alarms;                /* alarms: entries per Inform (1..HM_LG_MAX_ALARMS,
                                       bench/loadgen_cpe.h) */
    bool alarms_queued;
    uint32_t ipsec_every;           /* every Nth session reports a new IPsec inner address
                                       ("4 VALUE CHANGE"); 0 = never */
    uint32_t fallback_after;        /* discovery: attempts in a row that found a Serving HeMS
                                       unreachable (connect failure, timeout, closed without
                                       an answer; not a 503/8005 shed) before the device
                                       returns to --target */
    bool cr;                        /* Connection Request listeners (else synthetic URLs) */
    uint16_t cr_port;               /* worker w listens on 127.0.0.1:cr_port + w; 0: on an
                                       ephemeral port of its own */
    char cr_username[129], cr_password[129]; /* their Digest credentials ("": none) */
    uint32_t download_fail_pct;     /* Downloads whose TransferComplete says 9010 (loadgen_dl.h) */
    char fw_version[129];           /* SoftwareVersion after a firmware Download ("": URL's name) */
    char pm_path[64];               /* pm: upload path prefix ("/pm") */
    uint32_t pm_cells;              /* pm: cells per file (2: about 40 KB) */
    bool pm_after_register;         /* boot-like scenarios with --model: a device whose ACS
                                       configured a PM upload (URL + credentials by SPV)
                                       then uploads one file there with them */             /* alarms: QueuedEvent (with "2 PERIODIC"), else
                                       ExpeditedEvent (with "4 VALUE CHANGE") */

    bool tls;                       /* HTTPS (bench/loadgen_tls.h) */
    bool tls_resume;                /* each device resumes its previous TLS session */
    char tls_ca[256];               /* CA file to verify the server; "" = no verification */
    char tls_cert[256], tls_key[256]; /* one client certificate for every device */
    char tls_cert_dir[256];         /* per-device dev-<SerialNumber>.pem/.key */

    uint32_t n_sources;
    struct in_addr sources[HM_LG_MAX_SOURCES];

    uint8_t engine;                 /* enum hm_lg_engine */
    uint64_t t0_ns;                 /* CLOCK_MONOTONIC start, shared by all workers */
    bool verbose;
};

/* Error kinds, counted per occurrence (an attempt may count one, a session several). */
#define HM_LG_ERR_LIST(X)                                                                    \
    X(CONNECT, "connect")       /* socket/bind/connect failed or refused */                  \
    X(TIMEOUT, "timeout")       /* no progress within --timeout */                           \
    X(CLOSED, "closed")         /* server closed or reset mid-exchange / a held connection */\
    X(HTTP, "http_status")      /* unexpected HTTP status (see http_status) */               \
    X(PARSE, "parse")           /* malformed HTTP or CWMP from the server */                 \
    X(FAULT, "cwmp_fault")      /* a CWMP Fault other than 8005 (see cwmp_faults) */         \
    X(RETRY_8005, "retry_8005") /* Inform answered with Fault 8005: retried */              \
    X(HTTP_503, "http_503")     /* Inform answered 503 (+Retry-After): retried */            \
    X(GAVE_UP, "gave_up")       /* session failed after --max-retries attempts */            \
    X(UNFINISHED, "unfinished") /* in flight when the run ended (not a server error) */

enum hm_lg_err {
#define HM_LG_ERR_ENUM(e, s) HM_LG_E_##e,
    HM_LG_ERR_LIST(HM_LG_ERR_ENUM)
#undef HM_LG_ERR_ENUM
    HM_LG_E__COUNT
};

extern const char *const hm_lg_err_names[HM_LG_E__COUNT];

#define HM_LG_RETRY_SLOTS 16
#define HM_LG_FAULT_SLOTS 64 /* 8000-8031 -> 0-31, 9000-9031 -> 32-63; others in fault_other */

/* One worker's statistics (and, merged, the run's). About 55 KB: the three histograms. */
struct hm_lg_stats {
    uint64_t sessions_started, sessions_ok, sessions_failed, exchanges, connects;
    uint64_t attempts_retried; /* extra attempts due to retries */
    uint64_t auth_challenges;  /* 401 Digest challenges answered */
    uint64_t missed_slots;     /* open loop: periods skipped by a device that was far behind */
    uint64_t held_now, held_peak;
    uint64_t bytes_sent, bytes_received;
    uint64_t redirects;        /* discovery: ManagementServer.URL changes followed */
    uint64_t registered;       /* discovery: devices registered at the end of the run (their
                                  last boot session succeeded without a redirection) */
    uint64_t fallbacks;        /* discovery: returns to the Initial HeMS after a Serving HeMS
                                  failed --fallback-after attempts in a row */
    uint64_t alarms_sent;      /* alarms: alarm entries in Informs answered by the ACS */
    uint64_t pm_files, pm_bytes; /* pm: uploads acknowledged (2xx) and their body bytes */
    uint64_t pm_duplicates;    /* pm: uploads answered 200 (already spooled or ingested) */
    uint64_t cr_received, cr_challenges, cr_refused, cr_bad; /* bench/loadgen_cr.h */
    uint64_t cr_sessions;      /* sessions with "6 CONNECTION REQUEST" completed */
    uint64_t dl_started, dl_fetched, dl_injected, dl_errors, dl_tc_acked; /* loadgen_dl.h */
    uint64_t ipsec_changes;    /* Informs with a new IPsec inner address answered */
    uint64_t max_rss_kb;       /* the worker's peak RSS (merged: the largest) */
    uint64_t retry_hist[HM_LG_RETRY_SLOTS]; /* sessions ended (ok or not) by their retries
                                               (the last slot: that many or more) */
    uint64_t retries_dev_max;  /* most retries of one device over the run, all its sessions
                                  (counted to 255) */
    uint64_t err[HM_LG_E__COUNT];
    uint64_t http_status[600];
    uint64_t faults[HM_LG_FAULT_SLOTS];
    uint64_t fault_other;
    uint64_t acs_requests[HM_CWMP__COUNT];
    double elapsed_s;
    struct hm_lg_hist session;  /* us; open loop: from the intended start (coordinated
                                   omission corrected); closed loop: from the actual start */
    struct hm_lg_hist exchange; /* us; first byte sent to last byte received */
    struct hm_lg_hist connect;  /* us; connect() to writable */
    struct hm_lg_hist admitted; /* us; the session's successful attempt, from its start: the
                                   time of a session the server admitted (no backoff) */
    struct hm_lg_hist served;   /* us; the same attempt from its TCP connection's establishment
                                   (connect done) to its end: what the server's own queues
                                   and work cost, without the client's SYN retransmissions
                                   when the server's accept queue was full */
};

/* Set (from a signal handler) to end the run now: workers stop starting sessions, abort
 * the ones in flight (counted as unfinished) and report as usual. */
extern volatile sig_atomic_t hm_lg_stop_requested;

/* Runs worker <w> of <cfg> until its stop condition; progress lines ("P ...\n") each second
 * and the final "R <json>\n" are written to <out_fd>. Returns 0 or -errno (setup failed). */
int hm_lg_worker_run(const struct hm_lg_config *cfg, unsigned w, int out_fd) HM_MUST_CHECK;

/*
 * --scatter-serials (bench/loadgen.c): device i of n gets serial first + i * a mod n, with
 * a the step this returns (near n times the golden ratio, coprime with n, so i -> i * a
 * mod n is a bijection of [0, n) that puts consecutive devices far apart in key order);
 * 0 for n < 3, where hm_lg_scatter() leaves i as it is. Also bench/bench_store_order_main.c.
 */
uint64_t hm_lg_scatter_step(uint64_t n);

static inline uint64_t hm_lg_scatter(uint64_t i, uint64_t n, uint64_t step)
{
    return step && i < n ? (uint64_t)(((unsigned __int128)i * step) % n) : i;
}

/* ---- statistics (bench/loadgen_report.c) ---- */

/* Adds <src> into <dst>; held_* and elapsed_s take the sum/max that make sense. */
void hm_lg_stats_merge(struct hm_lg_stats *dst, const struct hm_lg_stats *src);

/* Compact one-line JSON of <st> (histograms as sparse bucket lists), appended to <b>. */
void hm_lg_stats_to_json(const struct hm_lg_stats *st, struct hm_buf *b);

/* Parses what hm_lg_stats_to_json wrote into <st> (zeroed first). 0 or -EINVAL. */
int hm_lg_stats_from_json(const char *json, size_t len, struct hm_lg_stats *st) HM_MUST_CHECK;

/* Fault code from a slot of hm_lg_stats.faults, and the slot of a code (-1: other). */
uint32_t hm_lg_fault_code(unsigned slot);
int hm_lg_fault_slot(uint32_t code);

#endif
