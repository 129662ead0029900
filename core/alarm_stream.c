/* Live alarm stream over Server-Sent Events (core/alarm_stream.h). */
#include "core/alarm_stream.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_alarms.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/util.h"
#include "storage/record.h"

#define EVENTS_PER_POLL 512 /* per stream and poll: a backlog is replayed in slices */
#define LATE_EVERY_MS 1000
#define VISITS_PER_POLL 8192 /* history records looked at per stream and poll */

struct stream {
    struct hm_shard_msg start;
    struct stream *next;
    struct shard_st *ss;
    struct hm_conn_ref ref;
    char last[HM_KEY_ALARM_LEN]; /* cursor: the last key sent (or the starting point) */
    uint64_t last_write_ms, late_ms;
    char (*seen)[HM_KEY_ALARM_LEN]; /* sorted: keys sent or present when the stream opened */
    size_t seen_off, seen_n;
    char dev[256];
    size_t dev_len;
    bool started;
};

struct shard_st {
    struct hm_alarm_streams *h;
    struct hm_shard *shard;
    struct hm_timer timer;
    /* wake on commit (hm_alarm_streams_notify, any thread): the shard and its stream count
     * as published for other threads, and the message posted at most once at a time */
    _Atomic(struct hm_shard *) pub_shard;
    _Atomic unsigned live;
    atomic_bool wake_pending;
    struct hm_shard_msg wake;
    struct stream *head;
    unsigned n;
    struct hm_buf out; /* events of one stream and poll */
    uint64_t last_late_ms;
};

struct hm_alarm_streams {
    struct hm_alarm_stream_opts o;
    unsigned n;
    struct shard_st *sh;
    _Atomic uint64_t open, events, cut, opened, wakes;
};

static void on_timer(struct hm_timer *t);
static void on_wake(struct hm_shard *s, struct hm_shard_msg *m);

struct hm_alarm_streams *hm_alarm_streams_create(const struct hm_alarm_stream_opts *o,
                                                 unsigned nshards)
{
    struct hm_alarm_streams *h = hm_xcalloc(1, sizeof(*h));
    h->o = *o;
    if (!h->o.heartbeat_ms)
        h->o.heartbeat_ms = 15000;
    if (!h->o.max_buffer)
        h->o.max_buffer = 1 << 20;
    if (!h->o.poll_ms)
        h->o.poll_ms = 100;
    if (!h->o.max_streams)
        h->o.max_streams = 256;
    h->n = nshards;
    h->sh = hm_xcalloc(nshards ? nshards : 1, sizeof(*h->sh));
    for (unsigned i = 0; i < nshards; i++) {
        h->sh[i].h = h;
        hm_timer_init(&h->sh[i].timer, on_timer);
        h->sh[i].wake.fn = on_wake;
    }
    return h;
}

static void stream_free(struct stream *st)
{
    free(st->seen);
    free(st);
}

void hm_alarm_streams_destroy(struct hm_alarm_streams *h)
{
    if (!h)
        return;
    for (unsigned i = 0; i < h->n; i++) {
        struct stream *st = h->sh[i].head;
        while (st) {
            struct stream *next = st->next;
            stream_free(st);
            st = next;
        }
        hm_buf_free(&h->sh[i].out);
    }
    free(h->sh);
    free(h);
}

/* The seen set: the newest HM_ALARM_STREAM_SEEN keys, sorted ascending, at
 * seen[off .. off+n) of a buffer twice that size. Keys mostly arrive in order, so the usual
 * insert is an append plus, when full, evicting the smallest by moving <off>: amortised
 * O(1), with a compaction to the buffer's start once the window reaches its end. */
#define SEEN_CAP HM_ALARM_STREAM_SEEN

static const char *seen_at(const struct stream *st, size_t i)
{
    return st->seen[st->seen_off + i];
}

