/*
 * The shard reactor: one thread, one io_uring, one SO_REUSEPORT listener per listener kind,
 * a connection table, provided receive buffers and a timer wheel. This file and nothing
 * else includes liburing.
 *
 * io_uring use (kernel features and the version that brought them):
 * - multishot accept (5.19) on each listener; multishot recv (6.0) with a provided-buffer
 *   ring (5.19), so an idle connection holds no receive buffer: a buffer is lent by the
 *   kernel when bytes arrive and given back as soon as they are parsed;
 * - IORING_SETUP_SINGLE_ISSUER (6.0) + DEFER_TASKRUN (6.1) when available, else
 *   COOP_TASKRUN (5.19): completions run only when this thread asks for them;
 * - submissions are batched: SQEs prepared while handling completions go to the kernel in
 *   the next io_uring_submit_and_wait() of the loop.
 *
 * user_data packs the operation, the connection's generation and its index (see ud()), so
 * a completion for a slot that has since been reused is recognised and dropped, and any
 * buffer it carries goes back to the ring.
 */
#include "core/shard.h"
#include "core/admission_gate.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/tls.h"
#include "core/util.h"
#include "proto/proxy.h"

#define TICK_MS 100
#define BGID 1
#define POOL_KEEP 256          /* free rx/tx objects kept per shard */
#define POOL_BUF_KEEP_MAX 65536 /* larger buffers are freed, not pooled */
#define FD_RESERVE 256         /* descriptors kept for LMDB, files, spool, logs */

/* Listener slots: the HTTP listener kinds, then the CWMP-over-TLS one (its connections are
 * HM_LISTENER_CWMP connections for routing). */
#define LI_CWMPS HM_LISTENER_MAX
#define NLISTEN (HM_LISTENER_MAX + 1)

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_SEND_CONT, OP_CANCEL, OP_TICK, OP_EVENTFD, OP_PACE };

#define LISTEN_BACKLOG 4096 /* a listener's accept queue (the kernel caps it at somaxconn) */
#define ACCEPT_ONE 1        /* ud_gen() of a paced listener's single accept */
#define PACE_CALM_MS 1000   /* a paced listener found nothing waiting this long: unpaced */
#define PACE_BATCH 64       /* accepts of a paced listener in one go */

/* Accept pacing of a listener (core/admission_gate.h). */
enum pace_state {
    PACE_OFF,      /* multishot accept */
    PACE_STOPPING, /* the multishot accept is being cancelled */
    PACE_ACCEPT,   /* one single accept in flight */
    PACE_WAIT,     /* a timeout in flight: the rate has no token yet */
};

static inline uint64_t ud(enum op op, uint32_t gen, uint32_t idx)
{
    return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffffu) << 32 | idx;
}
static inline enum op ud_op(uint64_t u)
{
    return (enum op)(u >> 56);
}
static inline uint32_t ud_gen(uint64_t u)
{
    return (uint32_t)(u >> 32) & 0xffffffu;
}
static inline uint32_t ud_idx(uint64_t u)
{
    return (uint32_t)u;
}

enum cstate {
    C_FREE = 0,
    C_IDLE,    /* between requests */
    C_HEAD,    /* some bytes of a request head */
    C_BODY,    /* head complete, body incomplete */
    C_BUSY,    /* dispatched: handler running / deferred, or response being sent */
    C_CLOSING, /* fd closed, waiting for an in-flight send to complete */
};

enum {
    F_RECV_ARMED = 1u << 0,
    F_CLOSE_AFTER = 1u << 1,
    F_SENDING = 1u << 2,
    F_HANDLING = 1u << 3, /* deferred handler owns the exchange */
    F_IN_BODY = 1u << 4,
    F_CHUNKED = 1u << 5,
    F_HEAD_REQ = 1u << 6, /* HEAD request: no body in the response */
    F_HTTP10 = 1u << 7,
    F_REARM = 1u << 8, /* recv must be re-armed once buffers return */
    F_PROXY = 1u << 9, /* a PROXY protocol header must come first */
    F_TLS_RESP = 1u << 10, /* TLS: a response is encrypted; done when its records are sent */
    F_GATE_PAID = 1u << 11, /* admission paid at accept; told to the first request only */
    F_STREAM_END = 1u << 14, /* streaming response: close once the queued bytes are sent */
    F_STREAM = 1u << 15,     /* streaming response (hm_httpd_stream_begin) */
};

struct rxbuf {
    struct hm_buf b;
    struct rxbuf *next;
};

struct tx {
    struct hm_buf hdr, body, xhdr;
    struct msghdr msg;
    struct iovec iov[2];
    struct tx *next;
};

union peer {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct hm_conn {
    int fd;
    uint32_t gen;
    uint8_t state;
    uint8_t listener;
    uint16_t flags;
    uint32_t head_len;     /* valid with F_IN_BODY */
    uint32_t head_scanned; /* bytes of an incomplete head already scanned */
    uint64_t body_len;     /* decoded body bytes so far (chunked) */
    struct hm_http_chunked chunk;
    struct hm_timer timer;
    struct rxbuf *rx; /* pending bytes; NULL when none (idle connections hold none) */
    struct tx *tx;    /* response being built or sent */
    void *app;
    union peer peer;
    uint32_t next_rearm; /* intrusive list of connections waiting for buffers */
    uint32_t src_slot;   /* per-source counter slot + 1; 0: not counted */
    struct hm_tls_conn *tls; /* NULL: plain TCP */
};

/* Per-source connection counts: open addressing over address hashes; a slot whose count
 * fell to 0 keeps its key and is reused, so no tombstones are needed. */
#define SRC_PROBES 16
struct srcent {
    uint64_t key;
    uint32_t count;
};

struct tunables {
    struct hm_http_limits lim;
    uint64_t max_body, header_ticks, body_ticks, idle_ticks, shutdown_ticks;
};

struct reload_msg {
    struct hm_shard_msg m;
    struct tunables t;
    int log_level;
};

struct hm_shard {
    struct hm_shards *group;
    unsigned id;
    int cpu;
    pthread_t thread;
    struct io_uring ring;
    bool ring_ok;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    char *bufs;
    uint32_t nbufs, bufsz, buf_returned;
    int lfd[NLISTEN];
    unsigned syn_drop; /* thousandths of SYNs the CWMP listeners' filter drops (0: none) */
    char *tls_plain; /* HM_TLS_PLAIN_MAX bytes: decrypted input, parsed in place */
    struct hm_conn *conns;
    uint32_t nconns;
    uint32_t *free_stack;
    uint32_t nfree;
    uint32_t rearm_head; /* UINT32_MAX: empty */
    int efd;
    uint64_t efd_val;
    struct hm_mpsc inbox;
    struct hm_shard_msg stop_msg;
    struct tunables t;
    struct hm_timerwheel *wheel;
    struct __kernel_timespec tick_ts;
    uint64_t tick;
    char date[64]; /* "Date: ...\r\n" refreshed each tick */
    bool draining, accepting;
    struct {
        enum pace_state state;
        unsigned backlog;      /* the accept queue set while paced */
        uint64_t busy_tick;    /* when connections last waited for the rate */
        struct __kernel_timespec ts; /* PACE_WAIT's timeout */
    } pace[NLISTEN];
    _Atomic bool running;
    _Atomic bool draining_pub;
    struct hm_timer drain_timer;
    struct srcent *src;
    uint32_t src_mask, src_limit;
    struct rxbuf *rx_free;
    unsigned rx_nfree;
    struct tx *tx_free;
    unsigned tx_nfree;
    struct hm_http_req req; /* parser scratch */
    void *app;
    int start_rc;
    sem_t *started;
    struct hm_shard_counters ctr __attribute__((aligned(HM_CACHELINE)));
};

struct hm_shards {
    unsigned n;
    struct hm_shard **s;
    struct hm_config cfg;
    struct hm_route *routes;
    unsigned nroutes;
    uint32_t conns_per_shard;
    sem_t started;
    struct hm_tls *tls; /* NULL: no CWMPS listener */
};

static hm_conn_close_hook conn_close_hook;

/* ---- admission gate at accept (core/admission_gate.h) ---- */
static hm_accept_gate_fn accept_gate;

void hm_shard_set_accept_gate(hm_accept_gate_fn fn)
{
    accept_gate = fn;
}

static hm_syn_shed_fn syn_shed;
static hm_accept_pace_fn accept_pace;
static hm_gate_release_fn gate_release;

void hm_shard_set_gate_release(hm_gate_release_fn fn)
{
    gate_release = fn;
}

/* <c> paid at accept: its place under the in-flight cap goes back (core/admission_gate.h). */
static void gate_unpay(struct hm_shard *s, struct hm_conn *c)
{
    if (!(c->flags & F_GATE_PAID))
        return;
    c->flags &= (uint16_t)~F_GATE_PAID;
    if (gate_release)
        gate_release(s);
}

void hm_shard_set_accept_pace(hm_accept_pace_fn fn)
{
    accept_pace = fn;
}

void hm_shard_set_syn_shed(hm_syn_shed_fn fn)
{
    syn_shed = fn;
}

/*
 * Drops <permille> thousandths of the pure SYNs (SYN set, ACK clear) reaching listener <fd>,
 * at random, with a classic BPF socket filter (unprivileged; the kernel runs a listener's
 * filter on every segment for it, where the data starts at the TCP header); every other
 * segment (the handshake's last ACK, data) passes. 0 removes the filter. Returns 0 or -errno.
 */
static int hm_listen_syn_drop(int fd, unsigned permille)
{
    if (!permille) { /* (the kernel wants an int there, though it reads none) */
        int unused = 0;
        return setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof(unused)) == 0 ||
                       errno == ENOENT
                   ? 0
                   : -errno;
    }
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13), /* TCP flags */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 4), /* SYN without ACK, else keep */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM)),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 1000),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, permille, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, 0),          /* drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu), /* keep the whole segment */
    };
    struct sock_fprog prog = {.len = HM_ARRAY_SIZE(code), .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0 ? 0 : -errno;
}

