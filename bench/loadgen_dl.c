/* hems-loadgen: Download (firmware / configuration file) of the simulated HeNBs; see
 * loadgen_dl.h. */
#include "bench/loadgen_dl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/base64.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen_http.h"
#include "core/bug.h"
#include "proto/auth.h"

#define MAX_BODY (256u << 20) /* bytes read per fetch at most */

enum { ST_IDLE, ST_FETCHING, ST_FINISHED };

struct dl_dev {
    uint8_t st;
    uint8_t file_type; /* 1 firmware, 3 configuration, other: as 3 */
    bool upgraded;     /* reports dl->version from now on */
    uint32_t fault;
    uint32_t start_s, complete_s;
    char key[33]; /* CommandKey (TR-069: 32 characters at most) */
};

struct job {
    struct job *next;
    uint32_t d;
    uint32_t size;
    uint32_t fault;
    bool inject;
    uint64_t bytes;
    char url[512], user[257], pass[257];
};

struct hm_lg_dl {
    struct hm_lg_dl_opts o;
    int efd;
    uint32_t ndev;
    uint64_t first_idx;
    struct dl_dev *dev; /* lazily: at the first Download */
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *todo, *done;
    char version[129];
    bool fixed_version; /* --fw-version given */
    struct hm_lg_dl_stats st;
};

bool hm_lg_dl_fails(uint64_t i, uint32_t pct)
{
    uint64_t z = i + 0x9e3779b97f4a7c15ull; /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z % 100 < pct;
}

/* ---- the fetch (fetch thread, blocking sockets with timeouts) ---- */

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One GET with optional <auth> header line; the whole response (Connection: close) in <b>. */
static int get_once(const struct sockaddr_in *sa, const char *host, const char *path,
                    const char *auth, double timeout_s, struct hm_buf *b)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1) {
        rc = -errno;
        goto out;
    }
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: hems-loadgen\r\n"
                     "Connection: close\r\n%s\r\n", path, host, auth ? auth : "");
    if (n < 0 || (size_t)n >= sizeof(req)) {
        rc = -E2BIG;
        goto out;
    }
    rc = send_all(fd, req, (size_t)n);
    if (rc < 0)
        goto out;
    hm_buf_reset(b);
    for (;;) {
        hm_buf_reserve(b, 65536);
        ssize_t r = recv(fd, b->base + b->len, b->cap - b->len, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        b->len += (size_t)r;
        if (b->len > MAX_BODY) {
            rc = -EFBIG;
            goto out;
        }
    }
out:
    close(fd);
    return rc;
}

/* "Authorization: ..." answering the challenge of <r> (a 401), or -EINVAL. */
static int answer(const struct hm_lg_resp *r, const struct job *j, const char *path, char *out,
                  size_t cap)
{
    struct hm_slice user = hm_slice_cstr(j->user), pass = hm_slice_cstr(j->pass);
    struct hm_lg_challenge ch;
    if (r->www_auth_digest && hm_lg_http_parse_challenge(r->www_authenticate, &ch) == 0) {
        char ha1[HM_AUTH_HEX_LEN + 1], resp[HM_AUTH_HEX_LEN + 1], cnonce[17];
        hm_auth_ha1(user, ch.realm, pass, ha1);
        snprintf(cnonce, sizeof(cnonce), "%08x%08x", (unsigned)rand(), (unsigned)j->d);
        struct hm_auth_digest d = {.qop_auth = ch.qop_auth, .sess = ch.sess};
        d.f[HM_AUTH_F_NONCE] = ch.nonce;
        d.f[HM_AUTH_F_URI] = hm_slice_cstr(path);
        d.f[HM_AUTH_F_NC] = HM_SLICE_LIT("00000001");
        d.f[HM_AUTH_F_CNONCE] = hm_slice(cnonce, 16);
        hm_auth_digest_response(&d, ha1, HM_SLICE_LIT("GET"), resp);
        int n = snprintf(out, cap,
                         "Authorization: Digest username=\"%s\", realm=\"" HM_SLICE_FMT
                         "\", nonce=\"" HM_SLICE_FMT "\", uri=\"%s\", algorithm=%s, "
                         "response=\"%s\"%s%s%s",
                         j->user, HM_SLICE_ARG(ch.realm), HM_SLICE_ARG(ch.nonce), path,
                         ch.sess ? "MD5-sess" : "MD5", resp,
                         ch.qop_auth ? ", qop=auth, nc=00000001, cnonce=\"" : "",
                         ch.qop_auth ? cnonce : "", ch.qop_auth ? "\"" : "");
        if (n < 0 || (size_t)n >= cap)
            return -E2BIG;
        if (ch.opaque.len) {
            int m = snprintf(out + n, cap - (size_t)n, ", opaque=\"" HM_SLICE_FMT "\"",
                             HM_SLICE_ARG(ch.opaque));
            if (m < 0 || (size_t)m >= cap - (size_t)n)
                return -E2BIG;
            n += m;
        }
        if ((size_t)n + 3 > cap)
            return -E2BIG;
        memcpy(out + n, "\r\n", 3);
        return 0;
    }
    if (r->www_authenticate.len >= 5 && strncasecmp(r->www_authenticate.ptr, "Basic", 5) == 0) {
        char up[520], b64[720];
        int n = snprintf(up, sizeof(up), "%s:%s", j->user, j->pass);
        if (n < 0 || (size_t)n >= sizeof(up))
            return -E2BIG;
        EVP_EncodeBlock((uint8_t *)b64, (const uint8_t *)up, (size_t)n);
        n = snprintf(out, cap, "Authorization: Basic %s\r\n", b64);
        return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
    }
    return -EINVAL;
}