static size_t seen_pos(const struct stream *st, const char *key, bool *found)
{
    size_t lo = 0, hi = st->seen_n;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(seen_at(st, mid), key, HM_KEY_ALARM_LEN);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void seen_add(struct stream *st, const char *key)
{
    bool found;
    size_t pos = seen_pos(st, key, &found);
    if (found)
        return;
    if (st->seen_n == SEEN_CAP) {
        if (pos == 0)
            return;     /* older than everything remembered */
        st->seen_off++; /* evict the smallest */
        st->seen_n--;
        pos--;
    }
    if (st->seen_off + st->seen_n == 2 * SEEN_CAP) { /* window at the end: compact */
        memmove(st->seen[0], st->seen[st->seen_off], st->seen_n * HM_KEY_ALARM_LEN);
        st->seen_off = 0;
    }
    char(*base)[HM_KEY_ALARM_LEN] = st->seen + st->seen_off;
    memmove(base[pos + 1], base[pos], (st->seen_n - pos) * HM_KEY_ALARM_LEN);
    memcpy(base[pos], key, HM_KEY_ALARM_LEN);
    st->seen_n++;
}

static bool seen_has(const struct stream *st, const char *key)
{
    bool found;
    (void)seen_pos(st, key, &found);
    return found;
}

/* The oldest key the set still remembers when full (older ones may have been forgotten). */
static const char *seen_floor(const struct stream *st)
{
    return st->seen_n == SEEN_CAP ? seen_at(st, 0) : NULL;
}

/* Start of the late-window scan: max(last.time - late_window, seen-set floor). */
static void late_start(const struct stream *st, uint64_t window, char out[HM_KEY_ALARM_LEN])
{
    uint64_t t, seq;
    if (hm_key_alarm_split(hm_slice(st->last, HM_KEY_ALARM_LEN), &t, &seq) < 0)
        t = 0;
    int r = hm_key_alarm(out, HM_KEY_ALARM_LEN, t > window ? t - window : 0, 0);
    HM_BUG_ON(r != HM_KEY_ALARM_LEN);
    const char *f = seen_floor(st);
    if (f && memcmp(f, out, HM_KEY_ALARM_LEN) > 0)
        memcpy(out, f, HM_KEY_ALARM_LEN);
}

struct scan {
    struct stream *st;
    struct shard_st *ss;
    unsigned n, visited;
    size_t room; /* bytes this poll may queue (max_buffer - pending) */
    int mode;    /* 0: after the cursor; 1: late rescan up to the cursor; 2: prime the seen set */
};

static void put_event(struct shard_st *ss, struct hm_slice key, const struct hm_alarm_rec *a)
{
    char hx[33];
    hm_alarm_key_hex(key.ptr, hx);
    json_t *j = hm_alarm_json(key, a);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    hm_buf_append_lit(&ss->out, "id: ");
    hm_buf_append_str(&ss->out, hx);
    hm_buf_append_lit(&ss->out, "\nevent: alarm\ndata: ");
    hm_buf_append_str(&ss->out, s); /* compact JSON: no newline inside */
    hm_buf_append_lit(&ss->out, "\n\n");
    free(s);
}

static int scan_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct scan *sc = arg;
    struct stream *st = sc->st;
    if (key.len != HM_KEY_ALARM_LEN)
        return 0;
    int cmp = memcmp(key.ptr, st->last, HM_KEY_ALARM_LEN);
    if (sc->mode == 0 && cmp <= 0)
        return 0;
    if (sc->mode == 0 && ++sc->visited > VISITS_PER_POLL)
        return 1; /* a filtered stream skipping a long backlog: go on at the next poll */
    if (sc->mode != 0 && cmp > 0)
        return 1; /* past the cursor: the fast path's business */
    if (sc->mode == 2) {
        seen_add(st, key.ptr);
        return 0;
    }
    if (sc->mode == 1 && seen_has(st, key.ptr))
        return 0;
    if (sc->n >= EVENTS_PER_POLL || sc->ss->out.len >= sc->room)
        return 1; /* the rest on a later poll, once the consumer has read */
    struct hm_alarm_rec a;
    bool ok = hm_rec_alarm_decode(val, &a) == 0 &&
              (!st->dev_len || hm_slice_eq(a.device, hm_slice(st->dev, st->dev_len)));
    if (ok) {
        put_event(sc->ss, key, &a);
        sc->n++;
    }
    seen_add(st, key.ptr);
    if (sc->mode == 0)
        memcpy(st->last, key.ptr, HM_KEY_ALARM_LEN);
    return 0;
}