/* The length of listener <fd>'s accept queue (a listener's TCP_INFO: tcpi_unacked). */
static unsigned accept_queue_len(int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 ? ti.tcpi_unacked : 0;
}

/* Applies the SYN drop share the admission controller wants (core/admission_gate.h) to this
 * shard's CWMP listeners; small changes (under 2 %) are not worth a new filter. */
static void apply_syn_shed(struct hm_shard *s)
{
    unsigned want = syn_shed(s);
    if (want == s->syn_drop || (want && s->syn_drop && want + 20 > s->syn_drop &&
                                s->syn_drop + 20 > want))
        return;
    int li[] = {HM_LISTENER_CWMP, LI_CWMPS};
    for (size_t i = 0; i < HM_ARRAY_SIZE(li); i++) {
        int r = s->lfd[li[i]] >= 0 ? hm_listen_syn_drop(s->lfd[li[i]], want) : 0;
        if (r < 0) {
            HM_LOG_RL(HM_LOG_WARN, "cannot set the SYN drop filter on a listener", "err=\"%s\"",
                      hm_strerror(r));
            return;
        }
    }
    s->syn_drop = want;
}

/* Refuses <fd> with a canned 503 + Retry-After <ra> s, before reading a byte. A TLS
 * connection cannot be answered before its handshake, which is the most expensive part of
 * its session: it is reset instead (no handshake, no FIN exchange, no TIME_WAIT), and the
 * CPE retries after its TR-069 backoff (§3.2.1.1: a failed session). */
static void gate_refuse(int fd, unsigned ra, bool tls)
{
    if (tls) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
        return;
    }
    char msg[160];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nServer: hems\r\nRetry-After: %u\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n", ra);
    /* A fresh socket's send buffer is empty: this non-blocking send cannot stall the shard. */
    ssize_t w = send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}
/* ---- end admission gate ---- */

/* The shard running on this thread: timer callbacks get only their timer. */
static _Thread_local struct hm_shard *cur_shard;

void hm_httpd_set_conn_close_hook(hm_conn_close_hook hook)
{
    conn_close_hook = hook;
}

static uint64_t now_tick(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) / TICK_MS;
}

static uint64_t ms_to_ticks(uint64_t ms)
{
    return (ms + TICK_MS - 1) / TICK_MS;
}

static void tunables_from(struct tunables *t, const struct hm_config *c)
{
    t->lim.max_request_line = c->max_request_line;
    t->lim.max_head_bytes = c->max_head_bytes;
    t->lim.max_headers = c->max_headers;
    t->max_body = c->max_body_bytes;
    t->header_ticks = ms_to_ticks(c->header_timeout_ms);
    t->body_ticks = ms_to_ticks(c->body_timeout_ms);
    t->idle_ticks = ms_to_ticks(c->idle_timeout_ms);
    t->shutdown_ticks = ms_to_ticks(c->shutdown_timeout_ms);
}

/* ---- submission helpers ---- */

static struct io_uring_sqe *get_sqe(struct hm_shard *s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (HM_UNLIKELY(!sqe)) {
        /* SQ full: flush what is queued and retry; cannot fail twice in a row. */
        io_uring_submit(&s->ring);
        sqe = io_uring_get_sqe(&s->ring);
        HM_BUG_ON(!sqe);
    }
    return sqe;
}

static void arm_accept(struct hm_shard *s, unsigned li)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_multishot_accept(sqe, s->lfd[li], NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, 0, li));
}

static void arm_recv(struct hm_shard *s, struct hm_conn *c, uint32_t idx)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud(OP_RECV, c->gen, idx));
    c->flags |= F_RECV_ARMED;
}

static void arm_tick(struct hm_shard *s)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_timeout(sqe, &s->tick_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud(OP_TICK, 0, 0));
}

static void arm_eventfd(struct hm_shard *s)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_read(sqe, s->efd, &s->efd_val, sizeof(s->efd_val), 0);
    io_uring_sqe_set_data64(sqe, ud(OP_EVENTFD, 0, 0));
}

static void cancel_op(struct hm_shard *s, uint64_t target)
{
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, ud(OP_CANCEL, 0, 0));
}

static void recycle_buf(struct hm_shard *s, uint32_t bid)
{
    io_uring_buf_ring_add(s->br, s->bufs + (size_t)bid * s->bufsz, s->bufsz, (unsigned short)bid,
                          io_uring_buf_ring_mask(s->nbufs), (int)s->buf_returned);
    s->buf_returned++;
}

/* ---- pools ---- */

static struct rxbuf *rx_get(struct hm_shard *s)
{
    struct rxbuf *r = s->rx_free;
    if (r) {
        s->rx_free = r->next;
        s->rx_nfree--;
        hm_buf_reset(&r->b);
        return r;
    }
    return hm_xcalloc(1, sizeof(*r));
}

static void rx_put(struct hm_shard *s, struct rxbuf *r)
{
    if (s->rx_nfree >= POOL_KEEP || r->b.cap > POOL_BUF_KEEP_MAX) {
        hm_buf_free(&r->b);
        free(r);
        return;
    }
    r->next = s->rx_free;
    s->rx_free = r;
    s->rx_nfree++;
}

static struct tx *tx_get(struct hm_shard *s)
{
    struct tx *t = s->tx_free;
    if (t) {
        s->tx_free = t->next;
        s->tx_nfree--;
    } else {
        t = hm_xcalloc(1, sizeof(*t));
    }
    hm_buf_reset(&t->hdr);
    hm_buf_reset(&t->body);
    hm_buf_reset(&t->xhdr);
    return t;
}

static void tx_put(struct hm_shard *s, struct tx *t)
{
    if (s->tx_nfree >= POOL_KEEP || t->body.cap > POOL_BUF_KEEP_MAX) {
        hm_buf_free(&t->hdr);
        hm_buf_free(&t->body);
        hm_buf_free(&t->xhdr);
        free(t);
        return;
    }
    t->next = s->tx_free;
    s->tx_free = t;
    s->tx_nfree++;
}

/* ---- connections ---- */

static inline uint32_t conn_idx(struct hm_shard *s, struct hm_conn *c)
{
    return (uint32_t)(c - s->conns);
}


