/*
 * hems-loadgen worker: one event loop (io_uring, or epoll for hold and TLS), many simulated
 * devices. See bench/loadgen.h and docs/loadgen.md ("Engines", how time is measured).
 *
 * Device life cycle:
 *   IDLE --due--> CONNECTING --writable--> SENDING --sent--> RECEIVING --response-->
 *     (next request: SENDING | session over: IDLE/DONE | hold: HELD)
 *   any failure --> IDLE with a TR-069 backoff (CWMP scenarios), or session failed.
 * Every device has exactly one timer key (dev->due) in a binary min-heap: its next start
 * while IDLE/HELD, its I/O deadline while a connection is active.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "bench/loadgen_cpe.h"
#include "bench/loadgen_cr.h"
#include "bench/loadgen_dl.h"
#include "bench/loadgen_http.h"
#include "bench/pm_gen.h"
#include "core/buf.h"
#include "proto/auth.h"
#include "proto/http1.h"
#include "bench/loadgen_tls.h"

#define NS 1000000000ull
#define RX_INITIAL 4096
#define RX_MAX (4u << 20)
#define ARENA_SIZE (256u << 10)
#define MAX_EVENTS 256

enum dev_state {
    D_IDLE = 0,  /* no connection; due = next session start (or retry) */
    D_CONNECTING,
    D_SENDING,
    D_RECEIVING,
    D_HELD,      /* hold: connection open and idle; due = next activity (or never) */
    D_CONNFAIL,  /* socket/bind/connect failed at once; due = when to report it */
    D_DONE,      /* boot: booted; never scheduled again */
};

enum dev_step {
    S_HEALTHZ = 0, /* a /healthz request */
    S_INFORM,      /* the Inform */
    S_EMPTY,       /* the empty POST */
    S_ANSWER,      /* the answer to an ACS request */
    S_PM,          /* a PM file upload */
};

/* Per-connection buffers, borrowed from the worker's free list while a device is active. */
struct io {
    struct io *next_free;
    struct io *all_next;      /* every io of the worker (freed at the end) */
    uint32_t owner;           /* io_uring: index of the device using it */
    uint8_t inflight;         /* io_uring: operations submitted and not completed */
    bool orphan;              /* io_uring: released while operations were in flight:
                                 back on the free list when the last one completes */
    struct hm_buf tx;
    size_t tx_off;
    char *rx;
    size_t rx_len, rx_cap;
    ssize_t head_len;         /* 0 until the response head is parsed */
    size_t body_end;          /* chunked: end of the decoded body bytes in rx */
    struct hm_lg_resp resp;
    struct hm_http_chunked ch;
    struct hm_lg_cookie_jar jar;
    struct {
        bool active;          /* send Authorization on every request of this attempt */
        bool qop, sess;
        uint8_t challenges;   /* 401s answered in this attempt */
        uint8_t nonce_len, realm_len, opaque_len;
        uint32_t nc;
        char ha1[HM_AUTH_HEX_LEN + 1];
        char cnonce[17];
        char nonce[128], realm[128], opaque[128];
    } auth;                   /* Digest state (about 450 bytes, only while active) */
    uint64_t attempt_start;   /* start of the device's current attempt, ns */
    uint64_t connected;       /* its TCP connection established, ns (0: not yet) */
    bool reconnect;
    bool reconnect_seen;      /* a reconnect happened since the last challenge */           /* the server asked to close: next request on a new connection */
};

struct dev {
    int fd;
    uint32_t heap;            /* position in the timer heap + 1; 0 = not armed */
    uint64_t due;             /* timer key, ns */
    uint64_t intended;        /* intended start of the current session, ns */
    uint64_t slot;            /* open loop: number of the next grid slot */
    uint64_t phase;           /* open loop: offset of slot 0 from t0, ns */
    uint64_t xstart;          /* start of the current exchange (or connect), ns */
    struct io *io;
    uint32_t cwmp_id;         /* cwmp:ID counter of this device */
    uint16_t retries;         /* consecutive failed attempts of the current session */
    uint16_t nreq;            /* exchanges in the current session */
    uint8_t state;            /* enum dev_state */
    uint8_t step;             /* enum dev_step */
    uint8_t target;           /* discovery: index in worker.targets (0: --target) */
    uint8_t next_target;      /* discovery: the ACS URL set in this session */
    bool sent_empty : 1;      /* the empty POST of this session is sent */
    bool in_session : 1;
    bool held : 1;
    bool alarm_up : 1;        /* alarms: the last Inform raised (next one clears) */
    bool registered : 1;      /* discovery: registered at its serving node (next: periodic) */
    bool cr_pending : 1;      /* a connection request arrived: start a session when idle */
    bool cr_session : 1;      /* the current session answers a connection request */
    bool pm_next : 1;         /* --pm-after-register: the next attempt is the PM upload */
    bool pm_done : 1;         /* --pm-after-register: uploaded once */
    uint8_t life_retries;     /* retries over the run, all sessions (saturates at 255) */
    uint8_t unreachable;      /* discovery: consecutive attempts that found no server
                                 (connect failure, timeout, closed without an answer); a
                                 shed (503, 8005) does not count */
};

HM_BUILD_ASSERT(sizeof(struct dev) <= 72); /* docs/loadgen.md: "a 72-byte struct dev" */

/* Where a device's CWMP requests go: --target, or a URL an ACS redirected it to. */
struct target {
    struct sockaddr_in addr;
    char host[80];            /* Host header */
    char path[64];
};

struct worker {
    const struct hm_lg_config *cfg;
    struct target targets[HM_LG_MAX_TARGETS];
    uint8_t ntargets;
    uint64_t alarm_seq;       /* alarms: EventTime offset, unique per Inform of the worker */
    struct hm_lg_cr *cr;      /* Connection Request listener, or NULL */
    struct hm_lg_dl *dl;      /* downloads (bench/loadgen_dl.h), or NULL */
    struct hm_buf pm_tmpl;    /* pm: a file of device 0 for period 0, patched per upload */
    size_t pm_sender_off[4], pm_t0_off[2], pm_t1_off[8];
    uint8_t n_sender, n_t0, n_t1;
    unsigned id;
    int ep, out_fd;
    struct dev *devs;
    uint32_t ndev;
    uint64_t first_idx;       /* global index of devs[0] */
    uint64_t scatter_step;    /* --scatter-serials: hm_lg_scatter_step(devices), else 0 */
    uint32_t *heap;
    uint32_t nheap;
    struct io *free_io;
    uint32_t *fifo;           /* closed loop: idle devices, ring */
    uint32_t fifo_head, fifo_len;
    bool open_loop, stopping;
    uint64_t period;          /* open loop: ns between a device's sessions */
    uint64_t quota;           /* sessions to start; 0 = unlimited */
    uint32_t concurrency;     /* closed loop: this worker's share */
    uint32_t active;          /* devices in a session (including backoff waits) */
    uint32_t done;            /* boot: devices booted or given up */
    uint64_t t_end, t_drain;
    uint64_t rng;
    struct hm_buf body;       /* scratch for building request bodies */
    struct hm_soap_arena arena, scratch; /* ACS message parse; the CPE's own re-parse */
    char *arena_mem, *scratch_mem;
    struct hm_lg_cpe *cpe;
    struct hm_lg_stats st;
    struct hm_lg_hist window; /* exchange latency of the last progress second */
    struct hm_lg_cpe_id ident; /* scratch identity of the device being served */
    const char *pm_user; /* while building a PM upload with provisioned credentials */
    char serial[32];
    struct hm_lg_tls *tls;          /* --tls: the client context; NULL: plain TCP */
    struct ssl_st **ssl;            /* per device: its TLS connection (NULL: none) */
    struct ssl_session_st **sess;   /* per device: the session to resume (--tls-resume) */
    struct io *all_io;              /* every io allocated (freed by worker_fini) */
    bool uring;                     /* the io_uring engine (else epoll) */
    bool ep_armed;                  /* io_uring: the epoll fd (CR listener) is polled */
    uint32_t ops;                   /* io_uring: operations in flight */
    struct io_uring ring;
};

volatile sig_atomic_t hm_lg_stop_requested;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static double rnd01(struct worker *w)
{
    return (double)(rnd(w) >> 11) / 9007199254740992.0;
}

/* ---- timer heap ---- */

static bool heap_less(struct worker *w, uint32_t a, uint32_t b)
{
    return w->devs[a].due < w->devs[b].due;
}

static void heap_place(struct worker *w, uint32_t pos, uint32_t d)
{
    w->heap[pos] = d;
    w->devs[d].heap = pos + 1;
}

static void heap_up(struct worker *w, uint32_t pos)
{
    uint32_t d = w->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!heap_less(w, d, w->heap[parent]))
            break;
        heap_place(w, pos, w->heap[parent]);
        pos = parent;
    }
    heap_place(w, pos, d);
}

static void heap_down(struct worker *w, uint32_t pos)
{
    uint32_t d = w->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && heap_less(w, w->heap[c + 1], w->heap[c]))
            c++;
        if (!heap_less(w, w->heap[c], d))
            break;
        heap_place(w, pos, w->heap[c]);
        pos = c;
    }
    heap_place(w, pos, d);
}

static void timer_del(struct worker *w, struct dev *dv)
{
    if (!dv->heap)
        return;
    uint32_t pos = dv->heap - 1;
    dv->heap = 0;
    w->nheap--;
    if (pos == w->nheap)
        return;
    heap_place(w, pos, w->heap[w->nheap]);
    heap_up(w, pos);
    heap_down(w, w->devs[w->heap[pos]].heap - 1);
}

static void timer_set(struct worker *w, struct dev *dv, uint64_t due)
{
    uint32_t d = (uint32_t)(dv - w->devs);
    timer_del(w, dv);
    dv->due = due;
    w->heap[w->nheap] = d;
    dv->heap = ++w->nheap;
    heap_up(w, w->nheap - 1);
}

/* ---- buffers ---- */

static struct io *io_get(struct worker *w)
{
    struct io *io = w->free_io;
    if (io)
        w->free_io = io->next_free;
    else {
        /* grows to the peak number of active connections, then steady state reuses */
        io = hm_xcalloc(1, sizeof(*io));
        io->rx = hm_xmalloc(RX_INITIAL);
        io->rx_cap = RX_INITIAL;
        io->all_next = w->all_io;
        w->all_io = io;
    }
    io->orphan = false;
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    io->rx_len = 0;
    io->head_len = 0;
    io->body_end = 0;
    io->jar.len = 0;
    io->auth.active = false;
    io->auth.challenges = 0;
    io->reconnect = io->reconnect_seen = false;
    return io;
}

