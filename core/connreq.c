/* Connection Request client thread (core/connreq.h, docs/connreq.md). */
#include "core/connreq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/mpsc.h"
#include "proto/auth.h"

#define MAX_STR 512
#define RESP_CAP 2048
#define LAST_SLOTS 1024

enum res { R_REQUESTED, R_BUSY, R_AUTH_FAILED, R_OFFLINE, R_TIMEOUT, R_ERROR, R__COUNT };
static const char *const res_names[] = {"requested", "busy",    "auth_failed",
                                        "offline",   "timeout", "error"};

static const char *res_name(int r)
{
    return res_names[r];
}

struct req {
    struct hm_mpsc_node node;
    struct req *next; /* pending FIFO / active list */
    char dev[MAX_STR], host[256], path[MAX_STR], user[128], pass[128];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int fd;
    bool sent, auth_tried, retried, ha1;
    uint64_t deadline_ms;
    char auth[768]; /* Authorization header line, empty before a challenge */
    char resp[RESP_CAP];
    size_t resp_len;
};

struct last {
    char dev[MAX_STR];
    uint8_t result;
    uint64_t at_ms;
};

struct hm_connreq {
    struct hm_connreq_opts o;
    char user[128], pass[128];
    struct hm_mpsc inbox;
    int efd, epfd;
    _Atomic bool stop;
    pthread_t th;
    struct req *pend_head, *pend_tail, *active;
    double tokens;
    uint64_t tok_ms;
    _Atomic uint64_t total[R__COUNT];
    _Atomic uint64_t attempts, pending;
    pthread_mutex_t mu;
    struct last last[LAST_SLOTS];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void copy_str(char *dst, size_t cap, struct hm_slice s)
{
    size_t n = HM_MIN(s.len, cap - 1);
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

/* http://host[:port][/path]; host numeric (IPv4 or [IPv6]) or resolvable without DNS wait. */
static int parse_url(struct req *q, struct hm_slice url)
{
    static const char pfx[] = "http://";
    if (url.len <= sizeof(pfx) - 1 || strncasecmp(url.ptr, pfx, sizeof(pfx) - 1) != 0)
        return -EINVAL;
    const char *p = url.ptr + sizeof(pfx) - 1, *end = url.ptr + url.len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hend = slash ? slash : end;
    char host[256], port[8] = "80";
    const char *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb)
            return -EINVAL;
        if (rb + 1 < hend && rb[1] == ':')
            colon = rb + 1;
        if ((size_t)(rb - p - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = '\0';
    } else {
        colon = memchr(p, ':', (size_t)(hend - p));
        const char *he = colon ? colon : hend;
        if (he == p || (size_t)(he - p) >= sizeof(host))
            return -EINVAL;
        memcpy(host, p, (size_t)(he - p));
        host[he - p] = '\0';
    }
    if (colon) {
        size_t pl = (size_t)(hend - colon - 1);
        if (!pl || pl >= sizeof(port))
            return -EINVAL;
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
    }
    copy_str(q->host, sizeof(q->host), hm_slice(p, (size_t)(hend - p)));
    if (slash)
        copy_str(q->path, sizeof(q->path), hm_slice(slash, (size_t)(end - slash)));
    else
        copy_str(q->path, sizeof(q->path), hm_slice("/", 1));
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return -EINVAL;
    memcpy(&q->addr, ai->ai_addr, ai->ai_addrlen);
    q->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int hm_connreq_request(struct hm_connreq *c, struct hm_slice dev, struct hm_slice url,
                       struct hm_slice user, struct hm_slice pass, bool pass_is_ha1)
{
    if (!c || !dev.len || !url.len || dev.len >= MAX_STR || url.len >= MAX_STR ||
        user.len >= 128 || pass.len >= 128)
        return -EINVAL;
    if (atomic_load(&c->stop))
        return -ESHUTDOWN;
    struct req *q = hm_xcalloc(1, sizeof(*q));
    q->fd = -1;
    copy_str(q->dev, sizeof(q->dev), dev);
    /* URL parsed on the thread; keep it in path for now. */
    copy_str(q->path, sizeof(q->path), url);
    if (user.len) {
        copy_str(q->user, sizeof(q->user), user);
        copy_str(q->pass, sizeof(q->pass), pass);
        q->ha1 = pass_is_ha1 && pass.len == HM_AUTH_HEX_LEN;
    } else {
        memcpy(q->user, c->user, sizeof(q->user));
        memcpy(q->pass, c->pass, sizeof(q->pass));
    }
    atomic_fetch_add(&c->pending, 1);
    if (hm_mpsc_push(&c->inbox, &q->node)) {
        uint64_t one = 1;
        ssize_t w = write(c->efd, &one, sizeof(one));
        (void)w;
    }
    return 0;
}

static void record(struct hm_connreq *c, struct req *q, int r)
{
    atomic_fetch_add(&c->total[r], 1);
    size_t dl = strlen(q->dev);
    uint64_t h = fnv(q->dev, dl);
    pthread_mutex_lock(&c->mu);
    struct last *l = &c->last[h % LAST_SLOTS];
    memcpy(l->dev, q->dev, dl + 1);
    l->result = (uint8_t)r;
    l->at_ms = real_ms();
    pthread_mutex_unlock(&c->mu);
}

bool hm_connreq_last(struct hm_connreq *c, struct hm_slice dev, const char **result,
                     uint64_t *at_ms)
{
    if (!c || !dev.len || dev.len >= MAX_STR)
        return false;
    bool found = false;
    pthread_mutex_lock(&c->mu);
    struct last *l = &c->last[fnv(dev.ptr, dev.len) % LAST_SLOTS];
    if (strlen(l->dev) == dev.len && memcmp(l->dev, dev.ptr, dev.len) == 0) {
        *result = res_name(l->result);
        *at_ms = l->at_ms;
        found = true;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

void hm_connreq_render_metrics(struct hm_buf *o, void *arg)
{
    struct hm_connreq *c = arg;
    hm_buf_append_lit(o, "# HELP hems_connreq_total connection requests finished, by result\n"
                         "# TYPE hems_connreq_total counter\n");
    for (int i = 0; i < R__COUNT; i++)
        hm_buf_printf(o, "hems_connreq_total{result=\"%s\"} %llu\n", res_name(i),
                      (unsigned long long)atomic_load(&c->total[i]));
    hm_buf_printf(o, "# HELP hems_connreq_attempts_total HTTP attempts (retries and challenge "
                     "answers included)\n# TYPE hems_connreq_attempts_total counter\n"
                     "hems_connreq_attempts_total %llu\n"
                     "# HELP hems_connreq_pending requests queued or in flight\n"
                     "# TYPE hems_connreq_pending gauge\nhems_connreq_pending %llu\n",
                  (unsigned long long)atomic_load(&c->attempts),
                  (unsigned long long)atomic_load(&c->pending));
}

/* ---- the thread ---- */

static void close_fd(struct hm_connreq *c, struct req *q)
{
    if (q->fd >= 0) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, q->fd, NULL);
        close(q->fd);
        q->fd = -1;
    }
}

static int attempt(struct hm_connreq *c, struct req *q)
{
    atomic_fetch_add(&c->attempts, 1);
    q->sent = false;
    q->resp_len = 0;
    q->deadline_ms = mono_ms() + c->o.timeout_ms;
    q->fd = socket(q->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0)
        return -errno;
    if (connect(q->fd, (struct sockaddr *)&q->addr, q->addr_len) < 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(q->fd);
        q->fd = -1;
        return e;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = q};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, q->fd, &ev) < 0) {
        int e = -errno;
        close(q->fd);
        q->fd = -1;
        return e;
    }
    return 0;
}

static void unlink_active(struct hm_connreq *c, struct req *q)
{
    for (struct req **pp = &c->active; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
}

static void finish(struct hm_connreq *c, struct req *q, int r)
{
    close_fd(c, q);
    unlink_active(c, q);
    record(c, q, r);
    atomic_fetch_sub(&c->pending, 1);
    free(q);
}

/* A failed attempt: retry once, else finish with <r>. */
static void failed(struct hm_connreq *c, struct req *q, int r)
{
    close_fd(c, q);
    if (!q->retried) {
        q->retried = true;
        if (attempt(c, q) == 0)
            return;
    }
    finish(c, q, r);
}

/* Value of directive <name> in a challenge; copies into <out>; false when absent. */
static bool chal_get(const char *v, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = v; *p; p++) {
        if ((p == v || p[-1] == ' ' || p[-1] == ',') && strncasecmp(p, name, nl) == 0 &&
            p[nl] == '=') {
            p += nl + 1;
            size_t n = 0;
            if (*p == '"') {
                p++;
                while (*p && *p != '"' && n + 1 < cap) {
                    if (*p == '\\' && p[1])
                        p++;
                    out[n++] = *p++;
                }
            } else {
                while (*p && *p != ',' && *p != ' ' && *p != '\r' && n + 1 < cap)
                    out[n++] = *p++;
            }
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* Builds q->auth from the WWW-Authenticate header of the 401 in q->resp. */
static int answer_challenge(struct req *q)
{
    char *h = q->resp;
    char *w = NULL;
    for (char *line = strstr(h, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "WWW-Authenticate:", 17) == 0) {
            char *v = line + 19;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "Digest ", 7) == 0) {
                w = v + 7;
                break;
            }
        }
    }
    if (!w)
        return -EINVAL;
    char *eol = strstr(w, "\r\n");
    if (eol)
        *eol = '\0';
    char realm[128], nonce[128], qop[64] = "", opaque[128] = "", alg[32] = "MD5";
    if (!chal_get(w, "realm", realm, sizeof(realm)) || !chal_get(w, "nonce", nonce, sizeof(nonce)))
        return -EINVAL;
    chal_get(w, "qop", qop, sizeof(qop));
    bool has_opaque = chal_get(w, "opaque", opaque, sizeof(opaque));
    chal_get(w, "algorithm", alg, sizeof(alg));
    bool sess = strcasecmp(alg, "MD5-sess") == 0;
    if (!sess && strcasecmp(alg, "MD5") != 0)
        return -EINVAL;
    bool qop_auth = strstr(qop, "auth") != NULL;
    uint8_t rnd[8];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -EIO;
    char cnonce[17];
    for (int i = 0; i < 8; i++)
        snprintf(cnonce + 2 * i, 3, "%02x", rnd[i]);
    struct hm_auth_digest d = {.nc = 1, .sess = sess, .qop_auth = qop_auth};
    d.f[HM_AUTH_F_NONCE] = hm_slice_cstr(nonce);
    d.f[HM_AUTH_F_CNONCE] = hm_slice_cstr(cnonce);
    d.f[HM_AUTH_F_NC] = HM_SLICE_LIT("00000001");
    d.f[HM_AUTH_F_URI] = hm_slice_cstr(q->path);
    char ha1[HM_AUTH_HEX_LEN + 1], resp[HM_AUTH_HEX_LEN + 1];
    if (q->ha1)
        memcpy(ha1, q->pass, sizeof(ha1));
    else
        hm_auth_ha1(hm_slice_cstr(q->user), hm_slice_cstr(realm), hm_slice_cstr(q->pass), ha1);
    hm_auth_digest_response(&d, ha1, HM_SLICE_LIT("GET"), resp);
    int n = snprintf(q->auth, sizeof(q->auth),
                     "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", "
                     "uri=\"%s\", response=\"%s\", algorithm=%s%s%s%s\r\n",
                     q->user, realm, nonce, q->path, resp, sess ? "MD5-sess" : "MD5",
                     qop_auth ? ", qop=auth, nc=00000001, cnonce=\"" : "",
                     qop_auth ? cnonce : "", qop_auth ? "\"" : "");
    if (n < 0 || (size_t)n >= sizeof(q->auth))
        return -E2BIG;
    if (has_opaque) {
        size_t l = (size_t)n - 2;
        int m = snprintf(q->auth + l, sizeof(q->auth) - l, ", opaque=\"%s\"\r\n", opaque);
        if (m < 0 || (size_t)m >= sizeof(q->auth) - l)
            return -E2BIG;
    }
    return 0;
}

static void on_event(struct hm_connreq *c, struct req *q, uint32_t events)
{
    if (!q->sent) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            failed(c, q, R_OFFLINE);
            return;
        }
        char buf[2048];
        int n = snprintf(buf, sizeof(buf),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hemsd\r\n%sContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n",
                         q->path, q->host, q->auth);
        if (n < 0 || (size_t)n >= sizeof(buf) ||
            send(q->fd, buf, (size_t)n, MSG_NOSIGNAL) != (ssize_t)n) {
            failed(c, q, R_OFFLINE);
            return;
        }
        q->sent = true;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = q};
        epoll_ctl(c->epfd, EPOLL_CTL_MOD, q->fd, &ev);
        return;
    }
    ssize_t r = recv(q->fd, q->resp + q->resp_len, RESP_CAP - 1 - q->resp_len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r > 0)
        q->resp_len += (size_t)r;
    q->resp[q->resp_len] = '\0';
    bool done = strstr(q->resp, "\r\n\r\n") != NULL;
    if (!done && r > 0 && q->resp_len < RESP_CAP - 1)
        return;
    int status = 0;
    if (q->resp_len < 12 || strncmp(q->resp, "HTTP/1.", 7) != 0 ||
        sscanf(q->resp + 9, "%3d", &status) != 1) {
        failed(c, q, R_ERROR);
        return;
    }
    if (status == 200 || status == 204) {
        finish(c, q, R_REQUESTED);
    } else if (status == 401 && !q->auth_tried && q->user[0]) {
        q->auth_tried = true;
        close_fd(c, q);
        if (answer_challenge(q) < 0 || attempt(c, q) < 0)
            finish(c, q, R_AUTH_FAILED);
    } else if (status == 401) {
        finish(c, q, R_AUTH_FAILED);
    } else if (status == 503) {
        finish(c, q, R_BUSY);
    } else {
        finish(c, q, R_ERROR);
    }
}