static uint64_t src_key(const union peer *p)
{
    const unsigned char *a;
    size_t n;
    if (p->sa.sa_family == AF_INET) {
        a = (const unsigned char *)&p->in.sin_addr;
        n = 4;
    } else if (p->sa.sa_family == AF_INET6) {
        a = (const unsigned char *)&p->in6.sin6_addr;
        n = 16;
    } else {
        return 0;
    }
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ a[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Counts a connection of <c>'s source: false when the source is at its limit. Fails open
 * (counts nothing) when the table is too crowded around the key. */
static bool src_admit(struct hm_shard *s, struct hm_conn *c)
{
    uint64_t k = src_key(&c->peer);
    if (!k)
        return true;
    uint32_t reuse = UINT32_MAX;
    for (uint32_t i = 0, j = (uint32_t)k & s->src_mask; i < SRC_PROBES;
         i++, j = (j + 1) & s->src_mask) {
        struct srcent *e = &s->src[j];
        if (e->key == k) {
            if (e->count >= s->src_limit)
                return false;
            e->count++;
            c->src_slot = j + 1;
            return true;
        }
        if (!e->key || (e->count == 0 && reuse == UINT32_MAX)) {
            if (e->count == 0 && reuse == UINT32_MAX)
                reuse = j;
            if (!e->key)
                break;
        }
    }
    if (reuse == UINT32_MAX)
        return true;
    s->src[reuse] = (struct srcent){k, 1};
    c->src_slot = reuse + 1;
    return true;
}

static void conn_free_slot(struct hm_shard *s, struct hm_conn *c)
{
    if (c->src_slot) {
        s->src[c->src_slot - 1].count--;
        c->src_slot = 0;
    }
    hm_timer_disarm(s->wheel, &c->timer);
    if (c->rx) {
        rx_put(s, c->rx);
        c->rx = NULL;
    }
    if (c->tx) {
        tx_put(s, c->tx);
        c->tx = NULL;
    }
    if (c->tls) {
        hm_tls_conn_free(c->tls);
        c->tls = NULL;
    }
    c->state = C_FREE;
    c->flags = 0;
    c->gen = (c->gen + 1) & 0xffffffu;
    s->free_stack[s->nfree++] = conn_idx(s, c);
}

static void conn_close(struct hm_shard *s, struct hm_conn *c)
{
    if (c->state == C_FREE || c->state == C_CLOSING)
        return;
    gate_unpay(s, c);
    uint32_t idx = conn_idx(s, c);
    if (c->app) {
        void *app = c->app;
        c->app = NULL;
        if (conn_close_hook)
            conn_close_hook(s, app);
    }
    if (c->flags & F_RECV_ARMED)
        cancel_op(s, ud(OP_RECV, c->gen, idx));
    c->flags &= (uint16_t)~(F_RECV_ARMED | F_REARM);
    /* The recv's file reference keeps the socket alive until the cancel above is processed
     * in the next submit; then the kernel sends FIN. */
    close(c->fd);
    c->fd = -1;
    HM_CTR_DEC(&s->ctr, active);
    HM_CTR_INC(&s->ctr, closed);
    if (c->flags & F_SENDING) {
        /* The kernel may still read the tx buffers: keep the slot until the send completes. */
        cancel_op(s, ud(OP_SEND, c->gen, idx));
        hm_timer_disarm(s->wheel, &c->timer);
        c->state = C_CLOSING;
        return;
    }
    conn_free_slot(s, c);
}

static void set_timer(struct hm_shard *s, struct hm_conn *c, uint64_t ticks)
{
    hm_timer_arm(s->wheel, &c->timer, ticks);
}

static void http_error(struct hm_shard *s, struct hm_conn *c, int err, const char *why);
static void stream_sent(struct hm_shard *s, struct hm_conn *c);
static void process(struct hm_shard *s, struct hm_conn *c, char *base, size_t len, bool from_rx);
static void tls_send_response(struct hm_shard *s, struct hm_conn *c, size_t body_len);

static void send_response(struct hm_shard *s, struct hm_conn *c, int status,
                          const char *ctype, bool close_after)
{
    struct tx *t = c->tx;
    HM_BUG_ON(!t);
    if (close_after || s->draining)
        c->flags |= F_CLOSE_AFTER;
    bool head = c->flags & F_HEAD_REQ;
    struct hm_buf *h = &t->hdr;
    hm_buf_append_lit(h, "HTTP/1.1 ");
    hm_buf_append_u64(h, (unsigned)status);
    hm_buf_append_lit(h, " ");
    hm_buf_append_str(h, hm_http_reason(status));
    hm_buf_append_lit(h, "\r\nServer: hems\r\n");
    hm_buf_append_str(h, s->date);
    if (status != 204 && status >= 200) {
        hm_buf_append_lit(h, "Content-Length: ");
        hm_buf_append_u64(h, t->body.len);
        hm_buf_append_lit(h, "\r\n");
    }
    if (ctype) {
        hm_buf_append_lit(h, "Content-Type: ");
        hm_buf_append_str(h, ctype);
        hm_buf_append_lit(h, "\r\n");
    }
    if (c->flags & F_CLOSE_AFTER)
        hm_buf_append_lit(h, "Connection: close\r\n");
    else if (c->flags & F_HTTP10)
        hm_buf_append_lit(h, "Connection: keep-alive\r\n");
    hm_buf_append(h, t->xhdr.base, t->xhdr.len);
    hm_buf_append_lit(h, "\r\n");

    if (status < 300)
        HM_CTR_INC(&s->ctr, responses_2xx);
    else if (status >= 500)
        HM_CTR_INC(&s->ctr, responses_5xx);
    else if (status >= 400)
        HM_CTR_INC(&s->ctr, responses_4xx);

    if (c->tls) {
        tls_send_response(s, c, head || status == 204 ? 0 : t->body.len);
        return;
    }
    t->iov[0] = (struct iovec){h->base, h->len};
    t->iov[1] = (struct iovec){t->body.base, head || status == 204 ? 0 : t->body.len};
    t->msg = (struct msghdr){.msg_iov = t->iov, .msg_iovlen = t->iov[1].iov_len ? 2 : 1};
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_sendmsg(sqe, c->fd, &t->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->gen, conn_idx(s, c)));
    c->flags |= F_SENDING;
    c->flags &= (uint16_t)~F_HANDLING;
    c->state = C_BUSY;
}

/* The response on <c> is fully sent: close, or wait for the next request. */
static void response_done(struct hm_shard *s, struct hm_conn *c)
{
    if (c->flags & F_CLOSE_AFTER) {
        conn_close(s, c);
        return;
    }
    c->state = C_IDLE;
    c->flags &= (uint16_t)(F_RECV_ARMED | F_REARM);
    set_timer(s, c, s->t.idle_ticks);
    if (c->rx)
        process(s, c, c->rx->b.base, c->rx->b.len, true);
}

/* ---- TLS hooks (core/tls.h does the TLS; these move its records) ---- */

/* Sends the connection's queued TLS records unless a send is in flight. */
static void tls_flush(struct hm_shard *s, struct hm_conn *c)
{
    if (c->flags & F_SENDING)
        return;
    size_t n;
    const char *p = hm_tls_conn_out_next(c->tls, &n);
    if (!p)
        return;
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_send(sqe, c->fd, p, n, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->gen, conn_idx(s, c)));
    c->flags |= F_SENDING;
}

/* Encrypts the head and <body_len> bytes of the body of c->tx, which is released at once:
 * the records wait in the TLS output queue. */
static void tls_send_response(struct hm_shard *s, struct hm_conn *c, size_t body_len)
{
    struct tx *t = c->tx;
    int r = hm_tls_conn_write(c->tls, t->hdr.base, t->hdr.len);
    if (r == 0 && body_len)
        r = hm_tls_conn_write(c->tls, t->body.base, body_len);
    if (r == 0 && (c->flags & F_CLOSE_AFTER))
        hm_tls_conn_shutdown(c->tls);
    tx_put(s, t);
    c->tx = NULL;
    c->flags &= (uint16_t)~F_HANDLING;
    c->state = C_BUSY;
    if (r < 0) {
        HM_CTR_INC(&s->ctr, io_errors);
        conn_close(s, c);
        return;
    }
    c->flags |= F_TLS_RESP;
    tls_flush(s, c);
}

static void tls_on_sent(struct hm_shard *s, struct hm_conn *c, size_t n)
{
    hm_tls_conn_out_advance(c->tls, n);
    tls_flush(s, c);
    if (!(c->flags & F_SENDING) && (c->flags & F_TLS_RESP))
        response_done(s, c);
}

static void on_send(struct hm_shard *s, struct hm_conn *c, int res)
{
    struct tx *t = c->tx;
    c->flags &= (uint16_t)~F_SENDING;
    if (c->state == C_CLOSING) {
        conn_free_slot(s, c);
        return;
    }
    if (res < 0) {
        if (res != -ECANCELED && res != -EPIPE && res != -ECONNRESET)
            HM_LOG_RL(HM_LOG_WARN, "send failed", "err=\"%s\"", hm_strerror(res));
        HM_CTR_INC(&s->ctr, io_errors);
        conn_close(s, c);
        return;
    }
    HM_CTR_ADD(&s->ctr, bytes_out, (uint64_t)res);
    if (c->tls) {
        tls_on_sent(s, c, (size_t)res);
        return;
    }
    size_t left = (size_t)res;
    struct msghdr *m = &t->msg;
    while (m->msg_iovlen && left >= m->msg_iov[0].iov_len) {
        left -= m->msg_iov[0].iov_len;
        m->msg_iov++;
        m->msg_iovlen--;
    }
    if (m->msg_iovlen) {
        m->msg_iov[0].iov_base = (char *)m->msg_iov[0].iov_base + left;
        m->msg_iov[0].iov_len -= left;
        struct io_uring_sqe *sqe = get_sqe(s);
        io_uring_prep_sendmsg(sqe, c->fd, m, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->gen, conn_idx(s, c)));
        c->flags |= F_SENDING;
        return;
    }
    if (c->flags & F_STREAM) { /* streaming response: see hm_httpd_stream_* below */
        stream_sent(s, c);
        return;
    }
    tx_put(s, t);
    c->tx = NULL;
    response_done(s, c);
}

static const struct hm_route *route(struct hm_shard *s, unsigned listener, struct hm_slice path)
{
    struct hm_shards *g = s->group;
    for (unsigned i = 0; i < g->nroutes; i++) {
        const struct hm_route *r = &g->routes[i];
        if (r->listener != listener)
            continue;
        size_t n = strlen(r->prefix);
        if (r->exact ? (path.len == n && memcmp(path.ptr, r->prefix, n) == 0)
                     : (path.len >= n && memcmp(path.ptr, r->prefix, n) == 0))
            return r;
    }
    return NULL;
}

static void dispatch(struct hm_shard *s, struct hm_conn *c, char *body, size_t body_len)
{
    const struct hm_http_req *req = &s->req;
    hm_timer_disarm(s->wheel, &c->timer);
    c->flags &= (uint16_t)~(F_IN_BODY | F_CHUNKED | F_HEAD_REQ | F_HTTP10);
    if (req->method == HM_HTTP_HEAD)
        c->flags |= F_HEAD_REQ;
    if (req->minor_version == 0)
        c->flags |= F_HTTP10;
    c->state = C_BUSY;
    c->tx = tx_get(s);
    HM_CTR_INC(&s->ctr, requests);

    struct hm_http_exchange x = {
        .shard = s,
        .listener = (enum hm_listener_kind)c->listener,
        .req = req,
        .body = body_len ? body : NULL,
        .body_len = body_len,
        .peer = &c->peer.sa,
        .conn_data = &c->app,
        .tls_identity = c->tls ? hm_tls_conn_identity(c->tls) : NULL,
        .out = &c->tx->body,
        .headers = &c->tx->xhdr,
        .gate_paid = (c->flags & F_GATE_PAID) != 0,
        .ref = {s, conn_idx(s, c), c->gen},
    };
    gate_unpay(s, c);
    const struct hm_route *r = route(s, c->listener, req->path);
    int status;
    if (r) {
        status = r->fn(&x, r->ctx);
    } else {
        hm_buf_append_lit(x.out, "not found\n");
        x.content_type = "text/plain";
        status = 404;
    }
    if (status == HM_HTTP_DEFER) {
        c->flags |= F_HANDLING;
        if (!req->keep_alive) /* honoured by hm_httpd_finish() too, whatever it is passed */
            c->flags |= F_CLOSE_AFTER;
        return;
    }
    send_response(s, c, status, x.content_type, x.close || !req->keep_alive);
}

bool hm_httpd_deferred_bufs(struct hm_conn_ref ref, struct hm_buf **out, struct hm_buf **headers)
{
    struct hm_shard *s = ref.shard;
    if (ref.idx >= s->nconns)
        return false;
    struct hm_conn *c = &s->conns[ref.idx];
    if (c->gen != ref.gen || c->state != C_BUSY || !(c->flags & F_HANDLING))
        return false;
    *out = &c->tx->body;
    *headers = &c->tx->xhdr;
    return true;
}