static void io_put(struct worker *w, struct dev *dv)
{
    if (!dv->io)
        return;
    if (dv->io->inflight) /* io_uring: its buffers are still the kernel's */
        dv->io->orphan = true;
    else {
        dv->io->next_free = w->free_io;
        w->free_io = dv->io;
    }
    dv->io = NULL;
}

/* ---- io_uring engine: see docs/loadgen.md ("Engines") ----
 * user_data of an operation = its struct io (8-byte aligned) | OP_*; 0 = no completion
 * wanted. The io is not reused while any of its operations is in flight (io->inflight). */
enum { OP_NONE = 0, OP_CONNECT, OP_SEND, OP_RECV, OP_EPOLL };
#define URING_SQ 4096u
#define URING_CQ 65536u

static struct io_uring_sqe *sqe_get(struct worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    while (!sqe) { /* the ring is full: hand it to the kernel now */
        (void)io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

static void sqe_tag(struct worker *w, struct io_uring_sqe *sqe, struct io *io, unsigned op)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io | op);
    io->inflight++;
    w->ops++;
}

static void uring_close(struct worker *w, int fd)
{
    struct io_uring_sqe *sqe = sqe_get(w);
    io_uring_prep_close(sqe, fd);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, OP_NONE);
}

static void uring_recv(struct worker *w, struct dev *dv)
{
    struct io *io = dv->io;
    struct io_uring_sqe *sqe = sqe_get(w);
    io_uring_prep_recv(sqe, dv->fd, io->rx + io->rx_len, io->rx_cap - io->rx_len, 0);
    sqe_tag(w, sqe, io, OP_RECV);
}

/* Submits [connect ->] send of the rest of tx -> recv of the answer, linked: one batch,
 * no wakeup between them. MSG_WAITALL: the kernel completes the whole send itself. */
static void uring_exchange(struct worker *w, struct dev *dv, bool connect)
{
    struct io *io = dv->io;
    struct io_uring_sqe *sqe;
    if (io_uring_sq_space_left(&w->ring) < 3)
        (void)io_uring_submit(&w->ring); /* a link must not straddle two submissions */
    if (connect) {
        const struct sockaddr_in *to = &w->targets[dv->target].addr;
        sqe = sqe_get(w);
        io_uring_prep_connect(sqe, dv->fd, (const struct sockaddr *)to, sizeof(*to));
        sqe->flags |= IOSQE_IO_LINK;
        sqe_tag(w, sqe, io, OP_CONNECT);
    }
    sqe = sqe_get(w);
    io_uring_prep_send(sqe, dv->fd, io->tx.base + io->tx_off, io->tx.len - io->tx_off,
                       MSG_NOSIGNAL | MSG_WAITALL);
    sqe->flags |= IOSQE_IO_LINK;
    sqe_tag(w, sqe, io, OP_SEND);
    uring_recv(w, dv);
}

static void conn_close(struct worker *w, struct dev *dv)
{
    if (dv->fd < 0)
        return;
    if (dv->held) {
        dv->held = false;
        w->st.held_now--;
    }
    if (w->tls) {
        uint32_t i = (uint32_t)(dv - w->devs);
        hm_lg_tls_close(w->ssl[i], w->cfg->tls_resume ? &w->sess[i] : NULL);
        w->ssl[i] = NULL;
    }
    if (w->uring && !(dv->io && dv->io->inflight)) {
        uring_close(w, dv->fd); /* the usual end of a session: batched, no syscall */
        dv->fd = -1;
        return;
    }
    if (w->uring) /* a timeout or failure: wake the operations still pending on it */
        (void)shutdown(dv->fd, SHUT_RDWR);
    close(dv->fd); /* also removes it from the epoll set */
    dv->fd = -1;
}

/* send()/recv() on the device's connection, through TLS with --tls: bytes, 0 at EOF (recv),
 * or -1 with errno (EAGAIN: wait for the socket; EPROTO: TLS failure). */
