/* Connection Request listener of a hems-loadgen worker (bench/loadgen_cr.h). */
#include "bench/loadgen_cr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/slice.h"
#include "proto/auth.h"

#define CR_CONNS 512 /* a campaign asks up to cr_per_s at once */
#define CR_BUF 2048
#define REALM "hems-loadgen"

struct cr_conn {
    int fd; /* -1: free */
    uint16_t len;
    char buf[CR_BUF];
};

struct hm_lg_cr {
    int ep, lfd;
    uint16_t port;
    bool auth;
    char ha1[HM_AUTH_HEX_LEN + 1];
    struct hm_auth_nonce_key key;
    hm_lg_cr_fn fn;
    void *arg;
    struct hm_lg_cr_stats st;
    struct cr_conn conns[CR_CONNS];
};

int hm_lg_cr_open(struct hm_lg_cr **out, int ep, uint16_t port, const char *user,
                  const char *password, hm_lg_cr_fn fn, void *arg)
{
    struct hm_lg_cr *c = hm_xcalloc(1, sizeof(*c));
    c->ep = ep;
    c->fn = fn;
    c->arg = arg;
    for (unsigned i = 0; i < CR_CONNS; i++)
        c->conns[i].fd = -1;
    int rc = 0;
    if (user && user[0]) {
        c->auth = true;
        hm_auth_ha1(hm_slice_cstr(user), HM_SLICE_LIT(REALM), hm_slice_cstr(password ? password : ""),
                    c->ha1);
        rc = hm_auth_nonce_key_init(&c->key, NULL, 300);
        if (rc < 0)
            goto fail;
    }
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0) {
        rc = -errno;
        goto fail;
    }
    int one = 1;
    (void)setsockopt(c->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = HM_LG_CR_TAG_MIN};
    if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->lfd, 1024) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, c->lfd, &ev) < 0) {
        rc = -errno;
        close(c->lfd);
        goto fail;
    }
    socklen_t sl = sizeof(sa);
    if (getsockname(c->lfd, (struct sockaddr *)&sa, &sl) == 0)
        c->port = ntohs(sa.sin_port);
    *out = c;
    return 0;
fail:
    free(c);
    return rc;
}

static void conn_close(struct hm_lg_cr *c, struct cr_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->len = 0;
}

void hm_lg_cr_close(struct hm_lg_cr *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < CR_CONNS; i++)
        conn_close(c, &c->conns[i]);
    close(c->lfd);
    free(c);
}

const struct hm_lg_cr_stats *hm_lg_cr_stats(const struct hm_lg_cr *c)
{
    return &c->st;
}

uint16_t hm_lg_cr_port(const struct hm_lg_cr *c)
{
    return c->port;
}

/* Best effort: the response is small and the socket's buffer empty. */
static void reply(struct hm_lg_cr *c, struct cr_conn *k, const char *status, const char *extra)
{
    char out[512];
    int n = snprintf(out, sizeof(out), "HTTP/1.1 %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n",
                     status, extra);
    if (n > 0 && (size_t)n < sizeof(out))
        (void)!write(k->fd, out, (size_t)n);
    conn_close(c, k);
}

static void challenge(struct hm_lg_cr *c, struct cr_conn *k, bool stale)
{
    char nonce[HM_AUTH_NONCE_LEN + 1], hdr[400], val[320];
    hm_auth_nonce_make(&c->key, 0, (uint64_t)time(NULL), nonce);
    if (hm_auth_challenge(val, sizeof(val), HM_SLICE_LIT(REALM), hm_slice_cstr(nonce),
                          hm_slice(NULL, 0), stale) < 0) {
        reply(c, k, "500 Internal Server Error", "");
        return;
    }
    snprintf(hdr, sizeof(hdr), "WWW-Authenticate: %s\r\n", val);
    reply(c, k, "401 Unauthorized", hdr);
}