static void stream_unlink(struct shard_st *ss, struct stream *st)
{
    for (struct stream **p = &ss->head; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    ss->n--;
    atomic_fetch_sub_explicit(&ss->live, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&ss->h->open, 1, memory_order_relaxed);
    stream_free(st);
}

/* One poll of one stream; false when the stream is gone (freed). */
static bool serve(struct shard_st *ss, struct stream *st, struct hm_store_reader *rd, bool snap,
                  bool late, uint64_t now)
{
    struct hm_alarm_streams *h = ss->h;
    ssize_t pend = hm_httpd_stream_pending(st->ref);
    if (pend < 0) { /* the consumer went away */
        stream_unlink(ss, st);
        return false;
    }
    if (hm_shard_draining(ss->shard)) {
        hm_httpd_stream_end(st->ref, false);
        stream_unlink(ss, st);
        return false;
    }
    if ((uint64_t)pend >= h->o.max_buffer) {
        char hx[33];
        hm_alarm_key_hex(st->last, hx);
        hm_warn("alarm stream consumer too slow: disconnected; it resumes from its last id",
                "pending_bytes=%zd limit=%llu cursor=%s", pend, (unsigned long long)h->o.max_buffer,
                hx);
        atomic_fetch_add_explicit(&h->cut, 1, memory_order_relaxed);
        hm_httpd_stream_end(st->ref, true);
        stream_unlink(ss, st);
        return false;
    }
    hm_buf_reset(&ss->out);
    struct scan sc = {st, ss, 0, 0, (size_t)(h->o.max_buffer - (uint64_t)pend), 0};
    if (snap) {
        char from[HM_KEY_ALARM_LEN];
        if (late && h->o.late_window_ms) {
            late_start(st, h->o.late_window_ms, from);
            sc.mode = 1;
            if (hm_store_scan(rd, HM_DB_ALARMS, hm_slice("", 0), hm_slice(from, sizeof(from)),
                              scan_cb, &sc) < 0)
                HM_LOG_RL(HM_LOG_WARN, "alarm stream: history scan failed", "%s", "late=1");
            sc.mode = 0;
        }
        if (hm_store_scan(rd, HM_DB_ALARMS, hm_slice("", 0), hm_slice(st->last, HM_KEY_ALARM_LEN),
                          scan_cb, &sc) < 0)
            HM_LOG_RL(HM_LOG_WARN, "alarm stream: history scan failed", "%s", "late=0");
    }
    if (!sc.n && now - st->last_write_ms >= h->o.heartbeat_ms)
        hm_buf_printf(&ss->out, ": keepalive %llu\n\n", (unsigned long long)now);
    if (ss->out.len) {
        st->last_write_ms = now;
        atomic_fetch_add_explicit(&h->events, sc.n, memory_order_relaxed);
        if (hm_httpd_stream_write(st->ref, ss->out.base, ss->out.len) < 0) {
            stream_unlink(ss, st);
            return false;
        }
    }
    return true;
}

static void poll_shard(struct shard_st *ss)
{
    struct hm_alarm_streams *h = ss->h;
    uint64_t now = hm_now_ms();
    bool late = now - ss->last_late_ms >= LATE_EVERY_MS;
    if (late)
        ss->last_late_ms = now;
    struct hm_store_reader *rd = h->o.reader_of(ss->shard);
    bool snap = rd && hm_store_read_begin(rd) == 0; /* -EAGAIN: map resize, next poll */
    for (struct stream *st = ss->head, *next; st; st = next) {
        next = st->next;
        if (st->started)
            serve(ss, st, rd, snap, late, now);
    }
    if (snap)
        hm_store_read_end(rd);
    if (ss->n)
        hm_shard_timer_arm(ss->shard, &ss->timer, h->o.poll_ms);
}

static void on_timer(struct hm_timer *t)
{
    poll_shard(HM_CONTAINER_OF(t, struct shard_st, timer));
}

/* Alarms were committed: poll now (the timer stays as the fallback, re-armed by the poll). */
static void on_wake(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)s;
    struct shard_st *ss = HM_CONTAINER_OF(m, struct shard_st, wake);
    /* cleared before the poll: a commit after this point posts again */
    atomic_store_explicit(&ss->wake_pending, false, memory_order_seq_cst);
    atomic_fetch_add_explicit(&ss->h->wakes, 1, memory_order_relaxed);
    if (ss->n)
        poll_shard(ss);
}

