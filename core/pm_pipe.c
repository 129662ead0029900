/*
 * PM ingestion pipeline; see core/pm_pipe.h and docs/pm.md ("Pipeline").
 *
 *   shard (upload handler)  --mpsc+eventfd-->  spool thread  --mpsc+eventfd-->  pipeline[i]
 *        ^ 201/200 via hm_shard_post  <-------------'                 |
 *                                                   hm_store_submit (group commit), wait
 *
 * Durable file markers live in HM_DB_FILES under "pm/f/<name key>" (one per file: status,
 * counts; value = version byte 1 + JSON text) and "pm/h/<sender>/<begin>" (header identity,
 * for duplicates whose names do not conform to TS 32.432).
 */
#include "core/pm_pipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/mpsc.h"
#include "proto/auth.h"
#include "proto/multipart.h"
#include "proto/pm.h"
#include "storage/record.h"

#define KEY_MAX 240
#define PATH_MAX_ 4352
#define JSON_CTYPE "application/json"

struct job {
    struct hm_shard_msg msg; /* reply to the shard */
    struct hm_mpsc_node node;
    struct hm_conn_ref ref;
    int status;
    char name[256];  /* file name from the URL or the multipart filename */
    char ctype[256]; /* Content-Type (multipart detection) */
    char *data;
    size_t len;
};

struct work {
    struct hm_mpsc_node node;
    char key[KEY_MAX];  /* name key; the spool file is <spool>/<key>.pm */
    char name[256];     /* original name */
    uint64_t bytes;
    uint64_t t_ms; /* when it was spooled (lag) */
};

struct agg {
    char *name; /* counter name (owned); NULL = empty slot */
    uint64_t count;
    double sum, min, max;
};

struct agg_tab {
    struct agg *v;
    size_t cap, n;
};

/* One file between parse and commit: a worker keeps up to HM_PM_WINDOW of them in flight so
 * that parsing the next file overlaps the group commit (and fsync) of the previous ones. */
#define HM_PM_WINDOW 32
struct slot {
    struct hm_mpsc_node node; /* on the worker's completion stack */
    struct worker *w;
    struct work *wk;
    struct hm_store_batch batch;
    struct agg_tab stage;
    int status;
    bool busy, quarantine;
    uint64_t meas;
    char hkey[KEY_MAX + 400]; /* header identity marker, "" if none */
};

struct worker {
    struct hm_pm_pipe *p;
    pthread_t th;
    struct hm_mpsc q;      /* new spooled files (from the spool thread / recovery) */
    struct hm_mpsc done_q; /* committed slots (from the store writer) */
    int efd;               /* wakes the worker for either */
    struct hm_pm_parser *parser;
    struct hm_store_reader *reader;
    struct slot slots[HM_PM_WINDOW];
    unsigned nbusy;
    struct hm_mpsc_node *pend, *pend_tail; /* files popped but not started */
    struct slot *cur; /* slot being filled by meas_cb */
};

struct hm_pm_pipe {
    struct hm_pm_pipe_opts o;
    char spool_dir[PATH_MAX_];
    char quar_dir[PATH_MAX_];
    char ha1[HM_AUTH_HEX_LEN + 1];
    bool auth;
    struct hm_auth_nonce_key nonce_key;
    struct hm_store *store;
    pthread_t spool_th;
    struct hm_mpsc spool_q;
    int spool_efd;
    struct hm_store_reader *spool_reader;
    int64_t last_spool_ns; /* mtime of the last spooled file (spool thread only) */
    atomic_bool stop;
    unsigned nworkers;
    struct worker *w;
    unsigned rr;
    pthread_mutex_t agg_mu;
    struct agg_tab aggs;
    atomic_uint_fast64_t seq;
    /* counters */
    atomic_uint_fast64_t spool_files, spool_bytes;
    atomic_uint_fast64_t files_ingested, bytes_ingested, meas_ingested, files_quarantined;
    atomic_uint_fast64_t uploads_dup, uploads_rejected_full, uploads_failed;
    atomic_int_fast64_t oldest_spooled_ms; /* lag: enqueue time of the file being parsed */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wake(int efd)
{
    uint64_t one = 1;
    ssize_t n = write(efd, &one, sizeof(one));
    (void)n;
}

static void wait_efd(int efd)
{
    uint64_t v;
    ssize_t n = read(efd, &v, sizeof(v));
    (void)n;
}

/* ---- aggregates ------------------------------------------------------------------------ */

static uint64_t hash_s(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static struct agg *agg_find(struct agg_tab *t, const char *s, size_t n)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct agg *nv = hm_xcalloc(ncap, sizeof(*nv));
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->v[i].name)
                continue;
            size_t j = hash_s(t->v[i].name, strlen(t->v[i].name)) & (ncap - 1);
            while (nv[j].name)
                j = (j + 1) & (ncap - 1);
            nv[j] = t->v[i];
        }
        free(t->v);
        t->v = nv;
        t->cap = ncap;
    }
    size_t j = hash_s(s, n) & (t->cap - 1);
    while (t->v[j].name) {
        if (strlen(t->v[j].name) == n && memcmp(t->v[j].name, s, n) == 0)
            return &t->v[j];
        j = (j + 1) & (t->cap - 1);
    }
    t->v[j].name = hm_xstrndup(s, n);
    t->v[j].min = INFINITY;
    t->v[j].max = -INFINITY;
    t->n++;
    return &t->v[j];
}

static void agg_clear(struct agg_tab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->v[i].name);
    free(t->v);
    *t = (struct agg_tab){0};
}

/* ---- markers --------------------------------------------------------------------------- */

static int put_json(struct hm_store_batch *b, const char *key, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    char *v = hm_xmalloc(n + 1);
    v[0] = 1;
    memcpy(v + 1, s, n);
    free(s);
    int r = hm_store_batch_put(b, HM_DB_FILES, hm_slice_cstr(key), hm_slice(v, n + 1));
    free(v);
    return r;
}

