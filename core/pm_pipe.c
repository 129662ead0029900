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
#include "core/api_json.h"
#include "core/pm_pipe.h"
#include "core/pm_migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/mpsc.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/multipart.h"
#include "proto/pm.h"
#include "proto/pm_row.h"
#include "storage/record.h"

#define KEY_MAX 240
#define SEG_REC_HDR 16
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
    /* spool group state */
    bool accepted;     /* to be written to the group's segment */
    char key[KEY_MAX]; /* spool key */
    uint64_t off;      /* offset of its data in the segment */
    char rhdr[SEG_REC_HDR + KEY_MAX + 256]; /* its record header, key and name */
    /* set for hm_pm_pipe_spool(): called instead of replying to a shard */
    void (*done)(void *arg, int status);
    void *done_arg;
};

/* A spool segment (docs/pm.md "Spool"): the uploads of one spool group in one file,
 * <spool>/s<16 hex id>.pms, written, fdatasync'ed and renamed into place before any of them
 * is acknowledged, unlinked by the janitor once every file in it is committed (or
 * quarantined, or dropped as a duplicate). Layout: SEG_MAGIC, then per file a record
 * LE32 SEG_REC_MAGIC | LE16 key length | LE16 name length | LE64 data length | key | name |
 * data. */
#define SEG_MAGIC "HMPMSEG1"
#define SEG_REC_MAGIC 0x31524d50u /* "PMR1" */
struct seg {
    struct hm_mpsc_node node; /* on the janitor's queue */
    atomic_uint refs;         /* its files not finished yet */
    atomic_bool keep;         /* a commit failed (or it is damaged): it stays for next start */
    atomic_uint_fast64_t done_files, done_bytes; /* finished: out of the spool at the unlink */
    char name[32];
};

struct work {
    struct hm_mpsc_node node;
    char key[KEY_MAX];  /* name key */
    char name[256];     /* original name */
    uint64_t bytes;
    uint64_t t_ms; /* when it was spooled (lag) */
    char *data;    /* the upload's bytes (owned) while under HM_PM_MEM_MAX, else NULL: the
                    * worker parses them instead of reading the spool back */
    struct seg *seg; /* its segment, or NULL: a one-file spool entry <spool>/<key>.pm (the
                      * layout of earlier versions, still recovered) */
    uint64_t off;    /* offset of the data in <seg> */
    uint64_t key_h;  /* in the spooled-key set (duplicate check by name) */
    struct work *set_next;
    bool in_set;
};

/* Spooled bytes kept in memory for the pipeline, at most (beyond: read back from disk). */
#define HM_PM_MEM_MAX (64u << 20)

/* Aggregates are kept per schema (the counter-name list of a compact row, proto/pm_row.h):
 * adding a file's values is one hash lookup per row, not one per measurement. The API merges
 * the schemas by counter name when it renders. */
struct acc {
    uint64_t count;
    double sum, min, max;
};

struct gagg {
    uint64_t hash; /* 0 = empty slot */
    uint32_t n;
    char *names; /* n names, each followed by '\0' (owned) */
    size_t names_len;
    struct acc *acc; /* n (owned) */
};

struct gagg_tab {
    struct gagg *v;
    size_t cap, n;
};

/* The schemas one worker has seen: their names (for the aggregates) and whether their
 * HM_DB_FILES record is known to be committed (then rows need not put it again). */
enum { SCH_UNKNOWN, SCH_PENDING, SCH_COMMITTED };
struct wschema {
    uint64_t hash; /* 0 = empty slot */
    int state;
    char *names; /* owned */
    size_t names_len;
    uint32_t n;
};

struct wschema_tab {
    struct wschema *v;
    size_t cap, n;
};

/* Distinct schemas remembered per worker and aggregated per process. Beyond this (only a
 * stream of files with ever new counter sets would get there) rows are still stored but
 * every row puts its schema and is left out of the aggregates. */
#define HM_PM_MAX_SCHEMAS 65536u

/* The row being built: the measurements of one measValue (CMCC: Pm), cut where a row
 * would not fit one pack value (HM_STORE_MAX_VAL) with its header, or its names one schema
 * record. */
#define ROW_NAMES_MAX (HM_STORE_MAX_VAL - 1)
/* A row's counter names are rebuilt only when they differ from the previous row's: the
 * parser's hm_pm_meas.names_gen lets them be compared by pointer (the rows of one measInfo
 * share their names, and comparing ~40 pointers is cheaper than copying, comparing and
 * hashing ~1 KB of names per row). */
struct rname {
    const char *ptr; /* counter.ptr: an identity within names_gen, never dereferenced later */
    uint32_t len;
    uint32_t idx; /* multi-value index + 1, 0 for a plain value */
};

struct row {
    bool open, suspect;
    bool diverged; /* names differ from <last>: <names> holds this row's names region */
    uint32_t group, gran_s;
    uint64_t gen; /* names_gen of the row's first measurement */
    uint32_t nbytes; /* length of this row's names region so far */
    int64_t period_end;
    uint32_t n;
    size_t objlen, infolen;
    size_t wholen;     /* obj starts with "<who>/" (who: the pack key's sender), 0: no who */
    uint32_t vals_max; /* values bytes at most, so that the row fits one pack value */
    char obj[1200];
    char info[HM_PM_MAX_DN + 1];
    struct hm_buf names; /* names region: counter '\0' ... (when diverged) */
    struct hm_buf vals;  /* encoded values */
    struct hm_buf dv;    /* the same values as doubles (NAN: not numeric), aggregates */
    struct hm_buf ent, off;           /* this row: struct rname, uint32 end offset per name */
    struct hm_buf last, last_ent, last_off; /* the previous distinct names region, its */
    uint32_t last_n;                          /* names and their end offsets */
    uint64_t last_gen;
    uint64_t last_hash;
};

/* One file between parse and commit: a worker keeps up to HM_PM_WINDOW of them in flight so
 * that parsing the next file overlaps the group commit (and fsync) of the previous ones. */
#define HM_PM_WINDOW 128
struct slot {
    struct hm_mpsc_node node; /* on the worker's completion stack */
    struct worker *w;
    struct work *wk;
    struct hm_store_batch batch;
    struct hm_buf stage;   /* per row: u64 schema, u64 n, n doubles (aggregates) */
    struct hm_buf schemas; /* u64 hashes this slot moved from SCH_UNKNOWN to SCH_PENDING */
    int status;
    bool busy, quarantine;
    uint64_t meas;
    char hkey[KEY_MAX + 400]; /* header identity marker, "" if none */
    uint64_t hkey_h;          /* its hash (the in-flight duplicate check compares it first) */
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
    struct row row;
    struct wschema_tab sch;
    struct hm_buf marker; /* the file marker being built */
    struct slot *ready[HM_PM_WINDOW]; /* parsed, not yet submitted (submit_ready) */
    unsigned nready;
    bool jan_wake; /* the janitor's queue was empty before this pass: wake it after */
    /* the open per-file value (pack, proto/pm_row.h layout 3) of the file being parsed */
    struct hm_pm_pack pack;
    size_t pack_wholen;  /* its key: who, period start */
    char pack_who[HM_STORE_MAX_KEY];
    uint64_t pack_start;
    uint64_t file_id;    /* hash of the file's spool key */
    struct hm_buf parts; /* struct pack_part: next part number per (who, period) */
    struct hm_buf rbuf;  /* a file read back from its segment */
};

struct hm_pm_pipe {
    struct hm_pm_pipe_opts o;
    char spool_dir[PATH_MAX_];
    int spool_dfd; /* spool_dir, for openat/unlinkat (no path walk per file) */
    char quar_dir[PATH_MAX_];
    char ha1[HM_AUTH_HEX_LEN + 1];
    bool auth;
    struct hm_auth_nonce_key nonce_key;
    struct hm_store *store;
    pthread_t spool_th;
    struct hm_mpsc spool_q;
    int spool_efd;
    struct hm_store_reader *spool_reader;
    uint64_t seg_last; /* id of the last segment (spool thread; recover() before) */
    atomic_bool stop;
    pthread_t jan_th;
    struct hm_mpsc jan_q; /* struct work of finished one-file entries: file to unlink */
    struct hm_mpsc seg_q; /* struct seg whose files are all finished: segment to unlink */
    /* keys in the spool (acknowledged, not finished): the duplicate check by name */
    pthread_mutex_t set_mu;
    struct work *set[4096];
    int jan_efd;
    atomic_bool jan_stop;
    atomic_uint_fast64_t mem_bytes; /* sum of work.data held */
    unsigned nworkers;
    struct worker *w;
    unsigned rr;
    pthread_mutex_t agg_mu;
    struct gagg_tab aggs;
    atomic_uint_fast64_t seq;
    /* counters */
    atomic_uint_fast64_t spool_files, spool_bytes;
    atomic_uint_fast64_t files_ingested, bytes_ingested, meas_ingested, files_quarantined;
    atomic_uint_fast64_t uploads_dup, uploads_rejected_full, uploads_failed;
    atomic_uint_fast64_t uploads_auth_failed, uploads_refused_disabled, uploads_refused_unknown,
        uploads_refused_other;
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

/* Open addressing on the (already mixed) 64-bit schema hash. Both tables keep a load factor
 * under 1/2 and never delete. */
#define TAB_FIND(T, tab, h, out)                                                                 \
    do {                                                                                         \
        size_t m_ = (tab)->cap - 1, j_ = (size_t)(h) & m_;                                       \
        (out) = NULL;                                                                            \
        if ((tab)->cap)                                                                          \
            for (; (tab)->v[j_].hash; j_ = (j_ + 1) & m_)                                        \
                if ((tab)->v[j_].hash == (h)) {                                                  \
                    (out) = &(tab)->v[j_];                                                       \
                    break;                                                                       \
                }                                                                                \
    } while (0)

/* A free slot for <h> (not present), growing the table first; NULL at HM_PM_MAX_SCHEMAS. */
#define TAB_INSERT(T, tab, h, out)                                                               \
    do {                                                                                         \
        (out) = NULL;                                                                            \
        if ((tab)->n >= HM_PM_MAX_SCHEMAS)                                                       \
            break;                                                                               \
        if (((tab)->n + 1) * 2 > (tab)->cap) {                                                   \
            size_t nc_ = (tab)->cap ? (tab)->cap * 2 : 64;                                       \
            T *nv_ = hm_xcalloc(nc_, sizeof(*nv_));                                              \
            for (size_t i_ = 0; i_ < (tab)->cap; i_++) {                                         \
                if (!(tab)->v[i_].hash)                                                          \
                    continue;                                                                    \
                size_t k_ = (size_t)(tab)->v[i_].hash & (nc_ - 1);                               \
                while (nv_[k_].hash)                                                             \
                    k_ = (k_ + 1) & (nc_ - 1);                                                   \
                nv_[k_] = (tab)->v[i_];                                                          \
            }                                                                                    \
            free((tab)->v);                                                                      \
            (tab)->v = nv_;                                                                      \
            (tab)->cap = nc_;                                                                    \
        }                                                                                        \
        size_t j_ = (size_t)(h) & ((tab)->cap - 1);                                              \
        while ((tab)->v[j_].hash)                                                                \
            j_ = (j_ + 1) & ((tab)->cap - 1);                                                    \
        (tab)->v[j_].hash = (h);                                                                 \
        (tab)->n++;                                                                              \
        (out) = &(tab)->v[j_];                                                                   \
    } while (0)

static struct wschema *wschema_get(struct wschema_tab *t, uint64_t h, const char *names,
                                   size_t len, uint32_t n)
{
    struct wschema *e;
    TAB_FIND(struct wschema, t, h, e);
    if (e)
        return e;
    TAB_INSERT(struct wschema, t, h, e);
    if (e) {
        e->state = SCH_UNKNOWN;
        e->names = hm_xmalloc(len);
        memcpy(e->names, names, len);
        e->names_len = len;
        e->n = n;
    }
    return e;
}

static void wschema_clear(struct wschema_tab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->v[i].names);
    free(t->v);
    *t = (struct wschema_tab){0};
}

