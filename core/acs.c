#include "core/acs.h"
#include "core/alarms.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/acs_task.h"
#include "core/alarm_notify.h"
#include "core/admission.h"
#include "core/admission_gate.h"
#include "core/files.h" /* files: applied records */
#include "core/hems_proc.h"
#include "core/bug.h"
#include "core/fleet.h"
#include "core/log.h"
#include "core/sessreg.h"
#include "core/tls.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/cwmp.h"
#include "storage/record.h"
#include "storage/store_health.h"

#define ARENA_BYTES (1u << 20) /* parse arena per shard: ~48 B per parameter, 4096 params */
#define SESS_KEEP 1024         /* free sessions kept per shard */
#define XML_CTYPE "text/xml; charset=\"utf-8\""

/* X(field, metric, help) */
#define ACS_COUNTERS(X)                                                                      \
    X(sessions, "hems_cwmp_sessions_total", "CWMP sessions started (Inform accepted)")       \
    X(sessions_done, "hems_cwmp_sessions_completed_total",                                   \
      "CWMP sessions ended by the ACS with 204")                                             \
    X(informs, "hems_cwmp_informs_total", "Inform messages committed")                       \
    X(busy_refused, "hems_cwmp_sessions_refused_busy_total",                                 \
      "Informs refused with 8005: the device already has a session")                         \
    X(shed, "hems_cwmp_sessions_shed_total",                                                 \
      "new sessions shed: 503 by admission control, or 8005 when the store ring was full")   \
    X(auth_challenges, "hems_cwmp_auth_challenges_total", "401 Digest challenges sent")       \
    X(auth_failures, "hems_cwmp_auth_failures_total",                                        \
      "requests with wrong or malformed credentials")                                        \
    X(bad_messages, "hems_cwmp_bad_messages_total",                                          \
      "bodies refused as malformed XML/SOAP (400) or invalid CWMP (fault 8003)")             \
    X(faults_sent, "hems_cwmp_faults_sent_total", "CWMP faults sent to CPEs")                \
    X(tasks_sent, "hems_cwmp_tasks_sent_total", "queued RPCs sent to CPEs")                  \
    X(tasks_done, "hems_cwmp_tasks_done_total", "RPCs answered with success")                \
    X(tasks_failed, "hems_cwmp_tasks_failed_total", "RPCs answered with a CPE fault")        \
    X(store_errors, "hems_cwmp_store_errors_total", "store commits that failed")             \
    X(params_unchanged, "hems_cwmp_inform_params_unchanged_total",                           \
      "Inform parameters not rewritten: the store already held their value")

#define HIST_BUCKETS 24 /* log2 of microseconds: bucket i counts [2^i, 2^(i+1)) us */

struct acs_counters {
#define F(f, m, h) _Atomic uint64_t f;
    ACS_COUNTERS(F)
#undef F
    _Atomic uint64_t session_us[HIST_BUCKETS]; /* Inform received -> 204 sent */
    _Atomic uint64_t commit_us[HIST_BUCKETS];  /* batch submitted -> completion on the shard */
};

enum sstate { S_AWAIT_INFORM = 0, S_ACTIVE, S_AWAIT_RESP, S_ENDED };

enum after {
    AFTER_NONE = 0,
    AFTER_INFORM,        /* send InformResponse */
    AFTER_NEXT,          /* send the next task or 204 */
    AFTER_TC_RESPONSE,   /* send TransferCompleteResponse */
};

struct acs_shard;

struct acs_sess {
    struct acs_shard *sh;
    uint8_t state, ver, after;
    bool authed, cpe_done, closing, inflight;
    bool alarms_pending; /* the batch in flight holds new alarms: wake the alarm streams */
    bool admitted; /* counted in flight by admission control (core/admission.h) */
    uint64_t reg_key;
    uint64_t conn_id;
    uint64_t t_inform_us, t_submit_us;
    _Atomic uint64_t t_done_us; /* writer: completion posted (admission's shard-lag signal) */
    uint64_t task_seq;
    uint8_t task_kind;
    uint16_t dev_len;
    uint8_t id_len;
    char use_version[4]; /* "1.4" etc.: UseCWMPVersion for the InformResponse, or "" */
    char id[64]; /* cwmp:ID to echo in the deferred answer */
    char dev[200];
    char cookie[33];
    struct hm_auth_nonce_state nst;
    struct pbatch *pb; /* lent from the shard while a write is built or in flight */
    struct hm_shard_msg msg;
    int status;
    struct hm_conn_ref ref;
    struct acs_sess *next_free;
};

/* Write batches are lent to sessions only while a write is built or in flight, so a
 * session waiting for its CPE holds none (a batch grows to the size of the largest Inform). */
struct pbatch {
    struct hm_store_batch b;
    struct pbatch *next;
};

struct acs_shard {
    struct hm_acs *acs;
    struct hm_shard *shard;
    struct hm_store_reader *rd;
    char *arena_mem;
    struct hm_soap_arena arena;
    struct acs_sess *free;
    unsigned nfree;
    struct pbatch *pb_free;
    unsigned pb_nfree;
    uint64_t conn_seq;
    uint64_t rng;
    struct hm_buf scratch;
    struct acs_counters ctr __attribute__((aligned(HM_CACHELINE)));
};

struct hm_acs {
    struct hm_store *store;
    struct hm_shards *ss;
    struct acs_shard **sh;
    unsigned n;
    struct hm_sessreg *reg;
    bool digest;
    char realm[128], username[256];
    char ha1[HM_AUTH_HEX_LEN + 1];
    struct hm_auth_nonce_key nonce_key;
    struct hm_cwmp_opts opts;
    struct hm_fleet *fleet; /* not owned; NULL: no profiles (core/fleet.h) */
    struct hm_hems *hems; /* not owned; NULL: no HeMS procedures */
    struct hm_admission *adm; /* owned */
};

#define CTR_INC(sh, f) HM_CTR_INC(&(sh)->ctr, f)

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void observe(_Atomic uint64_t *h, uint64_t us)
{
    int b = us ? 63 - __builtin_clzll(us) : 0;
    if (b >= HIST_BUCKETS)
        b = HIST_BUCKETS - 1;
    HM_CTR_INC_ARR(h, b);
}


static uint64_t rnd(struct acs_shard *sh)
{
    uint64_t x = sh->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return sh->rng = x;
}

/* ---- sessions ---- */

static struct acs_sess *sess_new(struct acs_shard *sh)
{
    struct acs_sess *s = sh->free;
    if (s) {
        sh->free = s->next_free;
        sh->nfree--;
        memset(s, 0, sizeof(*s));
    } else {
        s = hm_xcalloc(1, sizeof(*s));
    }
    s->sh = sh;
    s->conn_id = ((uint64_t)hm_shard_id(sh->shard) << 48) | ++sh->conn_seq;
    snprintf(s->cookie, sizeof(s->cookie), "%016llx%016llx", (unsigned long long)rnd(sh),
             (unsigned long long)rnd(sh));
    return s;
}

static struct hm_store_batch *batch_take(struct acs_sess *s)
{
    struct acs_shard *sh = s->sh;
    if (!s->pb) {
        s->pb = sh->pb_free;
        if (s->pb) {
            sh->pb_free = s->pb->next;
            sh->pb_nfree--;
        } else {
            s->pb = hm_xcalloc(1, sizeof(*s->pb));
            hm_store_batch_init(&s->pb->b);
        }
    }
    hm_store_batch_reset(&s->pb->b);
    return &s->pb->b;
}