static void fetch(struct hm_lg_dl *dl, struct job *j, struct hm_buf *b)
{
    char host[80], path[512];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(80)};
    const char *u = j->url;
    if (strncmp(u, "http://", 7) != 0) {
        j->fault = 9013; /* unsupported protocol */
        return;
    }
    u += 7;
    size_t hl = strcspn(u, "/");
    if (hl == 0 || hl >= sizeof(host)) {
        j->fault = 9013;
        return;
    }
    memcpy(host, u, hl);
    host[hl] = '\0';
    snprintf(path, sizeof(path), "%s", u[hl] ? u + hl : "/");
    char addr[80];
    memcpy(addr, host, hl + 1);
    char *colon = strchr(addr, ':');
    if (colon) {
        *colon = '\0';
        long port = strtol(colon + 1, NULL, 10);
        if (port <= 0 || port > 65535) {
            j->fault = 9013;
            return;
        }
        sa.sin_port = htons((uint16_t)port);
    }
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        j->fault = 9013; /* host names need a resolver: not simulated */
        return;
    }
    double to = dl->o.timeout_s > 0 ? dl->o.timeout_s : 10;
    char auth[1400] = "";
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = get_once(&sa, host, path, auth[0] ? auth : NULL, to, b);
        struct hm_lg_resp r;
        ssize_t hn = rc < 0 ? -1 : hm_lg_http_parse_response(b->base, b->len, &r);
        if (rc < 0 || hn <= 0) {
            j->fault = rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EHOSTUNREACH ? 9015
                                                                                     : 9017;
            return;
        }
        if (r.status == 401 && attempt == 0 && j->user[0] &&
            answer(&r, j, path, auth, sizeof(auth)) == 0)
            continue;
        if (r.status == 401) {
            j->fault = 9012;
            return;
        }
        if (r.status != 200) {
            j->fault = 9016;
            return;
        }
        uint64_t body = b->len - (size_t)hn;
        if ((r.content_length >= 0 && (uint64_t)r.content_length != body) ||
            r.body == HM_LG_BODY_CHUNKED) {
            j->fault = 9017; /* incomplete (chunked: not expected from a file server) */
            return;
        }
        if (j->size && body != j->size) {
            j->fault = 9018;
            return;
        }
        j->bytes = body;
        j->fault = j->inject ? 9010 : 0;
        return;
    }
}