static void gagg_clear(struct gagg_tab *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->v[i].names);
        free(t->v[i].acc);
    }
    free(t->v);
    *t = (struct gagg_tab){0};
}

/* ---- markers --------------------------------------------------------------------------- */

/* Marker values are built by hand (version byte 1 + compact JSON, the fields in a fixed
 * order): jansson's pack + dump + two allocations cost ~3% of a file's ingestion. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                                 : (c & 0xf8) == 0xf0 ? 3 : 4;
        if (k == 4 || (k == 1 && c < 0xc2) || i + k >= n)
            return false;
        uint32_t cp = k == 0 ? c : c & (0x3fu >> k);
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += k + 1;
    }
    return true;
}

static void json_name(struct hm_buf *b, const char *name)
{
    if (b->len > 2) /* after the version byte and '{' */
        hm_buf_append_lit(b, ",");
    hm_buf_append_lit(b, "\"");
    hm_buf_append_str(b, name);
    hm_buf_append_lit(b, "\":");
}

/* Appends "<name>":"<s escaped>" (bytes of a string that is not valid UTF-8 are taken as
 * Latin-1, so the value always parses). */
static void json_str(struct hm_buf *b, const char *name, struct hm_slice s)
{
    static const char hex[] = "0123456789abcdef";
    json_name(b, name);
    hm_buf_append_lit(b, "\"");
    bool utf8 = utf8_valid((const unsigned char *)s.ptr, s.len);
    hm_buf_reserve(b, s.len * 6 + 2);
    char *o = b->base + b->len;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || (c >= 0x80 && !utf8)) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->base);
}

static void json_int(struct hm_buf *b, const char *name, long long v)
{
    json_name(b, name);
    if (v >= 0)
        hm_buf_append_u64(b, (unsigned long long)v);
    else
        hm_buf_printf(b, "%lld", v);
}

/* Starts the file marker of <wk> in w->marker: its key, name, <status> and size; the caller
 * appends the rest and the closing brace. */
static struct hm_buf *marker_begin(struct worker *w, const struct work *wk,
                                   struct hm_slice status)
{
    struct hm_buf *mv = &w->marker;
    hm_buf_reset(mv);
    hm_buf_append_lit(mv, "\x01{");
    json_str(mv, "key", hm_slice_cstr(wk->key));
    json_str(mv, "name", hm_slice_cstr(wk->name));
    json_str(mv, "status", status);
    json_int(mv, "bytes", (long long)wk->bytes);
    return mv;
}