/* Gives the session's batch back to the shard (never while the store owns it). */
static void batch_give(struct acs_sess *s)
{
    struct acs_shard *sh = s->sh;
    struct pbatch *pb = s->pb;
    if (!pb)
        return;
    s->pb = NULL;
    if (sh->pb_nfree >= 256 || pb->b.cap > 65536) {
        hm_store_batch_fini(&pb->b);
        free(pb);
        return;
    }
    pb->next = sh->pb_free;
    sh->pb_free = pb;
    sh->pb_nfree++;
}

/* ---- admission control (core/admission.h) ---- */

/* The admitted session <s> ended; <session_us>: its duration if it completed, else 0. */
static void adm_end(struct acs_sess *s, uint64_t session_us)
{
    if (!s->admitted)
        return;
    s->admitted = false;
    hm_admission_end(s->sh->acs->adm, hm_shard_id(s->sh->shard), mono_us(), session_us);
}

static void add_retry_after(struct acs_shard *sh, struct hm_buf *headers)
{
    hm_buf_printf(headers, "Retry-After: %u\r\n",
                  hm_admission_retry_after(sh->acs->adm, hm_shard_id(sh->shard)));
}

/* The accept-time gate (core/admission_gate.h). */
static unsigned accept_gate(struct hm_shard *shard, int fd, bool paced, bool *paid)
{
    struct acs_shard *sh = hm_shard_app(shard);
    unsigned sid = hm_shard_id(shard);
    if (!sh)
        return 0;
    /* Time since the client's last packet (its handshake ACK or its first request): how
     * long the connection waited in the kernel's accept queue for this shard. Not while the
     * listener is paced: the wait there is then the pacing's own (and a connection whose
     * handshake ACK the full queue dropped waits for the SYN-ACK's retransmission, seconds):
     * a congestion signal from it would cut the rate that makes it, down to the floor. */
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    if (paced)
        hm_admission_observe_accept(sh->acs->adm, sid, 0);
    else if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 &&
             tl >= offsetof(struct tcp_info, tcpi_last_ack_recv) + sizeof(ti.tcpi_last_ack_recv))
        hm_admission_observe_accept(sh->acs->adm, sid, (uint64_t)ti.tcpi_last_ack_recv * 1000);
    if (!hm_admission_gate(sh->acs->adm, sid, mono_us(), paid))
        return 0;
    CTR_INC(sh, shed);
    return hm_admission_retry_after(sh->acs->adm, sid);
}

/* A connection that paid at accept reached its first request or closed (core/admission_gate.h). */
static void gate_release(struct hm_shard *shard)
{
    struct acs_shard *sh = hm_shard_app(shard);
    if (sh)
        hm_admission_gate_release(sh->acs->adm, hm_shard_id(shard));
}

/* The SYN drop share (core/admission_gate.h). */
static unsigned syn_shed(struct hm_shard *shard)
{
    struct acs_shard *sh = hm_shard_app(shard);
    return sh ? hm_admission_syn_drop(sh->acs->adm, hm_shard_id(shard), mono_us()) : 0;
}

/* Accept pacing (core/admission_gate.h). */
static uint64_t accept_pace(struct hm_shard *shard, unsigned queued, unsigned max_backlog,
                            unsigned *backlog)
{
    struct acs_shard *sh = hm_shard_app(shard);
    unsigned sid = hm_shard_id(shard);
    if (!sh) {
        if (backlog)
            *backlog = max_backlog;
        return 0;
    }
    uint64_t wait = hm_admission_accept_wait(sh->acs->adm, sid, mono_us(), queued,
                                             backlog ? *backlog : 0);
    if (backlog)
        *backlog = hm_admission_pace_backlog(sh->acs->adm, sid, max_backlog);
    return wait;
}

static void sess_release_reg(struct acs_sess *s)
{
    adm_end(s, 0);
    if (s->reg_key) {
        hm_sessreg_release(s->sh->acs->reg, s->reg_key);
        s->reg_key = 0;
    }
}

static void sess_free(struct acs_sess *s)
{
    struct acs_shard *sh = s->sh;
    sess_release_reg(s);
    batch_give(s);
    if (sh->nfree >= SESS_KEEP) {
        free(s);
        return;
    }
    s->next_free = sh->free;
    sh->free = s;
    sh->nfree++;
}

static void on_conn_close(struct hm_shard *shard, void *data)
{
    struct acs_sess *s = data;
    (void)shard;
    if (s->inflight) {
        /* The store still owns the batch: free when its completion arrives. */
        s->closing = true;
        sess_release_reg(s);
        return;
    }
    sess_free(s);
}

/* ---- responses ---- */

static struct hm_cwmp_hdr hdr_of(struct acs_sess *s, struct hm_slice id)
{
    return (struct hm_cwmp_hdr){.ver = s->ver, .id = id};
}

static int fault(struct acs_shard *sh, struct acs_sess *s, struct hm_buf *out, uint8_t ver,
                 struct hm_slice id, uint32_t code, const char *text)
{
    struct hm_cwmp_hdr h = {.ver = s ? s->ver : ver, .id = id};
    hm_cwmp_write_fault(out, &h, code, hm_slice_cstr(text), NULL, 0);
    CTR_INC(sh, faults_sent);
    return 200;
}

static int plain(struct hm_http_exchange *x, int status, const char *text)
{
    hm_buf_append_str(x->out, text);
    hm_buf_append_lit(x->out, "\n");
    x->content_type = "text/plain";
    return status;
}

struct next_scan {
    uint64_t seq;
    uint8_t kind;
    bool found;
    struct hm_slice args;
};

static int scan_next(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct next_scan *n = arg;
    struct hm_task_rec t;
    struct hm_slice dev;
    uint64_t seq;
    if (hm_key_task_split(key, &dev, &seq) < 0 || hm_rec_task_decode(val, &t) < 0) {
        HM_LOG_RL(HM_LOG_ERR, "corrupt task record skipped", "key_len=%zu", key.len);
        return 0;
    }
    if (t.state != HM_TASK_QUEUED)
        return 0;
    n->seq = seq;
    n->kind = t.kind;
    n->args = t.args;
    n->found = true;
    return 1;
}

/* Writes the next queued task of the session's device into <out>, or ends the session.
 * Returns the HTTP status (200 or 204). */
static int next_request(struct acs_sess *s, struct hm_buf *out)
{
    struct acs_shard *sh = s->sh;
    char kbuf[HM_STORE_MAX_KEY], fbuf[HM_STORE_MAX_KEY];
    int pl = hm_key_dev_prefix(kbuf, sizeof(kbuf), hm_slice(s->dev, s->dev_len));
    int fl = hm_key_task(fbuf, sizeof(fbuf), hm_slice(s->dev, s->dev_len), s->task_seq + 1);
    struct next_scan n = {0};
    if (pl > 0 && fl > 0 && hm_store_read_begin(sh->rd) == 0) {
        int r = hm_store_scan(sh->rd, HM_DB_TASKS, hm_slice(kbuf, (size_t)pl),
                              hm_slice(fbuf, (size_t)fl), scan_next, &n);
        if (n.found) {
            char id[32];
            int idl = snprintf(id, sizeof(id), "%llu", (unsigned long long)n.seq);
            struct hm_cwmp_hdr h = hdr_of(s, hm_slice(id, (size_t)idl));
            size_t mark = out->len;
            if (hm_task_write_rpc(out, &h, (enum hm_task_kind)n.kind, n.args, n.seq) < 0) {
                out->len = mark;
                HM_LOG_RL(HM_LOG_ERR, "task arguments unreadable; task skipped",
                          "device=%.*s task=%llu", (int)s->dev_len, s->dev,
                          (unsigned long long)n.seq);
                n.found = false;
            }
        }
        (void)r;
        hm_store_read_end(sh->rd);
    }
    if (n.found) {
        s->task_seq = n.seq;
        s->task_kind = n.kind;
        s->state = S_AWAIT_RESP;
        CTR_INC(sh, tasks_sent);
        return 200;
    }
    s->state = S_ENDED;
    uint64_t took = mono_us() - s->t_inform_us;
    adm_end(s, took ? took : 1);
    sess_release_reg(s);
    CTR_INC(sh, sessions_done);
    observe(sh->ctr.session_us, took);
    return 204;
}