/* The value of header <name> in the head <h>[<n>], or an empty slice. */
static struct hm_slice header(const char *h, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = h, *end = h + n; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' '))
                e--;
            return hm_slice(v, (size_t)(e - v));
        }
        p = eol + 1;
    }
    return hm_slice(NULL, 0);
}

int hm_lg_cr_parse(const char *buf, size_t len, uint64_t *index, struct hm_slice *path,
                   struct hm_slice *auth)
{
    static const char pre[] = "GET /crq/";
    const char *eol = memchr(buf, '\n', len);
    if (!eol || len < sizeof(pre) || memcmp(buf, pre, sizeof(pre) - 1) != 0)
        return -EINVAL;
    const char *t = buf + 4, *sp = memchr(t, ' ', (size_t)(eol - t));
    if (!sp || (size_t)(eol - sp) < 9 || memcmp(sp, " HTTP/1.", 8) != 0)
        return -EINVAL;
    uint64_t v = 0;
    const char *d = buf + sizeof(pre) - 1;
    if (d == sp)
        return -EINVAL;
    for (; d < sp; d++) {
        if (*d < '0' || *d > '9' || v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*d - '0');
    }
    *index = v;
    *path = hm_slice(t, (size_t)(sp - t));
    *auth = header(eol + 1, len - (size_t)(eol + 1 - buf), "Authorization");
    return 0;
}

static void handle(struct hm_lg_cr *c, struct cr_conn *k)
{
    uint64_t idx;
    struct hm_slice path, a;
    if (hm_lg_cr_parse(k->buf, k->len, &idx, &path, &a) != 0) {
        c->st.bad++;
        reply(c, k, "404 Not Found", "");
        return;
    }
    if (c->auth) {
        struct hm_auth_digest d;
        if (!a.len) {
            c->st.challenges++;
            challenge(c, k, false);
            return;
        }
        struct hm_auth_nonce_state ns = {0};
        int r = hm_auth_digest_parse(a, &d);
        if (r == 0)
            r = hm_auth_digest_verify(&d, c->ha1, HM_SLICE_LIT("GET"), path, &c->key, 0,
                                      (uint64_t)time(NULL), &ns);
        if (r == HM_ESTALE_NONCE) {
            c->st.challenges++;
            challenge(c, k, true);
            return;
        }
        if (r != 0) {
            c->st.refused++;
            challenge(c, k, false);
            return;
        }
    }
    c->st.received++;
    reply(c, k, "200 OK", "");
    c->fn(c->arg, idx);
}

static void on_readable(struct hm_lg_cr *c, struct cr_conn *k)
{
    for (;;) {
        if (k->len == CR_BUF) {
            c->st.bad++;
            reply(c, k, "431 Request Header Fields Too Large", "");
            return;
        }
        ssize_t n = read(k->fd, k->buf + k->len, CR_BUF - k->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* wait for the rest of the head */
        if (n <= 0) {
            conn_close(c, k);
            return;
        }
        k->len = (uint16_t)(k->len + n);
        if (memmem(k->buf, k->len, "\r\n\r\n", 4)) {
            handle(c, k);
            return;
        }
    }
}

void hm_lg_cr_event(struct hm_lg_cr *c, uint32_t tag, uint32_t events)
{
    (void)events;
    if (tag != HM_LG_CR_TAG_MIN) {
        uint32_t slot = tag - HM_LG_CR_TAG_MIN - 1;
        if (slot < CR_CONNS && c->conns[slot].fd >= 0)
            on_readable(c, &c->conns[slot]);
        return;
    }
    for (;;) {
        int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        unsigned i = 0;
        while (i < CR_CONNS && c->conns[i].fd >= 0)
            i++;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = HM_LG_CR_TAG_MIN + 1 + i};
        if (i == CR_CONNS || epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            c->st.bad++;
            close(fd);
            continue;
        }
        c->conns[i] = (struct cr_conn){.fd = fd};
        on_readable(c, &c->conns[i]);
    }
}