static int put_marker(struct hm_store_batch *b, const char *key, const struct hm_buf *v)
{
    return hm_store_batch_put(b, HM_DB_FILES, hm_slice_cstr(key), hm_buf_slice(v));
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

static void work_drop_data(struct hm_pm_pipe *p, struct work *wk)
{
    if (wk->data) {
        atomic_fetch_sub(&p->mem_bytes, wk->bytes);
        free(wk->data);
        wk->data = NULL;
    }
}

static void work_free(struct hm_pm_pipe *p, struct work *wk)
{
    work_drop_data(p, wk);
    free(wk);
}

/* ---- spooled-key set (duplicate check by name while a file is in the spool) ----------- */

static uint64_t key_hash(const char *key)
{
    return hm_pm_schema_hash(key, strlen(key));
}

static bool keyset_has(struct hm_pm_pipe *p, const char *key)
{
    uint64_t h = key_hash(key);
    bool found = false;
    pthread_mutex_lock(&p->set_mu);
    for (struct work *e = p->set[h % 4096]; e && !found; e = e->set_next)
        found = e->key_h == h && strcmp(e->key, key) == 0;
    pthread_mutex_unlock(&p->set_mu);
    return found;
}

static void keyset_add(struct hm_pm_pipe *p, struct work *wk)
{
    wk->key_h = key_hash(wk->key);
    pthread_mutex_lock(&p->set_mu);
    wk->set_next = p->set[wk->key_h % 4096];
    p->set[wk->key_h % 4096] = wk;
    wk->in_set = true;
    pthread_mutex_unlock(&p->set_mu);
}

static void keyset_del(struct hm_pm_pipe *p, struct work *wk)
{
    if (!wk->in_set)
        return;
    pthread_mutex_lock(&p->set_mu);
    for (struct work **e = &p->set[wk->key_h % 4096]; *e; e = &(*e)->set_next)
        if (*e == wk) {
            *e = wk->set_next;
            break;
        }
    wk->in_set = false;
    pthread_mutex_unlock(&p->set_mu);
}

/* <data> (may be NULL) is taken over. The work is in the key set before it is queued. */
static void enqueue_work(struct hm_pm_pipe *p, const char *key, const char *name, uint64_t bytes,
                         char *data, struct seg *seg, uint64_t off)
{
    struct work *wk = hm_xcalloc(1, sizeof(*wk));
    if (data && atomic_load(&p->mem_bytes) + bytes <= HM_PM_MEM_MAX) {
        atomic_fetch_add(&p->mem_bytes, bytes);
        wk->data = data;
    } else {
        free(data);
    }
    snprintf(wk->key, sizeof(wk->key), "%s", key);
    snprintf(wk->name, sizeof(wk->name), "%s", name);
    wk->bytes = bytes;
    wk->t_ms = now_ms();
    wk->seg = seg;
    wk->off = off;
    keyset_add(p, wk);
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

/* writev of all of <iov>[0..<n>) (modified on a short write). */
static int writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t k = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0 && k > 0) {
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

/* Phase 1 of a spool group: multipart extraction, name key, duplicate check. Returns 0
 * (j->accepted: goes into the group's segment) or the final HTTP status (200 duplicate,
 * 400). <grp>[0..<ngrp>) are the jobs of the group before this one (a duplicate inside the
 * group is caught here). */
static int spool_check(struct hm_pm_pipe *p, struct job *j, struct job **grp, size_t ngrp,
                       bool snap)
{
    j->accepted = false;
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
    if (!j->name[0])
        snprintf(j->name, sizeof(j->name), "upload.xml");
    make_key(p, j->name, j->key);
    char fkey[KEY_MAX + 8];
    snprintf(fkey, sizeof(fkey), "pm/f/%s", j->key);
    bool dup;
    if (snap) { /* the group's read snapshot: one for all its files */
        struct hm_slice v;
        dup = hm_store_get(p->spool_reader, HM_DB_FILES, hm_slice_cstr(fkey), &v) == 0 &&
              v.len > 1 && memmem(v.ptr, v.len, "\"status\":\"ingested\"", 19) != NULL;
    } else {
        dup = marker_ingested(p->spool_reader, fkey) > 0;
    }
    for (size_t i = 0; !dup && i < ngrp; i++)
        dup = grp[i]->accepted && strcmp(grp[i]->key, j->key) == 0;
    if (dup || keyset_has(p, j->key)) {
        atomic_fetch_add(&p->uploads_dup, 1);
        hm_info("pm upload: duplicate, not ingested again", "name=\"%s\"", j->name);
        return 200;
    }
    j->accepted = true;
    return 0;
}

/* Phase 2: the accepted files of the group written as one segment (.tmp- name), its data
 * synced (one fdatasync for the group), renamed into place, the folder synced. 0 (each
 * job's <off> set, *<out> the segment with one reference per file) or -errno (nothing left
 * behind). */
static int seg_write(struct hm_pm_pipe *p, struct job **grp, size_t n, size_t nacc,
                     struct seg **out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t id = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    if (id <= p->seg_last)
        id = p->seg_last + 1;
    p->seg_last = id;
    struct seg *sg = hm_xcalloc(1, sizeof(*sg));
    char tmp[48];
    snprintf(sg->name, sizeof(sg->name), "s%016llx.pms", (unsigned long long)id);
    snprintf(tmp, sizeof(tmp), ".tmp-%s", sg->name);
    struct iovec *iov = hm_xmalloc((2 * nacc + 1) * sizeof(*iov));
    int ni = 0;
    uint64_t off = sizeof(SEG_MAGIC) - 1;
    iov[ni++] = (struct iovec){.iov_base = (void *)SEG_MAGIC, .iov_len = off};
    for (size_t i = 0; i < n; i++) {
        struct job *j = grp[i];
        if (j->status != 0 || !j->accepted)
            continue;
        size_t kl = strlen(j->key), nl = strlen(j->name);
        unsigned char *h = (unsigned char *)j->rhdr;
        uint32_t m = SEG_REC_MAGIC;
        uint64_t dl = j->len;
        for (int b = 0; b < 4; b++)
            h[b] = (unsigned char)(m >> (8 * b));
        h[4] = (unsigned char)(kl & 0xff);
        h[5] = (unsigned char)(kl >> 8);
        h[6] = (unsigned char)(nl & 0xff);
        h[7] = (unsigned char)(nl >> 8);
        for (int b = 0; b < 8; b++)
            h[8 + b] = (unsigned char)(dl >> (8 * b));
        memcpy(j->rhdr + SEG_REC_HDR, j->key, kl);
        memcpy(j->rhdr + SEG_REC_HDR + kl, j->name, nl);
        size_t hl = SEG_REC_HDR + kl + nl;
        iov[ni++] = (struct iovec){.iov_base = j->rhdr, .iov_len = hl};
        iov[ni++] = (struct iovec){.iov_base = j->data, .iov_len = j->len};
        j->off = off + hl;
        off += hl + j->len;
    }
    int fd = openat(p->spool_dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = fd < 0 ? -errno : writev_all(fd, iov, ni);
    free(iov);
    if (r == 0 && fdatasync(fd) < 0)
        r = -errno;
    if (fd >= 0 && close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(p->spool_dfd, tmp, p->spool_dfd, sg->name) < 0)
        r = -errno;
    if (r == 0 && fsync(p->spool_dfd) < 0) {
        r = -errno;
        unlinkat(p->spool_dfd, sg->name, 0);
    }
    if (r < 0) {
        unlinkat(p->spool_dfd, tmp, 0);
        hm_err("pm upload: cannot spool", "segment=\"%s/%s\" files=%zu err=\"%s\"", p->spool_dir,
               tmp, nacc, hm_strerror(r));
        free(sg);
        return r;
    }
    atomic_store(&sg->refs, (unsigned)nacc);
    *out = sg;
    return 0;
}

static void spool_reply(struct job *j)
{
    if (j->done) {
        j->done(j->done_arg, j->status);
        free(j->data);
        free(j);
        return;
    }
    j->msg.fn = reply;
    hm_shard_post(j->ref.shard, &j->msg);
}

/* Spools a group of concurrent uploads with one durability barrier: the accepted files
 * are written into ONE segment file, which gets one fdatasync, one rename into place and
 * one folder fsync, and only then does any of them get its 201. A crash before the rename
 * leaves a .tmp- segment nobody was told about (deleted at start). Compared to a file per
 * upload this saves, per file, a create, an fdatasync, a rename and (after ingestion) an
 * unlink. */
#define SPOOL_GROUP 256
static void spool_group(struct hm_pm_pipe *p, struct job **grp, size_t n)
{
    size_t nacc = 0;
    bool snap = hm_store_read_begin(p->spool_reader) == 0;
    for (size_t i = 0; i < n; i++) {
        grp[i]->status = spool_check(p, grp[i], grp, i, snap);
        nacc += grp[i]->status == 0;
    }
    if (snap)
        hm_store_read_end(p->spool_reader);
    struct seg *sg = NULL;
    if (nacc && seg_write(p, grp, n, nacc, &sg) < 0) {
        for (size_t i = 0; i < n; i++)
            if (grp[i]->status == 0) {
                grp[i]->status = 500;
                atomic_fetch_add(&p->uploads_failed, 1);
            }
    }
    for (size_t i = 0; i < n; i++) {
        struct job *j = grp[i];
        if (j->status == 0) {
            atomic_fetch_add(&p->spool_files, 1);
            atomic_fetch_add(&p->spool_bytes, j->len);
            enqueue_work(p, j->key, j->name, j->len, j->data, sg, j->off);
            j->data = NULL;
            j->status = 201;
        }
        spool_reply(j);
    }
}

static void *spool_main(void *arg)
{
    struct hm_pm_pipe *p = arg;
    struct job *grp[SPOOL_GROUP];
    pthread_setname_np(pthread_self(), "hm-pm-spool");
    for (;;) {
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&p->spool_q);
        if (!n) {
            if (atomic_load(&p->stop))
                break;
            wait_efd(p->spool_efd);
            continue;
        }
        size_t k = 0;
        while (n) {
            struct hm_mpsc_node *next = n->next;
            grp[k++] = (struct job *)((char *)n - offsetof(struct job, node));
            if (k == SPOOL_GROUP) {
                spool_group(p, grp, k);
                k = 0;
            }
            n = next;
        }
        if (k)
            spool_group(p, grp, k);
    }
    return NULL;
}

int hm_pm_pipe_spool(struct hm_pm_pipe *p, const char *name, char *data, size_t len,
                     void (*done)(void *arg, int status), void *arg)
{
    if (atomic_load(&p->spool_files) + 1 > p->o.spool_max_files ||
        atomic_load(&p->spool_bytes) + len > p->o.spool_max_bytes) {
        atomic_fetch_add(&p->uploads_rejected_full, 1);
        return -EBUSY;
    }
    struct job *j = hm_xcalloc(1, sizeof(*j));
    snprintf(j->name, sizeof(j->name), "%s", name);
    j->data = data;
    j->len = len;
    j->done = done;
    j->done_arg = arg;
    if (hm_mpsc_push(&p->spool_q, &j->node))
        wake(p->spool_efd);
    return 0;
}

/* ---- pipeline threads ------------------------------------------------------------------ */

/* Per-file values (proto/pm_row.h, layout 3). Rows go into the worker's open pack (one per
 * who + period of the file); the pack becomes ONE HM_DB_PM put when the file ends, the who
 * or the period changes, or the next row would not fit a store value (then the next part).
 * Part numbers count per (who, period) within the file, so a re-ingestion of the same file
 * writes the same keys. */
struct pack_part {
    uint64_t who_h, start;
    uint32_t next;
};

static void pack_reset(struct worker *w, const char *spool_key)
{
    hm_pm_pack_reset(&w->pack);
    hm_buf_reset(&w->parts);
    w->file_id = hm_pm_schema_hash(spool_key, strlen(spool_key));
}

static int pack_close(struct worker *w, struct slot *sl)
{
    if (hm_pm_pack_empty(&w->pack))
        return 0;
    uint64_t wh = hm_pm_schema_hash(w->pack_who, w->pack_wholen);
    struct pack_part *pp = (struct pack_part *)w->parts.base, *e = NULL;
    for (size_t i = 0; i < w->parts.len / sizeof(*pp); i++)
        if (pp[i].who_h == wh && pp[i].start == w->pack_start) {
            e = &pp[i];
            break;
        }
    if (!e) {
        struct pack_part np = {wh, w->pack_start, 0};
        hm_buf_append(&w->parts, &np, sizeof(np));
        e = (struct pack_part *)(w->parts.base + w->parts.len) - 1;
    }
    if (e->next > UINT16_MAX)
        return HM_EBADPM;
    char key[HM_STORE_MAX_KEY + 1];
    int kl = hm_pm_pack_key(key, sizeof(key), hm_slice(w->pack_who, w->pack_wholen),
                            w->pack_start, w->file_id, (uint16_t)e->next++);
    if (kl < 0 || hm_store_batch_put(&sl->batch, HM_DB_PM, hm_slice(key, (size_t)kl),
                                     hm_pm_pack_value(&w->pack)) < 0)
        return HM_EBADPM;
    hm_pm_pack_reset(&w->pack);
    return 0;
}

/* Appends the row being built (schema <h>) to the open pack. */
static int pack_add(struct worker *w, struct slot *sl, uint64_t h)
{
    struct row *rw = &w->row;
    struct hm_slice who = hm_slice(rw->obj, rw->wholen);
    size_t so = rw->wholen ? rw->wholen + 1 : 0;
    struct hm_pm_pack_row pr = {
        .r = {.suspect = rw->suspect, .gran_s = rw->gran_s, .schema = h, .n = (uint16_t)rw->n,
              .vals = hm_buf_slice(&rw->vals)},
        .obj = hm_slice(rw->obj + so, rw->objlen - so),
        .info_id = hm_slice(rw->info, rw->infolen),
    };
    uint64_t start = (uint64_t)(rw->period_end - (int64_t)rw->gran_s) * 1000;
    int r;
    if (!hm_pm_pack_empty(&w->pack) &&
        (start != w->pack_start || who.len != w->pack_wholen ||
         (who.len && memcmp(who.ptr, w->pack_who, who.len) != 0)) &&
        (r = pack_close(w, sl)) < 0)
        return r;
    if (hm_pm_pack_empty(&w->pack)) {
        if (who.len)
            memcpy(w->pack_who, who.ptr, who.len);
        w->pack_wholen = who.len;
        w->pack_start = start;
    }
    r = hm_pm_pack_add(&w->pack, &pr);
    if (r == -ENOSPC) { /* the value is full: it becomes a part, the row opens the next */
        if ((r = pack_close(w, sl)) < 0)
            return r;
        r = hm_pm_pack_add(&w->pack, &pr);
    }
    return r < 0 ? HM_EBADPM : 0; /* -E2BIG cannot happen: rows are cut to fit (vals_max) */
}

/* Writes the row being built into the open pack, its schema into the slot's batch unless
 * that is known to be committed, and stages its numeric values for the aggregates. */
static int row_flush(struct worker *w, struct slot *sl)
{
    struct row *rw = &w->row;
    if (!rw->open || rw->n == 0)
        return 0;
    if (!rw->diverged && rw->n < rw->last_n) { /* a prefix of the last names */
        uint32_t end;
        memcpy(&end, rw->last_off.base + (rw->n - 1) * sizeof(end), sizeof(end));
        hm_buf_reset(&rw->names);
        hm_buf_reset(&rw->ent);
        hm_buf_reset(&rw->off);
        hm_buf_append(&rw->names, rw->last.base, end);
        hm_buf_append(&rw->ent, rw->last_ent.base, rw->n * sizeof(struct rname));
        hm_buf_append(&rw->off, rw->last_off.base, rw->n * sizeof(uint32_t));
        rw->diverged = true;
    }
    if (rw->diverged || !rw->last_hash) {
        struct hm_buf t;
        rw->last_hash = hm_pm_schema_hash(rw->names.base, rw->names.len);
        t = rw->last, rw->last = rw->names, rw->names = t;
        t = rw->last_ent, rw->last_ent = rw->ent, rw->ent = t;
        t = rw->last_off, rw->last_off = rw->off, rw->off = t;
        rw->last_n = rw->n;
        rw->last_gen = rw->gen;
    }
    uint64_t h = rw->last_hash;
    int pr = pack_add(w, sl, h);
    if (pr < 0)
        return pr;
    struct wschema *sc = wschema_get(&w->sch, h, rw->last.base, rw->last.len, rw->n);
    if (!sc || sc->state != SCH_COMMITTED) {
        char sk[HM_PM_SCHEMA_KEY_LEN + 1];
        hm_pm_schema_key(sk, h);
        char *sv = hm_store_batch_put_reserve(&sl->batch, HM_DB_FILES,
                                              hm_slice(sk, HM_PM_SCHEMA_KEY_LEN),
                                              1 + rw->last.len);
        if (!sv)
            return HM_EBADPM;
        sv[0] = 1;
        memcpy(sv + 1, rw->last.base, rw->last.len);
        if (sc && sc->state == SCH_UNKNOWN) {
            sc->state = SCH_PENDING;
            hm_buf_append(&sl->schemas, &h, sizeof(h));
        }
    }
    if (sc) {
        uint64_t hdr[2] = {h, rw->n};
        hm_buf_append(&sl->stage, hdr, sizeof(hdr));
        hm_buf_append(&sl->stage, rw->dv.base, rw->dv.len);
    }
    rw->n = 0;
    rw->nbytes = 0;
    rw->diverged = false;
    hm_buf_reset(&rw->names);
    hm_buf_reset(&rw->ent);
    hm_buf_reset(&rw->off);
    hm_buf_reset(&rw->vals);
    hm_buf_reset(&rw->dv);
    return 0;
}

static int row_open(struct row *rw, const struct hm_pm_meas *m)
{
    struct hm_slice who = m->sender.len ? m->sender : m->me;
    size_t on = (who.len ? who.len + 1 : 0) + m->obj.len; /* "<who>/<obj>" or "<obj>" */
    if (on >= sizeof(rw->obj) || m->info_id.len > HM_PM_MAX_DN)
        return HM_EBADPM;
    if (who.len) {
        memcpy(rw->obj, who.ptr, who.len);
        rw->obj[who.len] = '/';
    }
    if (m->obj.len)
        memcpy(rw->obj + (who.len ? who.len + 1 : 0), m->obj.ptr, m->obj.len);
    if (who.len + HM_PM_PACK_KEY_TAIL > HM_STORE_MAX_KEY)
        return HM_EBADPM;
    rw->objlen = on;
    rw->wholen = who.len;
    rw->infolen = m->info_id.len;
    rw->vals_max = (uint32_t)(HM_STORE_MAX_VAL - 1 -
                              hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, m->obj.len, m->info_id.len));
    if (m->info_id.len)
        memcpy(rw->info, m->info_id.ptr, m->info_id.len);
    rw->open = true;
    rw->group = m->group;
    rw->suspect = (m->flags & HM_PM_SUSPECT) != 0;
    rw->gran_s = m->gran_s;
    rw->period_end = m->period_end;
    rw->n = 0;
    return 0;
}

/* One measurement: appended to the current row (a new row per measValue). */
static int meas_cb(void *arg, const struct hm_pm_meas *m)
{
    struct worker *w = arg;
    struct slot *sl = w->cur;
    struct row *rw = &w->row;
    int r;
    if (!rw->open || m->group != rw->group || rw->period_end != m->period_end ||
        rw->gran_s != m->gran_s || rw->suspect != ((m->flags & HM_PM_SUSPECT) != 0)) {
        if ((r = row_flush(w, sl)) < 0 || (r = row_open(rw, m)) < 0)
            return r;
    }
    size_t nl = m->counter.len + 1 + (m->nvalues > 1 ? 6 : 0);
    if (nl > ROW_NAMES_MAX)
        return HM_EBADPM;
    if (rw->n >= HM_PM_ROW_MAX_N || rw->nbytes + nl > ROW_NAMES_MAX ||
        rw->vals.len + HM_PM_ROW_VAL_MAX > rw->vals_max) {
        if ((r = row_flush(w, sl)) < 0) /* the rest continues in a row of its own */
            return r;
    }
    if (rw->n == 0)
        rw->gen = m->names_gen;
    struct rname e = {m->counter.ptr, (uint32_t)m->counter.len,
                      m->nvalues > 1 ? (uint32_t)m->index + 1 : 0};
    if (!rw->diverged) {
        const struct rname *le = rw->n < rw->last_n && m->names_gen &&
                                         m->names_gen == rw->gen && rw->gen == rw->last_gen
                                     ? (const struct rname *)rw->last_ent.base + rw->n
                                     : NULL;
        if (le && le->ptr == e.ptr && le->len == e.len && le->idx == e.idx) {
            uint32_t end;
            memcpy(&end, rw->last_off.base + rw->n * sizeof(end), sizeof(end));
            rw->nbytes = end;
        } else { /* this row's names start to differ: its region from the last's prefix */
            hm_buf_reset(&rw->names);
            hm_buf_reset(&rw->ent);
            hm_buf_reset(&rw->off);
            if (rw->n) {
                hm_buf_append(&rw->names, rw->last.base, rw->nbytes);
                hm_buf_append(&rw->ent, rw->last_ent.base, rw->n * sizeof(struct rname));
                hm_buf_append(&rw->off, rw->last_off.base, rw->n * sizeof(uint32_t));
            }
            rw->diverged = true;
        }
    }
    if (rw->diverged) {
        hm_buf_append(&rw->names, m->counter.ptr, m->counter.len);
        if (e.idx) {
            char ix[8];
            int k = snprintf(ix, sizeof(ix), ".%u", (unsigned)m->index);
            hm_buf_append(&rw->names, ix, (size_t)k);
        }
        hm_buf_append(&rw->names, "", 1);
        rw->nbytes = (uint32_t)rw->names.len;
        hm_buf_append(&rw->ent, &e, sizeof(e));
        hm_buf_append(&rw->off, &rw->nbytes, sizeof(rw->nbytes));
    }
    bool is_int = (m->flags & HM_PM_INTEGER) ||
                  (!(m->flags & (HM_PM_NIL | HM_PM_TEXT)) && m->text.len &&
                  !memchr(m->text.ptr, '.', m->text.len) && !memchr(m->text.ptr, 'e', m->text.len) &&
                  !memchr(m->text.ptr, 'E', m->text.len) && fabs(m->value) < 9e15);
    hm_buf_reserve(&rw->vals, HM_PM_ROW_VAL_MAX);
    char *o = rw->vals.base + rw->vals.len;
    rw->vals.len += is_int            ? hm_pm_row_put_int(o, (int64_t)m->value)
                    : isnan(m->value) ? hm_pm_row_put_nan(o)
                                      : hm_pm_row_put_real(o, m->value);
    hm_buf_append(&rw->dv, &m->value, sizeof(m->value));
    rw->n++;
    return 0;
}

static void row_reset(struct row *rw)
{
    rw->open = false;
    rw->n = 0;
    rw->nbytes = 0;
    rw->diverged = false;
    hm_buf_reset(&rw->names);
    hm_buf_reset(&rw->ent);
    hm_buf_reset(&rw->off);
    hm_buf_reset(&rw->vals);
    hm_buf_reset(&rw->dv);
}

/* Sets the schemas a slot introduced to <state> (committed, or unknown again). */
static void schemas_settle(struct worker *w, struct slot *sl, int state)
{
    for (size_t off = 0; off + 8 <= sl->schemas.len; off += 8) {
        uint64_t h;
        memcpy(&h, sl->schemas.base + off, 8);
        struct wschema *e;
        TAB_FIND(struct wschema, &w->sch, h, e);
        if (e && e->state == SCH_PENDING)
            e->state = state;
    }
    hm_buf_reset(&sl->schemas);
}

static void merge_aggs(struct worker *w, struct slot *sl)
{
    struct hm_pm_pipe *p = w->p;
    pthread_mutex_lock(&p->agg_mu);
    for (size_t off = 0; off + 16 <= sl->stage.len;) {
        uint64_t hdr[2];
        memcpy(hdr, sl->stage.base + off, 16);
        off += 16;
        const char *dv = sl->stage.base + off;
        off += hdr[1] * sizeof(double);
        struct gagg *g;
        TAB_FIND(struct gagg, &p->aggs, hdr[0], g);
        if (!g) {
            struct wschema *sc;
            TAB_FIND(struct wschema, &w->sch, hdr[0], sc);
            if (!sc)
                continue;
            TAB_INSERT(struct gagg, &p->aggs, hdr[0], g);
            if (!g)
                continue;
            g->n = sc->n;
            g->names = hm_xmalloc(sc->names_len);
            memcpy(g->names, sc->names, sc->names_len);
            g->names_len = sc->names_len;
            g->acc = hm_xcalloc(sc->n, sizeof(*g->acc));
            for (uint32_t i = 0; i < sc->n; i++) {
                g->acc[i].min = INFINITY;
                g->acc[i].max = -INFINITY;
            }
        }
        for (uint32_t i = 0; i < g->n && i < hdr[1]; i++) {
            double v;
            memcpy(&v, dv + i * sizeof(double), sizeof(v));
            if (isnan(v))
                continue;
            struct acc *a = &g->acc[i];
            a->count++;
            a->sum += v;
            if (v < a->min)
                a->min = v;
            if (v > a->max)
                a->max = v;
        }
    }
    pthread_mutex_unlock(&p->agg_mu);
    hm_buf_reset(&sl->stage);
}

static void slot_done(void *arg, int status)
{
    struct slot *sl = arg;
    sl->status = status;
    if (hm_mpsc_push(&sl->w->done_q, &sl->node))
        wake(sl->w->efd);
}

/* The janitor thread removes finished spool segments (and one-file entries of the earlier
 * layout). An unlink waits for the file system's journal, which the spool's and the store's
 * fsyncs keep busy, so it is kept off the pipeline thread; with segments it runs once per
 * spool group, not per file. A segment whose unlink is lost in a crash is found at start:
 * its files are dropped by their committed markers. */
static void janitor_push(struct worker *w, struct hm_mpsc *q, struct hm_mpsc_node *n)
{
    /* the wake-up waits for the end of the worker's completion pass (worker_main): one per
     * group commit rather than one context switch to the janitor per file */
    if (hm_mpsc_push(q, n))
        w->jan_wake = true;
}

static void *janitor_main(void *arg)
{
    struct hm_pm_pipe *p = arg;
    pthread_setname_np(pthread_self(), "hm-pm-janitor");
    for (;;) {
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&p->jan_q);
        struct hm_mpsc_node *sn = hm_mpsc_pop_all(&p->seg_q);
        if (!n && !sn) {
            if (atomic_load(&p->jan_stop))
                break;
            wait_efd(p->jan_efd);
            continue;
        }
        while (n) {
            struct hm_mpsc_node *next = n->next;
            struct work *wk = (struct work *)n;
            char name[KEY_MAX + 8];
            size_t kl = strlen(wk->key);
            memcpy(name, wk->key, kl);
            memcpy(name + kl, ".pm", 4);
            unlinkat(p->spool_dfd, name, 0); /* ENOENT: quarantined (renamed) */
            /* counted out of the spool only now: spool_files == 0 means the folder is empty */
            atomic_fetch_sub(&p->spool_files, 1);
            atomic_fetch_sub(&p->spool_bytes, wk->bytes);
            work_free(p, wk);
            n = next;
        }
        while (sn) {
            struct hm_mpsc_node *next = sn->next;
            struct seg *sg = (struct seg *)sn;
            unlinkat(p->spool_dfd, sg->name, 0);
            atomic_fetch_sub(&p->spool_files, atomic_load(&sg->done_files));
            atomic_fetch_sub(&p->spool_bytes, atomic_load(&sg->done_bytes));
            free(sg);
            sn = next;
        }
    }
    return NULL;
}