static void *fetch_thread(void *arg)
{
    struct hm_lg_dl *dl = arg;
    struct hm_buf b = {0};
    for (;;) {
        pthread_mutex_lock(&dl->mu);
        while (!dl->todo && !dl->stop)
            pthread_cond_wait(&dl->cv, &dl->mu);
        if (dl->stop) {
            pthread_mutex_unlock(&dl->mu);
            break;
        }
        struct job *j = dl->todo;
        dl->todo = j->next;
        pthread_mutex_unlock(&dl->mu);
        fetch(dl, j, &b);
        pthread_mutex_lock(&dl->mu);
        j->next = dl->done;
        dl->done = j;
        pthread_mutex_unlock(&dl->mu);
        uint64_t one = 1;
        ssize_t w = write(dl->efd, &one, sizeof(one));
        (void)w;
    }
    hm_buf_free(&b);
    return NULL;
}

/* ---- worker side ---- */

int hm_lg_dl_open(struct hm_lg_dl **out, int ep, uint32_t ndev, uint64_t first_idx,
                  const struct hm_lg_dl_opts *o)
{
    struct hm_lg_dl *dl = hm_xcalloc(1, sizeof(*dl));
    dl->o = *o;
    dl->ndev = ndev;
    dl->first_idx = first_idx;
    if (o->fw_version && o->fw_version[0]) {
        snprintf(dl->version, sizeof(dl->version), "%s", o->fw_version);
        dl->fixed_version = true;
    }
    dl->o.fw_version = NULL;
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->cv, NULL);
    dl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dl->efd == -1) {
        int e = -errno;
        hm_lg_dl_close(dl);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = HM_LG_DL_TAG};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, dl->efd, &ev) == -1) {
        int e = -errno;
        hm_lg_dl_close(dl);
        return e;
    }
    *out = dl;
    return 0;
}

void hm_lg_dl_close(struct hm_lg_dl *dl)
{
    if (!dl)
        return;
    if (dl->started) {
        pthread_mutex_lock(&dl->mu);
        dl->stop = true;
        pthread_cond_signal(&dl->cv);
        pthread_mutex_unlock(&dl->mu);
        pthread_join(dl->thread, NULL);
    }
    for (int pass = 0; pass < 2; pass++)
        for (struct job *j = pass ? dl->done : dl->todo, *n; j; j = n) {
            n = j->next;
            free(j);
        }
    if (dl->efd >= 0)
        close(dl->efd);
    pthread_mutex_destroy(&dl->mu);
    pthread_cond_destroy(&dl->cv);
    free(dl->dev);
    free(dl);
}

static bool copy(char *dst, size_t cap, struct hm_slice s)
{
    if (s.len >= cap)
        return false;
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    return true;
}

int hm_lg_dl_start(struct hm_lg_dl *dl, uint32_t d, const struct hm_cwmp_download *req)
{
    if (d >= dl->ndev)
        return -EINVAL;
    if (!dl->dev)
        dl->dev = hm_xcalloc(dl->ndev, sizeof(*dl->dev));
    if (!dl->started) {
        if (pthread_create(&dl->thread, NULL, fetch_thread, dl) != 0)
            return -EAGAIN;
        dl->started = true;
    }
    struct dl_dev *v = &dl->dev[d];
    if (v->st != ST_IDLE)
        return -EBUSY;
    struct job *j = hm_xcalloc(1, sizeof(*j));
    if (!copy(j->url, sizeof(j->url), req->url) || !copy(j->user, sizeof(j->user), req->username) ||
        !copy(j->pass, sizeof(j->pass), req->password) ||
        !copy(v->key, sizeof(v->key), req->command_key) || req->url.len == 0) {
        free(j);
        return -EINVAL;
    }
    j->d = d;
    j->size = req->file_size;
    j->inject = hm_lg_dl_fails(dl->first_idx + d, dl->o.fail_pct);
    v->file_type = req->file_type.len && req->file_type.ptr[0] == '1' ? 1 : 3;
    v->st = ST_FETCHING;
    v->fault = 0;
    v->start_s = (uint32_t)time(NULL);
    dl->st.started++;
    pthread_mutex_lock(&dl->mu);
    j->next = dl->todo; /* LIFO: order does not matter, latency does not either */
    dl->todo = j;
    pthread_cond_signal(&dl->cv);
    pthread_mutex_unlock(&dl->mu);
    return 0;
}