static ssize_t conn_send(struct worker *w, struct dev *dv, const void *p, size_t n)
{
    if (!w->tls)
        return send(dv->fd, p, n, MSG_NOSIGNAL);
    ssize_t r = hm_lg_tls_send(w->ssl[dv - w->devs], p, n);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static ssize_t conn_recv(struct worker *w, struct dev *dv, void *p, size_t n)
{
    if (!w->tls)
        return recv(dv->fd, p, n, 0);
    ssize_t r = hm_lg_tls_recv(w->ssl[dv - w->devs], p, n);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ---- identity and requests ---- */

static uint64_t dev_index(struct worker *w, struct dev *dv)
{
    return w->first_idx + (uint64_t)(dv - w->devs);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

uint64_t hm_lg_scatter_step(uint64_t n)
{
    if (n < 3)
        return 0;
    uint64_t a = (uint64_t)((double)n * 0.6180339887498949) | 1;
    while (gcd64(a, n) != 1)
        a += 2;
    return a;
}

/*
 * The serial number of device <idx>. By default first_serial + idx, so devices that come
 * one after another have neighbouring keys in hemsd's store (B-tree appends, the cheapest
 * write pattern there is). --scatter-serials maps idx through hm_lg_scatter() (the step
 * computed once per worker), as a real fleet's arrival order has nothing to do with its
 * serial numbers.
 */
static uint64_t dev_serial(const struct worker *w, uint64_t idx)
{
    return w->cfg->first_serial + hm_lg_scatter(idx, w->cfg->devices, w->scatter_step);
}

static void set_identity(struct worker *w, struct dev *dv)
{
    const struct hm_lg_config *c = w->cfg;
    uint64_t idx = dev_index(w, dv);
    int n = snprintf(w->serial, sizeof(w->serial), "%010llu",
                     (unsigned long long)dev_serial(w, idx));
    w->ident = (struct hm_lg_cpe_id){
        .manufacturer = hm_slice_cstr(c->manufacturer),
        .oui = hm_slice_cstr(c->oui),
        .product_class = hm_slice_cstr(c->product_class),
        .serial = hm_slice(w->serial, (size_t)n),
        .index = idx,
        .cr_port = w->cr ? hm_lg_cr_port(w->cr) : 0,
    };
}

static struct hm_slice digest_user(struct worker *w, char buf[200])
{
    if (w->pm_user) /* a PM upload with the credentials the ACS provisioned */
        return hm_slice_cstr(w->pm_user);
    if (w->cfg->username[0])
        return hm_slice_cstr(w->cfg->username);
    /* TR-069 §3.4.4 recommends OUI-ProductClass-SerialNumber as the CPE's user name */
    int n = snprintf(buf, 200, HM_SLICE_FMT "-" HM_SLICE_FMT "-" HM_SLICE_FMT,
                     HM_SLICE_ARG(w->ident.oui), HM_SLICE_ARG(w->ident.product_class),
                     HM_SLICE_ARG(w->ident.serial));
    return hm_slice(buf, n > 0 && n < 200 ? (size_t)n : 0);
}

/* Appends "Authorization: Digest ..." for the next request (nc incremented). */
static void write_authorization(struct worker *w, struct io *io, const char *method,
                                const char *path)
{
    char ubuf[200], nc[9], resp[HM_AUTH_HEX_LEN + 1];
    struct hm_slice user = digest_user(w, ubuf);
    snprintf(nc, sizeof(nc), "%08x", ++io->auth.nc);
    struct hm_auth_digest d = {.qop_auth = io->auth.qop, .sess = io->auth.sess};
    d.f[HM_AUTH_F_NONCE] = hm_slice(io->auth.nonce, io->auth.nonce_len);
    d.f[HM_AUTH_F_URI] = hm_slice_cstr(path);
    d.f[HM_AUTH_F_NC] = hm_slice(nc, 8);
    d.f[HM_AUTH_F_CNONCE] = hm_slice(io->auth.cnonce, 16);
    hm_auth_digest_response(&d, io->auth.ha1, hm_slice_cstr(method), resp);
    struct hm_buf *b = &io->tx;
    hm_buf_append_lit(b, "Authorization: Digest username=\"");
    hm_buf_append_slice(b, user);
    hm_buf_append_lit(b, "\", realm=\"");
    hm_buf_append(b, io->auth.realm, io->auth.realm_len);
    hm_buf_append_lit(b, "\", nonce=\"");
    hm_buf_append(b, io->auth.nonce, io->auth.nonce_len);
    hm_buf_append_lit(b, "\", uri=\"");
    hm_buf_append_str(b, path);
    hm_buf_append_lit(b, "\", algorithm=");
    if (io->auth.sess)
        hm_buf_append_lit(b, "MD5-sess");
    else
        hm_buf_append_lit(b, "MD5");
    hm_buf_append_lit(b, ", response=\"");
    hm_buf_append(b, resp, HM_AUTH_HEX_LEN);
    hm_buf_append_lit(b, "\"");
    if (io->auth.qop) {
        hm_buf_append_lit(b, ", qop=auth, nc=");
        hm_buf_append(b, nc, 8);
        hm_buf_append_lit(b, ", cnonce=\"");
        hm_buf_append(b, io->auth.cnonce, 16);
        hm_buf_append_lit(b, "\"");
    }
    if (io->auth.opaque_len) {
        hm_buf_append_lit(b, ", opaque=\"");
        hm_buf_append(b, io->auth.opaque, io->auth.opaque_len);
        hm_buf_append_lit(b, "\"");
    }
    hm_buf_append_lit(b, "\r\n");
}

/* Appends the request head for a body of <len> bytes (<ctype>: a SOAP envelope). */
static void write_head(struct worker *w, struct dev *dv, const char *method, const char *path,
                       size_t len, bool soap)
{
    struct io *io = dv->io;
    struct hm_buf *b = &io->tx;
    hm_buf_append_str(b, method);
    hm_buf_append_lit(b, " ");
    hm_buf_append_str(b, path);
    hm_buf_append_lit(b, " HTTP/1.1\r\nHost: ");
    hm_buf_append_str(b, w->targets[dv->target].host);
    hm_buf_append_lit(b, "\r\n");
    if (soap)
        hm_buf_append_lit(b, "Content-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \r\n");
    if (io->auth.active)
        write_authorization(w, io, method, path);
    if (io->jar.len) {
        hm_buf_append_lit(b, "Cookie: ");
        hm_buf_append_slice(b, hm_lg_cookie_header(&io->jar));
        hm_buf_append_lit(b, "\r\n");
    }
    if (len || strcmp(method, "POST") == 0) {
        hm_buf_append_lit(b, "Content-Length: ");
        hm_buf_append_u64(b, len);
        hm_buf_append_lit(b, "\r\n");
    }
    hm_buf_append_lit(b, "\r\n");
}

static void build_healthz(struct worker *w, struct dev *dv)
{
    struct io *io = dv->io;
    if (io->auth.active && !w->cfg->username[0])
        set_identity(w, dv);
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    if (w->cfg->healthz_post) {
        write_head(w, dv, "POST", w->cfg->healthz_path, w->cfg->body_size, false);
        hm_buf_reserve(&io->tx, w->cfg->body_size);
        memset(io->tx.base + io->tx.len, 'x', w->cfg->body_size);
        io->tx.len += w->cfg->body_size;
    } else {
        write_head(w, dv, "GET", w->cfg->healthz_path, 0, false);
    }
    dv->step = S_HEALTHZ;
}

/* --ipsec-change-every K: the device's address generation is its session number / K. */
static bool ipsec_changing(const struct worker *w, const struct dev *dv)
{
    uint32_t k = w->cfg->ipsec_every;
    return k && dv->slot && dv->slot % k == 0 && !dv->cr_session;
}

static void build_inform(struct worker *w, struct dev *dv)
{
    set_identity(w, dv);
    if (w->cfg->ipsec_every) {
        w->ident.ipsec_gen = (uint32_t)(dv->slot / w->cfg->ipsec_every);
        w->ident.ipsec_changed = ipsec_changing(w, dv);
    }
    hm_buf_reset(&w->body);
    struct hm_lg_alarm_spec al = {0};
    if (w->cfg->scenario == HM_LG_ALARMS) {
        /* a retry re-sends the same events (same EventTime): the ACS counts them once */
        if (dv->retries == 0)
            w->alarm_seq++;
        al = (struct hm_lg_alarm_spec){.n = w->cfg->alarms, .queued = w->cfg->alarms_queued,
                                       .clear = dv->alarm_up,
                                       .seq = w->alarm_seq};
    }
    bool boot = w->cfg->scenario == HM_LG_BOOT ||
                (w->cfg->scenario == HM_LG_DISCOVERY && !dv->registered);
    hm_lg_cpe_inform(w->cpe, (uint32_t)(dv - w->devs), &w->ident,
                     boot ? HM_LG_INFORM_BOOT
                          : dv->cr_session ? HM_LG_INFORM_CR : HM_LG_INFORM_PERIODIC,
                     dv->retries, al.n ? &al : NULL, &w->body);
    struct io *io = dv->io;
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    write_head(w, dv, "POST", w->targets[dv->target].path, w->body.len, true);
    hm_buf_append(&io->tx, w->body.base, w->body.len);
    dv->step = S_INFORM;
    dv->sent_empty = false;
}

static void build_empty(struct worker *w, struct dev *dv)
{
    struct io *io = dv->io;
    if (io->auth.active && !w->cfg->username[0])
        set_identity(w, dv);
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    write_head(w, dv, "POST", w->targets[dv->target].path, 0, false);
    dv->step = S_EMPTY;
    dv->sent_empty = true;
}

/* The device's next POST is the message in w->body (an answer or a CPE request). */
static void build_post(struct worker *w, struct dev *dv)
{
    struct io *io = dv->io;
    if (io->auth.active && !w->cfg->username[0])
        set_identity(w, dv);
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    write_head(w, dv, "POST", w->targets[dv->target].path, w->body.len, true);
    hm_buf_append(&io->tx, w->body.base, w->body.len);
    dv->step = S_ANSWER;
}

/* ---- PM uploads ---- */

#define PM_EPOCH 1795737600 /* 2026-11-27T00:00:00Z: the first period of every device */

static size_t device_id(struct worker *w, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, HM_SLICE_FMT "-" HM_SLICE_FMT "-" HM_SLICE_FMT,
                     HM_SLICE_ARG(w->ident.oui), HM_SLICE_ARG(w->ident.product_class),
                     HM_SLICE_ARG(w->ident.serial));
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void stamp(char *out, size_t cap, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

/* Offsets of every occurrence of <s> in <b> (at most <cap>). */
static uint8_t find_all(const struct hm_buf *b, const char *s, size_t *off, unsigned cap)
{
    uint8_t n = 0;
    size_t sl = strlen(s);
    for (const char *p = b->base, *end = b->base + b->len; n < cap;) {
        const char *q = memmem(p, (size_t)(end - p), s, sl);
        if (!q)
            break;
        off[n++] = (size_t)(q - b->base);
        p = q + sl;
    }
    return n;
}

/* The file template: generated once per worker with device 0's id and period 0, whose id
 * and times are then overwritten per upload (same widths: the serial is zero-padded). */
static void pm_template(struct worker *w)
{
    struct hm_pm_gen g = {.rng = 88172645463325252ull ^ w->id};
    char sender[200], t0[40], t1[40];
    set_identity(w, &w->devs[0]);
    device_id(w, sender, sizeof(sender));
    hm_pm_gen_file(&g, &w->pm_tmpl, sender, (int)w->cfg->pm_cells, PM_EPOCH);
    stamp(t0, sizeof(t0), PM_EPOCH);
    stamp(t1, sizeof(t1), PM_EPOCH + 900);
    w->n_sender = find_all(&w->pm_tmpl, sender, w->pm_sender_off, HM_ARRAY_SIZE(w->pm_sender_off));
    w->n_t0 = find_all(&w->pm_tmpl, t0, w->pm_t0_off, HM_ARRAY_SIZE(w->pm_t0_off));
    w->n_t1 = find_all(&w->pm_tmpl, t1, w->pm_t1_off, HM_ARRAY_SIZE(w->pm_t1_off));
}

/* The upload of <dv>'s file for its current period (dv->slot): POST <pm_path>/<32.432 name>
 * with the template patched for this device and period. A retry sends the same file. */
static void build_pm(struct worker *w, struct dev *dv)
{
    struct io *io = dv->io;
    char sender[200], t0[40], t1[40], path[400];
    set_identity(w, dv);
    size_t sl = device_id(w, sender, sizeof(sender));
    time_t begin = (time_t)(PM_EPOCH + dv->slot * 900);
    stamp(t0, sizeof(t0), begin);
    stamp(t1, sizeof(t1), begin + 900);
    hm_buf_reset(&w->body);
    hm_pm_gen_name(&w->body, sender, begin);
    /* provisioned by the ACS (--pm-after-register): its URL's path, its credentials */
    const char *url, *user, *pw;
    const char *p = NULL;
    if (hm_lg_cpe_pm(w->cpe, (uint32_t)(dv - w->devs), &url, &user, &pw)) {
        p = strstr(url, "://");
        p = p ? strchr(p + 3, '/') : NULL;
        w->pm_user = user;
    }
    if (p)
        snprintf(path, sizeof(path), "%s%s%.*s", p, p[strlen(p) - 1] == '/' ? "" : "/",
                 (int)w->body.len, w->body.base);
    else
        snprintf(path, sizeof(path), "%s/%.*s", w->cfg->pm_path, (int)w->body.len,
                 w->body.base);
    hm_buf_reset(&w->body);
    hm_buf_append(&w->body, w->pm_tmpl.base, w->pm_tmpl.len);
    for (unsigned i = 0; i < w->n_sender; i++)
        memcpy(w->body.base + w->pm_sender_off[i], sender, sl);
    for (unsigned i = 0; i < w->n_t0; i++)
        memcpy(w->body.base + w->pm_t0_off[i], t0, strlen(t0));
    for (unsigned i = 0; i < w->n_t1; i++)
        memcpy(w->body.base + w->pm_t1_off[i], t1, strlen(t1));
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    write_head(w, dv, "POST", path, w->body.len, false);
    w->pm_user = NULL;
    hm_buf_append(&io->tx, w->body.base, w->body.len);
    dv->step = S_PM;
}

/* ---- session control ---- */

/* Scenarios whose failed attempts are retried with the TR-069 backoff. */
static bool retries(const struct worker *w);

static bool uses_cwmp(const struct worker *w)
{
    uint8_t s = w->cfg->scenario;
    return s == HM_LG_PERIODIC || hm_lg_boot_like(s) || s == HM_LG_ALARMS ||
           (s == HM_LG_HOLD && w->cfg->hold_cwmp);
}


static bool retries(const struct worker *w)
{
    return uses_cwmp(w) || w->cfg->scenario == HM_LG_PM;
}

static void dev_drive(struct worker *w, struct dev *dv, uint32_t events);
static void start_attempt(struct worker *w, struct dev *dv, uint64_t now);

/* Open loop: the start of grid slot <slot> of <dv>, jitter included. */
static uint64_t slot_time(struct worker *w, struct dev *dv, uint64_t slot)
{
    uint64_t t = w->cfg->t0_ns + dv->phase + slot * w->period;
    if (w->cfg->jitter > 0)
        t += (uint64_t)(rnd01(w) * w->cfg->jitter * (double)w->period);
    return t;
}

static bool may_start(struct worker *w)
{
    if (w->stopping)
        return false;
    if (w->quota && w->st.sessions_started >= w->quota) {
        w->stopping = true;
        w->t_drain = now_ns() + (uint64_t)(w->cfg->drain * NS);
        return false;
    }
    return true;
}

static void begin_session(struct worker *w, struct dev *dv, uint64_t intended, uint64_t now)
{
    /* a late wakeup must not start sessions scheduled after the end of the run */
    if (!may_start(w) || (w->t_end && intended >= w->t_end)) {
        timer_del(w, dv);
        return;
    }
    w->st.sessions_started++;
    w->active++;
    dv->in_session = true;
    dv->cr_session = dv->cr_pending;
    dv->cr_pending = false;
    dv->intended = intended;
    dv->retries = 0;
    dv->unreachable = 0;
    start_attempt(w, dv, now);
}

/* Closed loop: start the next idle device, if any. */
static void closed_next(struct worker *w, uint64_t now)
{
    while (w->fifo_len && w->active < w->concurrency && !w->stopping) {
        uint32_t d = w->fifo[w->fifo_head];
        w->fifo_head = (w->fifo_head + 1) % w->ndev;
        w->fifo_len--;
        begin_session(w, &w->devs[d], now, now);
    }
}

static void fifo_push(struct worker *w, struct dev *dv)
{
    w->fifo[(w->fifo_head + w->fifo_len) % w->ndev] = (uint32_t)(dv - w->devs);
    w->fifo_len++;
}

/* Counts <dv>'s session as completed at <now>: its latencies from the intended start, the
 * successful attempt's start and its connection's establishment. Before io_put(). */
static void count_ok(struct worker *w, struct dev *dv, uint64_t now)
{
    uint64_t attempt_start = dv->io ? dv->io->attempt_start : now;
    uint64_t connected = dv->io && dv->io->connected ? dv->io->connected : attempt_start;
    w->st.sessions_ok++;
    hm_lg_hist_record(&w->st.session, (now - dv->intended) / 1000);
    hm_lg_hist_record(&w->st.admitted, (now - attempt_start) / 1000);
    hm_lg_hist_record(&w->st.served, (now - connected) / 1000);
}

/* The session of <dv> is over (successfully or not): schedule what comes next. */
static void session_end(struct worker *w, struct dev *dv, bool ok, uint64_t now)
{
    if (ok)
        count_ok(w, dv, now);
    conn_close(w, dv);
    io_put(w, dv);
    timer_del(w, dv);
    dv->in_session = false;
    w->active--;
    bool was_cr = dv->cr_session;
    dv->cr_session = false;
    if (ok && was_cr)
        w->st.cr_sessions++;
    if (!ok && w->stopping && retries(w))
        /* would have been retried, but the run is over: not a failure of the server */
        w->st.err[HM_LG_E_UNFINISHED]++;
    else if (!ok)
        w->st.sessions_failed++;
    w->st.retry_hist[dv->retries < HM_LG_RETRY_SLOTS ? dv->retries : HM_LG_RETRY_SLOTS - 1]++;
    dv->retries = 0;
    if (dv->cr_pending && !w->stopping) { /* requested during the session: another one */
        dv->state = D_IDLE;
        begin_session(w, dv, now, now);
        return;
    }
    if (w->cfg->scenario == HM_LG_PM && !w->open_loop)
        dv->slot++; /* the next upload is the next period's file */
    if (w->cfg->scenario == HM_LG_DISCOVERY && ok && dv->next_target != dv->target) {
        /* redirected: a CPE whose ACS URL changed bootstraps at the new URL (TR-069
         * §3.7.1.1: "0 BOOTSTRAP" after an ACS URL change) at once */
        dv->target = dv->next_target;
        dv->registered = false;
        dv->state = D_IDLE;
        begin_session(w, dv, now, now);
        return;
    }
    if (w->cfg->scenario == HM_LG_DISCOVERY && ok)
        dv->registered = true;
    if (dv->pm_next && ok) {
        dv->pm_next = false;
        dv->pm_done = true;
    } else if (ok && w->cfg->pm_after_register && !dv->pm_done && !w->stopping) {
        /* the ACS configured a PM upload in this session: upload one file with it now */
        const char *u, *us, *pw;
        if (hm_lg_cpe_pm(w->cpe, (uint32_t)(dv - w->devs), &u, &us, &pw)) {
            dv->pm_next = true;
            dv->state = D_IDLE;
            begin_session(w, dv, now, now);
            return;
        }
    }
    if (w->cfg->scenario == HM_LG_DISCOVERY && dv->registered && w->cfg->interval > 0) {
        /* steady state at the serving node: periodic Informs until the run ends */
        if (ok && !was_cr)
            dv->slot++; /* sessions at the serving node: --ipsec-change-every counts them */
        dv->state = D_IDLE;
        timer_set(w, dv, now + (uint64_t)(w->cfg->interval *
                                          (1.0 + w->cfg->jitter * rnd01(w)) * NS));
        return;
    }
    if (hm_lg_boot_like(w->cfg->scenario)) {
        dv->state = D_DONE;
        w->done++;
        if (!w->open_loop)
            closed_next(w, now);
        return;
    }
    dv->state = D_IDLE;
    if (w->cfg->scenario == HM_LG_HOLD) {
        if (!w->open_loop)
            closed_next(w, now);
        return; /* a hold device that failed for good stays down */
    }
    if (w->open_loop) {
        if (!was_cr) /* an extra session: the periodic grid goes on as before */
            dv->slot++;
        /* a device more than a period behind (long backoff) skips to the current slot:
         * a real CPE does not fire a burst of overdue periodic Informs */
        if (now > w->cfg->t0_ns + dv->phase + (dv->slot + 1) * w->period) {
            uint64_t cur = (now - w->cfg->t0_ns - dv->phase) / w->period;
            w->st.missed_slots += cur - dv->slot;
            dv->slot = cur;
        }
        timer_set(w, dv, slot_time(w, dv, dv->slot));
    } else {
        if (ok && !was_cr && w->cfg->ipsec_every)
            dv->slot++;
        fifo_push(w, dv);
        closed_next(w, now);
    }
}

/* The current attempt failed with <kind>: back off and retry (CWMP, TR-069 §3.2.1.1), or
 * fail the session. <retry_after> (s) is the server's Retry-After, or 0. */
static void attempt_failed(struct worker *w, struct dev *dv, enum hm_lg_err kind,
                           uint32_t retry_after, uint64_t now)
{
    w->st.err[kind]++;
    if (!dv->in_session) {
        /* a held connection (its session already counted) was lost: reconnect as a new
         * session, as a CPE whose connection dropped would */
        conn_close(w, dv);
        io_put(w, dv);
        timer_del(w, dv);
        dv->state = D_IDLE;
        begin_session(w, dv, now, now);
        return;
    }
    if (w->cfg->verbose)
        fprintf(stderr, "worker %u device %llu: %s (step %u)\n", w->id,
                (unsigned long long)dev_index(w, dv), hm_lg_err_names[kind], dv->step);
    conn_close(w, dv);
    io_put(w, dv);
    if (!retries(w) || w->stopping) {
        session_end(w, dv, false, now);
        return;
    }
    if (dv->retries >= w->cfg->max_retries) {
        w->st.err[HM_LG_E_GAVE_UP]++;
        session_end(w, dv, false, now);
        return;
    }
    /* only an unreachable Serving HeMS sends the device back (no connection, no answer, or
     * a connection closed without one: what a load balancer with a dead backend does); one
     * that answers 503 or 8005 is alive and asks it to come back later (counting sheds
     * turned a shedding Serving HeMS into a second storm at the Initial HeMS) */
    if (kind == HM_LG_E_CONNECT || kind == HM_LG_E_TIMEOUT || kind == HM_LG_E_CLOSED) {
        if (dv->unreachable < 255)
            dv->unreachable++;
    } else {
        dv->unreachable = 0;
    }
    if (w->cfg->scenario == HM_LG_DISCOVERY && dv->target != 0 &&
        dv->unreachable >= w->cfg->fallback_after) {
        /* its Serving HeMS is unreachable: back to the Initial HeMS for a new assignment
         * (TS 32.593 5.1.2: the Initial HeMS is the HeNB's fallback) with a BOOTSTRAP */
        dv->target = dv->next_target = 0;
        dv->registered = false;
        dv->unreachable = 0;
        w->st.fallbacks++;
    }
    dv->retries++;
    w->st.attempts_retried++;
    if (dv->life_retries < 255)
        dv->life_retries++;
    if (dv->life_retries > w->st.retries_dev_max)
        w->st.retries_dev_max = dv->life_retries;
    unsigned n = dv->retries > 10 ? 10 : dv->retries;
    double lo = w->cfg->retry_min * pow(w->cfg->retry_mult, n - 1);
    double hi = w->cfg->retry_min * pow(w->cfg->retry_mult, n);
    double wait = lo + (hi - lo) * rnd01(w);
    if (retry_after && (!w->cfg->strict_backoff || retry_after > wait))
        wait = retry_after; /* --strict-backoff: a Retry-After may lengthen, not shorten */
    dv->state = D_IDLE;
    timer_set(w, dv, now + (uint64_t)(wait * NS));
}

/* With at least as many source addresses as workers, worker w owns addresses w, w + W,
 * w + 2W, ... (no two workers share a port space); otherwise all share all. Devices
 * spread round robin over the addresses they may use. */
static uint32_t source_index(const struct worker *w, const struct dev *dv)
{
    uint32_t n = w->cfg->n_sources, nw = w->cfg->workers;
    uint64_t i = (uint64_t)(dv - w->devs);
    if (n < nw)
        return (uint32_t)((w->first_idx + i) % n);
    uint32_t own = (n - w->id + nw - 1) / nw; /* addresses w, w+W, ... below n */
    return w->id + nw * (uint32_t)(i % own);
}

static int open_conn(struct worker *w, struct dev *dv)
{
    const struct hm_lg_config *c = w->cfg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    int one = 1;
    /* Over loopback (MSS 64 KB) each request leaves as one segment, sent in one send()
     * after the answer to the previous one acknowledged everything: Nagle never holds a
     * byte back there, so the io_uring engine saves the setsockopt (same segments on the
     * wire). Elsewhere a 7 KB Inform spans several segments and its short tail could wait
     * for an ACK: NODELAY stays. TLS writes several records: NODELAY stays. */
    bool loopback = (ntohl(w->targets[dv->target].addr.sin_addr.s_addr) >> 24) == 127;
    if (!w->uring || !loopback)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->n_sources) {
        /* the port is picked at connect() time, per 4-tuple: past 64k connections per
         * source address when there are several destinations, and no bind() port scan */
        (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr = c->sources[source_index(w, dv)];
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    if (w->uring) { /* connect, send and recv follow as one linked batch */
        dv->fd = fd;
        w->st.connects++;
        return 0;
    }
    const struct sockaddr_in *to = &w->targets[dv->target].addr;
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) == -1 &&
        errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u32 = (uint32_t)(dv - w->devs)};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
        int e = -errno;
        close(fd);
        return e;
    }
    dv->fd = fd;
    if (w->tls) {
        uint32_t i = (uint32_t)(dv - w->devs);
        char serial[32];
        snprintf(serial, sizeof(serial), "%010llu",
                 (unsigned long long)dev_serial(w, dev_index(w, dv)));
        w->ssl[i] = hm_lg_tls_open(w->tls, fd, serial, c->tls_resume ? w->sess[i] : NULL);
        if (!w->ssl[i]) {
            close(fd);
            dv->fd = -1;
            return -EPROTO;
        }
    }
    w->st.connects++;
    return 0;
}

static void connect_and_send(struct worker *w, struct dev *dv, uint64_t now)
{
    int rc = open_conn(w, dv);
    if (rc) {
        if (w->cfg->verbose)
            fprintf(stderr, "connect: %s\n", hm_strerror(rc));
        /* reported from the timer, 1 ms later: a synchronous failure (EMFILE,
         * EADDRNOTAVAIL) must neither recurse through closed_next() nor spin */
        dv->state = D_CONNFAIL;
        timer_set(w, dv, now + NS / 1000);
        return;
    }
    dv->state = D_CONNECTING;
    dv->xstart = now;
    timer_set(w, dv, now + (uint64_t)(w->cfg->timeout * NS));
    if (w->uring)
        uring_exchange(w, dv, true);
}

static void start_attempt(struct worker *w, struct dev *dv, uint64_t now)
{
    dv->io = io_get(w);
    dv->io->owner = (uint32_t)(dv - w->devs);
    dv->nreq = 0;
    dv->io->attempt_start = now;
    dv->io->connected = 0;
    if (dv->pm_next)
        build_pm(w, dv);
    else if (uses_cwmp(w))
        build_inform(w, dv);
    else if (w->cfg->scenario == HM_LG_PM)
        build_pm(w, dv);
    else
        build_healthz(w, dv);
    connect_and_send(w, dv, now);
}

/* Sends the request in dv->io->tx (already built), on a new connection if needed. */
static void send_next(struct worker *w, struct dev *dv, uint64_t now)
{
    if (dv->io->reconnect) {
        conn_close(w, dv);
        dv->io->reconnect = false;
        connect_and_send(w, dv, now);
        return;
    }
    dv->state = D_SENDING;
    dv->xstart = now;
    timer_set(w, dv, now + (uint64_t)(w->cfg->timeout * NS));
    if (w->uring)
        uring_exchange(w, dv, false);
    else
        dev_drive(w, dv, EPOLLOUT);
}

/* Hold: the device's session is complete and counted; its connection stays open. */
static void hold(struct worker *w, struct dev *dv, uint64_t now)
{
    bool completes = dv->in_session;
    if (completes)
        count_ok(w, dv, now);
    io_put(w, dv);
    if (completes) {
        dv->in_session = false;
        w->active--;
        dv->retries = 0;
        if (!w->open_loop)
            closed_next(w, now); /* hold --concurrency: connects in flight */
    }
    dv->state = D_HELD;
    if (!dv->held) {
        dv->held = true;
        w->st.held_now++;
        if (w->st.held_now > w->st.held_peak)
            w->st.held_peak = w->st.held_now;
    }
    if (w->cfg->interval > 0 && !w->cfg->hold_cwmp)
        timer_set(w, dv, now + (uint64_t)(w->cfg->interval * (1.0 + w->cfg->jitter * rnd01(w)) * NS));
    else
        timer_del(w, dv);
}

/* A connection request for device <idx> was authenticated and answered (bench/loadgen_cr.h):
 * the device opens a session with "6 CONNECTION REQUEST" now, or after its current one. */
static void on_connection_request(void *arg, uint64_t idx)
{
    struct worker *w = arg;
    if (idx < w->first_idx || idx - w->first_idx >= w->ndev) {
        w->st.cr_bad++; /* not one of this worker's devices */
        return;
    }
    struct dev *dv = &w->devs[idx - w->first_idx];
    dv->cr_pending = true;
    if (dv->in_session || dv->state == D_DONE || !w->open_loop || w->stopping)
        return; /* taken up when the current session ends (closed loop: when its turn comes) */
    uint64_t now = now_ns();
    timer_del(w, dv);
    dv->state = D_IDLE;
    begin_session(w, dv, now, now);
}

/* A device's download ended (bench/loadgen_dl.h): it reports TransferComplete in a new
 * session, opened like one for a connection request. */
static void on_download_done(void *arg, uint32_t d)
{
    struct worker *w = arg;
    on_connection_request(w, w->first_idx + d);
}

/* Index of the target for "http://A.B.C.D[:port][/path]", added if new; -1 when the URL
 * is not of that form (https and host names need a resolver the load generator lacks) or
 * the table is full. */
static int target_for(struct worker *w, struct hm_slice url)
{
    char buf[256], *host, *path, *colon;
    if (url.len >= sizeof(buf) || url.len < 8 || memcmp(url.ptr, "http://", 7) != 0)
        return -1;
    memcpy(buf, url.ptr, url.len);
    buf[url.len] = 0;
    host = buf + 7;
    path = strchr(host, '/');
    char hostport[80];
    size_t hl = path ? (size_t)(path - host) : strlen(host);
    if (hl == 0 || hl >= sizeof(hostport))
        return -1;
    memcpy(hostport, host, hl);
    hostport[hl] = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
    colon = strchr(hostport, ':');
    if (colon) {
        char *e;
        unsigned long port = strtoul(colon + 1, &e, 10);
        if (*e || port == 0 || port > 65535)
            return -1;
        a.sin_port = htons((uint16_t)port);
        *colon = 0;
    }
    if (inet_pton(AF_INET, hostport, &a.sin_addr) != 1)
        return -1;
    if (colon)
        *colon = ':';
    const char *p = path ? path : "/";
    for (int i = 0; i < w->ntargets; i++)
        if (w->targets[i].addr.sin_addr.s_addr == a.sin_addr.s_addr &&
            w->targets[i].addr.sin_port == a.sin_port && strcmp(w->targets[i].path, p) == 0)
            return i;
    if (w->ntargets == HM_LG_MAX_TARGETS || strlen(p) >= sizeof(w->targets[0].path))
        return -1;
    struct target *t = &w->targets[w->ntargets];
    t->addr = a;
    snprintf(t->host, sizeof(t->host), "%s", hostport);
    snprintf(t->path, sizeof(t->path), "%s", p);
    return w->ntargets++;
}

/* Discovery: a SetParameterValues that sets ManagementServer.URL redirects the device
 * after this session (the answer is the built-in or agent one, success). */
static void follow_acs_url(struct worker *w, struct dev *dv, const struct hm_cwmp_msg *m)
{
    static const char sfx[] = "ManagementServer.URL";
    for (uint32_t i = 0; i < m->u.spv.params.n; i++) {
        struct hm_slice n = m->u.spv.params.v[i].name;
        if (n.len < sizeof(sfx) - 1 ||
            memcmp(n.ptr + n.len - (sizeof(sfx) - 1), sfx, sizeof(sfx) - 1) != 0)
            continue;
        int t = target_for(w, m->u.spv.params.v[i].value);
        if (t < 0) {
            w->st.err[HM_LG_E_PARSE]++;
            if (w->cfg->verbose)
                fprintf(stderr, "discovery: unusable ACS URL '" HM_SLICE_FMT "'\n",
                        HM_SLICE_ARG(m->u.spv.params.v[i].value));
            continue;
        }
        if (t != dv->target) {
            dv->next_target = (uint8_t)t;
            w->st.redirects++;
        }
    }
}

/* A CWMP response arrived (body at <body>[<len>]): decide the next step. */
static void on_cwmp(struct worker *w, struct dev *dv, const char *body, size_t len, uint64_t now)
{
    struct io *io = dv->io;
    int status = io->resp.status;
    if (dv->step == S_INFORM && status == 503) {
        attempt_failed(w, dv, HM_LG_E_HTTP_503, io->resp.has_retry_after ? io->resp.retry_after : 0,
                       now);
        return;
    }
    if (status == 204 && dv->step != S_INFORM) {
        session_end(w, dv, true, now);
        return;
    }
    if (status != 200) {
        attempt_failed(w, dv, HM_LG_E_HTTP, 0, now);
        return;
    }
    struct hm_cwmp_msg msg;
    hm_soap_arena_reset(&w->arena);
    int rc = hm_cwmp_parse(body, len, &w->arena, NULL, &msg);
    if (rc) {
        if (w->cfg->verbose)
            fprintf(stderr, "cwmp parse: %s\n", hm_strerror(rc));
        attempt_failed(w, dv, HM_LG_E_PARSE, 0, now);
        return;
    }
    if (msg.method == HM_CWMP_FAULT) {
        int slot = hm_lg_fault_slot(msg.u.fault.code);
        if (dv->step == S_INFORM && msg.u.fault.code == 8005) {
            attempt_failed(w, dv, HM_LG_E_RETRY_8005,
                           io->resp.has_retry_after ? io->resp.retry_after : 0, now);
            return;
        }
        if (slot >= 0)
            w->st.faults[slot]++;
        else
            w->st.fault_other++;
        attempt_failed(w, dv, HM_LG_E_FAULT, 0, now);
        return;
    }
    if (dv->step == S_INFORM) {
        if (msg.method != HM_CWMP_INFORM_RESPONSE) {
            attempt_failed(w, dv, HM_LG_E_PARSE, 0, now);
            return;
        }
        for (unsigned i = 0; i < io->resp.n_cookies; i++)
            if (hm_lg_cookie_set(&io->jar, io->resp.set_cookie[i]) != 0)
                w->st.err[HM_LG_E_PARSE]++;
        if (w->cfg->scenario == HM_LG_HOLD) {
            hold(w, dv, now);
            return;
        }
        if (ipsec_changing(w, dv))
            w->st.ipsec_changes++;
        if (w->cfg->scenario == HM_LG_ALARMS) { /* committed by the ACS before its answer */
            w->st.alarms_sent += w->cfg->alarms;
            dv->alarm_up = !dv->alarm_up;
        }
    } else if (msg.method == HM_CWMP_EMPTY) { /* 200 with no envelope: as good as 204 */
        session_end(w, dv, true, now);
        return;
    }
    if (msg.method >= HM_CWMP_SET_PARAMETER_VALUES && msg.method < HM_CWMP__COUNT)
        w->st.acs_requests[msg.method]++;
    if (msg.method == HM_CWMP_SET_PARAMETER_VALUES && w->cfg->scenario == HM_LG_DISCOVERY)
        follow_acs_url(w, dv, &msg);
    set_identity(w, dv);
    hm_buf_reset(&w->body);
    int more = hm_lg_cpe_handle(w->cpe, (uint32_t)(dv - w->devs), &w->ident, &msg, body, len,
                                &w->scratch, &w->body);
    if (more) {
        build_post(w, dv);
    } else if (!dv->sent_empty) {
        build_empty(w, dv);
    } else {
        /* after our empty POST the ACS may only send requests (or 204) */
        w->st.err[HM_LG_E_PARSE]++;
        session_end(w, dv, false, now);
        return;
    }
    send_next(w, dv, now);
}

/* A 401 with a Digest challenge: set up the credentials and send the same request again
 * with an Authorization field. Returns false when the challenge cannot be answered (no
 * password, unparsable, or a second refusal that is not a stale nonce). */
static bool answer_challenge(struct worker *w, struct dev *dv, uint64_t now)
{
    struct io *io = dv->io;
    struct hm_lg_challenge ch;
    const char *pm_url, *pm_user = NULL, *pm_pw = NULL;
    if (dv->step == S_PM &&
        !hm_lg_cpe_pm(w->cpe, (uint32_t)(dv - w->devs), &pm_url, &pm_user, &pm_pw))
        pm_user = NULL;
    if ((!w->cfg->password[0] && !pm_user) || io->auth.challenges >= 3 ||
        hm_lg_http_parse_challenge(io->resp.www_authenticate, &ch) != 0 ||
        ch.nonce.len >= sizeof(io->auth.nonce) || ch.realm.len >= sizeof(io->auth.realm) ||
        ch.opaque.len >= sizeof(io->auth.opaque))
        return false;
    /* a refused response on the same connection with a fresh (not stale) nonce: wrong
     * credentials; after a reconnect the old nonce is expected to be refused */
    if (io->auth.active && !ch.stale && !io->reconnect_seen)
        return false;
    io->auth.challenges++;
    w->st.auth_challenges++;
    io->auth.active = true;
    io->auth.qop = ch.qop_auth;
    io->auth.sess = ch.sess;
    io->auth.nc = 0;
    memcpy(io->auth.nonce, ch.nonce.ptr, ch.nonce.len);
    io->auth.nonce_len = (uint8_t)ch.nonce.len;
    memcpy(io->auth.realm, ch.realm.ptr, ch.realm.len);
    io->auth.realm_len = (uint8_t)ch.realm.len;
    if (ch.opaque.len)
        memcpy(io->auth.opaque, ch.opaque.ptr, ch.opaque.len);
    io->auth.opaque_len = (uint8_t)ch.opaque.len;
    snprintf(io->auth.cnonce, sizeof(io->auth.cnonce), "%016llx", (unsigned long long)rnd(w));
    char ubuf[200];
    set_identity(w, dv);
    if (pm_user)
        hm_auth_ha1(hm_slice_cstr(pm_user), ch.realm, hm_slice_cstr(pm_pw), io->auth.ha1);
    else
        hm_auth_ha1(digest_user(w, ubuf), ch.realm, hm_slice_cstr(w->cfg->password),
                    io->auth.ha1);

    if (dv->step == S_PM) { /* rebuilt whole, now with an Authorization field */
        build_pm(w, dv);
        io->reconnect_seen = false;
        send_next(w, dv, now);
        return true;
    }
    /* the request just refused is still in tx: rebuild its head around the same body */
    const char *end = memmem(io->tx.base, io->tx.len, "\r\n\r\n", 4);
    HM_BUG_ON(!end);
    size_t head = (size_t)(end - io->tx.base) + 4;
    bool get = io->tx.len >= 4 && memcmp(io->tx.base, "GET ", 4) == 0;
    hm_buf_reset(&w->body);
    hm_buf_append(&w->body, io->tx.base + head, io->tx.len - head);
    hm_buf_reset(&io->tx);
    io->tx_off = 0;
    bool healthz = dv->step == S_HEALTHZ;
    write_head(w, dv, get ? "GET" : "POST",
               healthz ? w->cfg->healthz_path : w->targets[dv->target].path,
               w->body.len, !healthz && w->body.len > 0);
    hm_buf_append(&io->tx, w->body.base, w->body.len);
    io->reconnect_seen = false;
    send_next(w, dv, now);
    return true;
}

/* A complete response is in dv->io. */
static void on_response(struct worker *w, struct dev *dv, const char *body, size_t len)
{
    uint64_t now = now_ns();
    struct io *io = dv->io;
    uint64_t us = (now - dv->xstart) / 1000;
    hm_lg_hist_record(&w->st.exchange, us);
    hm_lg_hist_record(&w->window, us);
    w->st.exchanges++;
    dv->nreq++;
    int status = io->resp.status;
    if (status < 600)
        w->st.http_status[status]++;
    if (!io->resp.keep_alive)
        io->reconnect = io->reconnect_seen = true;
    io->rx_len = 0;
    io->head_len = 0;
    io->body_end = 0;

    if (status == 401) {
        if (!answer_challenge(w, dv, now))
            attempt_failed(w, dv, HM_LG_E_HTTP, 0, now);
        return;
    }

    if (dv->step == S_PM) {
        if (status == 201 || status == 200) {
            w->st.pm_files++;
            w->st.pm_bytes += w->pm_tmpl.len;
            w->st.pm_duplicates += status == 200;
            session_end(w, dv, true, now);
        } else if (status == 503) {
            attempt_failed(w, dv, HM_LG_E_HTTP_503,
                           io->resp.has_retry_after ? io->resp.retry_after : 0, now);
        } else {
            attempt_failed(w, dv, HM_LG_E_HTTP, 0, now);
        }
        return;
    }
    if (dv->step == S_HEALTHZ) {
        if (status != 200) {
            attempt_failed(w, dv, HM_LG_E_HTTP, 0, now);
            return;
        }
        if (w->cfg->scenario == HM_LG_HOLD) {
            if (io->reconnect) {
                attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now);
                return;
            }
            hold(w, dv, now);
            return;
        }
        if (dv->nreq < w->cfg->keepalive) {
            bool re = io->reconnect;
            build_healthz(w, dv);
            io->reconnect = re;
            send_next(w, dv, now);
            return;
        }
        session_end(w, dv, true, now);
        return;
    }
    on_cwmp(w, dv, body, len, now);
}

/* Tries to complete the response in rx. Returns 1 when complete (handled), 0 when more is
 * needed, or an error (-errno / HM_E*). <eof>: the server closed its side. */
static int try_response(struct worker *w, struct dev *dv, bool eof)
{
    struct io *io = dv->io;
    if (!io->head_len) {
        ssize_t h = hm_lg_http_parse_response(io->rx, io->rx_len, &io->resp);
        if (h == -EAGAIN)
            return eof ? -ECONNRESET : 0;
        if (h < 0)
            return (int)h;
        if (io->resp.status == 100) { /* 100 Continue: drop it, the real answer follows */
            memmove(io->rx, io->rx + h, io->rx_len - (size_t)h);
            io->rx_len -= (size_t)h;
            return try_response(w, dv, eof);
        }
        io->head_len = h;
        io->body_end = (size_t)h;
        hm_http_chunked_init(&io->ch);
    }
    size_t head = (size_t)io->head_len;
    switch (io->resp.body) {
    case HM_LG_BODY_NONE:
        on_response(w, dv, io->rx + head, 0);
        return 1;
    case HM_LG_BODY_LENGTH:
        if (io->rx_len - head < (uint64_t)io->resp.content_length)
            return eof ? -ECONNRESET : 0;
        on_response(w, dv, io->rx + head, (size_t)io->resp.content_length);
        return 1;
    case HM_LG_BODY_CHUNKED: {
        size_t raw = io->rx_len - io->body_end;
        ssize_t rc = hm_http_chunked_decode(&io->ch, io->rx + io->body_end, &raw, RX_MAX);
        io->body_end += raw;
        io->rx_len = io->body_end;
        if (rc == -EAGAIN)
            return eof ? -ECONNRESET : 0;
        if (rc < 0)
            return (int)rc;
        on_response(w, dv, io->rx + head, io->body_end - head);
        return 1;
    }
    default: /* until close */
        if (!eof)
            return 0;
        on_response(w, dv, io->rx + head, io->rx_len - head);
        return 1;
    }
}

static void do_recv(struct worker *w, struct dev *dv)
{
    for (;;) {
        struct io *io = dv->io;
        if (io->rx_cap - io->rx_len < 1024) {
            if (io->rx_cap >= RX_MAX) {
                attempt_failed(w, dv, HM_LG_E_PARSE, 0, now_ns());
                return;
            }
            io->rx_cap *= 2;
            io->rx = hm_xrealloc(io->rx, io->rx_cap);
        }
        ssize_t n = conn_recv(w, dv, io->rx + io->rx_len, io->rx_cap - io->rx_len);
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now_ns());
            return;
        }
        w->st.bytes_received += (uint64_t)n;
        io->rx_len += (size_t)n;
        int rc = try_response(w, dv, n == 0);
        if (rc == 1)
            return; /* handled: the device moved on (no pipelining: nothing else to read) */
        if (rc < 0) {
            attempt_failed(w, dv, rc == -ECONNRESET ? HM_LG_E_CLOSED : HM_LG_E_PARSE, 0,
                           now_ns());
            return;
        }
        if (n == 0) {
            attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now_ns());
            return;
        }
    }
}