/* The file of <wk> is finished. <ok>: committed (ingested or quarantined) or dropped, so
 * its spool data may go; else (commit failed) it stays in the spool for the next start and
 * stays counted. Frees <wk> or hands it to the janitor. <w> NULL: shutdown (nothing is
 * unlinked). */
static void work_finish(struct hm_pm_pipe *p, struct worker *w, struct work *wk, bool ok)
{
    keyset_del(p, wk); /* before any free: the set points at <wk> */
    struct seg *sg = wk->seg;
    if (!sg) { /* a one-file entry */
        if (ok && w) {
            work_drop_data(p, wk);
            janitor_push(w, &p->jan_q, &wk->node); /* unlinks, then counts it out */
        } else {
            work_free(p, wk);
        }
        return;
    }
    if (ok && w) {
        atomic_fetch_add(&sg->done_files, 1);
        atomic_fetch_add(&sg->done_bytes, wk->bytes);
    } else if (w) {
        atomic_store(&sg->keep, true);
    }
    work_free(p, wk);
    if (atomic_fetch_sub(&sg->refs, 1) != 1)
        return;
    if (w && !atomic_load(&sg->keep)) {
        janitor_push(w, &p->seg_q, &sg->node);
        return;
    }
    /* kept: the finished files are counted out now, the failed ones stay counted */
    atomic_fetch_sub(&p->spool_files, atomic_load(&sg->done_files));
    atomic_fetch_sub(&p->spool_bytes, atomic_load(&sg->done_bytes));
    free(sg);
}