/* 1 when <key> exists in HM_DB_FILES with "status":"ingested", 0 if not, < 0 on error. */
static int marker_ingested(struct hm_store_reader *r, const char *key)
{
    int rc = hm_store_read_begin(r);
    if (rc < 0)
        return rc;
    struct hm_slice v;
    rc = hm_store_get(r, HM_DB_FILES, hm_slice_cstr(key), &v);
    int out = 0;
    if (rc == 0)
        out = v.len > 1 && memmem(v.ptr, v.len, "\"status\":\"ingested\"", 19) != NULL;
    else if (rc != -ENOENT)
        out = rc;
    hm_store_read_end(r);
    return out;
}

/* ---- spool thread ---------------------------------------------------------------------- */

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Name key (the spool file name without ".pm"): the upload's name made filesystem-safe.
 * A TS 32.432 name identifies sender and period, so it is the duplicate check; any other
 * name gets a unique "u<ms>-<seq>-" prefix (its duplicates are caught later by the header
 * marker). Returns true when the name conforms. */
static bool make_key(struct hm_pm_pipe *p, const char *name, char *key)
{
    struct hm_pm_name pn;
    size_t n = strlen(name);
    hm_pm_name_parse(hm_slice(name, n), &pn);
    bool conf = !(pn.flags & HM_PM_NAME_NONCONFORMING) && pn.sender.len;
    size_t k = 0;
    if (!conf)
        k = (size_t)snprintf(key, KEY_MAX, "u%llu-%llu-", (unsigned long long)now_ms(),
                             (unsigned long long)atomic_fetch_add(&p->seq, 1));
    for (size_t i = 0; i < n && k < KEY_MAX - 1; i++) {
        char c = name[i];
        key[k] = (c == '/' || c < 0x20 || (k == 0 && c == '.')) ? '_' : c;
        k++;
    }
    key[k] = '\0';
    return conf;
}

/* The original name back from a spool key (recovery). */
static const char *key_name(const char *key)
{
    if (key[0] != 'u')
        return key;
    const char *d = strchr(key, '-');
    d = d ? strchr(d + 1, '-') : NULL;
    return d ? d + 1 : key;
}

struct mp_ctx {
    struct hm_buf out;
    char name[256];
    int part; /* index of the part taken, -1 none yet */
};

static int mp_cb(void *arg, enum hm_mp_event ev, const struct hm_mp_part *part,
                 struct hm_slice data)
{
    struct mp_ctx *c = arg;
    if (ev == HM_MP_PART_BEGIN && c->part < 0 && (part->filename.len || part->index == 0)) {
        if (part->filename.len || c->part < 0) {
            c->part = (int)part->index;
            size_t n = part->filename.len < 255 ? part->filename.len : 255;
            if (n) {
                memcpy(c->name, part->filename.ptr, n);
                c->name[n] = '\0';
            }
        }
    } else if (ev == HM_MP_PART_BEGIN && part->filename.len && c->out.len == 0) {
        c->part = (int)part->index;
    }
    if (ev == HM_MP_PART_DATA && (int)part->index == c->part)
        hm_buf_append_slice(&c->out, data);
    return 0;
}

static void reply(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)s;
    struct job *j = (struct job *)m;
    struct hm_buf *out, *hdr;
    if (hm_httpd_deferred_bufs(j->ref, &out, &hdr)) {
        hm_buf_printf(out, "{\"status\":%d,\"file\":\"%s\"}\n", j->status, j->name);
        hm_httpd_finish(j->ref, j->status, JSON_CTYPE, false);
    }
    free(j->data);
    free(j);
}

static void enqueue_work(struct hm_pm_pipe *p, const char *key, const char *name, uint64_t bytes)
{
    struct work *wk = hm_xcalloc(1, sizeof(*wk));
    snprintf(wk->key, sizeof(wk->key), "%s", key);
    snprintf(wk->name, sizeof(wk->name), "%s", name);
    wk->bytes = bytes;
    wk->t_ms = now_ms();
    struct worker *w = &p->w[p->rr++ % p->nworkers];
    if (hm_mpsc_push(&w->q, &wk->node))
        wake(w->efd);
}