static void do_send(struct worker *w, struct dev *dv)
{
    struct io *io = dv->io;
    while (io->tx_off < io->tx.len) {
        ssize_t n = conn_send(w, dv, io->tx.base + io->tx_off, io->tx.len - io->tx_off);
        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now_ns());
            return;
        }
        io->tx_off += (size_t)n;
        w->st.bytes_sent += (uint64_t)n;
    }
    dv->state = D_RECEIVING;
}

static void dev_drive(struct worker *w, struct dev *dv, uint32_t events)
{
    if (dv->state == D_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        /* a failed connect always reports EPOLLERR (or HUP): plain EPOLLOUT needs no
         * SO_ERROR round trip */
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = 0;
            socklen_t l = sizeof(err);
            if (w->cfg->verbose && getsockopt(dv->fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0)
                fprintf(stderr, "connect: %s\n", strerror(err));
            attempt_failed(w, dv, HM_LG_E_CONNECT, 0, now_ns());
            return;
        }
        uint64_t now = now_ns();
        hm_lg_hist_record(&w->st.connect, (now - dv->xstart) / 1000);
        dv->xstart = now;
        if (dv->io && !dv->io->connected) /* the attempt's first connection */
            dv->io->connected = now;
        dv->state = D_SENDING;
        events |= EPOLLOUT;
    }
    if (dv->state == D_SENDING) {
        do_send(w, dv);
        if (dv->state != D_RECEIVING)
            return;
        if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            return;
    }
    if (dv->state == D_RECEIVING) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            do_recv(w, dv);
        return;
    }
    if (dv->state == D_HELD && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        char sink[512];
        for (;;) {
            ssize_t n = conn_recv(w, dv, sink, sizeof(sink));
            if (n > 0)
                continue; /* unsolicited bytes on an idle connection: ignored */
            if (n == -1 && (errno == EAGAIN || errno == EINTR))
                return;
            attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now_ns());
            return;
        }
    }
}

