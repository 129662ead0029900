#include "core/pm_migrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/bug.h"
#include "core/err.h"
#include "core/log.h"
#include "proto/pm_row.h"
#include "storage/record.h"
#include "storage/store.h"

#define META_KEY "pm/layout"
#define FLUSH_ROWS 256 /* old rows per write batch (each batch: their packs + their deletes) */

/* One layout-2 row, its slices pointing into the owning group's arena. */
struct old_row {
    size_t key_off, key_len, who_len, obj_off, obj_len, info_off, info_len, vals_off, vals_len;
    uint64_t start_ms;
    struct hm_pm_row r;
};

/* The rows of one <who> (contiguous in key order: the object starts with who '/'). */
struct group {
    struct hm_buf arena; /* keys and values of the rows, copied out of the read snapshot */
    struct old_row *rows;
    size_t n, cap;
};

struct mig {
    struct hm_store *store;
    struct hm_pm_migrate_stats *st;
    struct group g;
    struct hm_pm_pack pack;
    struct hm_store_batch batch;
    size_t batch_rows;
    int err;
};

/* Submits the batch, waits for its commit and empties it. */
static int commit(struct mig *m)
{
    int r = hm_store_submit_wait(m->store, &m->batch, 0);
    hm_store_batch_reset(&m->batch);
    m->batch_rows = 0;
    return r;
}

/* By period, then in key order (the arena order): within a period the rows of one object
 * stay together, measInfo after measInfo, so that a pack row states little but its values,
 * and the packs written do not depend on qsort's order of equal elements. */
static int row_cmp(const void *a, const void *b)
{
    const struct old_row *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return x->key_off < y->key_off ? -1 : x->key_off > y->key_off ? 1 : 0;
}

static int put_pack(struct mig *m, struct hm_slice who, uint64_t start_ms, uint16_t part)
{
    char key[HM_STORE_MAX_KEY + 1];
    int kl = hm_pm_pack_key(key, sizeof(key), who, start_ms, HM_PM_MIGRATED_FILE_ID, part);
    if (kl < 0)
        return kl;
    int r = hm_store_batch_put(&m->batch, HM_DB_PM, hm_slice(key, (size_t)kl),
                               hm_pm_pack_value(&m->pack));
    if (r == 0)
        m->st->packs++;
    hm_pm_pack_reset(&m->pack);
    return r;
}

/* Writes the packs of the current group (one run of parts per period) and deletes its old
 * rows, committing every FLUSH_ROWS rows; empties the group. */
static int flush_group(struct mig *m)
{
    struct group *g = &m->g;
    int rc = 0;
    if (!g->n)
        goto out;
    qsort(g->rows, g->n, sizeof(*g->rows), row_cmp);
    const char *base = g->arena.base;
    struct hm_slice who = hm_slice(base + g->rows[0].key_off, g->rows[0].who_len);
    for (size_t i = 0; i < g->n;) {
        uint64_t start = g->rows[i].start_ms;
        uint16_t part = 0;
        size_t j = i;
        for (; j < g->n && g->rows[j].start_ms == start; j++) {
            struct old_row *o = &g->rows[j];
            struct hm_pm_pack_row pr = {.r = o->r,
                                        .obj = hm_slice(base + o->obj_off, o->obj_len),
                                        .info_id = hm_slice(base + o->info_off, o->info_len)};
            pr.r.vals = hm_slice(base + o->vals_off, o->vals_len);
            int ar = hm_pm_pack_add(&m->pack, &pr);
            if (ar == -ENOSPC) { /* full: a part, the row opens the next */
                if ((rc = put_pack(m, who, start, part++)) < 0)
                    goto out;
                ar = hm_pm_pack_add(&m->pack, &pr);
            }
            if (ar < 0) {
                m->st->corrupt++; /* cannot be a pack row (-E2BIG): leave the old row */
                continue;
            }
            if ((rc = hm_store_batch_del(&m->batch, HM_DB_PM,
                                         hm_slice(base + o->key_off, o->key_len))) < 0)
                goto out;
            m->st->rows++;
            m->batch_rows++;
        }
        if (!hm_pm_pack_empty(&m->pack) && (rc = put_pack(m, who, start, part)) < 0)
            goto out;
        if (m->batch_rows >= FLUSH_ROWS && (rc = commit(m)) < 0)
            goto out;
        i = j;
    }
    if (m->batch_rows)
        rc = commit(m);
out:
    hm_pm_pack_reset(&m->pack);
    g->n = 0;
    hm_buf_reset(&g->arena);
    return rc;
}