int hm_httpd_finish(struct hm_conn_ref ref, int status, const char *content_type, bool close)
{
    struct hm_buf *o, *h;
    if (!hm_httpd_deferred_bufs(ref, &o, &h))
        return -ENOENT;
    send_response(ref.shard, &ref.shard->conns[ref.idx], status, content_type, close);
    return 0;
}

/* ---- streaming responses (hm_httpd_stream_*, core/httpd.h) ----
 * A deferred exchange turns into a response of unknown length: head without Content-Length
 * and "Connection: close", then bytes as they are written, then close. Of the connection's
 * tx, <hdr> is the buffer in flight and <body> the bytes queued behind it; when a send
 * completes they swap. The socket is only ever written by io_uring (never blocks the shard).
 */
static struct hm_conn *stream_conn(struct hm_conn_ref ref, bool begun)
{
    struct hm_shard *s = ref.shard;
    if (!s || ref.idx >= s->nconns)
        return NULL;
    struct hm_conn *c = &s->conns[ref.idx];
    if (c->gen != ref.gen || c->state != C_BUSY || !c->tx)
        return NULL;
    if (begun ? !(c->flags & F_STREAM) : !(c->flags & F_HANDLING) || (c->flags & F_STREAM))
        return NULL;
    return c;
}

static void stream_flush(struct hm_shard *s, struct hm_conn *c)
{
    struct tx *t = c->tx;
    if ((c->flags & F_SENDING) || !t->body.len)
        return;
    struct hm_buf b = t->hdr;
    t->hdr = t->body;
    t->body = b;
    hm_buf_reset(&t->body);
    t->iov[0] = (struct iovec){t->hdr.base, t->hdr.len};
    t->msg = (struct msghdr){.msg_iov = t->iov, .msg_iovlen = 1};
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_sendmsg(sqe, c->fd, &t->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND, c->gen, conn_idx(s, c)));
    c->flags |= F_SENDING;
}

/* on_send(): everything in flight went out. */
static void stream_sent(struct hm_shard *s, struct hm_conn *c)
{
    hm_buf_reset(&c->tx->hdr);
    if (c->tx->body.len)
        stream_flush(s, c);
    else if (c->flags & F_STREAM_END)
        conn_close(s, c);
}

int hm_httpd_stream_begin(struct hm_conn_ref ref, int status, const char *content_type,
                          size_t sndbuf)
{
    struct hm_conn *c = stream_conn(ref, false);
    if (!c)
        return -ENOENT;
    if (c->tls) /* stream writes go to the socket directly, past the TLS record layer */
        return -EPROTONOSUPPORT;
    if (sndbuf) {
        int v = sndbuf > (1u << 24) ? 1 << 24 : (int)sndbuf;
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    }
    struct hm_shard *s = ref.shard;
    struct tx *t = c->tx;
    struct hm_buf *h = &t->hdr;
    hm_buf_reset(h);
    hm_buf_append_lit(h, "HTTP/1.1 ");
    hm_buf_append_u64(h, (unsigned)status);
    hm_buf_append_lit(h, " ");
    hm_buf_append_str(h, hm_http_reason(status));
    hm_buf_append_lit(h, "\r\nServer: hems\r\n");
    hm_buf_append_str(h, s->date);
    if (content_type) {
        hm_buf_append_lit(h, "Content-Type: ");
        hm_buf_append_str(h, content_type);
        hm_buf_append_lit(h, "\r\n");
    }
    hm_buf_append_lit(h, "Cache-Control: no-cache\r\nConnection: close\r\n");
    hm_buf_append(h, t->xhdr.base, t->xhdr.len);
    hm_buf_append_lit(h, "\r\n");
    if (!(c->flags & F_HEAD_REQ))
        hm_buf_append(h, t->body.base, t->body.len);
    hm_buf_reset(&t->body);
    if (status < 300)
        HM_CTR_INC(&s->ctr, responses_2xx);
    c->flags = (uint16_t)((c->flags & ~F_HANDLING) | F_STREAM | F_CLOSE_AFTER);
    if (c->flags & F_HEAD_REQ)
        c->flags |= F_STREAM_END;
    struct hm_buf b = t->hdr; /* stream_flush sends <body>: move the head there */
    t->hdr = t->body;
    t->body = b;
    stream_flush(s, c);
    return 0;
}

ssize_t hm_httpd_stream_write(struct hm_conn_ref ref, const void *data, size_t len)
{
    struct hm_conn *c = stream_conn(ref, true);
    if (!c)
        return -ENOENT;
    if (!(c->flags & (F_STREAM_END | F_HEAD_REQ)) && len) {
        hm_buf_append(&c->tx->body, data, len);
        stream_flush(ref.shard, c);
    }
    return hm_httpd_stream_pending(ref);
}

ssize_t hm_httpd_stream_pending(struct hm_conn_ref ref)
{
    struct hm_conn *c = stream_conn(ref, true);
    if (!c)
        return -ENOENT;
    size_t n = c->tx->body.len;
    if (c->flags & F_SENDING)
        for (size_t i = 0; i < c->tx->msg.msg_iovlen; i++)
            n += c->tx->msg.msg_iov[i].iov_len;
    return (ssize_t)n;
}

void hm_httpd_stream_end(struct hm_conn_ref ref, bool abort_now)
{
    struct hm_conn *c = stream_conn(ref, true);
    if (!c)
        return;
    c->flags |= F_STREAM_END;
    if (abort_now || !(c->flags & F_SENDING))
        conn_close(ref.shard, c);
}

void hm_shard_timer_arm(struct hm_shard *s, struct hm_timer *t, uint64_t ms)
{
    hm_timer_arm(s->wheel, t, ms_to_ticks(ms));
}

void hm_shard_timer_disarm(struct hm_shard *s, struct hm_timer *t)
{
    hm_timer_disarm(s->wheel, t);
}

/* ---- end of streaming responses ---- */

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void send_continue(struct hm_shard *s, struct hm_conn *c)
{
    if (c->tls) {
        if (hm_tls_conn_write(c->tls, continue_100, sizeof(continue_100) - 1) == 0)
            tls_flush(s, c);
        return;
    }
    /* Static bytes: nothing to keep alive if the connection closes meanwhile. */
    struct io_uring_sqe *sqe = get_sqe(s);
    io_uring_prep_send(sqe, c->fd, continue_100, sizeof(continue_100) - 1, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud(OP_SEND_CONT, c->gen, conn_idx(s, c)));
}

/* Keeps [p, p+n) as the connection's pending bytes, at the front of its rx buffer. */
static void keep_pending(struct hm_shard *s, struct hm_conn *c, char *p, size_t n, bool from_rx)
{
    if (from_rx) {
        if (n == 0) {
            rx_put(s, c->rx);
            c->rx = NULL;
        } else if (p != c->rx->b.base) {
            memmove(c->rx->b.base, p, n);
            c->rx->b.len = n;
        } else {
            c->rx->b.len = n;
        }
        return;
    }
    if (n == 0)
        return;
    HM_BUG_ON(c->rx);
    c->rx = rx_get(s);
    hm_buf_append(&c->rx->b, p, n);
}

/* A PROXY header was read: the HeNB's address replaces the balancer's. */
static void proxy_apply(struct hm_conn *c, const struct hm_proxy_hdr *ph)
{
    /* The balancer's own health checks (LOCAL) keep the socket's address. */
    if (!ph->local && !ph->unknown)
        memcpy(&c->peer, &ph->src,
               ph->src.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in));
    c->flags &= (uint16_t)~F_PROXY;
}

static void proxy_refused(struct hm_shard *s, struct hm_conn *c)
{
    char peer[64];
    hm_sockaddr_str(&c->peer.sa, peer, sizeof(peer));
    HM_CTR_INC(&s->ctr, err_bad_request);
    HM_LOG_RL(HM_LOG_WARN, "connection without a valid PROXY header closed", "peer=%s", peer);
}

/*
 * Parses and dispatches the requests in [base, base+len): either a provided buffer lent by
 * the kernel (zero copy: the handler sees slices into it) or the connection's rx buffer.
 * Whatever is left incomplete is kept in rx.
 */