/* The Connection Request listener's epoll set is readable: serve it. */
static void serve_epoll(struct worker *w)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(w->ep, evs, MAX_EVENTS, 0);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u32 == HM_LG_DL_TAG)
            hm_lg_dl_event(w->dl, on_download_done, w);
        else if (evs[i].data.u32 >= HM_LG_CR_TAG_MIN)
            hm_lg_cr_event(w->cr, evs[i].data.u32, evs[i].events);
    }
}

static void uring_arm_epoll(struct worker *w)
{
    struct io_uring_sqe *sqe = sqe_get(w);
    io_uring_prep_poll_multishot(sqe, w->ep, POLLIN);
    io_uring_sqe_set_data64(sqe, OP_EPOLL);
    w->ep_armed = true;
}

/* One completion of the io_uring engine. */
static void uring_cqe(struct worker *w, uint64_t ud, int res, uint32_t flags)
{
    unsigned op = (unsigned)(ud & 7);
    struct io *io = (struct io *)(uintptr_t)(ud & ~(uint64_t)7);
    if (op == OP_EPOLL) {
        if (!(flags & IORING_CQE_F_MORE))
            w->ep_armed = false; /* re-armed by the loop */
        serve_epoll(w);
        return;
    }
    if (!io)
        return; /* a close that failed: nothing to do */
    io->inflight--;
    w->ops--;
    if (io->orphan) {
        if (!io->inflight) {
            io->orphan = false;
            io->next_free = w->free_io;
            w->free_io = io;
        }
        return;
    }
    struct dev *dv = &w->devs[io->owner];
    if (dv->io != io || dv->fd == -1)
        return; /* cannot happen: an io leaves its device only as an orphan or idle */
    if (res == -ECANCELED)
        return; /* an earlier operation of its link failed and was reported */
    uint64_t now = now_ns();
    switch (op) {
    case OP_CONNECT:
        if (res < 0) {
            if (w->cfg->verbose)
                fprintf(stderr, "connect: %s\n", strerror(-res));
            attempt_failed(w, dv, HM_LG_E_CONNECT, 0, now);
            return;
        }
        hm_lg_hist_record(&w->st.connect, (now - dv->xstart) / 1000);
        dv->xstart = now;
        if (dv->io && !dv->io->connected) /* the attempt's first connection */
            dv->io->connected = now;
        dv->state = D_SENDING;
        return;
    case OP_SEND:
        if (res < 0) {
            attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now);
            return;
        }
        io->tx_off += (size_t)res;
        w->st.bytes_sent += (uint64_t)res;
        if (io->tx_off < io->tx.len) /* short: its linked recv is cancelled, post both again */
            uring_exchange(w, dv, false);
        else
            dv->state = D_RECEIVING;
        return;
    case OP_RECV: {
        if (res < 0) {
            attempt_failed(w, dv, HM_LG_E_CLOSED, 0, now);
            return;
        }
        w->st.bytes_received += (uint64_t)res;
        io->rx_len += (size_t)res;
        int rc = try_response(w, dv, res == 0);
        if (rc == 1)
            return;
        if (rc < 0 || res == 0) {
            attempt_failed(w, dv, rc == -ECONNRESET || res == 0 ? HM_LG_E_CLOSED : HM_LG_E_PARSE,
                           0, now);
            return;
        }
        if (io->rx_cap - io->rx_len < 1024) {
            if (io->rx_cap >= RX_MAX) {
                attempt_failed(w, dv, HM_LG_E_PARSE, 0, now);
                return;
            }
            io->rx_cap *= 2;
            io->rx = hm_xrealloc(io->rx, io->rx_cap);
        }
        uring_recv(w, dv);
        return;
    }
    default: return;
    }
}