void hm_lg_dl_event(struct hm_lg_dl *dl, void (*fn)(void *arg, uint32_t d), void *arg)
{
    uint64_t n;
    ssize_t r = read(dl->efd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&dl->mu);
    struct job *j = dl->done;
    dl->done = NULL;
    pthread_mutex_unlock(&dl->mu);
    while (j) {
        struct job *next = j->next;
        struct dl_dev *v = &dl->dev[j->d];
        v->fault = j->fault;
        v->complete_s = (uint32_t)time(NULL);
        v->st = ST_FINISHED;
        if (j->fault == 0) {
            dl->st.fetched++;
            dl->st.bytes += j->bytes;
            if (v->file_type == 1) {
                v->upgraded = true;
                if (!dl->fixed_version) { /* the URL's file name (see loadgen_dl.h) */
                    const char *slash = strrchr(j->url, '/');
                    const char *nm = slash && slash[1] ? slash + 1 : j->url;
                    size_t nl = HM_MIN(strlen(nm), sizeof(dl->version) - 1);
                    memcpy(dl->version, nm, nl);
                    dl->version[nl] = '\0';
                }
            }
        } else if (j->fault == 9010) {
            dl->st.injected++;
        } else {
            dl->st.errors++;
        }
        fn(arg, j->d);
        free(j);
        j = next;
    }
}

uint32_t hm_lg_dl_inform(struct hm_lg_dl *dl, uint32_t d, struct hm_cwmp_event *ev,
                         struct hm_slice *sw)
{
    if (!dl->dev || d >= dl->ndev)
        return 0;
    struct dl_dev *v = &dl->dev[d];
    if (v->upgraded && dl->version[0])
        *sw = hm_slice_cstr(dl->version);
    if (v->st != ST_FINISHED)
        return 0;
    uint32_t n = 0;
    if (v->file_type == 1 && v->fault == 0)
        ev[n++] = (struct hm_cwmp_event){HM_SLICE_LIT("1 BOOT"), HM_SLICE_LIT("")};
    ev[n++] = (struct hm_cwmp_event){HM_SLICE_LIT("7 TRANSFER COMPLETE"), HM_SLICE_LIT("")};
    ev[n++] = (struct hm_cwmp_event){HM_SLICE_LIT("M Download"), hm_slice_cstr(v->key)};
    return n;
}

static struct hm_slice stamp(char *buf, uint32_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return hm_slice(buf, strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm));
}

int hm_lg_dl_transfer_complete(struct hm_lg_dl *dl, uint32_t d, uint8_t ver, struct hm_buf *out)
{
    if (!dl->dev || d >= dl->ndev || dl->dev[d].st != ST_FINISHED)
        return 0;
    struct dl_dev *v = &dl->dev[d];
    char t0[32], t1[32], id[24];
    static const char *const why[] = {"", "Download failure", "Unsupported protocol",
                                      "File transfer server authentication failure",
                                      "Unable to contact file server", "Unable to access file",
                                      "Unable to complete download", "File corrupted"};
    unsigned wi = v->fault == 9010   ? 1
                  : v->fault == 9013 ? 2
                  : v->fault == 9012 ? 3
                  : v->fault == 9015 ? 4
                  : v->fault == 9016 ? 5
                  : v->fault == 9017 ? 6
                  : v->fault == 9018 ? 7
                                     : 0;
    struct hm_cwmp_transfer_complete tc = {
        .command_key = hm_slice_cstr(v->key),
        .fault = {v->fault, hm_slice_cstr(why[wi])},
        .start_time = stamp(t0, v->start_s),
        .complete_time = stamp(t1, v->complete_s),
    };
    int n = snprintf(id, sizeof(id), "tc%u", d);
    struct hm_cwmp_hdr h = {.ver = ver, .id = hm_slice(id, (size_t)n)};
    hm_cwmp_write_transfer_complete(out, &h, &tc);
    dl->st.tc_sent++;
    return 1;
}

void hm_lg_dl_acked(struct hm_lg_dl *dl, uint32_t d)
{
    if (!dl->dev || d >= dl->ndev || dl->dev[d].st != ST_FINISHED)
        return;
    dl->dev[d].st = ST_IDLE;
    dl->st.tc_acked++;
}

const struct hm_lg_dl_stats *hm_lg_dl_stats(const struct hm_lg_dl *dl)
{
    return &dl->st;
}