static void process(struct hm_shard *s, struct hm_conn *c, char *base, size_t len, bool from_rx)
{
    size_t off = 0;
    if (HM_UNLIKELY(c->flags & F_PROXY)) {
        struct hm_proxy_hdr ph;
        ssize_t r = hm_proxy_parse(base, len, &ph, 0);
        if (r == -EAGAIN) {
            if (c->state == C_IDLE) {
                c->state = C_HEAD;
                set_timer(s, c, s->t.header_ticks);
            }
            keep_pending(s, c, base, len, from_rx);
            return;
        }
        if (r < 0) {
            proxy_refused(s, c);
            if (from_rx) {
                rx_put(s, c->rx);
                c->rx = NULL;
            }
            conn_close(s, c);
            return;
        }
        proxy_apply(c, &ph);
        off = (size_t)r;
    }
    while (off < len && c->state != C_BUSY && c->state != C_CLOSING && c->state != C_FREE) {
        char *p = base + off;
        size_t n = len - off;
        bool head_fresh = false;
        if (!(c->flags & F_IN_BODY)) {
            ssize_t r = hm_http_parse_request(p, n, from_rx ? c->head_scanned : 0, &s->req,
                                              &s->t.lim);
            if (r == -EAGAIN) {
                if (c->state == C_IDLE) {
                    c->state = C_HEAD;
                    set_timer(s, c, s->t.header_ticks);
                }
                c->head_scanned = (uint32_t)n;
                break;
            }
            if (r < 0) {
                http_error(s, c, (int)r, "parse");
                return;
            }
            c->head_len = (uint32_t)r;
            c->head_scanned = 0;
            c->body_len = 0;
            c->flags |= F_IN_BODY;
            head_fresh = true;
            if (s->req.chunked) {
                c->flags |= F_CHUNKED;
                hm_http_chunked_init(&c->chunk);
            } else if (s->req.content_length > 0 &&
                       (uint64_t)s->req.content_length > s->t.max_body) {
                http_error(s, c, HM_EBODYTOOLARGE, "content-length");
                return;
            }
        } else {
            /* Head parsed in an earlier read: parse it again for slices into this buffer. */
            ssize_t r = hm_http_parse_request(p, c->head_len, 0, &s->req, &s->t.lim);
            HM_BUG_ON(r != (ssize_t)c->head_len);
        }

        size_t hl = c->head_len;
        if (c->flags & F_CHUNKED) {
            char *region = p + hl + c->body_len;
            size_t rlen = n - hl - (size_t)c->body_len;
            ssize_t r = hm_http_chunked_decode(&c->chunk, region, &rlen, s->t.max_body);
            c->body_len += rlen;
            if (r == -EAGAIN) {
                /* Everything was consumed; what remains is head + decoded body. */
                len = off + hl + (size_t)c->body_len;
                goto need_body;
            }
            if (r < 0) {
                http_error(s, c, (int)r, "chunked body");
                return;
            }
            size_t consumed = hl + (size_t)c->body_len;
            len = off + consumed + (size_t)r;
            dispatch(s, c, p + hl, (size_t)c->body_len);
            off += consumed;
        } else {
            uint64_t cl = s->req.content_length > 0 ? (uint64_t)s->req.content_length : 0;
            if (n - hl < cl)
                goto need_body;
            dispatch(s, c, p + hl, (size_t)cl);
            off += hl + (size_t)cl;
        }
        continue;
    need_body:
        if (c->state != C_BODY) {
            c->state = C_BODY;
            set_timer(s, c, s->t.body_ticks);
        }
        if (head_fresh && s->req.expect_continue)
            send_continue(s, c);
        break;
    }
    if (c->state == C_FREE || c->state == C_CLOSING)
        return;
    keep_pending(s, c, base + off, len - off, from_rx);
}

static void http_error(struct hm_shard *s, struct hm_conn *c, int err, const char *why)
{
    int status = err == -ETIMEDOUT ? 408 : hm_http_status_for_error(err);
    switch (status) {
    case 408:
        HM_CTR_INC(&s->ctr, err_timeout);
        break;
    case 413:
        HM_CTR_INC(&s->ctr, err_body_too_large);
        break;
    case 414:
        HM_CTR_INC(&s->ctr, err_uri_too_long);
        break;
    case 431:
        HM_CTR_INC(&s->ctr, err_head_too_large);
        break;
    default:
        HM_CTR_INC(&s->ctr, err_bad_request);
        break;
    }
    char peer[64];
    hm_sockaddr_str(&c->peer.sa, peer, sizeof(peer));
    HM_LOG_RL(HM_LOG_WARN, "HTTP request refused", "status=%d cause=\"%s\" where=%s peer=%s",
              status, err == -ETIMEDOUT ? "timeout" : hm_strerror(err), why, peer);
    hm_timer_disarm(s->wheel, &c->timer);
    if (c->rx) {
        rx_put(s, c->rx);
        c->rx = NULL;
    }
    c->flags &= (uint16_t)~(F_IN_BODY | F_CHUNKED | F_HEAD_REQ);
    c->tx = tx_get(s);
    hm_buf_append_str(&c->tx->body, hm_http_reason(status));
    hm_buf_append_lit(&c->tx->body, ": ");
    hm_buf_append_str(&c->tx->body, err == -ETIMEDOUT ? "timed out" : hm_strerror(err));
    hm_buf_append_lit(&c->tx->body, "\n");
    send_response(s, c, status, "text/plain", true);
}

static void on_conn_timer(struct hm_timer *t)
{
    struct hm_conn *c = HM_CONTAINER_OF(t, struct hm_conn, timer);
    struct hm_shard *s = cur_shard;
    switch (c->state) {
    case C_IDLE:
        if (c->tls && !hm_tls_conn_established(c->tls))
            hm_tls_conn_count_closed(c->tls); /* handshake not done in the header timeout */
        else
            HM_CTR_INC(&s->ctr, idle_closed);
        conn_close(s, c);
        break;
    case C_HEAD:
    case C_BODY:
        http_error(s, c, -ETIMEDOUT, c->state == C_HEAD ? "header" : "body");
        break;
    default:
        break;
    }
}

static void refuse(struct hm_shard *s, int fd, bool tls)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nServer: hems\r\n"
                              "Retry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    HM_CTR_INC(&s->ctr, refused_full);
    HM_LOG_RL(HM_LOG_WARN, "connection table full: refusing connection", "slots=%u",
              s->nconns);
    /* A fresh socket's send buffer is empty: this non-blocking send cannot stall the shard. */
    if (!tls) { /* a TLS client could not read it */
        ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    close(fd);
}

/* Takes the connection <res> just accepted on listener <li>; false when the admission gate
 * refused it. */
static bool take_conn(struct hm_shard *s, unsigned li, int res)
{
    if (!s->accepting) {
        close(res);
        return true;
    }
    if (!s->nfree) {
        refuse(s, res, li == LI_CWMPS);
        return true;
    }
    bool paid = false;
    if (accept_gate && (li == HM_LISTENER_CWMP || li == LI_CWMPS)) { /* admission control
                                                                       (core/admission_gate.h) */
        unsigned ra = accept_gate(s, res, s->pace[li].state != PACE_OFF, &paid);
        if (ra) {
            gate_refuse(res, ra, li == LI_CWMPS);
            return false;
        }
    }
    uint32_t idx = s->free_stack[--s->nfree];
    struct hm_conn *c = &s->conns[idx];
    uint32_t gen = c->gen;
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->fd = res;
    c->listener = (uint8_t)(li == LI_CWMPS ? HM_LISTENER_CWMP : li);
    c->state = C_IDLE;
    if (paid)
        c->flags |= F_GATE_PAID;
    if ((li == HM_LISTENER_CWMP && s->group->cfg.cwmp_proxy_protocol) ||
        (li == LI_CWMPS && s->group->cfg.cwmps_proxy_protocol))
        c->flags |= F_PROXY;
    hm_timer_init(&c->timer, on_conn_timer);
    socklen_t sl = sizeof(c->peer);
    if (getpeername(res, &c->peer.sa, &sl) == -1)
        c->peer.sa.sa_family = AF_UNSPEC;
    if (s->src && c->listener == HM_LISTENER_CWMP && !(c->flags & F_PROXY) &&
        !src_admit(s, c)) {
        char peer[64];
        hm_sockaddr_str(&c->peer.sa, peer, sizeof(peer));
        HM_CTR_INC(&s->ctr, refused_source);
        HM_LOG_RL(HM_LOG_WARN, "source at its connection limit: refusing connection",
                  "peer=%s limit_per_shard=%u", peer, s->src_limit);
        gate_unpay(s, c);
        c->state = C_FREE;
        s->free_stack[s->nfree++] = idx;
        static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nServer: hems\r\n"
                                  "Retry-After: 10\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        if (li != LI_CWMPS) { /* a TLS client could not read it */
            ssize_t w = send(res, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)w;
        }
        close(res);
        return true;
    }
    if (li == LI_CWMPS) {
        c->tls = hm_tls_conn_new(s->group->tls);
        if (!c->tls) {
            HM_LOG_RL(HM_LOG_ERR, "cannot allocate TLS state: connection closed", "%s", "");
            if (c->src_slot)
                s->src[c->src_slot - 1].count--;
            gate_unpay(s, c);
            c->state = C_FREE;
            s->free_stack[s->nfree++] = idx;
            close(res);
            return true;
        }
    }
    int one = 1;
    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    HM_CTR_INC(&s->ctr, accepted);
    HM_CTR_INC(&s->ctr, active);
    arm_recv(s, c, idx);
    /* A new connection must deliver a request head within the header timeout. */
    set_timer(s, c, s->t.header_ticks);
    return true;
}

/*
 * Next step of a paced listener (core/admission_gate.h): accepts what waits in its queue
 * while the rate has tokens (plain accept4() calls, up to PACE_BATCH: one io_uring accept
 * per loop iteration would tie the accept rate to the loop's), then waits for the next
 * connection with one io_uring accept, or for the next token with a timeout; back to
 * multishot accept and the normal queue once nothing waited for PACE_CALM_MS.
 */
static void pace_next(struct hm_shard *s, unsigned li)
{
    int fd = s->lfd[li];
    if (!s->accepting || fd < 0) {
        s->pace[li].state = PACE_OFF;
        return;
    }
    /* the queue's length, once a sample of its fill; the queue's size the rate wants */
    unsigned queued = accept_queue_len(fd), backlog = s->pace[li].backlog;
    uint64_t wait = accept_pace(s, queued, LISTEN_BACKLOG, &backlog);
    if (queued)
        s->pace[li].busy_tick = s->tick;
    else if (!wait && s->tick - s->pace[li].busy_tick >= PACE_CALM_MS / TICK_MS) {
        listen(fd, LISTEN_BACKLOG);
        s->pace[li].backlog = 0;
        s->pace[li].state = PACE_OFF;
        arm_accept(s, li);
        return;
    }
    /* listen() again only resizes the queue; not for every small change */
    unsigned cur = s->pace[li].backlog;
    if ((backlog * 4 < cur * 3 || backlog * 3 > cur * 4) && listen(fd, (int)backlog) == 0)
        s->pace[li].backlog = backlog;
    for (unsigned n = 0; !wait && queued && n < PACE_BATCH; n++) {
        /* only this shard accepts on its listener: a queued connection does not block */
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            HM_LOG_RL(HM_LOG_WARN, "accept failed", "err=\"%s\"", hm_strerror(-errno));
            break;
        }
        take_conn(s, li, c);
        wait = accept_pace(s, --queued, LISTEN_BACKLOG, NULL);
    }
    struct io_uring_sqe *sqe = get_sqe(s);
    if (!wait) {
        io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, ACCEPT_ONE, li));
        s->pace[li].state = PACE_ACCEPT;
        return;
    }
    wait = HM_MIN(wait, (uint64_t)TICK_MS * 1000);
    s->pace[li].ts = (struct __kernel_timespec){.tv_sec = 0, .tv_nsec = (long long)wait * 1000};
    io_uring_prep_timeout(sqe, &s->pace[li].ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud(OP_PACE, 0, li));
    s->pace[li].state = PACE_WAIT;
}