/* Submits what the handlers queued and waits up to <ts> for completions; handles them all.
 * Returns 0 or -errno. */
static int uring_wait(struct worker *w, const struct timespec *ts)
{
    struct __kernel_timespec kts = {.tv_sec = ts->tv_sec, .tv_nsec = ts->tv_nsec};
    struct io_uring_cqe *cqe;
    if ((w->cr || w->dl) && !w->ep_armed) /* listeners and download completions */
        uring_arm_epoll(w);
    int rc = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &kts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR)
        return rc;
    for (;;) {
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            uring_cqe(w, cqe->user_data, cqe->res, cqe->flags);
            seen++;
        }
        if (!seen)
            return 0;
        io_uring_cq_advance(&w->ring, seen);
    }
}

static void on_timer(struct worker *w, struct dev *dv, uint64_t now)
{
    switch (dv->state) {
    case D_IDLE:
        if (dv->in_session)
            start_attempt(w, dv, now); /* a retry after backoff */
        else {
            begin_session(w, dv, w->open_loop ? dv->due : now, now);
        }
        break;
    case D_CONNFAIL:
        attempt_failed(w, dv, HM_LG_E_CONNECT, 0, now);
        break;
    case D_CONNECTING:
    case D_SENDING:
    case D_RECEIVING:
        attempt_failed(w, dv, HM_LG_E_TIMEOUT, 0, now);
        break;
    case D_HELD:
        if (w->stopping)
            break;
        dv->io = io_get(w);
        build_healthz(w, dv);
        dv->nreq = 0;
        send_next(w, dv, now);
        break;
    default: break;
    }
}