static int write_all(int fd, const char *d, size_t n)
{
    while (n) {
        ssize_t k = write(fd, d, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        d += k;
        n -= (size_t)k;
    }
    return 0;
}

static int spool_one(struct hm_pm_pipe *p, struct job *j)
{
    /* multipart/form-data: keep the file part */
    if (strncasecmp(j->ctype, "multipart/", 10) == 0) {
        struct hm_mp *mp = hm_xmalloc(sizeof(*mp));
        struct mp_ctx c = {.part = -1};
        int r = hm_mp_init(mp, hm_slice_cstr(j->ctype), 0, mp_cb, &c);
        if (r == 0)
            r = hm_mp_feed(mp, j->data, j->len);
        if (r == 0)
            r = hm_mp_finish(mp);
        free(mp);
        if (r < 0 || c.out.len == 0) {
            hm_buf_free(&c.out);
            hm_warn("pm upload: bad multipart body", "name=\"%s\" err=\"%s\"", j->name,
                    hm_strerror(r < 0 ? r : HM_EBADHTTP));
            return 400;
        }
        free(j->data);
        j->data = c.out.base; /* take the buffer */
        j->len = c.out.len;
        if (c.name[0]) {
            const char *b = strrchr(c.name, '/');
            snprintf(j->name, sizeof(j->name), "%s", b ? b + 1 : c.name);
        }
    }
    char key[KEY_MAX];
    if (!j->name[0])
        snprintf(j->name, sizeof(j->name), "upload.xml");
    make_key(p, j->name, key);
    char fkey[KEY_MAX + 8];
    snprintf(fkey, sizeof(fkey), "pm/f/%s", key);
    int m = marker_ingested(p->spool_reader, fkey);
    char path[PATH_MAX_ + KEY_MAX + 16], tmp[PATH_MAX_ + KEY_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s.pm", p->spool_dir, key);
    if (m > 0 || access(path, F_OK) == 0) {
        atomic_fetch_add(&p->uploads_dup, 1);
        hm_info("pm upload: duplicate, not ingested again", "name=\"%s\"", j->name);
        return 200;
    }
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", p->spool_dir, key);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = fd < 0 ? -errno : write_all(fd, j->data, j->len);
    if (r == 0) {
        /* strictly increasing modification times: recover() re-ingests in spool order */
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {0}};
        clock_gettime(CLOCK_REALTIME, &ts[1]);
        int64_t t = (int64_t)ts[1].tv_sec * 1000000000 + ts[1].tv_nsec;
        if (t <= p->last_spool_ns)
            t = p->last_spool_ns + 1;
        p->last_spool_ns = t;
        ts[1] = (struct timespec){.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
        if (futimens(fd, ts) < 0)
            r = -errno;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (fd >= 0)
        close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        atomic_fetch_add(&p->uploads_failed, 1);
        hm_err("pm upload: cannot spool", "path=\"%s\" err=\"%s\"", path, hm_strerror(r));
        return 500;
    }
    fsync_dir(p->spool_dir);
    atomic_fetch_add(&p->spool_files, 1);
    atomic_fetch_add(&p->spool_bytes, j->len);
    enqueue_work(p, key, j->name, j->len);
    return 201;
}

static void *spool_main(void *arg)
{
    struct hm_pm_pipe *p = arg;
    for (;;) {
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&p->spool_q);
        if (!n) {
            if (atomic_load(&p->stop))
                break;
            wait_efd(p->spool_efd);
            continue;
        }
        while (n) {
            struct hm_mpsc_node *next = n->next;
            struct job *j = (struct job *)((char *)n - offsetof(struct job, node));
            j->status = spool_one(p, j);
            j->msg.fn = reply;
            hm_shard_post(j->ref.shard, &j->msg);
            n = next;
        }
    }
    return NULL;
}

/* ---- pipeline threads ------------------------------------------------------------------ */

static int meas_cb(void *arg, const struct hm_pm_meas *m)
{
    struct slot *sl = ((struct worker *)arg)->cur;
    char obj[1200], ctr[600], key[HM_STORE_MAX_KEY + 1];
    struct hm_slice who = m->sender.len ? m->sender : m->me;
    int on = who.len ? snprintf(obj, sizeof(obj), HM_SLICE_FMT "/" HM_SLICE_FMT,
                                HM_SLICE_ARG(who), HM_SLICE_ARG(m->obj))
                     : snprintf(obj, sizeof(obj), HM_SLICE_FMT, HM_SLICE_ARG(m->obj));
    int cn = m->nvalues > 1 ? snprintf(ctr, sizeof(ctr), HM_SLICE_FMT ".%u",
                                       HM_SLICE_ARG(m->counter), (unsigned)m->index)
                            : snprintf(ctr, sizeof(ctr), HM_SLICE_FMT, HM_SLICE_ARG(m->counter));
    if (on < 0 || (size_t)on >= sizeof(obj) || cn < 0 || (size_t)cn >= sizeof(ctr))
        return HM_EBADPM;
    uint64_t start = (uint64_t)(m->period_end - (int64_t)m->gran_s) * 1000;
    int kl = hm_key_pm(key, sizeof(key), hm_slice(obj, (size_t)on), hm_slice(ctr, (size_t)cn),
                       start);
    if (kl < 0)
        return HM_EBADPM;
    struct hm_pm_rec rec = {.suspect = (m->flags & HM_PM_SUSPECT) != 0, .duration_s = m->gran_s};
    bool is_int = !(m->flags & (HM_PM_NIL | HM_PM_TEXT)) && m->text.len &&
                  !memchr(m->text.ptr, '.', m->text.len) && !memchr(m->text.ptr, 'e', m->text.len) &&
                  !memchr(m->text.ptr, 'E', m->text.len) && fabs(m->value) < 9e15;
    if (is_int) {
        rec.vtype = HM_PM_INT;
        rec.v.i = (int64_t)m->value;
    } else {
        rec.vtype = HM_PM_REAL;
        rec.v.r = m->value;
    }
    size_t vl = hm_rec_pm_size(&rec);
    char *v = hm_store_batch_put_reserve(&sl->batch, HM_DB_PM, hm_slice(key, (size_t)kl), vl);
    if (!v)
        return -E2BIG;
    if (hm_rec_pm_encode(&rec, v, vl) < 0)
        return -E2BIG;
    if (!isnan(m->value)) {
        struct agg *a = agg_find(&sl->stage, ctr, (size_t)cn);
        a->count++;
        a->sum += m->value;
        if (m->value < a->min)
            a->min = m->value;
        if (m->value > a->max)
            a->max = m->value;
    }
    return 0;
}

static void merge_aggs(struct hm_pm_pipe *p, struct agg_tab *st)
{
    pthread_mutex_lock(&p->agg_mu);
    for (size_t i = 0; i < st->cap; i++) {
        struct agg *s = &st->v[i];
        if (!s->name)
            continue;
        struct agg *a = agg_find(&p->aggs, s->name, strlen(s->name));
        a->count += s->count;
        a->sum += s->sum;
        if (s->min < a->min)
            a->min = s->min;
        if (s->max > a->max)
            a->max = s->max;
    }
    pthread_mutex_unlock(&p->agg_mu);
    agg_clear(st);
}

static void slot_done(void *arg, int status)
{
    struct slot *sl = arg;
    sl->status = status;
    if (hm_mpsc_push(&sl->w->done_q, &sl->node))
        wake(sl->w->efd);
}

static void slot_release(struct worker *w, struct slot *sl, bool uncount)
{
    struct hm_pm_pipe *p = w->p;
    if (uncount) {
        atomic_fetch_sub(&p->spool_files, 1);
        atomic_fetch_sub(&p->spool_bytes, sl->wk->bytes);
    }
    free(sl->wk);
    sl->wk = NULL;
    hm_store_batch_reset(&sl->batch);
    agg_clear(&sl->stage);
    sl->busy = false;
    w->nbusy--;
}

static void submit(struct worker *w, struct slot *sl)
{
    int r;
    while ((r = hm_store_submit(w->p->store, &sl->batch, slot_done, sl)) == -EAGAIN)
        usleep(1000); /* ring full: the writer drains it on its own thread */
    if (r < 0)
        slot_done(sl, r);
}

/* After the commit: drop the spool file, publish aggregates and counters. */
static void complete(struct worker *w, struct slot *sl)
{
    struct hm_pm_pipe *p = w->p;
    struct work *wk = sl->wk;
    if (sl->status < 0) {
        /* the file stays in the spool: retried on the next start */
        hm_err("pm pipeline: commit failed; file stays in the spool", "name=\"%s\" err=\"%s\"",
               wk->name, hm_strerror(sl->status));
        atomic_fetch_add(&p->uploads_failed, 1);
        slot_release(w, sl, false);
        return;
    }
    if (sl->quarantine) {
        atomic_fetch_add(&p->files_quarantined, 1);
        slot_release(w, sl, true);
        return;
    }
    char path[PATH_MAX_ + KEY_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s.pm", p->spool_dir, wk->key);
    /* No directory fsync: if the unlink is lost in a crash, the file is found again at
     * start and dropped as a duplicate by its committed marker. */
    unlink(path);
    merge_aggs(p, &sl->stage);
    atomic_fetch_add(&p->files_ingested, 1);
    atomic_fetch_add(&p->bytes_ingested, wk->bytes);
    atomic_fetch_add(&p->meas_ingested, sl->meas);
    hm_info("pm file ingested", "name=\"%s\" measurements=%llu bytes=%llu", wk->name,
            (unsigned long long)sl->meas, (unsigned long long)wk->bytes);
    slot_release(w, sl, true);
}

static bool hkey_in_flight(struct worker *w, const struct slot *self)
{
    for (unsigned i = 0; i < HM_PM_WINDOW; i++) {
        const struct slot *o = &w->slots[i];
        if (o != self && o->busy && !o->quarantine && strcmp(o->hkey, self->hkey) == 0)
            return true;
    }
    return false;
}

/* Parses <wk> into slot <sl> (marked busy) and submits its batch, or finishes it at once
 * (duplicate, vanished). */
static void ingest(struct worker *w, struct slot *sl)
{
    struct hm_pm_pipe *p = w->p;
    struct work *wk = sl->wk;
    char path[PATH_MAX_ + KEY_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s.pm", p->spool_dir, wk->key);
    atomic_store(&p->oldest_spooled_ms, (int64_t)wk->t_ms);
    struct hm_pm_summary sum = {0};
    w->cur = sl;
    sl->hkey[0] = '\0';
    sl->quarantine = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int r = fd < 0 ? -errno : hm_pm_parse_fd(w->parser, fd, meas_cb, w, &sum);
    if (fd >= 0)
        close(fd);
    char fkey[KEY_MAX + 8];
    snprintf(fkey, sizeof(fkey), "pm/f/%s", wk->key);
    if (r == -ENOENT) {
        hm_warn("pm pipeline: spool file vanished", "path=\"%s\"", path);
        slot_release(w, sl, true);
        return;
    }
    if (r < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", r == HM_EBADPM ? hm_pm_errmsg(w->parser) : hm_strerror(r));
        char qpath[PATH_MAX_ + KEY_MAX + 16];
        snprintf(qpath, sizeof(qpath), "%s/%s.pm", p->quar_dir, wk->key);
        hm_store_batch_reset(&sl->batch);
        agg_clear(&sl->stage);
        sl->quarantine = true;
        if (rename(path, qpath) < 0)
            hm_err("pm pipeline: cannot quarantine", "path=\"%s\" err=\"%s\"", path,
                   strerror(errno));
        fsync_dir(p->quar_dir);
        fsync_dir(p->spool_dir);
        hm_warn("pm file quarantined", "name=\"%s\" key=\"%s\" err=\"%s\"", wk->name, wk->key,
                msg);
        int cr = put_json(&sl->batch, fkey,
                          json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "key", wk->key, "name", wk->name,
                                    "status", "quarantined", "bytes", (json_int_t)wk->bytes,
                                    "time_ms", (json_int_t)now_ms(), "error", msg));
        if (cr < 0) {
            atomic_fetch_add(&p->files_quarantined, 1);
            slot_release(w, sl, true);
            return;
        }
        submit(w, sl);
        return;
    }
    /* duplicate by header identity (sender + begin + end), committed or in flight */
    if (sum.sender.len && sum.begin) {
        snprintf(sl->hkey, sizeof(sl->hkey), "pm/h/" HM_SLICE_FMT "/%lld-%lld",
                 HM_SLICE_ARG(sum.sender), (long long)sum.begin, (long long)sum.end);
        if (strlen(sl->hkey) > HM_STORE_MAX_KEY)
            sl->hkey[HM_STORE_MAX_KEY] = '\0';
        if (hkey_in_flight(w, sl) || marker_ingested(w->reader, sl->hkey) > 0) {
            atomic_fetch_add(&p->uploads_dup, 1);
            hm_info("pm file is a duplicate (same sender and period), not ingested again",
                    "name=\"%s\" marker=\"%s\"", wk->name, sl->hkey);
            unlink(path);
            slot_release(w, sl, true);
            return;
        }
    }
    json_t *rec = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s#,s:I,s:I,s:s}", "key", wk->key,
                            "name", wk->name, "status", "ingested", "bytes", (json_int_t)wk->bytes,
                            "measurements", (json_int_t)sum.count, "nil", (json_int_t)sum.nil,
                            "suspect", (json_int_t)sum.suspect, "sender", sum.sender.ptr ? sum.sender.ptr : "",
                            (int)sum.sender.len, "begin", (json_int_t)sum.begin, "end",
                            (json_int_t)sum.end, "format",
                            sum.format == HM_PM_FMT_CMCC ? "cmcc" : "3gpp");
    json_object_set_new(rec, "time_ms", json_integer((json_int_t)now_ms()));
    sl->meas = sum.count;
    r = put_json(&sl->batch, fkey, json_incref(rec));
    if (r == 0 && sl->hkey[0])
        r = put_json(&sl->batch, sl->hkey, rec);
    else
        json_decref(rec);
    if (r < 0) {
        slot_done(sl, r);
        return;
    }
    submit(w, sl);
}

static struct slot *free_slot(struct worker *w)
{
    for (unsigned i = 0; i < HM_PM_WINDOW; i++)
        if (!w->slots[i].busy)
            return &w->slots[i];
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct hm_pm_pipe *p = w->p;
    for (;;) {
        bool did = false;
        for (struct hm_mpsc_node *n = hm_mpsc_pop_all(&w->done_q); n;) {
            struct hm_mpsc_node *next = n->next;
            complete(w, (struct slot *)n);
            n = next;
            did = true;
        }
        bool stop = atomic_load(&p->stop);
        if (!stop) {
            struct hm_mpsc_node *n = hm_mpsc_pop_all(&w->q);
            if (n) {
                if (w->pend_tail)
                    w->pend_tail->next = n;
                else
                    w->pend = n;
                while (n->next)
                    n = n->next;
                w->pend_tail = n;
            }
            struct slot *sl;
            while (w->pend && (sl = free_slot(w))) {
                struct hm_mpsc_node *wn = w->pend;
                w->pend = wn->next;
                if (!w->pend)
                    w->pend_tail = NULL;
                sl->busy = true;
                sl->wk = (struct work *)wn;
                w->nbusy++;
                ingest(w, sl);
                did = true;
            }
        }
        if (w->nbusy == 0 && !w->pend)
            atomic_store(&p->oldest_spooled_ms, 0);
        if (stop && w->nbusy == 0)
            break;
        if (!did)
            wait_efd(w->efd);
    }
    return NULL;
}

/* ---- upload handler (shard) ------------------------------------------------------------ */

/* Basic or Digest (qop=auth) against the one [pm] credential. Digest nonces are stateless
 * and not bound to the connection (conn_id 0: the CWMP listener's conn_data slot belongs to
 * the ACS), so there is no nc replay tracking: a replay within the nonce lifetime can only
 * repeat the same request line, and uploads are idempotent. 0, or HM_ESTALE_NONCE / -EACCES. */
static int auth_check(struct hm_pm_pipe *p, struct hm_http_exchange *x)
{
    if (!p->auth)
        return 0;
    struct hm_slice a = x->req->authorization;
    enum hm_auth_scheme sc = hm_auth_scheme_of(a);
    if (sc == HM_AUTH_BASIC) {
        char buf[512];
        struct hm_slice u, pw;
        if (hm_auth_basic_parse(a, buf, sizeof(buf), &u, &pw) < 0)
            return -EACCES;
        char ha1[HM_AUTH_HEX_LEN + 1];
        hm_auth_ha1(u, hm_slice_cstr(p->o.realm), pw, ha1);
        unsigned d = !hm_slice_eq(u, hm_slice_cstr(p->o.username));
        for (int i = 0; i < HM_AUTH_HEX_LEN; i++)
            d |= (unsigned)(ha1[i] ^ p->ha1[i]);
        return d == 0 ? 0 : -EACCES;
    }
    if (sc == HM_AUTH_DIGEST) {
        struct hm_auth_digest d;
        if (hm_auth_digest_parse(a, &d) < 0 ||
            !hm_slice_eq(d.f[HM_AUTH_F_USERNAME], hm_slice_cstr(p->o.username)))
            return -EACCES;
        struct hm_auth_nonce_state st = {0};
        int r = hm_auth_digest_verify(&d, p->ha1, x->req->method_str, x->req->target,
                                      &p->nonce_key, 0, now_ms() / 1000, &st);
        return r == HM_ESTALE_NONCE ? r : r < 0 ? -EACCES : 0;
    }
    return -EACCES;
}

static void challenge(struct hm_pm_pipe *p, struct hm_http_exchange *x, bool stale)
{
    hm_buf_printf(x->headers, "WWW-Authenticate: Basic realm=\"%s\"\r\n", p->o.realm);
    char nonce[HM_AUTH_NONCE_LEN + 1], v[512];
    hm_auth_nonce_make(&p->nonce_key, 0, now_ms() / 1000, nonce);
    if (hm_auth_challenge(v, sizeof(v), hm_slice_cstr(p->o.realm), hm_slice_cstr(nonce),
                          hm_slice(NULL, 0), stale) > 0)
        hm_buf_printf(x->headers, "WWW-Authenticate: %s\r\n", v);
}

static int upload(struct hm_http_exchange *x, void *ctx)
{
    struct hm_pm_pipe *p = ctx;
    if (x->req->method != HM_HTTP_PUT && x->req->method != HM_HTTP_POST) {
        hm_buf_append_str(x->headers, "Allow: PUT, POST\r\n");
        return 405;
    }
    int ar = auth_check(p, x);
    if (ar < 0) {
        challenge(p, x, ar == HM_ESTALE_NONCE);
        return 401;
    }
    if (x->body_len == 0)
        return 400;
    if (x->body_len > p->o.max_file_bytes)
        return 413;
    if (atomic_load(&p->spool_files) + 1 > p->o.spool_max_files ||
        atomic_load(&p->spool_bytes) + x->body_len > p->o.spool_max_bytes) {
        atomic_fetch_add(&p->uploads_rejected_full, 1);
        hm_buf_append_str(x->headers, "Retry-After: 30\r\n");
        return 503;
    }
    struct job *j = hm_xcalloc(1, sizeof(*j));
    struct hm_slice path = x->req->path;
    const char *base = path.ptr + path.len;
    while (base > path.ptr && base[-1] != '/')
        base--;
    size_t bl = (size_t)(path.ptr + path.len - base);
    if (bl > sizeof(j->name) - 1)
        bl = sizeof(j->name) - 1;
    memcpy(j->name, base, bl);
    size_t cl = x->req->content_type.len < sizeof(j->ctype) - 1 ? x->req->content_type.len
                                                               : sizeof(j->ctype) - 1;
    if (cl)
        memcpy(j->ctype, x->req->content_type.ptr, cl);
    j->data = hm_xmalloc(x->body_len);
    memcpy(j->data, x->body, x->body_len);
    j->len = x->body_len;
    j->ref = x->ref;
    if (hm_mpsc_push(&p->spool_q, &j->node))
        wake(p->spool_efd);
    return HM_HTTP_DEFER;
}

/* ---- query API (admin listener, shard, read snapshots) --------------------------------- */

static int send_json(struct hm_http_exchange *x, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        hm_buf_append_str(x->out, s);
    hm_buf_append_str(x->out, "\n");
    free(s);
    json_decref(j);
    x->content_type = JSON_CTYPE;
    return status;
}

static int api_error(struct hm_http_exchange *x, int status, const char *code, const char *msg)
{
    return send_json(x, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* Query parameter <name>, percent-decoded into <out>; false if absent. */
static bool qparam(struct hm_slice q, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *s = q.ptr, *e = q.ptr + q.len;
    while (s && s < e) {
        const char *amp = memchr(s, '&', (size_t)(e - s));
        const char *end = amp ? amp : e;
        if ((size_t)(end - s) > nl && memcmp(s, name, nl) == 0 && s[nl] == '=') {
            size_t k = 0;
            for (const char *c = s + nl + 1; c < end && k + 1 < cap; c++) {
                if (*c == '%' && end - c >= 3) {
                    char hx[3] = {c[1], c[2], 0};
                    out[k++] = (char)strtol(hx, NULL, 16);
                    c += 2;
                } else {
                    out[k++] = *c == '+' ? ' ' : *c;
                }
            }
            out[k] = '\0';
            return true;
        }
        s = amp ? amp + 1 : NULL;
    }
    return false;
}

static int files_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    (void)key;
    json_t *arr = arg;
    if (val.len < 2 || val.ptr[0] != 1)
        return 0;
    json_t *j = json_loadb(val.ptr + 1, val.len - 1, 0, NULL);
    if (j)
        json_array_append_new(arr, j);
    return json_array_size(arr) >= 10000 ? 1 : 0;
}

struct series_ctx {
    struct hm_http_exchange *x;
    json_t *arr;
    bool csv;
    size_t plen;
    uint64_t to_ms;
    const char *object, *counter;
    size_t n;
};

static int series_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct series_ctx *c = arg;
    if (key.len != c->plen + 8)
        return 0;
    uint64_t t = hm_be64_get(key.ptr + c->plen);
    if (t > c->to_ms)
        return 1;
    struct hm_pm_rec r;
    if (hm_rec_pm_decode(val, &r) < 0)
        return 0;
    double v = r.vtype == HM_PM_INT ? (double)r.v.i : r.v.r;
    if (c->csv) {
        if (r.vtype == HM_PM_INT)
            hm_buf_printf(c->x->out, "%llu,%lld,%u,%d\n", (unsigned long long)(t / 1000),
                          (long long)r.v.i, r.duration_s, r.suspect);
        else if (isnan(v))
            hm_buf_printf(c->x->out, "%llu,,%u,%d\n", (unsigned long long)(t / 1000),
                          r.duration_s, r.suspect);
        else
            hm_buf_printf(c->x->out, "%llu,%.17g,%u,%d\n", (unsigned long long)(t / 1000), v,
                          r.duration_s, r.suspect);
    } else {
        json_t *val_j = isnan(v) ? json_null()
                        : r.vtype == HM_PM_INT ? json_integer(r.v.i)
                                               : json_real(v);
        json_array_append_new(c->arr, json_pack("{s:I,s:o,s:i,s:b}", "start",
                                                (json_int_t)(t / 1000), "value", val_j,
                                                "duration_s", (int)r.duration_s, "suspect",
                                                r.suspect));
    }
    return ++c->n >= 100000 ? 1 : 0;
}

static int api(struct hm_http_exchange *x, void *ctx)
{
    struct hm_pm_pipe *p = ctx;
    struct hm_slice path = x->req->path;
    if (x->req->method != HM_HTTP_GET)
        return api_error(x, 405, "method_not_allowed", "only GET");
    struct hm_store_reader *rd = p->o.reader_of ? p->o.reader_of(x->shard) : NULL;
    if (hm_slice_eq_lit(path, "/api/v1/pm/aggregates")) {
        json_t *o = json_object();
        pthread_mutex_lock(&p->agg_mu);
        for (size_t i = 0; i < p->aggs.cap; i++) {
            struct agg *a = &p->aggs.v[i];
            if (a->name)
                json_object_set_new(o, a->name,
                                    json_pack("{s:I,s:f,s:f,s:f}", "count", (json_int_t)a->count,
                                              "sum", a->sum, "min", a->min, "max", a->max));
        }
        pthread_mutex_unlock(&p->agg_mu);
        return send_json(x, 200, json_pack("{s:o}", "counters", o));
    }
    if (!rd)
        return api_error(x, 503, "unavailable", "no store reader");
    if (hm_slice_eq_lit(path, "/api/v1/pm/files")) {
        json_t *arr = json_array();
        int r = hm_store_read_begin(rd);
        if (r == 0) {
            r = hm_store_scan(rd, HM_DB_FILES, HM_SLICE_LIT("pm/f/"), hm_slice(NULL, 0), files_cb,
                              arr);
            hm_store_read_end(rd);
        }
        if (r < 0) {
            json_decref(arr);
            return api_error(x, 503, "store", hm_strerror(r));
        }
        return send_json(x, 200, json_pack("{s:o,s:I}", "files", arr, "spool_files",
                                           (json_int_t)atomic_load(&p->spool_files)));
    }
    if (hm_slice_eq_lit(path, "/api/v1/pm/series")) {
        char obj[1024], ctr[512], tmp[64], fmt[16] = "json";
        if (!qparam(x->req->query, "object", obj, sizeof(obj)) ||
            !qparam(x->req->query, "counter", ctr, sizeof(ctr)))
            return api_error(x, 400, "bad_request", "object and counter are required");
        uint64_t from = 0, to = UINT64_MAX;
        if (qparam(x->req->query, "from", tmp, sizeof(tmp)))
            from = strtoull(tmp, NULL, 10) * 1000;
        if (qparam(x->req->query, "to", tmp, sizeof(tmp)))
            to = strtoull(tmp, NULL, 10) * 1000;
        qparam(x->req->query, "format", fmt, sizeof(fmt));
        char key[HM_STORE_MAX_KEY + 1];
        int kl = hm_key_pm(key, sizeof(key), hm_slice_cstr(obj), hm_slice_cstr(ctr), from);
        if (kl < 0)
            return api_error(x, 400, "bad_request", "object/counter too long");
        struct series_ctx c = {.x = x, .csv = strcmp(fmt, "csv") == 0, .plen = (size_t)kl - 8,
                               .to_ms = to, .object = obj, .counter = ctr};
        if (c.csv)
            hm_buf_append_str(x->out, "start,value,duration_s,suspect\n");
        else
            c.arr = json_array();
        int r = hm_store_read_begin(rd);
        if (r == 0) {
            r = hm_store_scan(rd, HM_DB_PM, hm_slice(key, c.plen), hm_slice(key, (size_t)kl),
                              series_cb, &c);
            hm_store_read_end(rd);
        }
        if (r < 0) {
            json_decref(c.arr);
            hm_buf_reset(x->out);
            return api_error(x, 503, "store", hm_strerror(r));
        }
        if (c.csv) {
            x->content_type = "text/csv";
            return 200;
        }
        return send_json(x, 200, json_pack("{s:s,s:s,s:o}", "object", obj, "counter", ctr,
                                           "points", c.arr));
    }
    return api_error(x, 404, "not_found", "unknown PM resource");
}

unsigned hm_pm_routes(struct hm_route *r, struct hm_pm_pipe *p)
{
    r[0] = (struct hm_route){HM_LISTENER_CWMP, p->o.upload_path, false, upload, p};
    r[1] = (struct hm_route){HM_LISTENER_ADMIN, "/api/v1/pm/", false, api, p};
    return 2;
}

/* ---- metrics --------------------------------------------------------------------------- */

void hm_pm_render_metrics(struct hm_buf *out, void *arg)
{
    struct hm_pm_pipe *p = arg;
    int64_t oldest = atomic_load(&p->oldest_spooled_ms);
    double lag = oldest ? (double)((int64_t)now_ms() - oldest) / 1000.0 : 0.0;
    hm_buf_printf(out,
                  "# TYPE hems_pm_files_ingested_total counter\nhems_pm_files_ingested_total %llu\n"
                  "# TYPE hems_pm_bytes_ingested_total counter\nhems_pm_bytes_ingested_total %llu\n"
                  "# TYPE hems_pm_measurements_ingested_total counter\n"
                  "hems_pm_measurements_ingested_total %llu\n"
                  "# TYPE hems_pm_files_quarantined_total counter\n"
                  "hems_pm_files_quarantined_total %llu\n"
                  "# TYPE hems_pm_uploads_duplicate_total counter\n"
                  "hems_pm_uploads_duplicate_total %llu\n"
                  "# TYPE hems_pm_uploads_rejected_full_total counter\n"
                  "hems_pm_uploads_rejected_full_total %llu\n"
                  "# TYPE hems_pm_uploads_failed_total counter\nhems_pm_uploads_failed_total %llu\n"
                  "# TYPE hems_pm_spool_files gauge\nhems_pm_spool_files %llu\n"
                  "# TYPE hems_pm_spool_bytes gauge\nhems_pm_spool_bytes %llu\n"
                  "# TYPE hems_pm_pipeline_lag_seconds gauge\nhems_pm_pipeline_lag_seconds %.3f\n",
                  (unsigned long long)atomic_load(&p->files_ingested),
                  (unsigned long long)atomic_load(&p->bytes_ingested),
                  (unsigned long long)atomic_load(&p->meas_ingested),
                  (unsigned long long)atomic_load(&p->files_quarantined),
                  (unsigned long long)atomic_load(&p->uploads_dup),
                  (unsigned long long)atomic_load(&p->uploads_rejected_full),
                  (unsigned long long)atomic_load(&p->uploads_failed),
                  (unsigned long long)atomic_load(&p->spool_files),
                  (unsigned long long)atomic_load(&p->spool_bytes), lag);
}

void hm_pm_pipe_stats(struct hm_pm_pipe *p, struct hm_pm_pipe_stats *o)
{
    o->spool_files = atomic_load(&p->spool_files);
    o->spool_bytes = atomic_load(&p->spool_bytes);
    o->files_ingested = atomic_load(&p->files_ingested);
    o->bytes_ingested = atomic_load(&p->bytes_ingested);
    o->meas_ingested = atomic_load(&p->meas_ingested);
    o->files_quarantined = atomic_load(&p->files_quarantined);
    o->uploads_dup = atomic_load(&p->uploads_dup);
    o->uploads_rejected_full = atomic_load(&p->uploads_rejected_full);
    o->uploads_failed = atomic_load(&p->uploads_failed);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int mkdir1(const char *d)
{
    return mkdir(d, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

struct spooled {
    struct timespec mtime;
    uint64_t size;
    char key[KEY_MAX];
};

static int spooled_cmp(const void *a, const void *b)
{
    const struct spooled *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Re-queues the files a previous run acknowledged but did not ingest, in the order they
 * were spooled (modification time), so that duplicate detection by file header keeps the
 * same winner as without the restart. */
static void recover(struct hm_pm_pipe *p)
{
    DIR *d = opendir(p->spool_dir);
    if (!d)
        return;
    struct dirent *e;
    struct spooled *v = NULL;
    size_t n = 0, cap = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        char path[PATH_MAX_ + 300];
        snprintf(path, sizeof(path), "%s/%s", p->spool_dir, e->d_name);
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            unlink(path); /* never acknowledged */
            continue;
        }
        if (l < 4 || l - 3 >= KEY_MAX || strcmp(e->d_name + l - 3, ".pm") != 0)
            continue;
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = hm_xrealloc(v, cap * sizeof(*v));
        }
        v[n].mtime = st.st_mtim;
        v[n].size = (uint64_t)st.st_size;
        memcpy(v[n].key, e->d_name, l - 3);
        v[n].key[l - 3] = '\0';
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), spooled_cmp);
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&p->spool_files, 1);
        atomic_fetch_add(&p->spool_bytes, v[i].size);
        enqueue_work(p, v[i].key, key_name(v[i].key), v[i].size);
    }
    free(v);
    if (n)
        hm_info("pm spool: re-ingesting files left by the previous run", "files=%zu", n);
}