void hm_alarm_streams_notify(void *arg)
{
    struct hm_alarm_streams *h = arg;
    for (unsigned i = 0; i < h->n; i++) {
        struct shard_st *ss = &h->sh[i];
        struct hm_shard *s = atomic_load_explicit(&ss->pub_shard, memory_order_acquire);
        if (!s || !atomic_load_explicit(&ss->live, memory_order_relaxed))
            continue;
        if (atomic_exchange_explicit(&ss->wake_pending, true, memory_order_seq_cst))
            continue; /* a wake is already on its way: that poll sees this commit too */
        hm_shard_post(s, &ss->wake);
    }
}

/* Runs on the stream's shard right after the handler deferred: head, priming, first poll. */
static void on_start(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)s;
    struct stream *st = HM_CONTAINER_OF(m, struct stream, start);
    struct shard_st *ss = st->ss;
    struct hm_alarm_streams *h = ss->h;
    struct hm_store_reader *rd = h->o.reader_of(ss->shard);
    if (hm_httpd_stream_begin(st->ref, 200, "text/event-stream", h->o.max_buffer) < 0) {
        stream_unlink(ss, st);
        return;
    }
    st->started = true;
    st->last_write_ms = hm_now_ms();
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "retry: 2000\n: hems alarm stream\n\n");
    (void)hm_httpd_stream_write(st->ref, hello, (size_t)n);
    /* Keys up to the cursor within the late window were there before this stream: the
     * consumer saw them (or chose to start later). Remember them so the late rescan skips
     * them. */
    if (h->o.late_window_ms && rd && hm_store_read_begin(rd) == 0) {
        char from[HM_KEY_ALARM_LEN];
        late_start(st, h->o.late_window_ms, from);
        struct scan sc = {st, ss, 0, 0, SIZE_MAX, 2};
        if (hm_store_scan(rd, HM_DB_ALARMS, hm_slice("", 0), hm_slice(from, sizeof(from)), scan_cb,
                          &sc) < 0)
            HM_LOG_RL(HM_LOG_WARN, "alarm stream: history scan failed", "%s", "prime=1");
        hm_store_read_end(rd);
    }
    if (!hm_timer_armed(&ss->timer))
        hm_shard_timer_arm(ss->shard, &ss->timer, 1);
}

/* Query parameter <name> (raw); empty slice when absent. */
static struct hm_slice qparam(struct hm_slice q, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        const char *amp = memchr(q.ptr + i, '&', q.len - i);
        size_t end = amp ? (size_t)(amp - q.ptr) : q.len;
        if (end - i > nl && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=')
            return hm_slice(q.ptr + i + nl + 1, end - i - nl - 1);
        i = end + 1;
    }
    return hm_slice("", 0);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int fail(struct hm_http_exchange *x, int status, const char *code, const char *msg)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    char *s = json_dumps(j, JSON_COMPACT);
    hm_buf_append_str(x->out, s);
    hm_buf_append_lit(x->out, "\n");
    free(s);
    json_decref(j);
    x->content_type = "application/json";
    return status;
}