static void progress(struct worker *w)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "P %llu %llu %llu %llu %llu %llu\n",
                     (unsigned long long)w->st.sessions_ok,
                     (unsigned long long)w->st.sessions_failed,
                     (unsigned long long)w->st.exchanges,
                     (unsigned long long)(w->st.err[HM_LG_E_CONNECT] + w->st.err[HM_LG_E_TIMEOUT] +
                                          w->st.err[HM_LG_E_CLOSED] + w->st.err[HM_LG_E_HTTP] +
                                          w->st.err[HM_LG_E_PARSE] + w->st.err[HM_LG_E_FAULT] +
                                          w->st.err[HM_LG_E_RETRY_8005] +
                                          w->st.err[HM_LG_E_HTTP_503]),
                     (unsigned long long)w->st.held_now,
                     (unsigned long long)hm_lg_hist_quantile(&w->window, 0.99));
    hm_lg_hist_reset(&w->window);
    if (write(w->out_fd, line, (size_t)n) != n)
        return; /* the parent is gone or slow: progress is best effort */
}

static bool finished(struct worker *w, uint64_t now)
{
    if (hm_lg_stop_requested && (!w->stopping || w->t_drain > now)) {
        w->stopping = true;
        w->t_drain = now;
    }
    if (!w->stopping) {
        bool all_done = hm_lg_boot_like(w->cfg->scenario) && w->done == w->ndev;
        if (all_done || (w->t_end && now >= w->t_end) || (w->quota && w->st.sessions_started >= w->quota)) {
            w->stopping = true;
            w->t_drain = now + (uint64_t)(w->cfg->drain * NS);
            if (w->cfg->scenario == HM_LG_HOLD)
                w->t_drain = now;
        }
    }
    if (!w->stopping)
        return false;
    /* devices waiting for their next start are not in a session (their timers fire and
     * start nothing); backoff waits are, and are waited for until t_drain */
    return w->active == 0 || now >= w->t_drain;
}

static void abort_in_flight(struct worker *w)
{
    for (uint32_t i = 0; i < w->ndev; i++) {
        struct dev *dv = &w->devs[i];
        if (dv->state == D_HELD) {
            conn_close(w, dv);
            dv->state = D_IDLE;
        }
        if (dv->in_session) {
            w->st.err[HM_LG_E_UNFINISHED]++;
            conn_close(w, dv);
            io_put(w, dv);
            timer_del(w, dv);
            dv->in_session = false;
            dv->state = D_IDLE;
            w->active--;
        }
    }
}

static void setup_schedule(struct worker *w)
{
    const struct hm_lg_config *c = w->cfg;
    uint64_t t0 = c->t0_ns;
    if (c->concurrency) {
        w->open_loop = false;
        w->concurrency = c->concurrency / c->workers + (w->id < c->concurrency % c->workers);
        if (w->concurrency == 0)
            w->concurrency = 1;
        for (uint32_t i = 0; i < w->ndev; i++)
            fifo_push(w, &w->devs[i]);
        return; /* started by closed_next() at t0 */
    }
    w->open_loop = true;
    double rate_w = c->rate > 0 ? c->rate / c->workers : 0;
    if (hm_lg_boot_like(c->scenario) || c->scenario == HM_LG_HOLD) {
        /* one start per device: spread at the rate, or all at once */
        for (uint32_t i = 0; i < w->ndev; i++) {
            w->devs[i].phase = rate_w > 0 ? (uint64_t)((double)i / rate_w * NS) : 0;
            timer_set(w, &w->devs[i], t0 + w->devs[i].phase);
        }
        w->period = UINT64_MAX / 4;
        return;
    }
    double period = c->interval > 0 ? c->interval : (double)w->ndev / rate_w;
    w->period = (uint64_t)(period * NS);
    if (w->period == 0)
        w->period = 1;
    for (uint32_t i = 0; i < w->ndev; i++) {
        struct dev *dv = &w->devs[i];
        /* workers interleave their grids so that the merged arrivals are evenly spaced */
        double ph = ((double)i + (double)w->id / c->workers) * period / w->ndev;
        dv->phase = (uint64_t)(ph * NS);
        timer_set(w, dv, slot_time(w, dv, 0));
    }
}