/* ---- durable writes ---- */

static void on_commit_msg(struct hm_shard *shard, struct hm_shard_msg *m);

static void on_commit(void *arg, int status)
{
    struct acs_sess *s = arg;
    s->status = status;
    atomic_store_explicit(&s->t_done_us, mono_us(), memory_order_relaxed);
    hm_shard_post(s->sh->shard, &s->msg);
}

/* Hands the session's batch to the writer; the exchange resumes in on_commit_msg(). */
static int submit(struct hm_http_exchange *x, struct acs_sess *s, enum after after)
{
    s->after = (uint8_t)after;
    s->ref = x->ref;
    s->t_submit_us = mono_us();
    s->msg.fn = on_commit_msg;
    int r = hm_store_submit(s->sh->acs->store, &s->pb->b, on_commit, s);
    if (r < 0) {
        batch_give(s);
        return r;
    }
    s->inflight = true;
    return 0;
}

static void on_commit_msg(struct hm_shard *shard, struct hm_shard_msg *m)
{
    struct acs_sess *s = HM_CONTAINER_OF(m, struct acs_sess, msg);
    struct acs_shard *sh = s->sh;
    (void)shard;
    s->inflight = false;
    uint64_t now = mono_us(), done = atomic_load_explicit(&s->t_done_us, memory_order_relaxed);
    uint64_t waited = now - s->t_submit_us;
    observe(sh->ctr.commit_us, waited);
    hm_admission_observe_commit(sh->acs->adm, hm_shard_id(sh->shard), waited,
                                now > done ? now - done : 0);
    batch_give(s);
    if (s->alarms_pending && s->status >= 0)
        hm_alarm_notify(); /* durable now: the live streams poll at once (core/alarm_stream.h) */
    s->alarms_pending = false;
    if (s->closing) {
        sess_free(s);
        return;
    }
    struct hm_buf *out, *hdrs;
    if (!hm_httpd_deferred_bufs(s->ref, &out, &hdrs))
        return;
    struct hm_slice id = hm_slice(s->id, s->id_len);
    int status = 200;
    if (s->status < 0) {
        CTR_INC(sh, store_errors);
        HM_LOG_RL(HM_LOG_ERR, "store commit failed; asking the CPE to retry",
                  "device=%.*s err=\"%s\"", (int)s->dev_len, s->dev, hm_strerror(s->status));
        /* 8005: the CPE retries the whole session later (TR-069 §3.2.1.1). */
        if (s->after == AFTER_INFORM)
            hm_admission_count(sh->acs->adm, hm_shard_id(sh->shard), HM_ADM_STORE_ERROR);
        add_retry_after(sh, hdrs);
        fault(sh, s, out, s->ver, id, 8005, "store unavailable, retry later");
        s->state = S_ENDED;
        sess_release_reg(s);
        hm_httpd_finish(s->ref, 200, XML_CTYPE, true);
        return;
    }
    switch (s->after) {
    case AFTER_INFORM: {
        struct hm_cwmp_hdr h = hdr_of(s, id);
        h.use_version = hm_slice_cstr(s->use_version);
        hm_cwmp_write_inform_response(out, &h);
        hm_buf_printf(hdrs, "Set-Cookie: hems_session=%s; Path=/; HttpOnly\r\n", s->cookie);
        s->state = S_ACTIVE;
        CTR_INC(sh, informs);
        CTR_INC(sh, sessions);
        break;
    }
    case AFTER_TC_RESPONSE: {
        struct hm_cwmp_hdr h = hdr_of(s, id);
        hm_cwmp_write_empty(out, &h, HM_CWMP_TRANSFER_COMPLETE_RESPONSE);
        break;
    }
    case AFTER_NEXT:
    default:
        status = next_request(s, out);
        break;
    }
    hm_httpd_finish(s->ref, status, status == 200 ? XML_CTYPE : NULL, false);
}

/* ---- Inform ---- */