static void on_accept(struct hm_shard *s, unsigned li, uint64_t u, struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    bool one = ud_gen(u) == ACCEPT_ONE; /* a paced listener's single accept */
    bool stopping = s->pace[li].state == PACE_STOPPING;
    bool ended = one || !(cqe->flags & IORING_CQE_F_MORE);
    if (ended && !one && !stopping && s->accepting && res != -ECANCELED)
        arm_accept(s, li);
    if (res < 0 && res != -ECANCELED)
        HM_LOG_RL(HM_LOG_WARN, "accept failed", "err=\"%s\"", hm_strerror(res));
    if (res >= 0 && !take_conn(s, li, res) && accept_pace && !one &&
        s->pace[li].state == PACE_OFF && s->accepting) {
        /* the rate binds: leave new connections in the kernel's queue from now on */
        s->pace[li].state = PACE_STOPPING;
        s->pace[li].busy_tick = s->tick;
        cancel_op(s, ud(OP_ACCEPT, 0, li));
    }
    if (ended && (one || stopping))
        pace_next(s, li);
}

static void queue_rearm(struct hm_shard *s, struct hm_conn *c)
{
    if (c->flags & F_REARM)
        return;
    c->flags |= F_REARM;
    c->next_rearm = s->rearm_head;
    s->rearm_head = conn_idx(s, c);
}

/*
 * Handles <n> received plaintext bytes at <data> (transient: copied where kept). Returns
 * false when the connection must not be read any more.
 */
static bool on_bytes(struct hm_shard *s, struct hm_conn *c, char *data, size_t n)
{
    if (c->state == C_BUSY || c->rx) {
        size_t cap = s->t.lim.max_head_bytes + s->t.max_body + 65536;
        if (!c->rx)
            c->rx = rx_get(s);
        if (c->rx->b.len + n > cap) {
            if (c->state == C_BUSY)
                c->flags |= F_CLOSE_AFTER; /* answer what is in flight, then close */
            else
                http_error(s, c, c->flags & F_IN_BODY ? HM_EBODYTOOLARGE : HM_EHDRTOOLARGE,
                           "buffered input");
            return false;
        }
        hm_buf_append(&c->rx->b, data, n);
        if (c->state != C_BUSY)
            process(s, c, c->rx->b.base, c->rx->b.len, true);
    } else {
        process(s, c, data, n, false);
    }
    return true;
}

static void tls_refuse(struct hm_shard *s, struct hm_conn *c, const char *what)
{
    char peer[64];
    hm_sockaddr_str(&c->peer.sa, peer, sizeof(peer));
    HM_LOG_RL(HM_LOG_WARN, "TLS connection refused", "what=%s reason=%s detail=\"%s\" peer=%s",
              what, hm_tls_fail_name(hm_tls_conn_fail_reason(c->tls)),
              hm_tls_conn_fail_detail(c->tls), peer);
    /* Send the alert BoringSSL queued, then close. */
    hm_timer_disarm(s->wheel, &c->timer);
    c->state = C_BUSY;
    c->flags |= F_CLOSE_AFTER | F_TLS_RESP;
    tls_flush(s, c);
    if (!(c->flags & F_SENDING))
        conn_close(s, c);
}

/*
 * Ciphertext from the kernel's buffer [data, data+n): handshake, then decrypt record by
 * record into the shard's plaintext buffer and hand that to the HTTP layer. Returns false
 * when the connection must not be read any more.
 */
static bool tls_on_cipher(struct hm_shard *s, struct hm_conn *c, char *data, size_t n)
{
    struct hm_tls_conn *t = c->tls;
    bool go_on = true;
    if (!hm_tls_conn_established(t) && c->state == C_BUSY)
        return false; /* refused: its alert is being sent, the rest is dropped */
    hm_tls_conn_input(t, data, n);
    if (!hm_tls_conn_established(t)) {
        int r = hm_tls_conn_handshake(t);
        if (r == -EPROTO) {
            hm_tls_conn_input(t, NULL, 0);
            tls_refuse(s, c, "handshake");
            return false;
        }
        if (r == 0 && hm_log_min_level <= HM_LOG_DEBUG) {
            const char *id = hm_tls_conn_identity(t);
            hm_debug("TLS handshake done", "version=%s resumed=%d identity=\"%s\"",
                     hm_tls_conn_version(t), hm_tls_conn_resumed(t), id ? id : "");
        }
    }
    while (hm_tls_conn_established(t)) {
        ssize_t r = hm_tls_conn_read(t, s->tls_plain, HM_TLS_PLAIN_MAX);
        if (r == -EAGAIN)
            break;
        if (r <= 0) {
            /* close_notify or a bad record: nothing more will be read. */
            go_on = false;
            if (r < 0)
                HM_CTR_INC(&s->ctr, io_errors);
            if (c->state == C_BUSY)
                c->flags |= F_CLOSE_AFTER;
            else
                conn_close(s, c);
            break;
        }
        if (!on_bytes(s, c, s->tls_plain, (size_t)r) || c->state == C_FREE ||
            c->state == C_CLOSING) {
            go_on = false;
            break;
        }
    }
    if (c->state == C_FREE || c->state == C_CLOSING)
        return false;
    hm_tls_conn_input(t, NULL, 0);
    tls_flush(s, c); /* handshake flights, tickets, alerts */
    return go_on;
}

/*
 * The PROXY header of a CWMPS connection (TLS passthrough balancer), before the ClientHello.
 * 1: parsed, [*data, *data + *n) is what follows it, in the kernel's buffer or in *held (an rx
 * buffer the caller releases once the TLS layer is done with it); 0: incomplete, the bytes
 * wait in c->rx (a v2 header is at most HM_PROXY_V2_DEFAULT_MAX bytes); -1: refused, closed.
 */
static int tls_proxy(struct hm_shard *s, struct hm_conn *c, char **data, size_t *n,
                     struct rxbuf **held)
{
    char *p = *data;
    size_t len = *n;
    if (c->rx) {
        hm_buf_append(&c->rx->b, p, len);
        p = c->rx->b.base;
        len = c->rx->b.len;
    }
    struct hm_proxy_hdr ph;
    ssize_t r = hm_proxy_parse(p, len, &ph, 0);
    if (r == -EAGAIN) {
        if (!c->rx) {
            c->rx = rx_get(s);
            hm_buf_append(&c->rx->b, p, len);
        }
        return 0;
    }
    if (r < 0) {
        proxy_refused(s, c);
        if (c->rx) {
            rx_put(s, c->rx);
            c->rx = NULL;
        }
        conn_close(s, c);
        return -1;
    }
    proxy_apply(c, &ph);
    *held = c->rx; /* detached: the HTTP layer may need c->rx for plaintext */
    c->rx = NULL;
    *data = p + r;
    *n = len - (size_t)r;
    return 1;
}

static bool tls_on_bytes(struct hm_shard *s, struct hm_conn *c, char *data, size_t n)
{
    if (HM_LIKELY(!(c->flags & F_PROXY)))
        return tls_on_cipher(s, c, data, n);
    struct rxbuf *held = NULL;
    int r = tls_proxy(s, c, &data, &n, &held);
    if (r <= 0)
        return r == 0;
    bool go_on = n ? tls_on_cipher(s, c, data, n) : true;
    if (held)
        rx_put(s, held);
    return go_on;
}

static void on_recv(struct hm_shard *s, struct io_uring_cqe *cqe)
{
    uint64_t u = cqe->user_data;
    int res = cqe->res;
    bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
    uint32_t bid = has_buf ? cqe->flags >> IORING_CQE_BUFFER_SHIFT : 0;
    struct hm_conn *c = ud_idx(u) < s->nconns ? &s->conns[ud_idx(u)] : NULL;
    if (!c || c->gen != ud_gen(u) || c->state == C_FREE || c->state == C_CLOSING) {
        if (has_buf)
            recycle_buf(s, bid);
        return;
    }
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more)
        c->flags &= (uint16_t)~F_RECV_ARMED;
    if (res > 0) {
        char *data = s->bufs + (size_t)bid * s->bufsz;
        HM_CTR_ADD(&s->ctr, bytes_in, (uint64_t)res);
        bool go_on = c->tls ? tls_on_bytes(s, c, data, (size_t)res)
                            : on_bytes(s, c, data, (size_t)res);
        recycle_buf(s, bid);
        if (go_on && !more && c->state != C_FREE && c->state != C_CLOSING)
            arm_recv(s, c, ud_idx(u));
        return;
    }
    if (has_buf)
        recycle_buf(s, bid);
    if (res == 0 && c->tls && !hm_tls_conn_established(c->tls))
        hm_tls_conn_count_closed(c->tls);
    if (res == -ENOBUFS) {
        HM_CTR_INC(&s->ctr, recv_nobufs);
        queue_rearm(s, c);
        return;
    }
    if (res == 0 || res == -ECONNRESET) {
        conn_close(s, c);
        return;
    }
    if (res == -ECANCELED)
        return;
    HM_CTR_INC(&s->ctr, io_errors);
    HM_LOG_RL(HM_LOG_WARN, "recv failed", "err=\"%s\"", hm_strerror(res));
    conn_close(s, c);
}