/* Frees the slot; its file is finished (see work_finish). */
static void slot_release(struct worker *w, struct slot *sl, bool ok)
{
    work_finish(w->p, w, sl->wk, ok);
    sl->wk = NULL;
    hm_store_batch_reset(&sl->batch);
    hm_buf_reset(&sl->stage);
    schemas_settle(w, sl, SCH_UNKNOWN); /* no-op after a successful commit */
    sl->busy = false;
    w->nbusy--;
}

static void submit_now(struct worker *w, struct slot *sl)
{
    int r;
    while ((r = hm_store_submit(w->p->store, &sl->batch, slot_done, sl)) == -EAGAIN)
        usleep(1000); /* ring full: the writer drains it on its own thread */
    if (r < 0)
        slot_done(sl, r);
}

/* Parsed files are handed to the store writer in bursts of up to HM_PM_SUBMIT_BURST while a
 * backlog is being worked off, and at once when the worker runs out of files (so a lone
 * upload is not delayed): the writer then commits them as one group instead of waking for
 * each file and committing (fdatasync, meta page) a few at a time. */
#define HM_PM_SUBMIT_BURST 32
static void submit_ready(struct worker *w)
{
    for (unsigned i = 0; i < w->nready; i++)
        submit_now(w, w->ready[i]);
    w->nready = 0;
}

static void submit(struct worker *w, struct slot *sl)
{
    w->ready[w->nready++] = sl;
    if (w->nready >= HM_PM_SUBMIT_BURST)
        submit_ready(w);
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
    schemas_settle(w, sl, SCH_COMMITTED);
    merge_aggs(w, sl);
    atomic_fetch_add(&p->files_ingested, 1);
    atomic_fetch_add(&p->bytes_ingested, wk->bytes);
    atomic_fetch_add(&p->meas_ingested, sl->meas);
    hm_info("pm file ingested", "name=\"%s\" measurements=%llu bytes=%llu", wk->name,
            (unsigned long long)sl->meas, (unsigned long long)wk->bytes);
    slot_release(w, sl, true); /* the janitor unlinks the spool data */
}

static bool hkey_in_flight(struct worker *w, const struct slot *self)
{
    for (unsigned i = 0; i < HM_PM_WINDOW; i++) {
        const struct slot *o = &w->slots[i];
        if (o != self && o->busy && !o->quarantine && o->hkey_h == self->hkey_h &&
            strcmp(o->hkey, self->hkey) == 0)
            return true;
    }
    return false;
}