static void start_pending(struct hm_connreq *c, uint64_t now)
{
    double add = (double)(now - c->tok_ms) * c->o.max_per_s / 1000.0;
    c->tok_ms = now;
    c->tokens = HM_MIN(c->tokens + add, (double)c->o.max_per_s);
    while (c->pend_head && c->tokens >= 1.0) {
        struct req *q = c->pend_head;
        c->pend_head = q->next;
        if (!c->pend_head)
            c->pend_tail = NULL;
        c->tokens -= 1.0;
        q->next = c->active;
        c->active = q;
        char url[MAX_STR];
        memcpy(url, q->path, sizeof(url));
        if (parse_url(q, hm_slice_cstr(url)) < 0) {
            finish(c, q, R_ERROR);
            continue;
        }
        if (attempt(c, q) < 0)
            failed(c, q, R_OFFLINE);
    }
}

static void *thread_main(void *arg)
{
    struct hm_connreq *c = arg;
    struct epoll_event evs[64];
    while (!atomic_load(&c->stop)) {
        uint64_t now = mono_ms();
        int timeout = 1000;
        for (struct req *q = c->active; q; q = q->next)
            timeout = (int)HM_MIN((uint64_t)timeout, q->deadline_ms > now ? q->deadline_ms - now : 0);
        if (c->pend_head)
            timeout = HM_MIN(timeout, 1000 / (int)c->o.max_per_s + 1);
        int n = epoll_wait(c->epfd, evs, 64, timeout);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t rr = read(c->efd, &v, sizeof(v));
                (void)rr;
                for (struct hm_mpsc_node *m = hm_mpsc_pop_all(&c->inbox); m;) {
                    struct hm_mpsc_node *next = m->next;
                    struct req *q = (struct req *)m;
                    q->next = NULL;
                    if (c->pend_tail)
                        c->pend_tail->next = q;
                    else
                        c->pend_head = q;
                    c->pend_tail = q;
                    m = next;
                }
                continue;
            }
            on_event(c, evs[i].data.ptr, evs[i].events);
        }
        now = mono_ms();
        for (struct req *q = c->active, *next; q; q = next) {
            next = q->next;
            if (q->deadline_ms <= now)
                failed(c, q, R_TIMEOUT);
        }
        start_pending(c, now);
    }
    return NULL;
}