static void close_all(struct hm_shard *s, bool idle_only)
{
    for (uint32_t i = 0; i < s->nconns; i++) {
        struct hm_conn *c = &s->conns[i];
        if (c->state == C_FREE || c->state == C_CLOSING)
            continue;
        if (!idle_only || c->state == C_IDLE)
            conn_close(s, c);
        else
            c->flags |= F_CLOSE_AFTER;
    }
}

static void on_drain_timeout(struct hm_timer *t)
{
    struct hm_shard *s = HM_CONTAINER_OF(t, struct hm_shard, drain_timer);
    unsigned long n = (unsigned long)atomic_load(&s->ctr.active);
    if (n)
        hm_warn("shutdown timeout: closing connections still open", "connections=%lu", n);
    close_all(s, false);
}

static void on_stop(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)m;
    if (s->draining)
        return;
    s->draining = true;
    atomic_store(&s->draining_pub, true);
    s->accepting = false;
    for (unsigned i = 0; i < NLISTEN; i++) {
        if (s->lfd[i] < 0)
            continue;
        cancel_op(s, ud(OP_ACCEPT, 0, i));
        cancel_op(s, ud(OP_ACCEPT, ACCEPT_ONE, i));
        close(s->lfd[i]);
        s->lfd[i] = -1;
    }
    close_all(s, true);
    hm_timer_init(&s->drain_timer, on_drain_timeout);
    hm_timer_arm(s->wheel, &s->drain_timer, s->t.shutdown_ticks);
}

static void on_reload(struct hm_shard *s, struct hm_shard_msg *m)
{
    struct reload_msg *r = HM_CONTAINER_OF(m, struct reload_msg, m);
    s->t = r->t;
    free(r);
}

static void update_date(struct hm_shard *s)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static void handle_cqe(struct hm_shard *s, struct io_uring_cqe *cqe)
{
    uint64_t u = cqe->user_data;
    switch (ud_op(u)) {
    case OP_RECV:
        on_recv(s, cqe);
        break;
    case OP_SEND: {
        struct hm_conn *c = &s->conns[ud_idx(u)];
        if (c->gen == ud_gen(u) && (c->flags & F_SENDING))
            on_send(s, c, cqe->res);
        break;
    }
    case OP_ACCEPT:
        on_accept(s, ud_idx(u), u, cqe);
        break;
    case OP_TICK: {
        uint64_t t = now_tick();
        if (t / 10 != s->tick / 10)
            update_date(s);
        s->tick = t;
        hm_timerwheel_run(s->wheel, t);
        if (syn_shed && s->accepting)
            apply_syn_shed(s);
        arm_tick(s);
        break;
    }
    case OP_EVENTFD: {
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&s->inbox);
        while (n) {
            struct hm_mpsc_node *next = n->next;
            struct hm_shard_msg *m = HM_CONTAINER_OF(n, struct hm_shard_msg, node);
            m->fn(s, m);
            n = next;
        }
        arm_eventfd(s);
        break;
    }
    case OP_PACE:
        if (s->pace[ud_idx(u)].state == PACE_WAIT)
            pace_next(s, ud_idx(u));
        break;
    case OP_SEND_CONT:
    case OP_CANCEL:
        break;
    }
}

static void rearm_waiting(struct hm_shard *s)
{
    while (s->rearm_head != UINT32_MAX) {
        struct hm_conn *c = &s->conns[s->rearm_head];
        s->rearm_head = c->next_rearm;
        if (!(c->flags & F_REARM))
            continue;
        c->flags &= (uint16_t)~F_REARM;
        if (c->state != C_FREE && c->state != C_CLOSING && !(c->flags & F_RECV_ARMED))
            arm_recv(s, c, conn_idx(s, c));
    }
}

static int setup_ring(struct hm_shard *s, char *err, size_t errlen)
{
    struct io_uring_params p;
    unsigned entries = 4096;
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE,
        IORING_SETUP_CQSIZE,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < HM_ARRAY_SIZE(flag_sets); i++) {
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i];
        p.cq_entries = entries * 4;
        r = io_uring_queue_init_params(entries, &s->ring, &p);
        if (r == 0) {
            if (s->id == 0)
                hm_info("io_uring ready", "entries=%u cq=%u defer_taskrun=%d", entries,
                        p.cq_entries, i == 0);
            break;
        }
    }
    if (r < 0) {
        snprintf(err, errlen, "io_uring_queue_init: %s (is io_uring disabled by sysctl "
                 "kernel.io_uring_disabled or a seccomp profile?)", strerror(-r));
        return r;
    }
    s->ring_ok = true;

    s->br_bytes = s->nbufs * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, s->br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
                     0);
    if (mem == MAP_FAILED) {
        snprintf(err, errlen, "mmap buffer ring: %s", strerror(errno));
        return -errno;
    }
    s->br = mem;
    io_uring_buf_ring_init(s->br);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)s->br,
                                   .ring_entries = s->nbufs,
                                   .bgid = BGID};
    r = io_uring_register_buf_ring(&s->ring, &reg, 0);
    if (r < 0) {
        snprintf(err, errlen, "io_uring_register_buf_ring: %s (needs Linux 5.19 or later)",
                 strerror(-r));
        return r;
    }
    s->bufs = hm_xmalloc((size_t)s->nbufs * s->bufsz);
    /* Faulted in now, a fixed cost paid at start: else the kernel faults these pages in one
     * by one on the receive path as the ring cycles, and resident memory creeps up by up to
     * nbufs * bufsz under load while looking like per-connection growth. */
    memset(s->bufs, 0, (size_t)s->nbufs * s->bufsz);
    for (uint32_t i = 0; i < s->nbufs; i++)
        recycle_buf(s, i);
    io_uring_buf_ring_advance(s->br, (int)s->buf_returned);
    s->buf_returned = 0;
    return 0;
}

static void *shard_main(void *arg)
{
    struct hm_shard *s = arg;
    char err[256] = "";
    hm_log_shard = (int)s->id;
    cur_shard = s;
    if (s->group->cfg.pin_threads) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(s->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
            hm_warn("could not pin shard thread", "cpu=%d", s->cpu);
    }
    int r = setup_ring(s, err, sizeof(err));
    if (r < 0) {
        hm_err("shard failed to start", "cause=\"%s\"", err);
        s->start_rc = r;
        sem_post(s->started);
        return NULL;
    }
    s->tick = now_tick();
    hm_timerwheel_init(s->wheel, s->tick);
    update_date(s);
    s->tick_ts = (struct __kernel_timespec){.tv_sec = 0, .tv_nsec = TICK_MS * 1000000L};
    s->accepting = true;
    for (unsigned i = 0; i < NLISTEN; i++)
        if (s->lfd[i] >= 0)
            arm_accept(s, i);
    arm_eventfd(s);
    arm_tick(s);
    atomic_store(&s->running, true);
    sem_post(s->started);

    for (;;) {
        if (s->draining && atomic_load_explicit(&s->ctr.active, memory_order_relaxed) == 0)
            break;
        r = io_uring_submit_and_wait(&s->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            hm_err("io_uring_submit_and_wait failed", "err=\"%s\"", hm_strerror(r));
            break;
        }
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&s->ring, head, cqe)
        {
            handle_cqe(s, cqe);
            n++;
        }
        io_uring_cq_advance(&s->ring, n);
        if (s->buf_returned) {
            io_uring_buf_ring_advance(s->br, (int)s->buf_returned);
            s->buf_returned = 0;
        }
        if (s->rearm_head != UINT32_MAX)
            rearm_waiting(s);
    }
    atomic_store(&s->running, false);
    /* Slots still waiting for a cancelled send are released by io_uring_queue_exit. */
    io_uring_queue_exit(&s->ring);
    s->ring_ok = false;
    return NULL;
}

/* ---- creation and control (main thread) ---- */

static int make_listener(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int alen = hm_parse_hostport(addr, &ss);
    if (alen < 0) {
        snprintf(err, errlen, "'%s' is not address:port", addr);
        return HM_EBADCONF;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
        bind(fd, (struct sockaddr *)&ss, (socklen_t)alen) == -1 || listen(fd, LISTEN_BACKLOG) == -1) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

static uint32_t size_connections(const struct hm_config *cfg, unsigned nshards)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t fds = rl.rlim_cur == RLIM_INFINITY ? (1u << 24) : rl.rlim_cur;
    uint64_t usable = fds > FD_RESERVE + 4ull * nshards ? fds - FD_RESERVE - 4ull * nshards : 16;
    if (cfg->max_connections && cfg->max_connections < usable)
        usable = cfg->max_connections;
    uint64_t per = usable / nshards;
    if (per < 1)
        per = 1;
    if (per > (1u << 24))
        per = 1u << 24;
    return (uint32_t)per;
}