int hm_alarm_stream_open(struct hm_alarm_streams *h, struct hm_http_exchange *x)
{
    if (x->req->method != HM_HTTP_GET)
        return fail(x, 405, "method_not_allowed", "use GET");
    unsigned id = hm_shard_id(x->shard);
    if (id >= h->n)
        return fail(x, 500, "internal", "unknown shard");
    struct shard_st *ss = &h->sh[id];
    if (ss->n >= h->o.max_streams) {
        hm_buf_append_lit(x->headers, "Retry-After: 5\r\n");
        return fail(x, 503, "too_many_streams", "too many alarm streams on this shard");
    }
    char last[HM_KEY_ALARM_LEN];
    struct hm_slice cur = hm_http_header_get(x->req, "Last-Event-ID");
    if (!cur.len)
        cur = qparam(x->req->query, "cursor");
    struct hm_slice since = qparam(x->req->query, "since");
    if (cur.len) {
        if (hm_alarm_key_unhex(cur, last) < 0)
            return fail(x, 400, "bad_request", "cursor must be an alarm key (32 hex digits)");
    } else {
        uint64_t t = 0;
        if (since.len) {
            for (size_t i = 0; i < since.len; i++) {
                if (since.ptr[i] < '0' || since.ptr[i] > '9' || i > 18)
                    return fail(x, 400, "bad_request", "since must be milliseconds");
                t = t * 10 + (uint64_t)(since.ptr[i] - '0');
            }
            t = t ? t - 1 : 0;
        } else {
            t = hm_now_ms();
        }
        /* the greatest key of time t: the stream starts at time t + 1 (since: at since) */
        if (hm_key_alarm(last, sizeof(last), t, UINT64_MAX) != HM_KEY_ALARM_LEN)
            return fail(x, 500, "internal", "alarm key");
    }
    struct stream *st = hm_xcalloc(1, sizeof(*st));
    struct hm_slice dev = qparam(x->req->query, "device");
    for (size_t i = 0; i < dev.len; i++) {
        char c = dev.ptr[i];
        if (c == '%') {
            int a = i + 2 < dev.len ? hexv(dev.ptr[i + 1]) : -1;
            int b = a >= 0 ? hexv(dev.ptr[i + 2]) : -1;
            if (b < 0 || (a | b) == 0) {
                free(st);
                return fail(x, 400, "bad_request", "invalid device");
            }
            c = (char)(a << 4 | b);
            i += 2;
        }
        if (st->dev_len >= sizeof(st->dev)) {
            free(st);
            return fail(x, 400, "bad_request", "device id too long");
        }
        st->dev[st->dev_len++] = c;
    }
    st->seen = hm_xcalloc(2 * SEEN_CAP, HM_KEY_ALARM_LEN);
    memcpy(st->last, last, sizeof(last));
    st->ss = ss;
    st->ref = x->ref;
    st->start.fn = on_start;
    ss->shard = x->shard;
    atomic_store_explicit(&ss->pub_shard, x->shard, memory_order_release);
    st->next = ss->head;
    ss->head = st;
    ss->n++;
    atomic_fetch_add_explicit(&ss->live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->opened, 1, memory_order_relaxed);
    /* The exchange is deferred once this returns: start on the next loop turn. */
    hm_shard_post(x->shard, &st->start);
    return HM_HTTP_DEFER;
}

void hm_alarm_streams_render_metrics(struct hm_buf *out, void *arg)
{
    struct hm_alarm_streams *h = arg;
    if (!h)
        return;
    hm_buf_printf(
        out,
        "# HELP hems_alarm_streams open alarm streams (SSE)\n"
        "# TYPE hems_alarm_streams gauge\nhems_alarm_streams %llu\n"
        "# HELP hems_alarm_streams_opened_total alarm streams opened\n"
        "# TYPE hems_alarm_streams_opened_total counter\n"
        "hems_alarm_streams_opened_total %llu\n"
        "# HELP hems_alarm_stream_events_total alarm events sent on streams\n"
        "# TYPE hems_alarm_stream_events_total counter\n"
        "hems_alarm_stream_events_total %llu\n"
        "# HELP hems_alarm_streams_cut_total streams closed because the consumer "
        "fell max_buffer behind\n"
        "# TYPE hems_alarm_streams_cut_total counter\nhems_alarm_streams_cut_total "
        "%llu\n"
        "# HELP hems_alarm_stream_wakes_total shard polls started by an alarm commit "
        "(not the poll timer)\n"
        "# TYPE hems_alarm_stream_wakes_total counter\nhems_alarm_stream_wakes_total %llu\n",
        (unsigned long long)atomic_load(&h->open), (unsigned long long)atomic_load(&h->opened),
        (unsigned long long)atomic_load(&h->events), (unsigned long long)atomic_load(&h->cut),
        (unsigned long long)atomic_load(&h->wakes));
}