int hm_connreq_start(const struct hm_connreq_opts *o, struct hm_connreq **out)
{
    struct hm_connreq *c = hm_xcalloc(1, sizeof(*c));
    c->o = *o;
    if (!c->o.timeout_ms)
        c->o.timeout_ms = 5000;
    if (!c->o.max_per_s)
        c->o.max_per_s = 50;
    copy_str(c->user, sizeof(c->user), hm_slice_cstr(o->username ? o->username : ""));
    copy_str(c->pass, sizeof(c->pass), hm_slice_cstr(o->password ? o->password : ""));
    c->o.username = c->o.password = NULL;
    c->tokens = c->o.max_per_s;
    c->tok_ms = mono_ms();
    pthread_mutex_init(&c->mu, NULL);
    int r;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c->efd < 0 || c->epfd < 0) {
        r = -errno;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->efd, &ev) < 0) {
        r = -errno;
        goto fail;
    }
    r = -pthread_create(&c->th, NULL, thread_main, c);
    if (r < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    if (c->efd >= 0)
        close(c->efd);
    if (c->epfd >= 0)
        close(c->epfd);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return r;
}

void hm_connreq_stop(struct hm_connreq *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    uint64_t one = 1;
    ssize_t w = write(c->efd, &one, sizeof(one));
    (void)w;
    pthread_join(c->th, NULL);
    for (struct hm_mpsc_node *m = hm_mpsc_pop_all(&c->inbox); m;) {
        struct hm_mpsc_node *next = m->next;
        free(m);
        m = next;
    }
    for (struct req *q = c->pend_head, *n; q; q = n) {
        n = q->next;
        free(q);
    }
    for (struct req *q = c->active, *n; q; q = n) {
        n = q->next;
        if (q->fd >= 0)
            close(q->fd);
        free(q);
    }
    close(c->efd);
    close(c->epfd);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