static int worker_init(struct worker *w, const struct hm_lg_config *c, unsigned id, int out_fd)
{
    *w = (struct worker){.cfg = c, .id = id, .out_fd = out_fd, .ep = -1, .ntargets = 1};
    w->targets[0].addr = c->target;
    snprintf(w->targets[0].host, sizeof(w->targets[0].host), "%s", c->host);
    snprintf(w->targets[0].path, sizeof(w->targets[0].path), "%s", c->cwmp_path);
    uint64_t per = c->devices / c->workers, extra = c->devices % c->workers;
    w->ndev = (uint32_t)(per + (id < extra));
    w->first_idx = per * id + (id < extra ? id : extra);
    w->scatter_step = c->scatter_serials ? hm_lg_scatter_step(c->devices) : 0;
    w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32) ^ c->first_serial ^ now_ns();
    if (c->sessions)
        w->quota = c->sessions / c->workers + (id < c->sessions % c->workers);
    if (c->sessions && w->quota == 0)
        return 1; /* nothing to do */
    if (w->ndev == 0)
        return 1;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep == -1)
        return -errno;
    /* io_uring for plain-TCP sessions; hold and TLS stay on epoll (a held connection is
     * watched for the server's close, TLS drives its own reads and writes) */
    if (c->engine != HM_LG_ENGINE_EPOLL && !c->tls && c->scenario != HM_LG_HOLD) {
        struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                             IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
                                    .cq_entries = URING_CQ};
        int urc = io_uring_queue_init_params(URING_SQ, &w->ring, &p);
        if (urc == -EINVAL) { /* before Linux 6.1 */
            p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE, .cq_entries = URING_CQ};
            urc = io_uring_queue_init_params(URING_SQ, &w->ring, &p);
        }
        if (urc == 0)
            w->uring = true;
        else if (c->engine == HM_LG_ENGINE_URING)
            return urc;
    }
    w->devs = hm_xcalloc(w->ndev, sizeof(*w->devs));
    w->heap = hm_xcalloc(w->ndev, sizeof(*w->heap));
    w->fifo = hm_xcalloc(w->ndev, sizeof(*w->fifo));
    for (uint32_t i = 0; i < w->ndev; i++)
        w->devs[i].fd = -1;
    w->arena_mem = hm_xmalloc(ARENA_SIZE);
    hm_soap_arena_init(&w->arena, w->arena_mem, ARENA_SIZE);
    w->scratch_mem = hm_xmalloc(ARENA_SIZE);
    hm_soap_arena_init(&w->scratch, w->scratch_mem, ARENA_SIZE);
    int rc = hm_lg_cpe_create(&w->cpe, c->model_csv[0] ? c->model_csv : NULL, w->ndev,
                              c->cwmp_ver, hm_lg_boot_like(c->scenario));
    if (rc)
        return rc;
    if (c->scenario == HM_LG_PM || c->pm_after_register)
        pm_template(w);
    if (!c->model_csv[0] && uses_cwmp(w)) { /* downloads: built-in behaviour only */
        struct hm_lg_dl_opts dlo = {.fail_pct = c->download_fail_pct,
                                    .fw_version = c->fw_version, .timeout_s = c->timeout};
        rc = hm_lg_dl_open(&w->dl, w->ep, w->ndev, w->first_idx, &dlo);
        if (rc)
            return rc;
        hm_lg_cpe_set_dl(w->cpe, w->dl);
    }
    if (c->cr) {
        uint16_t port = c->cr_port ? (uint16_t)(c->cr_port + id) : 0;
        rc = hm_lg_cr_open(&w->cr, w->ep, port, c->cr_username, c->cr_password,
                           on_connection_request, w);
        if (rc) {
            fprintf(stderr, "hems-loadgen: worker %u: connection request listener on "
                            "127.0.0.1:%u: %s\n", id, port, hm_strerror(rc));
            return rc;
        }
    }
    if (c->duration > 0)
        w->t_end = c->t0_ns + (uint64_t)(c->duration * NS);
    if (c->tls) {
        /* SNI: the Host without its port, unless it is an address. */
        char sni[80], err[600];
        snprintf(sni, sizeof(sni), "%s", c->host);
        char *colon = strrchr(sni, ':');
        if (colon)
            *colon = '\0';
        struct in_addr a;
        w->tls = hm_lg_tls_create(c->tls_ca, c->tls_cert, c->tls_key, c->tls_cert_dir,
                                  inet_pton(AF_INET, sni, &a) == 1 ? "" : sni, err,
                                  sizeof(err));
        if (!w->tls) {
            fprintf(stderr, "hems-loadgen: %s\n", err);
            return -EINVAL;
        }
        w->ssl = hm_xcalloc(w->ndev, sizeof(*w->ssl));
        w->sess = hm_xcalloc(w->ndev, sizeof(*w->sess));
    }
    setup_schedule(w);
    return 0;
}

static void worker_fini(struct worker *w)
{
    if (w->uring) {
        /* sockets of aborted sessions were shut down: their operations end at once */
        uint64_t until = now_ns() + NS;
        while (w->ops && now_ns() < until) {
            struct timespec ts = {0, 10000000};
            if (uring_wait(w, &ts))
                break;
        }
        io_uring_submit(&w->ring); /* the last closes */
        io_uring_queue_exit(&w->ring);
    }
    if (w->cfg->verbose) {
        unsigned nio = 0, norphan = 0;
        for (struct io *io = w->all_io; io; io = io->all_next) {
            nio++;
            norphan += io->orphan;
        }
        fprintf(stderr, "worker %u: %u I/O buffers (%u orphaned), engine %s\n", w->id, nio,
                norphan, w->uring ? "io_uring" : "epoll");
    }
    while (w->all_io) {
        struct io *io = w->all_io;
        w->all_io = io->all_next;
        hm_buf_free(&io->tx);
        free(io->rx);
        free(io);
    }
    hm_buf_free(&w->body);
    hm_buf_free(&w->pm_tmpl);
    hm_lg_cr_close(w->cr);
    hm_lg_dl_close(w->dl);
    free(w->arena_mem);
    free(w->scratch_mem);
    hm_lg_cpe_destroy(w->cpe);
    for (uint32_t i = 0; w->tls && i < w->ndev; i++) {
        hm_lg_tls_close(w->ssl[i], NULL);
        hm_lg_tls_session_free(w->sess[i]);
    }
    free(w->ssl);
    free(w->sess);
    hm_lg_tls_destroy(w->tls);
    free(w->devs);
    free(w->heap);
    free(w->fifo);
    if (w->ep != -1)
        close(w->ep);
}

/* Sleeps until CLOCK_MONOTONIC <until_ns> (the common start of all workers). */
static void wait_until(uint64_t until_ns)
{
    struct timespec ts = {(time_t)(until_ns / NS), (long)(until_ns % NS)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !hm_lg_stop_requested)
        ;
}

int hm_lg_worker_run(const struct hm_lg_config *c, unsigned id, int out_fd)
{
    struct worker *w = hm_xcalloc(1, sizeof(*w));
    int rc = worker_init(w, c, id, out_fd);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        struct epoll_event evs[MAX_EVENTS];
        uint64_t next_progress = c->t0_ns + NS;
        wait_until(c->t0_ns);
        if (!w->open_loop)
            closed_next(w, now_ns());
        for (;;) {
            uint64_t now = now_ns();
            while (w->nheap && w->devs[w->heap[0]].due <= now) {
                struct dev *dv = &w->devs[w->heap[0]];
                timer_del(w, dv);
                on_timer(w, dv, now);
            }
            if (now >= next_progress) {
                progress(w);
                next_progress += NS;
                if (next_progress < now)
                    next_progress = now + NS;
            }
            if (finished(w, now))
                break;
            uint64_t until = next_progress;
            if (w->nheap && w->devs[w->heap[0]].due < until)
                until = w->devs[w->heap[0]].due;
            if (w->t_end && !w->stopping && w->t_end < until)
                until = w->t_end;
            if (w->stopping && w->t_drain < until)
                until = w->t_drain;
            struct timespec ts = {0, 0};
            now = now_ns();
            if (until > now) {
                ts.tv_sec = (time_t)((until - now) / NS);
                ts.tv_nsec = (long)((until - now) % NS);
            }
            if (w->uring) {
                int urc = uring_wait(w, &ts);
                if (urc) {
                    rc = urc;
                    break;
                }
                continue;
            }
            /* epoll_pwait2: nanosecond timeouts, so open-loop arrivals are not rounded to
             * milliseconds (which would add up to 1 ms to corrected latencies) */
            int n = epoll_pwait2(w->ep, evs, MAX_EVENTS, &ts, NULL);
            if (n == -1) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                break;
            }
            for (int i = 0; i < n; i++) {
                if (evs[i].data.u32 == HM_LG_DL_TAG) {
                    hm_lg_dl_event(w->dl, on_download_done, w);
                    continue;
                }
                if (evs[i].data.u32 >= HM_LG_CR_TAG_MIN) {
                    hm_lg_cr_event(w->cr, evs[i].data.u32, evs[i].events);
                    continue;
                }
                struct dev *dv = &w->devs[evs[i].data.u32];
                if (dv->fd == -1)
                    continue;
                dev_drive(w, dv, evs[i].events);
            }
        }
        abort_in_flight(w);
        w->st.elapsed_s = (double)(now_ns() - c->t0_ns) / NS;
        if (c->scenario == HM_LG_DISCOVERY)
            for (uint32_t i = 0; i < w->ndev; i++)
                w->st.registered += w->devs[i].registered;
        if (w->dl) {
            const struct hm_lg_dl_stats *ds = hm_lg_dl_stats(w->dl);
            w->st.dl_started = ds->started;
            w->st.dl_fetched = ds->fetched;
            w->st.dl_injected = ds->injected;
            w->st.dl_errors = ds->errors;
            w->st.dl_tc_acked = ds->tc_acked;
        }
        if (w->cr) {
            const struct hm_lg_cr_stats *cs = hm_lg_cr_stats(w->cr);
            w->st.cr_received = cs->received;
            w->st.cr_challenges = cs->challenges;
            w->st.cr_refused = cs->refused;
            w->st.cr_bad += cs->bad;
        }
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            w->st.max_rss_kb = (uint64_t)ru.ru_maxrss;
        if (rc > 0)
            rc = 0;
    } else {
        rc = 0;
    }
    {
        struct hm_buf b = {0};
        hm_buf_append_lit(&b, "R ");
        hm_lg_stats_to_json(&w->st, &b);
        hm_buf_append_lit(&b, "\n");
        size_t off = 0;
        while (off < b.len) {
            ssize_t n = write(out_fd, b.base + off, b.len - off);
            if (n == -1) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                break;
            }
            off += (size_t)n;
        }
        hm_buf_free(&b);
    }
out:
    worker_fini(w);
    free(w);
    return rc;
}