int hm_pm_pipe_create(const struct hm_pm_pipe_opts *o, struct hm_store *store,
                      struct hm_pm_pipe **out, char *err, size_t errlen)
{
    struct hm_pm_pipe *p = hm_xcalloc(1, sizeof(*p));
    p->o = *o;
    p->store = store;
    p->spool_efd = -1;
    pthread_mutex_init(&p->agg_mu, NULL);
    snprintf(p->spool_dir, sizeof(p->spool_dir), "%s/pm-spool", o->data_dir);
    snprintf(p->quar_dir, sizeof(p->quar_dir), "%s/pm-quarantine", o->data_dir);
    if (p->o.threads == 0)
        p->o.threads = 1;
    if (o->username && o->username[0]) {
        p->auth = true;
        hm_auth_ha1(hm_slice_cstr(o->username), hm_slice_cstr(o->realm),
                    hm_slice_cstr(o->password ? o->password : ""), p->ha1);
        if (hm_auth_nonce_key_init(&p->nonce_key, NULL, 300) < 0) {
            snprintf(err, errlen, "pm: no randomness for Digest nonces");
            free(p);
            return -EIO;
        }
    }
    int r = mkdir1(p->spool_dir);
    if (r == 0)
        r = mkdir1(p->quar_dir);
    if (r < 0) {
        snprintf(err, errlen, "cannot create %s: %s", p->spool_dir, hm_strerror(r));
        free(p);
        return r;
    }
    p->spool_efd = eventfd(0, EFD_CLOEXEC);
    r = hm_store_reader_open(store, &p->spool_reader);
    p->nworkers = p->o.threads;
    p->w = hm_xcalloc(p->nworkers, sizeof(*p->w));
    for (unsigned i = 0; r == 0 && i < p->nworkers; i++) {
        struct worker *w = &p->w[i];
        w->p = p;
        w->efd = eventfd(0, EFD_CLOEXEC);
        for (unsigned k = 0; k < HM_PM_WINDOW; k++) {
            w->slots[k].w = w;
            hm_store_batch_init(&w->slots[k].batch);
        }
        w->parser = hm_pm_parser_create();
        if (!w->parser || w->efd < 0)
            r = -ENOMEM;
        if (r == 0)
            r = hm_store_reader_open(store, &w->reader);
        if (w->parser)
            hm_pm_set_max_bytes(w->parser, o->max_file_bytes * 64);
    }
    if (r < 0 || p->spool_efd < 0) {
        snprintf(err, errlen, "pm pipeline: %s", hm_strerror(r < 0 ? r : -errno));
        goto fail;
    }
    recover(p);
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]);
    pthread_create(&p->spool_th, NULL, spool_main, p);
    *out = p;
    return 0;