static int scan_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct mig *m = arg;
    if (!val.len || (unsigned char)val.ptr[0] == HM_PM_PACK_VERSION)
        return 0;
    if ((unsigned char)val.ptr[0] != HM_PM_ROW_VERSION) {
        m->st->v1_left++;
        return 0;
    }
    /* object '\0' BE64 start info_id '\0' BE64 schema */
    const char *z1 = memchr(key.ptr, '\0', key.len);
    size_t ol = z1 ? (size_t)(z1 - key.ptr) : 0;
    const char *z2 = z1 && key.len > ol + 9 ? memchr(z1 + 9, '\0', key.len - ol - 9) : NULL;
    struct hm_pm_row row;
    if (!z2 || key.len != (size_t)(z2 - key.ptr) + 9 || hm_pm_row_decode(val, &row) < 0) {
        m->st->corrupt++;
        return 0;
    }
    const char *slash = memchr(key.ptr, '/', ol);
    size_t who_len = slash ? (size_t)(slash - key.ptr) : 0;
    struct group *g = &m->g;
    if (g->n && (g->rows[0].who_len != who_len ||
                 memcmp(g->arena.base + g->rows[0].key_off, key.ptr, who_len) != 0)) {
        int r = flush_group(m);
        if (r < 0) {
            m->err = r;
            return 1; /* stop the scan */
        }
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->rows = hm_xrealloc(g->rows, g->cap * sizeof(*g->rows));
    }
    struct old_row *o = &g->rows[g->n++];
    o->key_off = g->arena.len;
    o->key_len = key.len;
    hm_buf_append(&g->arena, key.ptr, key.len);
    o->who_len = who_len;
    o->obj_off = o->key_off + (slash ? who_len + 1 : 0);
    o->obj_len = ol - (slash ? who_len + 1 : 0);
    o->start_ms = hm_be64_get(z1 + 1);
    o->info_off = o->key_off + ol + 9;
    o->info_len = (size_t)(z2 - (z1 + 9));
    o->r = row;
    o->vals_off = g->arena.len;
    o->vals_len = row.vals.len;
    hm_buf_append(&g->arena, row.vals.ptr, row.vals.len);
    o->r.vals = hm_slice(NULL, 0); /* in the arena (which may move): by offset only */
    return 0;
}

int hm_pm_migrate(struct hm_store *store, struct hm_store_reader *r, struct hm_pm_migrate_stats *st)
{
    memset(st, 0, sizeof(*st));
    int rc = hm_store_read_begin(r);
    if (rc < 0)
        return rc;
    struct hm_slice v;
    if (hm_store_get(r, HM_DB_META, HM_SLICE_LIT(META_KEY), &v) == 0 && v.len == 1 &&
        v.ptr[0] == '3') {
        hm_store_read_end(r);
        st->already = 1;
        return 0;
    }
    struct mig m = {.store = store, .st = st};
    hm_store_batch_init(&m.batch);
    rc = hm_store_scan(r, HM_DB_PM, hm_slice(NULL, 0), hm_slice(NULL, 0), scan_cb, &m);
    if (rc >= 0 && !m.err)
        rc = flush_group(&m);
    else if (m.err)
        rc = m.err;
    hm_store_read_end(r);
    if (rc >= 0 && !st->v1_left && !st->corrupt) {
        /* nothing of layout 2 is left: mark it, so later starts do not scan */
        if ((rc = hm_store_batch_put(&m.batch, HM_DB_META, HM_SLICE_LIT(META_KEY),
                                     HM_SLICE_LIT("3"))) == 0) {
            m.batch_rows = 1;
            rc = commit(&m);
        }
    }
    hm_store_batch_fini(&m.batch);
    hm_buf_free(&m.g.arena);
    free(m.g.rows);
    return rc < 0 ? rc : 0;
}