struct hm_shards *hm_shards_create(const struct hm_config *cfg, const struct hm_route *routes,
                                   unsigned nroutes, char *err, size_t errlen)
{
    struct hm_shards *g = hm_xcalloc(1, sizeof(*g));
    hm_config_copy(&g->cfg, cfg);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    g->n = cfg->shards ? (unsigned)cfg->shards : (unsigned)ncpu;
    g->routes = hm_xcalloc(nroutes ? nroutes : 1, sizeof(*routes));
    memcpy(g->routes, routes, nroutes * sizeof(*routes));
    g->nroutes = nroutes;
    g->conns_per_shard = size_connections(cfg, g->n);
    sem_init(&g->started, 0, 0);
    g->s = hm_xcalloc(g->n, sizeof(*g->s));
    const char *addrs[NLISTEN] = {cfg->cwmp_listen, cfg->admin_listen, cfg->cwmps_listen};
    if (*cfg->cwmps_listen) {
        g->tls = hm_tls_create(cfg, err, errlen);
        if (!g->tls)
            goto fail;
    }
    for (unsigned i = 0; i < g->n; i++) {
        struct hm_shard *s = aligned_alloc(HM_CACHELINE, sizeof(*s) + HM_CACHELINE -
                                                             sizeof(*s) % HM_CACHELINE);
        if (!s)
            abort();
        memset(s, 0, sizeof(*s));
        g->s[i] = s;
        s->group = g;
        s->id = i;
        s->cpu = (int)(i % (unsigned)ncpu);
        s->efd = -1;
        s->started = &g->started;
        s->rearm_head = UINT32_MAX;
        s->nbufs = (uint32_t)cfg->recv_buffers;
        s->bufsz = (uint32_t)cfg->recv_buffer_size;
        tunables_from(&s->t, cfg);
        s->wheel = hm_xmalloc(sizeof(*s->wheel));
        s->nconns = g->conns_per_shard;
        s->conns = hm_xcalloc(s->nconns, sizeof(*s->conns));
        s->free_stack = hm_xmalloc(s->nconns * sizeof(uint32_t));
        for (uint32_t k = 0; k < s->nconns; k++)
            s->free_stack[k] = s->nconns - 1 - k;
        s->nfree = s->nconns;
        s->stop_msg.fn = on_stop;
        if (cfg->max_per_source) {
            uint32_t cap = 1024;
            while (cap < s->nconns * 2 && cap < (1u << 24))
                cap *= 2;
            s->src = hm_xcalloc(cap, sizeof(*s->src));
            s->src_mask = cap - 1;
            s->src_limit = (uint32_t)((cfg->max_per_source + g->n - 1) / g->n);
        }
        for (unsigned l = 0; l < NLISTEN; l++)
            s->lfd[l] = -1;
        if (g->tls)
            s->tls_plain = hm_xmalloc(HM_TLS_PLAIN_MAX);
        s->efd = eventfd(0, EFD_CLOEXEC);
        if (s->efd == -1) {
            snprintf(err, errlen, "eventfd: %s", strerror(errno));
            goto fail;
        }
        for (unsigned l = 0; l < NLISTEN; l++) {
            if (!*addrs[l])
                continue;
            int fd = make_listener(addrs[l], err, errlen);
            if (fd < 0)
                goto fail;
            s->lfd[l] = fd;
        }
    }
    hm_info("shards created", "shards=%u connections_per_shard=%u cwmp=%s admin=%s cwmps=%s",
            g->n, g->conns_per_shard, cfg->cwmp_listen, cfg->admin_listen,
            *cfg->cwmps_listen ? cfg->cwmps_listen : "off");
    return g;
fail:
    hm_shards_destroy(g);
    return NULL;
}

int hm_shards_start(struct hm_shards *g)
{
    unsigned started = 0;
    int rc = 0;
    for (unsigned i = 0; i < g->n; i++) {
        struct hm_shard *s = g->s[i];
        int r = pthread_create(&s->thread, NULL, shard_main, s);
        if (r != 0) {
            hm_err("cannot start shard thread", "err=\"%s\"", strerror(r));
            rc = -r;
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        sem_wait(&g->started);
    for (unsigned i = 0; i < started; i++)
        if (g->s[i]->start_rc < 0)
            rc = g->s[i]->start_rc;
    if (started < g->n) {
        for (unsigned i = started; i < g->n; i++)
            g->s[i]->start_rc = rc ? rc : -EAGAIN;
    }
    return rc;
}

void hm_shard_post(struct hm_shard *s, struct hm_shard_msg *m)
{
    if (hm_mpsc_push(&s->inbox, &m->node)) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof(one));
        (void)w;
    }
}

void hm_shards_stop(struct hm_shards *g)
{
    for (unsigned i = 0; i < g->n; i++)
        if (atomic_load(&g->s[i]->running))
            hm_shard_post(g->s[i], &g->s[i]->stop_msg);
}

void hm_shards_join(struct hm_shards *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        struct hm_shard *s = g->s[i];
        if (s->start_rc == 0 && s->thread)
            pthread_join(s->thread, NULL);
        s->thread = 0;
    }
}

void hm_shards_drain_inboxes(struct hm_shards *g)
{
    for (unsigned i = 0; i < g->n; i++) {
        struct hm_shard *s = g->s[i];
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&s->inbox);
        cur_shard = s;
        while (n) {
            struct hm_mpsc_node *next = n->next;
            struct hm_shard_msg *m = HM_CONTAINER_OF(n, struct hm_shard_msg, node);
            if (m->fn != on_stop) /* the ring is gone: nothing left to stop */
                m->fn(s, m);
            n = next;
        }
        cur_shard = NULL;
    }
}

void hm_shards_reload(struct hm_shards *g, const struct hm_config *cfg)
{
    for (unsigned i = 0; i < g->n; i++) {
        struct reload_msg *r = hm_xcalloc(1, sizeof(*r));
        r->m.fn = on_reload;
        tunables_from(&r->t, cfg);
        hm_shard_post(g->s[i], &r->m);
    }
    if (g->tls) {
        char err[512];
        if (hm_tls_reload(g->tls, cfg, err, sizeof(err)) < 0)
            hm_err("TLS reload refused: keeping the running certificates", "cause=\"%s\"", err);
        else
            hm_info("TLS certificates reloaded", "cert=\"%s\"", cfg->tls_cert);
    }
}

void hm_shards_destroy(struct hm_shards *g)
{
    if (!g)
        return;
    for (unsigned i = 0; g->s && i < g->n; i++) {
        struct hm_shard *s = g->s[i];
        if (!s)
            continue;
        for (unsigned l = 0; l < NLISTEN; l++)
            if (s->lfd[l] >= 0)
                close(s->lfd[l]);
        if (s->efd >= 0)
            close(s->efd);
        for (uint32_t k = 0; k < s->nconns; k++) {
            struct hm_conn *c = &s->conns[k];
            if (c->state != C_FREE && c->state != C_CLOSING && c->fd >= 0)
                close(c->fd);
            if (c->rx) {
                hm_buf_free(&c->rx->b);
                free(c->rx);
            }
            if (c->tx) {
                hm_buf_free(&c->tx->hdr);
                hm_buf_free(&c->tx->body);
                hm_buf_free(&c->tx->xhdr);
                free(c->tx);
            }
            hm_tls_conn_free(c->tls);
        }
        while (s->rx_free) {
            struct rxbuf *r = s->rx_free;
            s->rx_free = r->next;
            hm_buf_free(&r->b);
            free(r);
        }
        while (s->tx_free) {
            struct tx *t = s->tx_free;
            s->tx_free = t->next;
            hm_buf_free(&t->hdr);
            hm_buf_free(&t->body);
            hm_buf_free(&t->xhdr);
            free(t);
        }
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&s->inbox);
        while (n) {
            struct hm_mpsc_node *next = n->next;
            struct hm_shard_msg *m = HM_CONTAINER_OF(n, struct hm_shard_msg, node);
            if (m->fn == on_reload)
                free(HM_CONTAINER_OF(m, struct reload_msg, m));
            n = next;
        }
        if (s->br)
            munmap(s->br, s->br_bytes);
        free(s->bufs);
        free(s->tls_plain);
        free(s->src);
        free(s->conns);
        free(s->free_stack);
        free(s->wheel);
        free(s);
    }
    free(g->s);
    hm_tls_destroy(g->tls);
    free(g->routes);
    hm_config_free(&g->cfg);
    sem_destroy(&g->started);
    free(g);
}

unsigned hm_shards_count(const struct hm_shards *g)
{
    return g->n;
}

struct hm_shard *hm_shards_get(struct hm_shards *g, unsigned i)
{
    return i < g->n ? g->s[i] : NULL;
}

uint32_t hm_shards_conns_per_shard(const struct hm_shards *g)
{
    return g->conns_per_shard;
}

unsigned hm_shard_id(const struct hm_shard *s)
{
    return s->id;
}

struct hm_shards *hm_shard_group(struct hm_shard *s)
{
    return s->group;
}

struct hm_shard_counters *hm_shard_counters(struct hm_shard *s)
{
    return &s->ctr;
}

bool hm_shard_draining(const struct hm_shard *s)
{
    return atomic_load(&s->draining_pub);
}

bool hm_shards_ready(struct hm_shards *g)
{
    for (unsigned i = 0; i < g->n; i++)
        if (!atomic_load(&g->s[i]->running) || atomic_load(&g->s[i]->draining_pub))
            return false;
    return true;
}

void hm_shard_set_app(struct hm_shard *s, void *app)
{
    s->app = app;
}

void *hm_shard_app(struct hm_shard *s)
{
    return s->app;
}

void hm_shards_render_metrics(struct hm_shards *g, struct hm_buf *out)
{
    struct hm_shard_counters *cs[1024];
    unsigned n = g->n < 1024 ? g->n : 1024;
    for (unsigned i = 0; i < n; i++)
        cs[i] = &g->s[i]->ctr;
    hm_metrics_render_shards(out, cs, n);
    hm_buf_append_lit(out, "# HELP hems_connection_slots connection table size over all shards\n"
                           "# TYPE hems_connection_slots gauge\nhems_connection_slots ");
    hm_buf_append_u64(out, (unsigned long long)g->conns_per_shard * g->n);
    hm_buf_append_lit(out, "\n# HELP hems_shards reactor threads\n# TYPE hems_shards gauge\n"
                           "hems_shards ");
    hm_buf_append_u64(out, g->n);
    hm_buf_append_lit(out, "\n");
    if (g->tls)
        hm_tls_render_metrics(g->tls, out);
}