fail:
    for (unsigned i = 0; i < p->nworkers; i++) {
        if (p->w[i].reader)
            hm_store_reader_close(p->w[i].reader);
        hm_pm_parser_destroy(p->w[i].parser);
        for (unsigned k = 0; k < HM_PM_WINDOW; k++)
            hm_store_batch_fini(&p->w[i].slots[k].batch);
    }
    if (p->spool_reader)
        hm_store_reader_close(p->spool_reader);
    free(p->w);
    free(p);
    return r < 0 ? r : -ENOMEM;
}

void hm_pm_pipe_destroy(struct hm_pm_pipe *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    wake(p->spool_efd);
    pthread_join(p->spool_th, NULL);
    for (unsigned i = 0; i < p->nworkers; i++) {
        wake(p->w[i].efd);
        pthread_join(p->w[i].th, NULL);
    }
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->w[i];
        for (int pass = 0; pass < 2; pass++) {
            struct hm_mpsc_node *n = pass ? w->pend : hm_mpsc_pop_all(&w->q);
            while (n) {
                struct hm_mpsc_node *next = n->next;
                free(n);
                n = next;
            }
        }
        hm_store_reader_close(w->reader);
        hm_pm_parser_destroy(w->parser);
        for (unsigned k = 0; k < HM_PM_WINDOW; k++) {
            hm_store_batch_fini(&w->slots[k].batch);
            agg_clear(&w->slots[k].stage);
        }
        close(w->efd);
    }
    hm_store_reader_close(p->spool_reader);
    close(p->spool_efd);
    agg_clear(&p->aggs);
    pthread_mutex_destroy(&p->agg_mu);
    free(p->w);
    free(p);
}