/* Reads <wk>'s bytes from its segment into w->rbuf. 0 or -errno (-ENOENT: no segment). */
static int seg_read(struct hm_pm_pipe *p, struct worker *w, const struct work *wk)
{
    int fd = openat(p->spool_dfd, wk->seg->name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    hm_buf_reset(&w->rbuf);
    hm_buf_reserve(&w->rbuf, wk->bytes + 1);
    int r = 0;
    size_t got = 0;
    while (got < wk->bytes) {
        ssize_t k = pread(fd, w->rbuf.base + got, wk->bytes - got, (off_t)(wk->off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            r = k < 0 ? -errno : HM_ECORRUPT; /* shorter than its record says */
            break;
        }
        got += (size_t)k;
    }
    close(fd);
    return r;
}

/* Writes a quarantined file's bytes to <path> (synced). 0 or -errno. */
static int quarantine_copy(const char *path, const char *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int r = write_all(fd, d, n);
    if (r == 0 && fdatasync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
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
    sl->hkey_h = 0;
    sl->quarantine = false;
    row_reset(&w->row);
    pack_reset(w, wk->key);
    int r;
    const char *bytes = NULL; /* the file's bytes in memory (for a quarantine copy) */
    if (wk->data) { /* a live upload: its bytes are still in memory, no read back */
        bytes = wk->data;
        r = hm_pm_parse_buf(w->parser, wk->data, wk->bytes, meas_cb, w, &sum);
    } else if (wk->seg) { /* recovered, or over HM_PM_MEM_MAX: read from its segment */
        r = seg_read(p, w, wk);
        if (r == 0) {
            bytes = w->rbuf.base;
            r = hm_pm_parse_buf(w->parser, bytes, wk->bytes, meas_cb, w, &sum);
        }
    } else {
        int fd = openat(p->spool_dfd, path + strlen(p->spool_dir) + 1, O_RDONLY | O_CLOEXEC);
        r = fd < 0 ? -errno : hm_pm_parse_fd(w->parser, fd, meas_cb, w, &sum);
        if (fd >= 0)
            close(fd);
    }
    if (r == 0)
        r = row_flush(w, sl);
    if (r == 0)
        r = pack_close(w, sl);
    row_reset(&w->row);
    if (r >= 0)
        work_drop_data(p, wk);
    char fkey[KEY_MAX + 8];
    snprintf(fkey, sizeof(fkey), "pm/f/%s", wk->key);
    if (r == -ENOENT) {
        hm_warn("pm pipeline: spool file vanished", "path=\"%s\"",
                wk->seg ? wk->seg->name : path);
        work_drop_data(p, wk);
        slot_release(w, sl, true);
        return;
    }
    if (r < 0) {
        char msg[300];
        const char *pe = hm_pm_errmsg(w->parser);
        snprintf(msg, sizeof(msg), "%s", r == HM_EBADPM && pe[0] ? pe : hm_strerror(r));
        char qpath[PATH_MAX_ + KEY_MAX + 16];
        snprintf(qpath, sizeof(qpath), "%s/%s.pm", p->quar_dir, wk->key);
        hm_store_batch_reset(&sl->batch);
        hm_buf_reset(&sl->stage);
        schemas_settle(w, sl, SCH_UNKNOWN);
        sl->quarantine = true;
        if (wk->seg) { /* a copy out of the segment (which goes once all its files are done) */
            int qr = bytes ? quarantine_copy(qpath, bytes, wk->bytes) : r;
            if (qr < 0)
                hm_err("pm pipeline: cannot quarantine", "path=\"%s\" err=\"%s\"", qpath,
                       hm_strerror(qr));
            fsync_dir(p->quar_dir);
        } else {
            if (rename(path, qpath) < 0)
                hm_err("pm pipeline: cannot quarantine", "path=\"%s\" err=\"%s\"", path,
                       strerror(errno));
            fsync_dir(p->quar_dir);
            fsync_dir(p->spool_dir);
        }
        work_drop_data(p, wk);
        hm_warn("pm file quarantined", "name=\"%s\" key=\"%s\" err=\"%s\"", wk->name, wk->key,
                msg);
        struct hm_buf *mv = marker_begin(w, wk, HM_SLICE_LIT("quarantined"));
        json_int(mv, "time_ms", (long long)now_ms());
        json_str(mv, "error", hm_slice_cstr(msg));
        hm_buf_append_lit(mv, "}");
        int cr = put_marker(&sl->batch, fkey, mv);
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
        sl->hkey_h = hm_pm_schema_hash(sl->hkey, strlen(sl->hkey));
        if (hkey_in_flight(w, sl) || marker_ingested(w->reader, sl->hkey) > 0) {
            atomic_fetch_add(&p->uploads_dup, 1);
            hm_info("pm file is a duplicate (same sender and period), not ingested again",
                    "name=\"%s\" marker=\"%s\"", wk->name, sl->hkey);
            slot_release(w, sl, true); /* its spool data goes (janitor) */
            return;
        }
    }
    struct hm_buf *mv = marker_begin(w, wk, HM_SLICE_LIT("ingested"));
    json_int(mv, "measurements", (long long)sum.count);
    json_int(mv, "nil", (long long)sum.nil);
    json_int(mv, "suspect", (long long)sum.suspect);
    json_str(mv, "sender", sum.sender.ptr ? sum.sender : HM_SLICE_LIT(""));
    json_int(mv, "begin", (long long)sum.begin);
    json_int(mv, "end", (long long)sum.end);
    json_str(mv, "format", sum.format == HM_PM_FMT_CMCC ? HM_SLICE_LIT("cmcc") : HM_SLICE_LIT("3gpp"));
    json_int(mv, "time_ms", (long long)now_ms());
    hm_buf_append_lit(mv, "}");
    sl->meas = sum.count;
    r = put_marker(&sl->batch, fkey, mv);
    if (r == 0 && sl->hkey[0])
        r = put_marker(&sl->batch, sl->hkey, mv);
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
    char tn[16];
    snprintf(tn, sizeof(tn), "hm-pm-work%u", (unsigned)(w - p->w) % 100u);
    pthread_setname_np(pthread_self(), tn);
    for (;;) {
        bool did = false;
        for (struct hm_mpsc_node *n = hm_mpsc_pop_all(&w->done_q); n;) {
            struct hm_mpsc_node *next = n->next;
            complete(w, (struct slot *)n);
            n = next;
            did = true;
        }
        if (w->jan_wake) {
            w->jan_wake = false;
            wake(p->jan_efd);
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
        submit_ready(w); /* no file left to start, or no free slot: the rest goes now */
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

/* Credentials presented with an upload: the user name and what verifies them. */
struct presented {
    enum hm_auth_scheme sc;
    struct hm_slice user;
    struct hm_slice pw;      /* Basic */
    struct hm_auth_digest d; /* Digest */
    char buf[512];           /* Basic: decoded user:password */
};

static int presented_parse(struct hm_http_exchange *x, struct presented *c)
{
    struct hm_slice a = x->req->authorization;
    c->sc = hm_auth_scheme_of(a);
    if (c->sc == HM_AUTH_BASIC)
        return hm_auth_basic_parse(a, c->buf, sizeof(c->buf), &c->user, &c->pw) < 0 ? -EACCES
                                                                                   : 0;
    if (c->sc == HM_AUTH_DIGEST) {
        if (hm_auth_digest_parse(a, &c->d) < 0)
            return -EACCES;
        c->user = c->d.f[HM_AUTH_F_USERNAME];
        return 0;
    }
    return -EACCES;
}

/* Basic or Digest (qop=auth) against <ha1> (hex, for c->user in the pipe's realm). Digest
 * nonces are stateless and not bound to the connection (conn_id 0: the CWMP listener's
 * conn_data slot belongs to the ACS), so there is no nc replay tracking: a replay within the
 * nonce lifetime can only repeat the same request line, and uploads are idempotent.
 * 0, or HM_ESTALE_NONCE / -EACCES. */
static int verify(struct hm_pm_pipe *p, struct hm_http_exchange *x, struct presented *c,
                  const char *ha1)
{
    if (c->sc == HM_AUTH_BASIC) {
        char h[HM_AUTH_HEX_LEN + 1];
        hm_auth_ha1(c->user, hm_slice_cstr(p->o.realm), c->pw, h);
        unsigned d = 0;
        for (int i = 0; i < HM_AUTH_HEX_LEN; i++)
            d |= (unsigned)(h[i] ^ ha1[i]);
        return d == 0 ? 0 : -EACCES;
    }
    struct hm_auth_nonce_state st = {0};
    int r = hm_auth_digest_verify(&c->d, ha1, x->req->method_str, x->req->target, &p->nonce_key,
                                  0, now_ms() / 1000, &st);
    return r == HM_ESTALE_NONCE ? r : r < 0 ? -EACCES : 0;
}

/* The upload's device segment: "/pm/<dev>/<file>" -> <dev> (empty for "/pm/<file>"). */
static struct hm_slice path_device(struct hm_pm_pipe *p, struct hm_slice path)
{
    size_t pl = strlen(p->o.upload_path);
    if (path.len <= pl)
        return hm_slice("", 0);
    const char *s = path.ptr + pl, *e = path.ptr + path.len;
    while (s < e && *s == '/')
        s++;
    const char *slash = memchr(s, '/', (size_t)(e - s));
    return slash ? hm_slice(s, (size_t)(slash - s)) : hm_slice("", 0);
}

/* The PM tail of the device record <user> names (false: no such device or no tail). */
static bool device_pm(struct hm_store_reader *rd, struct hm_slice user, struct hm_dev_rec *d,
                      char ha1[HM_AUTH_HEX_LEN + 1])
{
    struct hm_slice v;
    if (!rd || !user.len || user.len >= HM_STORE_MAX_KEY ||
        hm_store_get(rd, HM_DB_DEVICES, user, &v) < 0 || hm_rec_dev_decode(v, d) < 0)
        return false;
    if (d->pm_state == HM_PM_NONE)
        return false;
    if (d->pm_ha1.len == HM_AUTH_HEX_LEN)
        memcpy(ha1, d->pm_ha1.ptr, HM_AUTH_HEX_LEN);
    else
        memset(ha1, 0, HM_AUTH_HEX_LEN + 1); /* matches nothing */
    ha1[HM_AUTH_HEX_LEN] = '\0';
    return true;
}

static int refuse(struct hm_pm_pipe *p, struct hm_http_exchange *x, atomic_uint_fast64_t *ctr,
                  const char *why, struct hm_slice user)
{
    char peer[64];
    hm_sockaddr_str(x->peer, peer, sizeof(peer));
    atomic_fetch_add(ctr, 1);
    (void)p;
    HM_LOG_RL(HM_LOG_WARN, "pm upload refused", "reason=\"%s\" user=\"%.*s\" peer=%s", why,
              (int)HM_MIN(user.len, 128), user.ptr, peer);
    return 403;
}

/*
 * Upload authorisation (docs/pm.md "Per-device upload credentials"). Returns 0 (accepted),
 * 401 (challenge; *<stale> for an expired Digest nonce) or 403 (refused, logged, counted).
 * Runs on the shard, in one read snapshot of its store reader; allocates nothing.
 */
static int authorize(struct hm_pm_pipe *p, struct hm_http_exchange *x, bool *stale)
{
    *stale = false;
    if (!p->auth && !p->o.device_credentials)
        return 0;
    struct presented c;
    if (presented_parse(x, &c) < 0)
        return 401;
    struct hm_store_reader *rd = p->o.reader_of && x->shard ? p->o.reader_of(x->shard) : NULL;
    if (rd && hm_store_read_begin(rd) < 0)
        rd = NULL;
    struct hm_dev_rec d;
    char ha1[HM_AUTH_HEX_LEN + 1];
    int st = 0;
    struct hm_slice pdev = path_device(p, x->req->path);
    if (p->o.device_credentials && device_pm(rd, c.user, &d, ha1)) {
        /* disabled first: such a device may hold no credentials at all, and no retry with
         * other ones can succeed, so it gets 403 rather than a new challenge */
        int r = d.pm_state == HM_PM_DISABLED ? 0 : verify(p, x, &c, ha1);
        if (d.pm_state == HM_PM_DISABLED) {
            st = refuse(p, x, &p->uploads_refused_disabled, "PM upload disabled for device",
                        c.user);
        } else if (r < 0) {
            atomic_fetch_add(&p->uploads_auth_failed, 1);
            *stale = r == HM_ESTALE_NONCE;
            st = 401;
        } else if (d.pm_state != HM_PM_ENABLED) {
            st = refuse(p, x, &p->uploads_refused_disabled,
                        "PM upload not provisioned yet for device", c.user);
        } else if (pdev.len && !hm_slice_eq(pdev, c.user)) {
            st = refuse(p, x, &p->uploads_refused_other,
                        "credentials of another device than the upload URL's", c.user);
        }
    } else if (p->auth && hm_slice_eq(c.user, hm_slice_cstr(p->o.username))) {
        int r = verify(p, x, &c, p->ha1);
        if (r < 0) {
            atomic_fetch_add(&p->uploads_auth_failed, 1);
            *stale = r == HM_ESTALE_NONCE;
            st = 401;
        } else if (p->o.device_credentials && pdev.len && device_pm(rd, pdev, &d, ha1) &&
                   d.pm_state == HM_PM_DISABLED) {
            /* node credentials on a device's own URL whose PM is off: not expected */
            st = refuse(p, x, &p->uploads_refused_disabled, "PM upload disabled for device",
                        pdev);
        }
    } else {
        st = refuse(p, x, &p->uploads_refused_unknown, "unknown uploader (no PM credentials)",
                    c.user);
    }
    if (rd)
        hm_store_read_end(rd);
    return st;
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
    bool stale;
    int ar = authorize(p, x, &stale);
    if (ar == 401) {
        challenge(p, x, stale);
        return 401;
    }
    if (ar)
        return ar;
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
    struct hm_store_reader *rd;
    json_t *arr;
    bool csv;
    size_t plen; /* who '\0' */
    uint64_t to_ms;
    struct hm_slice counter;
    struct hm_slice obj; /* the object's part after "<who>/" (the rows' obj) */
    uint64_t schema;     /* last schema looked up, its index of <counter> (< 0: absent) */
    int idx;
    size_t n;
};

static void series_point(struct series_ctx *c, uint64_t t, const struct hm_pm_row *row)
{
    enum hm_pm_row_tag tag;
    int64_t iv = 0;
    double v = NAN;
    if (c->idx < 0 || hm_pm_row_value(row, (unsigned)c->idx, &tag, &iv, &v) < 0)
        return;
    unsigned long long st = (unsigned long long)(t / 1000);
    if (c->csv) {
        if (tag == HM_PM_ROW_INT)
            hm_buf_printf(c->x->out, "%llu,%lld,%u,%d\n", st, (long long)iv, row->gran_s,
                          row->suspect);
        else if (isnan(v))
            hm_buf_printf(c->x->out, "%llu,,%u,%d\n", st, row->gran_s, row->suspect);
        else
            hm_buf_printf(c->x->out, "%llu,%.17g,%u,%d\n", st, v, row->gran_s, row->suspect);
    } else {
        json_t *val_j = tag == HM_PM_ROW_INT ? json_integer(iv)
                        : isnan(v)           ? json_null()
                                             : json_real(v);
        json_array_append_new(c->arr, json_pack("{s:I,s:o,s:i,s:b}", "start", (json_int_t)st,
                                                "value", val_j, "duration_s", (int)row->gran_s,
                                                "suspect", row->suspect));
    }
    c->n++;
}

/* One per-file value (pack) of the object's sender and a period: the counter's value from
 * each row of the object whose schema has it. Rows of one measInfo share a schema, so the
 * schema record is read once per run of rows. */
static int series_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct series_ctx *c = arg;
    if (key.len != c->plen - 1 + HM_PM_PACK_KEY_TAIL)
        return 0; /* not a pack key of this sender */
    uint64_t t = hm_be64_get(key.ptr + c->plen);
    if (t > c->to_ms)
        return 1;
    struct hm_pm_pack_it it;
    struct hm_pm_pack_row row;
    if (hm_pm_pack_begin(val, &it) < 0)
        return 0; /* not a value of this layout: skipped */
    while (hm_pm_pack_next(&it, &row) == 1) {
        if (!hm_slice_eq(row.obj, c->obj))
            continue;
        if (row.r.schema != c->schema) {
            char sk[HM_PM_SCHEMA_KEY_LEN + 1];
            hm_pm_schema_key(sk, row.r.schema);
            struct hm_slice names;
            c->schema = row.r.schema;
            c->idx = -1;
            if (hm_store_get(c->rd, HM_DB_FILES, hm_slice(sk, HM_PM_SCHEMA_KEY_LEN), &names) ==
                    0 &&
                names.len > 1 && names.ptr[0] == 1)
                c->idx = hm_pm_schema_index(hm_slice(names.ptr + 1, names.len - 1), c->counter);
        }
        series_point(c, t, &row.r);
    }
    return c->n >= 100000 ? 1 : 0;
}

/* The points of <obj>: the object is "<who>/<measObjLdn>" (or the measObjLdn alone for a
 * file without sender), and who may itself hold a '/', so every split is tried (the first,
 * who = "", and one per '/': usually two range scans, one of them empty). */
static int series_scan(struct series_ctx *c, const char *obj, uint64_t from)
{
    size_t ol = strlen(obj);
    for (size_t i = 0; i <= ol; i++) {
        size_t wl = i; /* who = obj[0, i) */
        if (i > 0 && (i == ol || obj[i] != '/'))
            continue;
        char key[HM_STORE_MAX_KEY + 1];
        if (wl + HM_PM_PACK_KEY_TAIL > HM_STORE_MAX_KEY)
            break;
        if (wl)
            memcpy(key, obj, wl);
        key[wl] = '\0';
        hm_be64_put(key + wl + 1, from);
        c->plen = wl + 1;
        c->obj = i == 0 ? hm_slice(obj, ol) : hm_slice(obj + i + 1, ol - i - 1);
        int r = hm_store_scan(c->rd, HM_DB_PM, hm_slice(key, c->plen), hm_slice(key, wl + 9),
                              series_cb, c);
        if (r < 0)
            return r;
        if (c->n >= 100000)
            break;
    }
    return 0;
}

static int api(struct hm_http_exchange *x, void *ctx)
{
    struct hm_pm_pipe *p = ctx;
    struct hm_slice path = x->req->path;
    if (x->req->method != HM_HTTP_GET)
        return hm_api_error(x, 405, "method_not_allowed", "only GET");
    struct hm_store_reader *rd = p->o.reader_of ? p->o.reader_of(x->shard) : NULL;
    if (hm_slice_eq_lit(path, "/api/v1/pm/aggregates")) {
        json_t *o = json_object();
        pthread_mutex_lock(&p->agg_mu);
        for (size_t i = 0; i < p->aggs.cap; i++) {
            const struct gagg *g = &p->aggs.v[i];
            const char *nm = g->names;
            for (uint32_t k = 0; g->hash && k < g->n; k++, nm += strlen(nm) + 1) {
                const struct acc *a = &g->acc[k];
                if (!a->count)
                    continue;
                json_t *e = json_object_get(o, nm);
                if (!e) {
                    json_object_set_new(o, nm, json_pack("{s:I,s:f,s:f,s:f}", "count",
                                                         (json_int_t)a->count, "sum", a->sum,
                                                         "min", a->min, "max", a->max));
                    continue;
                }
                json_t *cnt = json_object_get(e, "count"), *sm = json_object_get(e, "sum");
                json_t *mn = json_object_get(e, "min"), *mx = json_object_get(e, "max");
                json_integer_set(cnt, json_integer_value(cnt) + (json_int_t)a->count);
                json_real_set(sm, json_real_value(sm) + a->sum);
                if (a->min < json_real_value(mn))
                    json_real_set(mn, a->min);
                if (a->max > json_real_value(mx))
                    json_real_set(mx, a->max);
            }
        }
        pthread_mutex_unlock(&p->agg_mu);
        return hm_api_send_json(x, 200, json_pack("{s:o}", "counters", o));
    }
    if (!rd)
        return hm_api_error(x, 503, "unavailable", "no store reader");
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
            return hm_api_error(x, 503, "store", "%s", hm_strerror(r));
        }
        return hm_api_send_json(x, 200, json_pack("{s:o,s:I}", "files", arr, "spool_files",
                                           (json_int_t)atomic_load(&p->spool_files)));
    }
    if (hm_slice_eq_lit(path, "/api/v1/pm/series")) {
        char obj[1024], ctr[512], tmp[64], fmt[16] = "json";
        if (hm_api_query(x->req->query, "object", obj, sizeof(obj)) < 0 ||
            hm_api_query(x->req->query, "counter", ctr, sizeof(ctr)) < 0)
            return hm_api_error(x, 400, "bad_request", "object and counter are required");
        uint64_t from = 0, to = UINT64_MAX;
        if (hm_api_query(x->req->query, "from", tmp, sizeof(tmp)) >= 0)
            from = strtoull(tmp, NULL, 10) * 1000;
        if (hm_api_query(x->req->query, "to", tmp, sizeof(tmp)) >= 0)
            to = strtoull(tmp, NULL, 10) * 1000;
        (void)hm_api_query(x->req->query, "format", fmt, sizeof(fmt));
        struct series_ctx c = {.x = x, .rd = rd, .csv = strcmp(fmt, "csv") == 0, .to_ms = to,
                               .counter = hm_slice_cstr(ctr), .idx = -1};
        if (c.csv)
            hm_buf_append_str(x->out, "start,value,duration_s,suspect\n");
        else
            c.arr = json_array();
        int r = hm_store_read_begin(rd);
        if (r == 0) {
            r = series_scan(&c, obj, from);
            hm_store_read_end(rd);
        }
        if (r < 0) {
            json_decref(c.arr);
            hm_buf_reset(x->out);
            return hm_api_error(x, 503, "store", "%s", hm_strerror(r));
        }
        if (c.csv) {
            x->content_type = "text/csv";
            return 200;
        }
        return hm_api_send_json(x, 200, json_pack("{s:s,s:s,s:o}", "object", obj, "counter", ctr,
                                           "points", c.arr));
    }
    return hm_api_error(x, 404, "not_found", "unknown PM resource");
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
                  "# TYPE hems_pm_pipeline_lag_seconds gauge\nhems_pm_pipeline_lag_seconds %.3f\n"
                  "# HELP hems_pm_uploads_refused_total PM uploads refused with 403, by reason\n"
                  "# TYPE hems_pm_uploads_refused_total counter\n"
                  "hems_pm_uploads_refused_total{reason=\"disabled\"} %llu\n"
                  "hems_pm_uploads_refused_total{reason=\"unknown\"} %llu\n"
                  "hems_pm_uploads_refused_total{reason=\"other_device\"} %llu\n"
                  "# TYPE hems_pm_upload_auth_failures_total counter\n"
                  "hems_pm_upload_auth_failures_total %llu\n",
                  (unsigned long long)atomic_load(&p->files_ingested),
                  (unsigned long long)atomic_load(&p->bytes_ingested),
                  (unsigned long long)atomic_load(&p->meas_ingested),
                  (unsigned long long)atomic_load(&p->files_quarantined),
                  (unsigned long long)atomic_load(&p->uploads_dup),
                  (unsigned long long)atomic_load(&p->uploads_rejected_full),
                  (unsigned long long)atomic_load(&p->uploads_failed),
                  (unsigned long long)atomic_load(&p->spool_files),
                  (unsigned long long)atomic_load(&p->spool_bytes), lag,
                  (unsigned long long)atomic_load(&p->uploads_refused_disabled),
                  (unsigned long long)atomic_load(&p->uploads_refused_unknown),
                  (unsigned long long)atomic_load(&p->uploads_refused_other),
                  (unsigned long long)atomic_load(&p->uploads_auth_failed));
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

/* Re-queues the files of one segment that have no committed marker; a segment with none
 * left is unlinked at once. A damaged segment (cannot happen after the rename, which
 * follows its fdatasync) keeps the records before the damage and is never unlinked. */
static size_t recover_seg(struct hm_pm_pipe *p, const char *name)
{
    int fd = openat(p->spool_dfd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    uint64_t size = (uint64_t)st.st_size, off = sizeof(SEG_MAGIC) - 1;
    char magic[sizeof(SEG_MAGIC) - 1];
    bool bad = pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
               memcmp(magic, SEG_MAGIC, sizeof(magic)) != 0;
    struct seg *sg = hm_xcalloc(1, sizeof(*sg));
    snprintf(sg->name, sizeof(sg->name), "%s", name);
    struct rec {
        char key[KEY_MAX], name[256];
        uint64_t off, len;
    } *v = NULL;
    size_t n = 0, cap = 0;
    while (!bad && off < size) {
        unsigned char h[SEG_REC_HDR];
        char kn[KEY_MAX + 256];
        if (pread(fd, h, sizeof(h), (off_t)off) != (ssize_t)sizeof(h)) {
            bad = true;
            break;
        }
        uint32_t m = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                     (uint32_t)h[3] << 24;
        size_t kl = (size_t)h[4] | (size_t)h[5] << 8, nl = (size_t)h[6] | (size_t)h[7] << 8;
        uint64_t dl = 0;
        for (int b = 7; b >= 0; b--)
            dl = dl << 8 | h[8 + b];
        uint64_t doff = off + SEG_REC_HDR + kl + nl;
        if (m != SEG_REC_MAGIC || kl == 0 || kl >= KEY_MAX || nl > 255 || doff > size ||
            dl > size - doff ||
            pread(fd, kn, kl + nl, (off_t)(off + SEG_REC_HDR)) != (ssize_t)(kl + nl) ||
            memchr(kn, '\0', kl) || memchr(kn, '/', kl)) {
            bad = true;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = hm_xrealloc(v, cap * sizeof(*v));
        }
        memcpy(v[n].key, kn, kl);
        v[n].key[kl] = '\0';
        memcpy(v[n].name, kn + kl, nl);
        v[n].name[nl] = '\0';
        v[n].off = doff;
        v[n].len = dl;
        n++;
        off = doff + dl;
    }
    close(fd);
    if (bad) {
        atomic_store(&sg->keep, true);
        hm_err("pm spool: damaged segment kept, its intact files re-ingested",
               "segment=\"%s/%s\" at=%llu", p->spool_dir, name, (unsigned long long)off);
    }
    /* files whose marker is committed (ingested or quarantined) are done */
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        char fkey[KEY_MAX + 8];
        snprintf(fkey, sizeof(fkey), "pm/f/%s", v[i].key);
        bool done = false;
        if (hm_store_read_begin(p->spool_reader) == 0) {
            struct hm_slice mv;
            done = hm_store_get(p->spool_reader, HM_DB_FILES, hm_slice_cstr(fkey), &mv) == 0;
            hm_store_read_end(p->spool_reader);
        }
        if (done)
            v[i].len = UINT64_MAX;
        else
            left++;
    }
    if (!left) {
        if (!bad)
            unlinkat(p->spool_dfd, name, 0);
        free(sg);
        free(v);
        return 0;
    }
    atomic_store(&sg->refs, (unsigned)left);
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == UINT64_MAX)
            continue;
        atomic_fetch_add(&p->spool_files, 1);
        atomic_fetch_add(&p->spool_bytes, v[i].len);
        enqueue_work(p, v[i].key, v[i].name, v[i].len, NULL, sg, v[i].off);
    }
    free(v);
    return left;
}

/* Data layout 3 (per-file packs) replaced the per-measValue rows (layouts 1 and 2), which
 * the series API does not read: layout-2 rows are moved into packs once (core/pm_migrate.h);
 * layout-1 values cannot be and are reported. */
static void migrate_old_layout(struct hm_pm_pipe *p)
{
    struct hm_pm_migrate_stats st;
    int r = hm_pm_migrate(p->store, p->spool_reader, &st);
    if (r < 0)
        hm_warn("pm store: migration of layout-2 rows failed; the series API does not serve "
                "the rows left, the next start retries", "err=\"%s\" rows_moved=%llu",
                hm_strerror(r), (unsigned long long)st.rows);
    else if (st.rows)
        hm_info("pm store: layout-2 rows migrated into per-file packs", "rows=%llu packs=%llu",
                (unsigned long long)st.rows, (unsigned long long)st.packs);
    if (st.v1_left || st.corrupt)
        hm_warn("pm store: HM_DB_PM holds values that cannot be migrated (layout 1, before "
                "the compact rows, or damaged rows); the series API does not serve them "
                "(re-upload those files to re-ingest them)",
                "layout1=%llu damaged=%llu", (unsigned long long)st.v1_left,
                (unsigned long long)st.corrupt);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Re-queues the files a previous run acknowledged but did not ingest, in the order they
 * were spooled: one-file entries of the earlier layout first (by modification time), then
 * the segments (by id, i.e. time), so that duplicate detection by file header keeps the
 * same winner as without the restart. */
static void recover(struct hm_pm_pipe *p)
{
    DIR *d = opendir(p->spool_dir);
    if (!d)
        return;
    struct dirent *e;
    struct spooled *v = NULL;
    size_t n = 0, cap = 0, nseg = 0, segcap = 0;
    char **segs = NULL;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        char path[PATH_MAX_ + 300];
        snprintf(path, sizeof(path), "%s/%s", p->spool_dir, e->d_name);
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            unlink(path); /* never acknowledged */
            continue;
        }
        unsigned long long id;
        char tail[8];
        if (l == 21 && sscanf(e->d_name, "s%16llx.%4s", &id, tail) == 2 &&
            strcmp(tail, "pms") == 0) {
            if (nseg == segcap) {
                segcap = segcap ? 2 * segcap : 16;
                segs = hm_xrealloc(segs, segcap * sizeof(*segs));
            }
            segs[nseg] = hm_xmalloc(l + 1);
            memcpy(segs[nseg++], e->d_name, l + 1);
            if (id > p->seg_last)
                p->seg_last = id;
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
        enqueue_work(p, v[i].key, key_name(v[i].key), v[i].size, NULL, NULL, 0);
    }
    free(v);
    if (nseg)
        qsort(segs, nseg, sizeof(*segs), name_cmp);
    size_t nrec = 0;
    for (size_t i = 0; i < nseg; i++) {
        nrec += recover_seg(p, segs[i]);
        free(segs[i]);
    }
    free(segs);
    if (n || nrec)
        hm_info("pm spool: re-ingesting files left by the previous run", "files=%zu segments=%zu",
                n + nrec, nseg);
}

int hm_pm_pipe_create(const struct hm_pm_pipe_opts *o, struct hm_store *store,
                      struct hm_pm_pipe **out, char *err, size_t errlen)
{
    struct hm_pm_pipe *p = hm_xcalloc(1, sizeof(*p));
    p->o = *o;
    p->store = store;
    p->spool_efd = -1;
    p->jan_efd = -1;
    p->spool_dfd = -1;
    pthread_mutex_init(&p->agg_mu, NULL);
    pthread_mutex_init(&p->set_mu, NULL);
    snprintf(p->spool_dir, sizeof(p->spool_dir), "%s/pm-spool", o->data_dir);
    snprintf(p->quar_dir, sizeof(p->quar_dir), "%s/pm-quarantine", o->data_dir);
    if (p->o.threads == 0)
        p->o.threads = 1;
    if (o->username && o->username[0]) {
        p->auth = true;
        hm_auth_ha1(hm_slice_cstr(o->username), hm_slice_cstr(o->realm),
                    hm_slice_cstr(o->password ? o->password : ""), p->ha1);
    }
    if (p->auth || o->device_credentials) {
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
    p->jan_efd = eventfd(0, EFD_CLOEXEC);
    p->spool_dfd = open(p->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    r = p->spool_dfd < 0 ? -errno : hm_store_reader_open(store, &p->spool_reader);
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
    if (r < 0 || p->spool_efd < 0 || p->jan_efd < 0) {
        snprintf(err, errlen, "pm pipeline: %s", hm_strerror(r < 0 ? r : -errno));
        goto fail;
    }
    migrate_old_layout(p);
    recover(p);
    pthread_create(&p->jan_th, NULL, janitor_main, p);
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
    if (p->spool_efd >= 0)
        close(p->spool_efd);
    if (p->jan_efd >= 0)
        close(p->jan_efd);
    if (p->spool_dfd >= 0)
        close(p->spool_dfd);
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
    atomic_store(&p->jan_stop, true); /* the workers are gone: nothing more is pushed */
    wake(p->jan_efd);
    pthread_join(p->jan_th, NULL);
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->w[i];
        for (int pass = 0; pass < 2; pass++) {
            struct hm_mpsc_node *n = pass ? w->pend : hm_mpsc_pop_all(&w->q);
            while (n) {
                struct hm_mpsc_node *next = n->next;
                work_finish(p, NULL, (struct work *)n, false); /* stays in the spool */
                n = next;
            }
        }
        hm_store_reader_close(w->reader);
        hm_pm_parser_destroy(w->parser);
        for (unsigned k = 0; k < HM_PM_WINDOW; k++) {
            hm_store_batch_fini(&w->slots[k].batch);
            hm_buf_free(&w->slots[k].stage);
            hm_buf_free(&w->slots[k].schemas);
        }
        hm_buf_free(&w->row.names);
        hm_buf_free(&w->row.vals);
        hm_buf_free(&w->row.dv);
        hm_buf_free(&w->row.last);
        hm_buf_free(&w->row.ent);
        hm_buf_free(&w->row.off);
        hm_buf_free(&w->row.last_ent);
        hm_buf_free(&w->row.last_off);
        hm_buf_free(&w->marker);
        hm_buf_free(&w->parts);
        hm_buf_free(&w->rbuf);
        wschema_clear(&w->sch);
        close(w->efd);
    }
    hm_store_reader_close(p->spool_reader);
    close(p->spool_efd);
    close(p->jan_efd);
    close(p->spool_dfd);
    gagg_clear(&p->aggs);
    pthread_mutex_destroy(&p->agg_mu);
    pthread_mutex_destroy(&p->set_mu);
    free(p->w);
    free(p);
}