static bool ends_with(struct hm_slice s, const char *suffix)
{
    size_t n = strlen(suffix);
    return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

static enum hm_param_type ptype(uint8_t t)
{
    switch (t) {
    case HM_CWMP_T_INT:
        return HM_PT_INT;
    case HM_CWMP_T_UINT:
        return HM_PT_UINT;
    case HM_CWMP_T_BOOL:
        return HM_PT_BOOL;
    case HM_CWMP_T_DATETIME:
        return HM_PT_DATETIME;
    case HM_CWMP_T_BASE64:
        return HM_PT_BASE64;
    case HM_CWMP_T_LONG:
        return HM_PT_LONG;
    case HM_CWMP_T_ULONG:
        return HM_PT_ULONG;
    case HM_CWMP_T_HEXBINARY:
        return HM_PT_HEXBINARY;
    case HM_CWMP_T_OTHER:
        return HM_PT_OTHER;
    default:
        return HM_PT_STRING;
    }
}

/*
 * True if the store already holds <pr>'s type and value under <key> (in <rd>'s snapshot):
 * the Inform repeats what is known, so the parameter is not rewritten. A periodic Inform
 * mostly repeats itself, and a rewrite copies and writes the parameter's B-tree pages;
 * time_ms stays when the value was learnt.
 */
static bool param_known(struct hm_store_reader *rd, struct hm_slice key,
                        const struct hm_param_rec *pr)
{
    struct hm_slice v;
    struct hm_param_rec old;
    return hm_store_get(rd, HM_DB_PARAMS, key, &v) == 0 && hm_rec_param_decode(v, &old) == 0 &&
           old.type == pr->type && hm_slice_eq(old.value, pr->value);
}

static bool is_ipsec_addr(struct hm_slice name)
{
    /* FAP.Tunnel.IKESA.{i}.IPAddress (TR-196 / TR-262) or Device.IPsec.IKEv2SA.{i}.
     * LocalAddress (TR-181): the tunnel's inner address (reference §2.5). */
    static const char *const pats[][2] = {{"Tunnel.IKESA.", ".IPAddress"},
                                           {"IPsec.IKEv2SA.", ".LocalAddress"}};
    for (size_t i = 0; i < HM_ARRAY_SIZE(pats); i++) {
        if (!ends_with(name, pats[i][1]))
            continue;
        size_t n = strlen(pats[i][0]);
        for (size_t k = 0; k + n <= name.len; k++)
            if (memcmp(name.ptr + k, pats[i][0], n) == 0)
                return true;
    }
    return false;
}


static bool valid_oui(struct hm_slice o)
{
    if (o.len != 6)
        return false;
    for (size_t i = 0; i < 6; i++) {
        char c = o.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/*
 * CWMP 1.4 version negotiation (TR-069 Amd 5 §3.7.1.5): the CPE lists SupportedCWMPVersions
 * ("1.0,1.1,...") in its Inform header and the ACS answers with the highest one it also
 * supports in UseCWMPVersion. We support 1.0-1.4. Nothing is sent when the CPE listed none.
 */
static void pick_version(struct hm_slice list, char out[4])
{
    int best = -1;
    out[0] = '\0';
    for (size_t i = 0; i + 3 <= list.len; i++) {
        const char *p = list.ptr + i;
        if (p[0] == '1' && p[1] == '.' && p[2] >= '0' && p[2] <= '4' &&
            (i == 0 || list.ptr[i - 1] == ',' || list.ptr[i - 1] == ' ') &&
            (i + 3 == list.len || p[3] == ',' || p[3] == ' ') && p[2] - '0' > best)
            best = p[2] - '0';
    }
    if (best >= 0) {
        out[0] = '1';
        out[1] = '.';
        out[2] = (char)('0' + best);
        out[3] = '\0';
    }
}

static int batch_put_rec_dev(struct hm_store_batch *b, struct hm_slice key,
                             const struct hm_dev_rec *d)
{
    size_t n = hm_rec_dev_size(d);
    char *p = hm_store_batch_put_reserve(b, HM_DB_DEVICES, key, n);
    if (!p)
        return -E2BIG;
    return hm_rec_dev_encode(d, p, n) < 0 ? -E2BIG : 0;
}

static int on_inform(struct hm_http_exchange *x, struct acs_sess *s,
                     const struct hm_cwmp_msg *m)
{
    struct acs_shard *sh = s->sh;
    const struct hm_cwmp_inform *in = &m->u.inform;
    if (!valid_oui(in->dev.oui) || !in->dev.serial.len) {
        CTR_INC(sh, bad_messages);
        HM_LOG_RL(HM_LOG_WARN, "Inform refused: invalid DeviceId", "oui=\"%.*s\" serial=\"%.*s\"",
                  (int)HM_MIN(in->dev.oui.len, 16), in->dev.oui.ptr,
                  (int)HM_MIN(in->dev.serial.len, 64), in->dev.serial.ptr);
        return fault(sh, s, x->out, m->ver, m->id, 8003,
                     "DeviceId needs a 6-hex-digit OUI and a SerialNumber");
    }
    /* TS 33.320: the client certificate must name the device of this Inform (core/tls.h). */
    if (x->tls_identity && !hm_tls_identity_check(x->tls_identity, in->dev.oui,
                                                  in->dev.product_class, in->dev.serial)) {
        char peer[64];
        hm_sockaddr_str(x->peer, peer, sizeof(peer));
        HM_LOG_RL(HM_LOG_WARN, "Inform refused: client certificate names another device",
                  "identity=\"%s\" oui=\"%.*s\" product_class=\"%.*s\" serial=\"%.*s\" peer=%s",
                  x->tls_identity, (int)HM_MIN(in->dev.oui.len, 16), in->dev.oui.ptr,
                  (int)HM_MIN(in->dev.product_class.len, 64), in->dev.product_class.ptr,
                  (int)HM_MIN(in->dev.serial.len, 64), in->dev.serial.ptr, peer);
        x->close = true;
        return plain(x, 403, "client certificate does not match the DeviceId");
    }
    int kl = hm_key_dev(s->dev, sizeof(s->dev), in->dev.oui, in->dev.product_class,
                        in->dev.serial);
    if (kl < 0) {
        CTR_INC(sh, bad_messages);
        return fault(sh, s, x->out, m->ver, m->id, 8003, "DeviceId too long");
    }
    s->dev_len = (uint16_t)kl;
    struct hm_slice dev = hm_slice(s->dev, s->dev_len);
    s->t_inform_us = mono_us();
    s->ver = m->ver;
    pick_version(m->supported_versions, s->use_version);
    s->id_len = (uint8_t)HM_MIN(m->id.len, sizeof(s->id));
    memcpy(s->id, m->id.ptr, s->id_len);

    uint64_t key = hm_sessreg_hash(s->dev, s->dev_len);
    int r = hm_sessreg_acquire(sh->acs->reg, key);
    if (r < 0) {
        CTR_INC(sh, busy_refused);
        HM_LOG_RL(HM_LOG_WARN, "Inform refused with 8005: device already in a session",
                  "device=%.*s", (int)s->dev_len, s->dev);
        s->dev_len = 0;
        return fault(sh, s, x->out, m->ver, m->id, 8005, "session already active, retry");
    }
    s->reg_key = key;

    /* Build the new device record on top of the stored one (slices into the read txn). */
    uint64_t now = hm_now_ms();
    struct hm_buf *sc = &sh->scratch;
    hm_buf_reset(sc);
    bool bootstrap = false;
    for (uint32_t i = 0; i < in->events.n; i++) {
        if (i)
            hm_buf_append_lit(sc, "\n");
        hm_buf_append_slice(sc, in->events.v[i].code);
        if (hm_slice_eq_lit(in->events.v[i].code, "0 BOOTSTRAP"))
            bootstrap = true;
    }
    size_t events_len = sc->len;
    char src[64];
    hm_sockaddr_str(x->peer, src, sizeof(src));

    struct hm_store_batch *b = batch_take(s);
    r = hm_store_read_begin(sh->rd);
    if (r < 0)
        goto shed;
    struct hm_dev_rec d = {0};
    struct hm_slice old;
    bool known = hm_store_get(sh->rd, HM_DB_DEVICES, dev, &old) == 0 &&
                 hm_rec_dev_decode(old, &d) == 0;
    if (!known) {
        d = (struct hm_dev_rec){0};
        d.role = HM_ROLE_SERVING;
    }
    d.oui = in->dev.oui;
    d.product_class = in->dev.product_class;
    d.serial = in->dev.serial;
    d.last_inform_ms = now;
    d.events = hm_slice(sc->base, events_len);
    d.source_addr = hm_slice_cstr(src);
    if (bootstrap)
        d.param_key = hm_slice("", 0);
    struct hm_ipsec_hist hist[HM_STORE_IPSEC_HIST];
    char pbuf[HM_STORE_MAX_KEY];
    for (uint32_t i = 0; i < in->params.n; i++) {
        const struct hm_cwmp_param *p = &in->params.v[i];
        if (ends_with(p->name, ".ManagementServer.ConnectionRequestURL"))
            d.cr_url = p->value;
        else if (ends_with(p->name, ".DeviceInfo.SoftwareVersion"))
            d.sw_version = p->value;
        else if (ends_with(p->name, ".ManagementServer.ParameterKey"))
            d.param_key = p->value;
        else if (is_ipsec_addr(p->name) && p->value.len &&
                 !(d.n_ipsec && hm_slice_eq(d.ipsec[0].addr, p->value))) {
            hist[0] = (struct hm_ipsec_hist){p->value, now};
            unsigned k = 1;
            for (unsigned j = 0; j < d.n_ipsec && k < HM_STORE_IPSEC_HIST; j++)
                hist[k++] = d.ipsec[j];
            memcpy(d.ipsec, hist, sizeof(hist[0]) * k);
            d.n_ipsec = (uint8_t)k;
            if (k > 1) /* a change, not the first address of the device */
                hm_info("IPsec inner address changed", "device=%.*s address=%.*s previous=%.*s",
                        (int)s->dev_len, s->dev, (int)p->value.len, p->value.ptr,
                        (int)hist[1].addr.len, hist[1].addr.ptr);
        }
        int pk = hm_key_param(pbuf, sizeof(pbuf), dev, p->name);
        struct hm_param_rec pr = {.type = (uint8_t)ptype(p->type), .time_ms = now,
                                  .value = p->value};
        if (known && pk > 0 && param_known(sh->rd, hm_slice(pbuf, (size_t)pk), &pr)) {
            CTR_INC(sh, params_unchanged);
            continue;
        }
        size_t pn = hm_rec_param_size(&pr);
        char *pv = pk > 0 ? hm_store_batch_put_reserve(b, HM_DB_PARAMS,
                                                       hm_slice(pbuf, (size_t)pk), pn)
                          : NULL;
        if (!pv || hm_rec_param_encode(&pr, pv, pn) < 0) {
            hm_store_read_end(sh->rd);
            CTR_INC(sh, bad_messages);
            batch_give(s);
            sess_release_reg(s);
            return fault(sh, s, x->out, m->ver, m->id, 8003, "parameter name or value too long");
        }
    }
    r = hm_alarms_decode(b, sh->rd, sh->acs->store, dev, in->params.v, in->params.n, NULL);
    s->alarms_pending = r > 0;
    /* TS 32.593 discovery / registration (core/hems_proc.c): may queue tasks in this batch */
    char nodebuf[128];
    if (r >= 0)
        r = hm_hems_on_inform(sh->acs->hems, sh->acs->store, b, dev, in, x->req->host,
                              x->req->path, x->tls_identity, &d, nodebuf, sizeof(nodebuf));
    /* fleet profiles (core/fleet.c): may queue SetParameterValues in this batch */
    if (r >= 0)
        r = hm_fleet_on_inform(sh->acs->fleet, hm_shard_id(sh->shard), sh->rd, b, dev, in, &d);
    if (r >= 0)
        r = batch_put_rec_dev(b, dev, &d);
    hm_store_read_end(sh->rd);
    if (r == HM_HEMS_REFUSED) { /* logged and counted by core/hems_proc.c */
        batch_give(s);
        sess_release_reg(s);
        return fault(sh, s, x->out, m->ver, m->id, 8001,
                     "request denied: location outside the allowed area");
    }
    if (r < 0) {
        CTR_INC(sh, bad_messages);
        batch_give(s);
        sess_release_reg(s);
        return fault(sh, s, x->out, m->ver, m->id, 8003, "device record too large");
    }
    r = submit(x, s, AFTER_INFORM);
    if (r < 0)
        goto shed;
    return HM_HTTP_DEFER;
shed:
    CTR_INC(sh, shed);
    hm_admission_count(sh->acs->adm, hm_shard_id(sh->shard), HM_ADM_STORE_FULL);
    batch_give(s);
    sess_release_reg(s);
    HM_LOG_RL(HM_LOG_WARN, "Inform shed with 8005", "device=%.*s cause=\"%s\"",
              (int)s->dev_len, s->dev, hm_strerror(r));
    add_retry_after(sh, x->headers);
    return fault(sh, s, x->out, m->ver, m->id, 8005, "overloaded, retry later");
}

/* ---- task results ---- */

/* Adds the updated task <seq> to the batch with the result of <m>. */
static int record_result(struct acs_sess *s, uint64_t seq, const struct hm_cwmp_msg *m,
                         bool *ok)
{
    struct acs_shard *sh = s->sh;
    struct hm_slice dev = hm_slice(s->dev, s->dev_len);
    char tk[HM_STORE_MAX_KEY];
    int kl = hm_key_task(tk, sizeof(tk), dev, seq);
    if (kl < 0)
        return kl;
    int r = hm_store_read_begin(sh->rd);
    if (r < 0)
        return r;
    struct hm_slice v;
    struct hm_task_rec t;
    r = hm_store_get(sh->rd, HM_DB_TASKS, hm_slice(tk, (size_t)kl), &v);
    if (r == 0)
        r = hm_rec_task_decode(v, &t);
    if (r < 0) {
        hm_store_read_end(sh->rd);
        return r;
    }
    struct hm_buf *sc = &sh->scratch;
    hm_buf_reset(sc);
    hm_task_result_json(sc, m);
    uint32_t code = 0;
    if (m->method == HM_CWMP_FAULT)
        code = m->u.fault.code ? m->u.fault.code : 9002;
    else if (m->method == HM_CWMP_TRANSFER_COMPLETE)
        code = m->u.transfer_complete.fault.code;
    t.fault_code = code;
    t.updated_ms = hm_now_ms();
    t.result = hm_buf_slice(sc);
    bool pending_transfer = (m->method == HM_CWMP_DOWNLOAD_RESPONSE ||
                             m->method == HM_CWMP_UPLOAD_RESPONSE) &&
                            m->u.status.status == 1;
    t.state = code ? HM_TASK_FAILED : pending_transfer ? HM_TASK_SENT : HM_TASK_DONE;
    *ok = code == 0;
    size_t n = hm_rec_task_size(&t);
    char *p = hm_store_batch_put_reserve(&s->pb->b, HM_DB_TASKS, hm_slice(tk, (size_t)kl), n);
    r = p && hm_rec_task_encode(&t, p, n) >= 0 ? 0 : -E2BIG;
    /* files: a Download of an uploaded file is recorded as applied only on success (a
     * TransferComplete without fault, or DownloadResponse Status 0) */
    if (r == 0 && t.kind == HM_TASK_DOWNLOAD && code == 0 &&
        (m->method == HM_CWMP_TRANSFER_COMPLETE ||
         (m->method == HM_CWMP_DOWNLOAD_RESPONSE && m->u.status.status == 0)))
        r = hm_files_record_applied(&s->pb->b, dev, t.args, seq, t.updated_ms);
    /* Values read back by GetParameterValues become the device's known parameters. */
    if (r == 0 && m->method == HM_CWMP_GET_PARAMETER_VALUES_RESPONSE) {
        char pbuf[HM_STORE_MAX_KEY];
        uint64_t now = hm_now_ms();
        for (uint32_t i = 0; i < m->u.params.n && r == 0; i++) {
            const struct hm_cwmp_param *pp = &m->u.params.v[i];
            int pk = hm_key_param(pbuf, sizeof(pbuf), dev, pp->name);
            struct hm_param_rec pr = {.type = (uint8_t)ptype(pp->type), .time_ms = now,
                                      .value = pp->value};
            size_t pn = hm_rec_param_size(&pr);
            char *pv = pk > 0 ? hm_store_batch_put_reserve(&s->pb->b, HM_DB_PARAMS,
                                                           hm_slice(pbuf, (size_t)pk), pn)
                              : NULL;
            if (!pv || hm_rec_param_encode(&pr, pv, pn) < 0)
                r = -E2BIG;
        }
    }
    /* TS 32.593 PM upload provisioning (core/hems_pm.c): AddObject answered, PM Enable */
    if (r == 0)
        r = hm_hems_on_result(sh->acs->hems, sh->rd, &s->pb->b, dev, seq, &t, m);
    /* fleet profiles (core/fleet.c): applied values, rejects and splits, drift */
    if (r == 0)
        r = hm_fleet_on_result(sh->acs->fleet, hm_shard_id(sh->shard), sh->rd, &s->pb->b, dev,
                               seq, t.kind, t.args, m);
    hm_store_read_end(sh->rd);
    return r;
}

static int on_response(struct hm_http_exchange *x, struct acs_sess *s,
                       const struct hm_cwmp_msg *m)
{
    struct acs_shard *sh = s->sh;
    if (s->state != S_AWAIT_RESP) {
        HM_LOG_RL(HM_LOG_WARN, "unexpected CWMP response ignored", "device=%.*s method=%s",
                  (int)s->dev_len, s->dev, hm_cwmp_method_name((enum hm_cwmp_method)m->method));
        return next_request(s, x->out);
    }
    char want_id[24];
    int wl = snprintf(want_id, sizeof(want_id), "%llu", (unsigned long long)s->task_seq);
    if (m->has_id && !hm_slice_eq(m->id, hm_slice(want_id, (size_t)wl))) {
        CTR_INC(sh, bad_messages);
        HM_LOG_RL(HM_LOG_WARN, "CPE response with a foreign cwmp:ID; task left queued",
                  "device=%.*s task=%llu id=\"%.*s\"", (int)s->dev_len, s->dev,
                  (unsigned long long)s->task_seq, (int)HM_MIN(m->id.len, 64), m->id.ptr);
        s->state = S_ENDED;
        sess_release_reg(s);
        return 204;
    }
    enum hm_cwmp_method want = hm_task_response_method((enum hm_task_kind)s->task_kind);
    if (m->method != want && m->method != HM_CWMP_FAULT) {
        HM_LOG_RL(HM_LOG_WARN, "CPE answered with the wrong method; task left queued",
                  "device=%.*s task=%llu got=%s want=%s", (int)s->dev_len, s->dev,
                  (unsigned long long)s->task_seq,
                  hm_cwmp_method_name((enum hm_cwmp_method)m->method), hm_cwmp_method_name(want));
        s->state = S_ENDED;
        sess_release_reg(s);
        return 204;
    }
    bool ok = false;
    batch_take(s);
    int r = record_result(s, s->task_seq, m, &ok);
    if (r == 0)
        r = submit(x, s, AFTER_NEXT);
    if (r < 0) {
        batch_give(s);
        CTR_INC(sh, store_errors);
        HM_LOG_RL(HM_LOG_ERR, "cannot record task result; ending session", "device=%.*s err=\"%s\"",
                  (int)s->dev_len, s->dev, hm_strerror(r));
        s->state = S_ENDED;
        sess_release_reg(s);
        return 204;
    }
    if (ok)
        CTR_INC(sh, tasks_done);
    else
        CTR_INC(sh, tasks_failed);
    return HM_HTTP_DEFER;
}

static int on_transfer_complete(struct hm_http_exchange *x, struct acs_sess *s,
                                const struct hm_cwmp_msg *m)
{
    struct hm_cwmp_hdr h = hdr_of(s, m->id);
    uint64_t seq;
    if (hm_task_parse_command_key(m->u.transfer_complete.command_key, &seq) == 0) {
        bool ok = false;
        batch_take(s);
        s->id_len = (uint8_t)HM_MIN(m->id.len, sizeof(s->id));
        memcpy(s->id, m->id.ptr, s->id_len);
        if (record_result(s, seq, m, &ok) == 0 && submit(x, s, AFTER_TC_RESPONSE) == 0) {
            if (ok)
                CTR_INC(s->sh, tasks_done);
            else
                CTR_INC(s->sh, tasks_failed);
            return HM_HTTP_DEFER;
        }
        batch_give(s);
        HM_LOG_RL(HM_LOG_WARN, "TransferComplete for an unknown task", "device=%.*s key=%.*s",
                  (int)s->dev_len, s->dev, (int)m->u.transfer_complete.command_key.len,
                  m->u.transfer_complete.command_key.ptr);
    }
    hm_cwmp_write_empty(x->out, &h, HM_CWMP_TRANSFER_COMPLETE_RESPONSE);
    return 200;
}

/* ---- the handler ---- */

static int authenticate(struct hm_http_exchange *x, struct acs_sess *s)
{
    struct acs_shard *sh = s->sh;
    struct hm_acs *a = sh->acs;
    struct hm_slice az = x->req->authorization;
    uint64_t now_s = hm_now_ms() / 1000;
    bool stale = false;
    if (az.len) {
        struct hm_auth_digest d;
        int r = hm_auth_scheme_of(az) == HM_AUTH_DIGEST ? hm_auth_digest_parse(az, &d)
                                                         : HM_EBADAUTH;
        char user[257];
        if (r == 0 && hm_auth_unquote(d.f[HM_AUTH_F_USERNAME], user, sizeof(user)) >= 0 &&
            strcmp(user, a->username) == 0) {
            r = hm_auth_digest_verify(&d, a->ha1, x->req->method_str, x->req->target,
                                      &a->nonce_key, s->conn_id, now_s, &s->nst);
            if (r == 0) {
                s->authed = true;
                return 0;
            }
        } else if (r == 0) {
            r = HM_EAUTHFAIL;
        }
        stale = r == HM_ESTALE_NONCE;
        if (!stale) {
            CTR_INC(sh, auth_failures);
            char peer[64];
            hm_sockaddr_str(x->peer, peer, sizeof(peer));
            HM_LOG_RL(HM_LOG_WARN, "CPE authentication failed", "peer=%s cause=\"%s\"", peer,
                      hm_strerror(r));
        }
    }
    char nonce[HM_AUTH_NONCE_LEN + 1], ch[512];
    hm_auth_nonce_make(&a->nonce_key, s->conn_id, now_s, nonce);
    ssize_t n = hm_auth_challenge(ch, sizeof(ch), hm_slice_cstr(a->realm),
                                  hm_slice(nonce, HM_AUTH_NONCE_LEN), hm_slice("", 0), stale);
    if (n > 0) {
        hm_buf_append_lit(x->headers, "WWW-Authenticate: ");
        hm_buf_append(x->headers, ch, (size_t)n);
        hm_buf_append_lit(x->headers, "\r\n");
    }
    CTR_INC(sh, auth_challenges);
    return plain(x, 401, "authentication required");
}

static bool cookie_matches(struct hm_slice hdr, const char *cookie)
{
    /* Look for hems_session=<cookie> among the cookies. */
    static const char name[] = "hems_session=";
    size_t cl = strlen(cookie);
    for (size_t i = 0; i + sizeof(name) - 1 + cl <= hdr.len; i++) {
        if (memcmp(hdr.ptr + i, name, sizeof(name) - 1) == 0)
            return memcmp(hdr.ptr + i + sizeof(name) - 1, cookie, cl) == 0;
    }
    return true; /* no session cookie returned: fall back to the connection */
}

static int cwmp_handler(struct hm_http_exchange *x, void *ctx)
{
    (void)ctx;
    struct acs_shard *sh = hm_shard_app(x->shard);
    struct hm_acs *a = sh->acs;
    if (x->req->method != HM_HTTP_POST) {
        hm_buf_append_lit(x->headers, "Allow: POST\r\n");
        return plain(x, 405, "CWMP needs POST");
    }
    struct acs_sess *s = *x->conn_data;
    if (!s || (!s->admitted && (s->state == S_AWAIT_INFORM || s->state == S_ENDED))) {
        /* A new session: admission control decides before any parsing (core/admission.h).
         * A shed costs no session object; the connection closes after the 503. */
        unsigned sid = hm_shard_id(sh->shard);
        enum hm_adm_reason why =
            hm_admission_admit(a->adm, sid, mono_us(), hm_store_queue_depth(a->store),
                               x->gate_paid);
        if (why != HM_ADM_ADMIT) {
            CTR_INC(sh, shed);
            add_retry_after(sh, x->headers);
            x->close = true;
            return plain(x, 503, "overloaded, retry later");
        }
        if (!s) {
            s = sess_new(sh);
            *x->conn_data = s;
        }
        s->admitted = true;
    }
    /* A verified client certificate authenticates the CPE (TR-069 §3.4.4). */
    if (a->digest && !s->authed && !x->tls_identity) {
        int st = authenticate(x, s);
        if (st)
            return st;
    }
    if (s->state != S_AWAIT_INFORM && s->state != S_ENDED &&
        !cookie_matches(x->req->cookie, s->cookie)) {
        CTR_INC(sh, bad_messages);
        x->close = true;
        return plain(x, 400, "session cookie does not match this connection's session");
    }

    hm_soap_arena_reset(&sh->arena);
    struct hm_cwmp_msg m;
    int r = hm_cwmp_parse(x->body ? x->body : "", x->body_len, &sh->arena, &a->opts, &m);
    if (r == HM_ENOTCWMP)
        return fault(sh, s, x->out, m.ver, m.id, 8000, "method not supported");
    if (r == HM_EBADCWMP) {
        CTR_INC(sh, bad_messages);
        return fault(sh, s, x->out, m.ver, m.id, 8003, "invalid arguments");
    }
    if (r < 0) {
        CTR_INC(sh, bad_messages);
        char peer[64];
        hm_sockaddr_str(x->peer, peer, sizeof(peer));
        HM_LOG_RL(HM_LOG_WARN, "CWMP body refused", "peer=%s cause=\"%s\"", peer,
                  hm_strerror(r));
        char msg[128];
        snprintf(msg, sizeof(msg), "invalid CWMP envelope: %s", hm_strerror(r));
        return plain(x, 400, msg);
    }

    if (s->state == S_AWAIT_INFORM || s->state == S_ENDED) {
        if (m.method != HM_CWMP_INFORM) {
            CTR_INC(sh, bad_messages);
            if (m.method == HM_CWMP_EMPTY)
                return plain(x, 400, "a CWMP session starts with an Inform");
            return fault(sh, s, x->out, m.ver, m.id, 8003, "a session starts with an Inform");
        }
        if (s->state == S_ENDED) { /* a new session on the same connection */
            struct acs_sess *n = sess_new(sh);
            n->authed = s->authed;
            n->admitted = s->admitted; /* the admission decided for this request moves */
            s->admitted = false;
            sess_free(s);
            *x->conn_data = s = n;
        }
        return on_inform(x, s, &m);
    }

    switch (m.method) {
    case HM_CWMP_EMPTY:
        s->cpe_done = true;
        if (s->state == S_AWAIT_RESP) {
            HM_LOG_RL(HM_LOG_WARN, "CPE sent an empty POST instead of a response; ending",
                      "device=%.*s task=%llu", (int)s->dev_len, s->dev,
                      (unsigned long long)s->task_seq);
            s->state = S_ENDED;
            sess_release_reg(s);
            return 204;
        }
        r = next_request(s, x->out);
        x->content_type = r == 200 ? XML_CTYPE : NULL;
        return r;
    case HM_CWMP_INFORM:
        CTR_INC(sh, bad_messages);
        return fault(sh, s, x->out, m.ver, m.id, 8003, "Inform inside a session");
    case HM_CWMP_TRANSFER_COMPLETE:
        x->content_type = XML_CTYPE;
        return on_transfer_complete(x, s, &m);
    case HM_CWMP_GET_RPC_METHODS: {
        static const struct hm_slice methods[] = {
            HM_SLICE_LIT("Inform"), HM_SLICE_LIT("GetRPCMethods"),
            HM_SLICE_LIT("TransferComplete"), HM_SLICE_LIT("AutonomousTransferComplete"),
            HM_SLICE_LIT("RequestDownload"), HM_SLICE_LIT("Kicked"),
            HM_SLICE_LIT("DUStateChangeComplete"),
            HM_SLICE_LIT("AutonomousDUStateChangeComplete")};
        struct hm_cwmp_hdr h = hdr_of(s, m.id);
        hm_cwmp_write_get_rpc_methods_response(x->out, &h, methods, HM_ARRAY_SIZE(methods));
        x->content_type = XML_CTYPE;
        return 200;
    }
    case HM_CWMP_AUTONOMOUS_TRANSFER_COMPLETE:
    case HM_CWMP_REQUEST_DOWNLOAD:
    case HM_CWMP_DU_STATE_CHANGE_COMPLETE:
    case HM_CWMP_AUTONOMOUS_DU_STATE_CHANGE_COMPLETE: {
        static const uint8_t resp[][2] = {
            {HM_CWMP_AUTONOMOUS_TRANSFER_COMPLETE, HM_CWMP_AUTONOMOUS_TRANSFER_COMPLETE_RESPONSE},
            {HM_CWMP_REQUEST_DOWNLOAD, HM_CWMP_REQUEST_DOWNLOAD_RESPONSE},
            {HM_CWMP_DU_STATE_CHANGE_COMPLETE, HM_CWMP_DU_STATE_CHANGE_COMPLETE_RESPONSE},
            {HM_CWMP_AUTONOMOUS_DU_STATE_CHANGE_COMPLETE,
             HM_CWMP_AUTONOMOUS_DU_STATE_CHANGE_COMPLETE_RESPONSE}};
        struct hm_cwmp_hdr h = hdr_of(s, m.id);
        for (size_t i = 0; i < HM_ARRAY_SIZE(resp); i++)
            if (resp[i][0] == m.method)
                hm_cwmp_write_empty(x->out, &h, (enum hm_cwmp_method)resp[i][1]);
        x->content_type = XML_CTYPE;
        return 200;
    }
    case HM_CWMP_KICKED: {
        struct hm_cwmp_hdr h = hdr_of(s, m.id);
        hm_cwmp_write_kicked_response(x->out, &h, m.u.kicked.next);
        x->content_type = XML_CTYPE;
        return 200;
    }
    default:
        break;
    }
    if (m.method == HM_CWMP_FAULT || (m.method >= HM_CWMP_GET_RPC_METHODS_RESPONSE &&
                                      m.method <= HM_CWMP_CHANGE_DU_STATE_RESPONSE)) {
        x->content_type = XML_CTYPE;
        return on_response(x, s, &m);
    }
    /* An ACS-side message sent to us. */
    return fault(sh, s, x->out, m.ver, m.id, 8000, "method not supported by the ACS");
}

/* The CWMP writers set no content type: every 200 from this handler is XML. */
static int cwmp_route(struct hm_http_exchange *x, void *ctx)
{
    int st = cwmp_handler(x, ctx);
    if (st == 200 && !x->content_type)
        x->content_type = XML_CTYPE;
    if (st == 204)
        x->content_type = NULL;
    return st;
}

unsigned hm_acs_routes(struct hm_route *r, const struct hm_config *cfg)
{
    r[0] = (struct hm_route){HM_LISTENER_CWMP, cfg->cwmp_path, true, cwmp_route, NULL};
    return 1;
}

/* ---- lifecycle ---- */

struct hm_acs *hm_acs_create(const struct hm_config *cfg, struct hm_store *store,
                             struct hm_shards *ss, char *err, size_t errlen)
{
    struct hm_acs *a = hm_xcalloc(1, sizeof(*a));
    a->store = store;
    a->ss = ss;
    a->n = hm_shards_count(ss);
    a->sh = hm_xcalloc(a->n, sizeof(*a->sh));
    uint64_t cap = cfg->cwmp_max_sessions ? cfg->cwmp_max_sessions
                                          : (uint64_t)hm_shards_conns_per_shard(ss) * a->n;
    a->reg = hm_sessreg_create(cap);
    a->opts.max_list = (uint32_t)cfg->cwmp_max_params;
    a->digest = strcmp(cfg->cwmp_auth, "digest") == 0;
    snprintf(a->realm, sizeof(a->realm), "%s", cfg->cwmp_realm);
    snprintf(a->username, sizeof(a->username), "%s", cfg->cwmp_username);
    if (a->digest)
        hm_auth_ha1(hm_slice_cstr(cfg->cwmp_username), hm_slice_cstr(cfg->cwmp_realm),
                    hm_slice_cstr(cfg->cwmp_password), a->ha1);
    if (hm_auth_nonce_key_init(&a->nonce_key, NULL, (uint32_t)cfg->nonce_lifetime_s) < 0) {
        snprintf(err, errlen, "no randomness for Digest nonces");
        goto fail;
    }
    struct hm_admission_cfg acfg = {
        .enabled = cfg->adm_enabled,
        .max_inflight = (uint32_t)HM_MIN(cfg->adm_max_inflight, UINT32_MAX),
        .min_rate = (uint32_t)HM_MIN(cfg->adm_min_rate, UINT32_MAX),
        .max_rate = (uint32_t)HM_MIN(cfg->adm_max_rate, UINT32_MAX),
        .target_commit_ms = (uint32_t)HM_MIN(cfg->adm_target_commit_ms, UINT32_MAX),
        .target_lag_ms = (uint32_t)HM_MIN(cfg->adm_target_lag_ms, UINT32_MAX),
        .target_session_ms = (uint32_t)HM_MIN(cfg->adm_target_session_ms, UINT32_MAX),
        .max_store_queue = (uint32_t)HM_MIN(cfg->adm_max_store_queue, UINT32_MAX),
        .retry_after_s = (uint32_t)HM_MIN(cfg->adm_retry_after_s, 86400),
        .syn_shed = cfg->adm_syn_shed,
    };
    a->adm = hm_admission_create(&acfg, a->n);
    for (unsigned i = 0; i < a->n; i++) {
        struct acs_shard *sh = aligned_alloc(HM_CACHELINE, (sizeof(*sh) + HM_CACHELINE - 1) /
                                                               HM_CACHELINE * HM_CACHELINE);
        if (!sh)
            abort();
        memset(sh, 0, sizeof(*sh));
        a->sh[i] = sh;
        sh->acs = a;
        sh->shard = hm_shards_get(ss, i);
        int r = hm_store_reader_open(store, &sh->rd);
        if (r < 0) {
            snprintf(err, errlen, "store reader: %s", hm_strerror(r));
            goto fail;
        }
        sh->arena_mem = hm_xmalloc(ARENA_BYTES);
        hm_soap_arena_init(&sh->arena, sh->arena_mem, ARENA_BYTES);
        if (getrandom(&sh->rng, sizeof(sh->rng), 0) != sizeof(sh->rng) || !sh->rng)
            sh->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)i;
        hm_shard_set_app(sh->shard, sh);
    }
    hm_httpd_set_conn_close_hook(on_conn_close);
    hm_shard_set_accept_gate(cfg->adm_enabled ? accept_gate : NULL);
    hm_shard_set_gate_release(cfg->adm_enabled ? gate_release : NULL);
    hm_shard_set_syn_shed(cfg->adm_enabled && cfg->adm_syn_shed ? syn_shed : NULL);
    hm_shard_set_accept_pace(cfg->adm_enabled && cfg->adm_accept_pacing ? accept_pace : NULL);
    return a;
fail:
    hm_acs_destroy(a);
    return NULL;
}

void hm_acs_close_readers(struct hm_acs *a)
{
    for (unsigned i = 0; a && i < a->n; i++) {
        if (a->sh[i] && a->sh[i]->rd) {
            hm_store_reader_close(a->sh[i]->rd);
            a->sh[i]->rd = NULL;
        }
    }
}

void hm_acs_destroy(struct hm_acs *a)
{
    if (!a)
        return;
    hm_acs_close_readers(a);
    for (unsigned i = 0; i < a->n; i++) {
        struct acs_shard *sh = a->sh[i];
        if (!sh)
            continue;
        while (sh->free) {
            struct acs_sess *s = sh->free;
            sh->free = s->next_free;
            free(s);
        }
        while (sh->pb_free) {
            struct pbatch *pb = sh->pb_free;
            sh->pb_free = pb->next;
            hm_store_batch_fini(&pb->b);
            free(pb);
        }
        hm_buf_free(&sh->scratch);
        free(sh->arena_mem);
        free(sh);
    }
    free(a->sh);
    hm_sessreg_destroy(a->reg);
    hm_admission_destroy(a->adm);
    free(a);
}

struct hm_store_reader *hm_acs_shard_reader(struct hm_shard *s)
{
    struct acs_shard *sh = hm_shard_app(s);
    return sh->rd;
}

void hm_acs_set_hems(struct hm_acs *a, struct hm_hems *h)
{
    a->hems = h;
}

void hm_acs_set_fleet(struct hm_acs *a, struct hm_fleet *f)
{
    a->fleet = f;
}

struct hm_store *hm_acs_store(struct hm_acs *a)
{
    return a->store;
}

void hm_acs_render_metrics(struct hm_buf *out, void *arg)
{
    struct hm_acs *a = arg;
#define R(f, name, help)                                                                     \
    {                                                                                        \
        uint64_t sum = 0;                                                                    \
        for (unsigned i = 0; i < a->n; i++)                                                  \
            sum += atomic_load_explicit(&a->sh[i]->ctr.f, memory_order_relaxed);             \
        hm_buf_append_lit(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " "); \
        hm_buf_append_u64(out, sum);                                                         \
        hm_buf_append_lit(out, "\n");                                                        \
    }
    ACS_COUNTERS(R)
#undef R
    static const struct {
        const char *name, *help;
        size_t off;
    } hists[] = {
        {"hems_cwmp_session_seconds", "CWMP session duration, Inform received to 204 sent",
         offsetof(struct acs_counters, session_us)},
        {"hems_cwmp_commit_wait_seconds",
         "time a session waits for its durable commit (submit to completion on the shard)",
         offsetof(struct acs_counters, commit_us)},
    };
    for (size_t k = 0; k < HM_ARRAY_SIZE(hists); k++) {
        hm_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", hists[k].name, hists[k].help,
                      hists[k].name);
        uint64_t cum = 0;
        for (int b = 0; b < HIST_BUCKETS; b++) {
            for (unsigned i = 0; i < a->n; i++) {
                _Atomic uint64_t *h = (_Atomic uint64_t *)((char *)&a->sh[i]->ctr + hists[k].off);
                cum += atomic_load_explicit(&h[b], memory_order_relaxed);
            }
            hm_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", hists[k].name,
                          (double)(1ull << (b + 1)) / 1e6, (unsigned long long)cum);
        }
        hm_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_count %llu\n", hists[k].name,
                      (unsigned long long)cum, hists[k].name, (unsigned long long)cum);
    }
    hm_buf_append_lit(out, "# HELP hems_cwmp_sessions_active devices in a CWMP session now\n"
                           "# TYPE hems_cwmp_sessions_active gauge\nhems_cwmp_sessions_active ");
    hm_buf_append_u64(out, hm_sessreg_count(a->reg));
    hm_buf_append_lit(out, "\n");
    hm_admission_render_metrics(out, a->adm);
    hm_store_render_health(out, a->store);
}
