/* Fleet configuration at run time: profiles, pools, reconciliation (see fleet.h). */
#include "core/fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/acs_task.h"
#include "core/bug.h"
#include "core/fleet_s1.h"
#include "core/log.h"
#include "core/pools.h"
#include "core/profiles.h"
#include "core/regions.h"
#include "core/util.h"
#include "storage/record.h"

#define K_PROFILE "fleet/p/"
#define K_POOL "fleet/P/"
#define K_ALLOC "fleet/a/"
#define K_TAGS "fleet/t/"
#define K_STATE "fleet/s/"
#define K_REGION "fleet/r/"
#define CHUNK 3800          /* bytes of profile JSON per record */
#define ARGS_BUDGET 3300    /* bytes of SetParameterValues arguments per task record */
#define REJ_MAX 2000        /* bytes of rejected names kept per device */

enum { ST_NONE = 0, ST_QUEUED = 1, ST_INSYNC = 2 };

struct dstate {
    uint64_t hash;
    uint8_t st;
    uint64_t seq;
    uint16_t max_batch;
    struct hm_slice rej; /* '\n'-separated names rejected by the device for <hash> */
};

struct hm_fleet {
    struct hm_store *st;
    pthread_mutex_t mu; /* writers */
    struct hm_profile **profiles; /* master list (refs held), under mu */
    size_t nprof, capprof;
    char undo_name[HM_PROFILE_NAME_MAX + 1]; /* last change, until submitted (under mu) */
    struct hm_profile *undo_prev;            /* the profile it replaced or deleted, or NULL */
    struct hm_pool *pools[HM_FLEET_MAX_POOLS];
    _Atomic unsigned npools;
    _Atomic(struct hm_profset *) cur;
    _Atomic(struct hm_profset *) hp[HM_PROFSET_SLOTS];
    _Atomic uint64_t queued, drift, rejected, insync, splits, exhausted, s1_unassigned;
    /* S1 regions: read on the Inform path under the read lock (only for devices whose
     * profiles reference ${s1:...}), replaced by the API under the write lock */
    pthread_rwlock_t rlock;
    struct hm_region **regions; /* sorted by name */
    size_t nreg;
    _Atomic bool reg_tags;      /* some region selects by tag */
    struct hm_region *staged;   /* put/del awaiting hm_fleet_region_commit (under mu) */
    char staged_name[HM_REGION_NAME_MAX + 1];
    /* the S1 hook of core/hems_proc.c (core/fleet_s1.h): serialises its reader slot */
    pthread_mutex_t hook_mu;
};

#define HOOK_SLOT (HM_PROFSET_SLOTS - 1)

/* ---- helpers -------------------------------------------------------------------------- */

static int key_of(char *out, size_t cap, const char *prefix, struct hm_slice a, bool nul,
                  struct hm_slice b)
{
    size_t pl = strlen(prefix), n = pl + a.len + (nul ? 1 + b.len : 0);
    if (n > cap || n > HM_STORE_MAX_KEY)
        return -E2BIG;
    memcpy(out, prefix, pl);
    memcpy(out + pl, a.ptr, a.len);
    if (nul) {
        out[pl + a.len] = '\0';
        memcpy(out + pl + a.len + 1, b.ptr, b.len);
    }
    return (int)n;
}

static void put_le64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint64_t get_le64(const char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

static int state_get(struct hm_store_reader *rd, struct hm_slice dev, struct dstate *s)
{
    char k[HM_STORE_MAX_KEY];
    struct hm_slice v;
    *s = (struct dstate){0};
    int kl = key_of(k, sizeof(k), K_STATE, dev, false, hm_slice("", 0));
    if (kl < 0 || hm_store_get(rd, HM_DB_META, hm_slice(k, (size_t)kl), &v) < 0)
        return -ENOENT;
    if (v.len < 22 || v.ptr[0] != 1)
        return HM_ECORRUPT;
    s->hash = get_le64(v.ptr + 1);
    s->st = (uint8_t)v.ptr[9];
    s->seq = get_le64(v.ptr + 10);
    s->max_batch = (uint16_t)((unsigned char)v.ptr[18] | (unsigned char)v.ptr[19] << 8);
    size_t rl = (unsigned char)v.ptr[20] | (size_t)(unsigned char)v.ptr[21] << 8;
    if (v.len != 22 + rl)
        return HM_ECORRUPT;
    s->rej = hm_slice(v.ptr + 22, rl);
    return 0;
}

static int state_put(struct hm_store_batch *b, struct hm_slice dev, const struct dstate *s)
{
    char k[HM_STORE_MAX_KEY];
    int kl = key_of(k, sizeof(k), K_STATE, dev, false, hm_slice("", 0));
    size_t rl = HM_MIN(s->rej.len, (size_t)REJ_MAX);
    char *p = kl > 0 ? hm_store_batch_put_reserve(b, HM_DB_META, hm_slice(k, (size_t)kl), 22 + rl)
                     : NULL;
    if (!p)
        return -E2BIG;
    p[0] = 1;
    put_le64(p + 1, s->hash);
    p[9] = (char)s->st;
    put_le64(p + 10, s->seq);
    p[18] = (char)(s->max_batch & 0xff);
    p[19] = (char)(s->max_batch >> 8);
    p[20] = (char)(rl & 0xff);
    p[21] = (char)(rl >> 8);
    if (rl)
        memcpy(p + 22, s->rej.ptr, rl);
    return 0;
}

static bool rejected(struct hm_slice rej, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < rej.len) {
        const char *c = memchr(rej.ptr + i, '\n', rej.len - i);
        size_t e = c ? (size_t)(c - rej.ptr) : rej.len;
        if (e - i == nl && memcmp(rej.ptr + i, name, nl) == 0)
            return true;
        i = e + 1;
    }
    return false;
}

static bool is_true(struct hm_slice v)
{
    return hm_slice_eq_lit(v, "1") || hm_slice_eq_lit(v, "true");
}

static bool value_eq(uint8_t type, struct hm_slice have, const char *want)
{
    if (type == HM_CWMP_T_BOOL)
        return is_true(have) == is_true(hm_slice_cstr(want));
    return hm_slice_eq(have, hm_slice_cstr(want));
}

/* ---- snapshot publication -------------------------------------------------------------- */

struct hm_profset *hm_fleet_acquire(struct hm_fleet *f, unsigned slot)
{
    struct hm_profset *p;
    do {
        p = atomic_load(&f->cur);
        atomic_store(&f->hp[slot], p);
    } while (p != atomic_load(&f->cur));
    return p;
}

void hm_fleet_release(struct hm_fleet *f, unsigned slot)
{
    atomic_store(&f->hp[slot], NULL);
}

/* Builds and publishes a set from the master list; frees the old one once unused. Under mu. */
static void publish(struct hm_fleet *f)
{
    struct hm_profset *n = hm_profset_build(f->profiles, f->nprof);
    struct hm_profset *old = atomic_exchange(&f->cur, n);
    for (unsigned i = 0; i < HM_PROFSET_SLOTS; i++)
        while (atomic_load(&f->hp[i]) == old)
            sched_yield();
    hm_profset_free(old);
}

void hm_fleet_lock(struct hm_fleet *f)
{
    pthread_mutex_lock(&f->mu);
}

void hm_fleet_unlock(struct hm_fleet *f)
{
    pthread_mutex_unlock(&f->mu);
}

struct hm_store *hm_fleet_store(struct hm_fleet *f)
{
    return f->st;
}

struct hm_pool *hm_fleet_pool(struct hm_fleet *f, unsigned i)
{
    return i < atomic_load(&f->npools) ? f->pools[i] : NULL;
}

int hm_fleet_pool_index(struct hm_fleet *f, const char *name)
{
    unsigned n = atomic_load(&f->npools);
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(hm_pool_name(f->pools[i]), name))
            return (int)i;
    return -ENOENT;
}

static int pool_fn(void *arg, const char *name, int64_t *sample)
{
    struct hm_fleet *f = arg;
    if (!strcmp(name, "s1:servers") || !strcmp(name, "s1:port")) {
        /* checked against the model with a sample: "0" (a one-item list), 36412 */
        *sample = name[3] == 's' ? 0 : 36412;
        return name[3] == 's' ? HM_FLEET_REF_S1_SERVERS : HM_FLEET_REF_S1_PORT;
    }
    int i = hm_fleet_pool_index(f, name);
    if (i >= 0) {
        struct hm_pool_stats s;
        hm_pool_stats(f->pools[i], &s);
        *sample = s.lo;
    }
    return i;
}

/* ---- writers (under mu) ------------------------------------------------------------------ */

static int profile_find(struct hm_fleet *f, const char *name)
{
    for (size_t i = 0; i < f->nprof; i++)
        if (!strcmp(f->profiles[i]->name, name))
            return (int)i;
    return -ENOENT;
}

/* Keeps the profile being replaced or deleted (one reference, or NULL) for an undo. */
static void remember(struct hm_fleet *f, const char *name, struct hm_profile *prev)
{
    hm_fleet_profile_done(f);
    snprintf(f->undo_name, sizeof(f->undo_name), "%s", name);
    f->undo_prev = prev;
}

void hm_fleet_profile_done(struct hm_fleet *f)
{
    hm_profile_put(f->undo_prev);
    f->undo_prev = NULL;
    f->undo_name[0] = '\0';
}

static void profile_set(struct hm_fleet *f, struct hm_profile *p)
{
    int i = profile_find(f, p->name);
    if (i >= 0) {
        hm_profile_put(f->profiles[i]);
        f->profiles[i] = p;
        return;
    }
    if (f->nprof == f->capprof) {
        f->capprof = f->capprof ? f->capprof * 2 : 16;
        f->profiles = hm_xrealloc(f->profiles, f->capprof * sizeof(*f->profiles));
    }
    f->profiles[f->nprof++] = p;
}

int hm_fleet_profile_put(struct hm_fleet *f, const char *name, json_t *in,
                         struct hm_store_batch *b, json_t **norm, char *err, size_t errlen)
{
    struct hm_profile *p;
    if (hm_profile_parse(name, in, pool_fn, f, &p, err, errlen) < 0)
        return -EINVAL;
    char *text = json_dumps(p->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t tl = strlen(text);
    char k[HM_STORE_MAX_KEY];
    int kl = key_of(k, sizeof(k) - 1, K_PROFILE, hm_slice_cstr(name), true, hm_slice("", 0));
    int r = kl > 0 && tl <= 255u * CHUNK ? hm_store_batch_del_prefix(b, HM_DB_META,
                                                                      hm_slice(k, (size_t)kl))
                                         : -E2BIG;
    for (size_t off = 0, i = 0; r == 0 && off < tl; off += CHUNK, i++) {
        k[kl] = (char)i;
        r = hm_store_batch_put(b, HM_DB_META, hm_slice(k, (size_t)kl + 1),
                               hm_slice(text + off, HM_MIN((size_t)CHUNK, tl - off)));
    }
    free(text);
    if (r < 0) {
        snprintf(err, errlen, "profile too large to store");
        hm_profile_put(p);
        return -E2BIG;
    }
    *norm = json_deep_copy(p->json); /* jansson refcounts are not atomic: no sharing */
    int old = profile_find(f, name);
    if (old >= 0)
        f->profiles[old]->refs++;
    remember(f, name, old >= 0 ? f->profiles[old] : NULL);
    profile_set(f, p);
    publish(f);
    return 0;
}

int hm_fleet_profile_del(struct hm_fleet *f, const char *name, struct hm_store_batch *b)
{
    int i = profile_find(f, name);
    if (i < 0)
        return -ENOENT;
    char k[HM_STORE_MAX_KEY];
    int kl = key_of(k, sizeof(k), K_PROFILE, hm_slice_cstr(name), true, hm_slice("", 0));
    if (kl < 0 || hm_store_batch_del_prefix(b, HM_DB_META, hm_slice(k, (size_t)kl)) < 0)
        return -E2BIG;
    remember(f, name, f->profiles[i]); /* the list's reference moves to the undo record */
    f->profiles[i] = f->profiles[--f->nprof];
    publish(f);
    return 0;
}

void hm_fleet_profile_undo(struct hm_fleet *f)
{
    if (!f->undo_name[0])
        return;
    int i = profile_find(f, f->undo_name);
    if (f->undo_prev) {
        profile_set(f, f->undo_prev); /* takes the undo record's reference */
        f->undo_prev = NULL;
    } else if (i >= 0) {
        hm_profile_put(f->profiles[i]);
        f->profiles[i] = f->profiles[--f->nprof];
    }
    f->undo_name[0] = '\0';
    publish(f);
}

struct pool_conf {
    int64_t lo, hi;
    bool pci;
    uint32_t distance;
};

/* {"lo":N,"hi":N} or {"kind":"pci"[,"lo":0,"hi":503][,"reuse_distance":D]} */
static int pool_conf(json_t *in, struct pool_conf *c, char *err, size_t errlen)
{
    json_t *l = json_object_get(in, "lo"), *h = json_object_get(in, "hi");
    json_t *k = json_object_get(in, "kind"), *d = json_object_get(in, "reuse_distance");
    *c = (struct pool_conf){0};
    if (!json_is_object(in)) {
        snprintf(err, errlen, "a pool is a JSON object");
        return -EINVAL;
    }
    if (k && !(json_is_string(k) && (!strcmp(json_string_value(k), "pci") ||
                                     !strcmp(json_string_value(k), "integer")))) {
        snprintf(err, errlen, "pool 'kind' must be \"integer\" or \"pci\"");
        return -EINVAL;
    }
    c->pci = k && !strcmp(json_string_value(k), "pci");
    if (c->pci && !l && !h) {
        c->lo = 0;
        c->hi = 503; /* TS 36.211 6.11: 504 physical-layer cell identities */
    } else if (!json_is_integer(l) || !json_is_integer(h)) {
        snprintf(err, errlen, "a pool needs integer 'lo' and 'hi'");
        return -EINVAL;
    } else {
        c->lo = json_integer_value(l);
        c->hi = json_integer_value(h);
    }
    uint64_t max = c->pci ? HM_PCI_POOL_MAX_SIZE : HM_POOL_MAX_SIZE;
    if (c->lo < 0 || c->hi < c->lo || (uint64_t)(c->hi - c->lo) >= max) {
        snprintf(err, errlen, "pool range must satisfy 0 <= lo <= hi and hold at most %llu values",
                 (unsigned long long)max);
        return -EINVAL;
    }
    if (d && (!c->pci || !json_is_integer(d) || json_integer_value(d) < 0 ||
              json_integer_value(d) > HM_PCI_MAX_DISTANCE)) {
        snprintf(err, errlen, "'reuse_distance' is an integer 0..%u of a \"pci\" pool",
                 HM_PCI_MAX_DISTANCE);
        return -EINVAL;
    }
    c->distance = d ? (uint32_t)json_integer_value(d) : 0;
    return 0;
}

static struct hm_pool *pool_new(const char *name, const struct pool_conf *c)
{
    return c->pci ? hm_pool_create_pci(name, c->lo, c->hi, c->distance)
                  : hm_pool_create(name, c->lo, c->hi);
}

int hm_fleet_pool_put(struct hm_fleet *f, const char *name, json_t *in,
                      struct hm_store_batch *b, char *err, size_t errlen)
{
    struct pool_conf c;
    if (!hm_pool_name_ok(name)) {
        snprintf(err, errlen, "pool name must be 1..%d characters of [A-Za-z0-9_.-]",
                 HM_POOL_NAME_MAX);
        return -EINVAL;
    }
    if (pool_conf(in, &c, err, errlen) < 0)
        return -EINVAL;
    int i = hm_fleet_pool_index(f, name);
    unsigned n = atomic_load(&f->npools);
    if (i < 0 && n >= HM_FLEET_MAX_POOLS) {
        snprintf(err, errlen, "at most %d pools", HM_FLEET_MAX_POOLS);
        return -EINVAL;
    }
    if (i >= 0 && hm_pool_is_pci(f->pools[i]) != c.pci) {
        snprintf(err, errlen, "pool '%s' is of kind \"%s\"; a kind cannot change", name,
                 c.pci ? "integer" : "pci");
        return -EINVAL;
    }
    char k[HM_STORE_MAX_KEY], v[128];
    int kl = key_of(k, sizeof(k), K_POOL, hm_slice_cstr(name), false, hm_slice("", 0));
    int vl = c.pci ? snprintf(v, sizeof(v),
                              "{\"kind\":\"pci\",\"lo\":%" PRId64 ",\"hi\":%" PRId64
                              ",\"reuse_distance\":%u}", c.lo, c.hi, c.distance)
                   : snprintf(v, sizeof(v), "{\"lo\":%" PRId64 ",\"hi\":%" PRId64 "}", c.lo,
                              c.hi);
    if (kl < 0 || hm_store_batch_put(b, HM_DB_META, hm_slice(k, (size_t)kl),
                                     hm_slice(v, (size_t)vl)) < 0)
        return -E2BIG;
    if (i >= 0) {
        struct hm_pool_stats st;
        hm_pool_stats(f->pools[i], &st);
        int r = hm_pool_resize(f->pools[i], c.lo, c.hi);
        if (r < 0) {
            snprintf(err, errlen, "devices hold values outside %" PRId64 "..%" PRId64, c.lo, c.hi);
            return r;
        }
        if (c.pci && hm_pool_set_distance(f->pools[i], c.distance) < 0) {
            hm_pool_resize(f->pools[i], st.lo, st.hi); /* all or nothing */
            snprintf(err, errlen, "devices within %u TACs of each other hold the same value",
                     c.distance);
            return -EBUSY;
        }
        publish(f); /* a device's desired hash includes its pool values: recheck */
        return 0;
    }
    f->pools[n] = pool_new(name, &c);
    atomic_store(&f->npools, n + 1);
    return 0;
}

/* ---- S1 regions (under mu for writers) ------------------------------------------------------ */

static int region_find(struct hm_fleet *f, const char *name)
{
    for (size_t i = 0; i < f->nreg; i++)
        if (!strcmp(f->regions[i]->name, name))
            return (int)i;
    return -ENOENT;
}

/* Inserts or replaces <r> (sorted by name), or removes <name> when <r> is NULL. Write lock. */
static void region_set(struct hm_fleet *f, const char *name, struct hm_region *r)
{
    pthread_rwlock_wrlock(&f->rlock);
    int i = region_find(f, name);
    if (i >= 0) {
        hm_region_free(f->regions[i]);
        if (r) {
            f->regions[i] = r;
        } else {
            memmove(&f->regions[i], &f->regions[i + 1],
                    (f->nreg - (size_t)i - 1) * sizeof(*f->regions));
            f->nreg--;
        }
    } else if (r) {
        f->regions = hm_xrealloc(f->regions, (f->nreg + 1) * sizeof(*f->regions));
        size_t k = f->nreg;
        while (k > 0 && strcmp(f->regions[k - 1]->name, name) > 0) {
            f->regions[k] = f->regions[k - 1];
            k--;
        }
        f->regions[k] = r;
        f->nreg++;
    }
    atomic_store(&f->reg_tags, hm_regions_use_tags(f->regions, f->nreg));
    pthread_rwlock_unlock(&f->rlock);
}

static void region_stage(struct hm_fleet *f, const char *name, struct hm_region *r)
{
    hm_region_free(f->staged);
    f->staged = r;
    snprintf(f->staged_name, sizeof(f->staged_name), "%s", name);
}

int hm_fleet_region_put(struct hm_fleet *f, const char *name, json_t *in,
                        struct hm_store_batch *b, json_t **norm, char *err, size_t errlen)
{
    struct hm_region *r;
    if (hm_region_parse(name, in, &r, err, errlen) < 0)
        return -EINVAL;
    if (region_find(f, name) < 0 && f->nreg >= HM_REGIONS_MAX) {
        snprintf(err, errlen, "at most %d regions", HM_REGIONS_MAX);
        hm_region_free(r);
        return -EINVAL;
    }
    char *text = json_dumps(r->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char k[HM_STORE_MAX_KEY];
    int kl = key_of(k, sizeof(k), K_REGION, hm_slice_cstr(name), false, hm_slice("", 0));
    int rc = kl > 0 && strlen(text) <= HM_STORE_MAX_VAL
                 ? hm_store_batch_put(b, HM_DB_META, hm_slice(k, (size_t)kl),
                                      hm_slice_cstr(text))
                 : -E2BIG;
    free(text);
    if (rc < 0) {
        snprintf(err, errlen, "region too large to store");
        hm_region_free(r);
        return -E2BIG;
    }
    *norm = json_deep_copy(r->json);
    region_stage(f, name, r);
    return 0;
}

int hm_fleet_region_del(struct hm_fleet *f, const char *name, struct hm_store_batch *b)
{
    pthread_rwlock_rdlock(&f->rlock);
    int i = region_find(f, name);
    pthread_rwlock_unlock(&f->rlock);
    if (i < 0)
        return -ENOENT;
    char k[HM_STORE_MAX_KEY];
    int kl = key_of(k, sizeof(k), K_REGION, hm_slice_cstr(name), false, hm_slice("", 0));
    if (kl < 0 || hm_store_batch_del(b, HM_DB_META, hm_slice(k, (size_t)kl)) < 0)
        return -E2BIG;
    region_stage(f, name, NULL);
    return 0;
}

void hm_fleet_region_commit(struct hm_fleet *f, bool submitted)
{
    if (!f->staged_name[0])
        return;
    if (submitted) {
        region_set(f, f->staged_name, f->staged);
        hm_info(f->staged ? "S1 region stored" : "S1 region deleted", "region=%s",
                f->staged_name);
    } else {
        hm_region_free(f->staged);
    }
    f->staged = NULL;
    f->staged_name[0] = '\0';
}

json_t *hm_fleet_regions_json(struct hm_fleet *f, const char *name)
{
    json_t *out = name ? NULL : json_array();
    pthread_rwlock_rdlock(&f->rlock);
    for (size_t i = 0; i < f->nreg; i++) {
        if (!name)
            json_array_append_new(out, json_deep_copy(f->regions[i]->json));
        else if (!strcmp(f->regions[i]->name, name))
            out = json_deep_copy(f->regions[i]->json);
    }
    pthread_rwlock_unlock(&f->rlock);
    return out;
}

/* ---- start-up ---------------------------------------------------------------------------- */

struct load_ctx {
    struct hm_fleet *f;
    struct hm_buf text;
    char name[HM_PROFILE_NAME_MAX + 1];
    size_t loaded, skipped;
};

static int load_pool(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct load_ctx *c = arg;
    char name[HM_POOL_NAME_MAX + 1], err[200];
    size_t nl = key.len - strlen(K_POOL);
    json_t *j = json_loadb(val.ptr, val.len, 0, NULL);
    struct pool_conf pc;
    unsigned n = atomic_load(&c->f->npools);
    if (nl < sizeof(name) && j && n < HM_FLEET_MAX_POOLS &&
        pool_conf(j, &pc, err, sizeof(err)) == 0) {
        memcpy(name, key.ptr + strlen(K_POOL), nl);
        name[nl] = '\0';
        c->f->pools[n] = pool_new(name, &pc);
        if (c->f->pools[n])
            atomic_store(&c->f->npools, n + 1);
    } else {
        hm_warn("stored pool unreadable; skipped", "key_len=%zu", key.len);
    }
    json_decref(j);
    return 0;
}

static int load_alloc(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct load_ctx *c = arg;
    struct hm_slice rest = hm_slice(key.ptr + strlen(K_ALLOC), key.len - strlen(K_ALLOC));
    const char *z = memchr(rest.ptr, '\0', rest.len);
    char name[HM_POOL_NAME_MAX + 1], num[24];
    if (!z || (size_t)(z - rest.ptr) >= sizeof(name) || val.len == 0 || val.len >= sizeof(num))
        return 0;
    memcpy(name, rest.ptr, (size_t)(z - rest.ptr));
    name[z - rest.ptr] = '\0';
    memcpy(num, val.ptr, val.len);
    num[val.len] = '\0';
    int i = hm_fleet_pool_index(c->f, name);
    struct hm_slice dev = hm_slice(z + 1, rest.len - (size_t)(z - rest.ptr) - 1);
    char *end;
    int64_t v = strtoll(num, &end, 10), tac = -1;
    if (*end == ',') /* PCI pools: "value,TAC" */
        tac = strtoll(end + 1, NULL, 10);
    int r = i < 0 ? -ENOENT : hm_pool_restore_tac(c->f->pools[i], dev, tac, v);
    if (r < 0)
        hm_warn("stored pool allocation not restored", "pool=%s device=%.*s value=%s err=\"%s\"",
                name, (int)dev.len, dev.ptr, num, hm_strerror(r));
    else
        c->loaded++;
    return 0;
}

static int load_region(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct load_ctx *c = arg;
    char name[HM_REGION_NAME_MAX + 1], err[200];
    size_t nl = key.len - strlen(K_REGION);
    json_t *j = json_loadb(val.ptr, val.len, 0, NULL);
    struct hm_region *r = NULL;
    if (nl < sizeof(name)) {
        memcpy(name, key.ptr + strlen(K_REGION), nl);
        name[nl] = '\0';
    }
    if (nl < sizeof(name) && j && hm_region_parse(name, j, &r, err, sizeof(err)) == 0) {
        region_set(c->f, name, r);
    } else {
        c->skipped++;
        hm_err("stored S1 region no longer valid; not applied", "key_len=%zu cause=\"%s\"",
               key.len, j ? err : "unreadable JSON");
    }
    json_decref(j);
    return 0;
}

static void load_profile_done(struct load_ctx *c)
{
    if (!c->name[0])
        return;
    char err[300];
    json_t *j = json_loadb(c->text.base ? c->text.base : "", c->text.len, 0, NULL);
    struct hm_profile *p = NULL;
    if (j && hm_profile_parse(c->name, j, pool_fn, c->f, &p, err, sizeof(err)) == 0) {
        profile_set(c->f, p);
    } else {
        c->skipped++;
        hm_err("stored profile no longer valid; not applied", "profile=%s cause=\"%s\"", c->name,
               j ? err : "unreadable JSON");
    }
    json_decref(j);
    hm_buf_reset(&c->text);
    c->name[0] = '\0';
}

static int load_profile(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct load_ctx *c = arg;
    struct hm_slice rest = hm_slice(key.ptr + strlen(K_PROFILE), key.len - strlen(K_PROFILE));
    const char *z = memchr(rest.ptr, '\0', rest.len);
    if (!z || (size_t)(z - rest.ptr) > HM_PROFILE_NAME_MAX)
        return 0;
    size_t nl = (size_t)(z - rest.ptr);
    if (strlen(c->name) != nl || memcmp(c->name, rest.ptr, nl)) {
        load_profile_done(c);
        memcpy(c->name, rest.ptr, nl);
        c->name[nl] = '\0';
    }
    hm_buf_append_slice(&c->text, val);
    return 0;
}

int hm_fleet_create(struct hm_store *st, struct hm_fleet **out, char *err, size_t errlen)
{
    struct hm_fleet *f = hm_xcalloc(1, sizeof(*f));
    struct hm_store_reader *rd = NULL;
    struct load_ctx c = {.f = f};
    f->st = st;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->hook_mu, NULL);
    pthread_rwlock_init(&f->rlock, NULL);
    int r = hm_store_reader_open(st, &rd);
    if (r == 0)
        r = hm_store_read_begin(rd);
    if (r < 0) {
        snprintf(err, errlen, "cannot read the store: %s", hm_strerror(r));
        goto fail;
    }
    r = hm_store_scan(rd, HM_DB_META, HM_SLICE_LIT(K_POOL), hm_slice("", 0), load_pool, &c);
    if (r >= 0)
        r = hm_store_scan(rd, HM_DB_META, HM_SLICE_LIT(K_ALLOC), hm_slice("", 0), load_alloc, &c);
    if (r >= 0)
        r = hm_store_scan(rd, HM_DB_META, HM_SLICE_LIT(K_REGION), hm_slice("", 0), load_region,
                          &c);
    if (r >= 0)
        r = hm_store_scan(rd, HM_DB_META, HM_SLICE_LIT(K_PROFILE), hm_slice("", 0), load_profile,
                          &c);
    load_profile_done(&c);
    hm_store_read_end(rd);
    if (r < 0) {
        snprintf(err, errlen, "cannot load profiles: %s", hm_strerror(r));
        goto fail;
    }
    atomic_store(&f->cur, hm_profset_build(f->profiles, f->nprof));
    hm_info("fleet configuration loaded",
            "profiles=%zu pools=%u allocations=%zu regions=%zu skipped=%zu", f->nprof,
            atomic_load(&f->npools), c.loaded, f->nreg, c.skipped);
    hm_store_reader_close(rd);
    hm_buf_free(&c.text);
    *out = f;
    return 0;
fail:
    hm_store_reader_close(rd);
    hm_buf_free(&c.text);
    hm_fleet_destroy(f);
    *out = NULL;
    return r < 0 ? r : -EINVAL;
}

void hm_fleet_destroy(struct hm_fleet *f)
{
    if (!f)
        return;
    hm_fleet_profile_done(f);
    hm_profset_free(atomic_load(&f->cur));
    for (size_t i = 0; i < f->nprof; i++)
        hm_profile_put(f->profiles[i]);
    free(f->profiles);
    for (unsigned i = 0; i < atomic_load(&f->npools); i++)
        hm_pool_destroy(f->pools[i]);
    for (size_t i = 0; i < f->nreg; i++)
        hm_region_free(f->regions[i]);
    free(f->regions);
    hm_region_free(f->staged);
    pthread_rwlock_destroy(&f->rlock);
    pthread_mutex_destroy(&f->hook_mu);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---- per-device resolution ---------------------------------------------------------------- */

struct resolved {
    uint64_t hash;
    int64_t val[64]; /* by pool index (and HM_FLEET_REF_S1_PORT); valid where ok bit set */
    uint64_t ok;
    char key[24]; /* "profile-xxxxxxxx" */
    char s1[HM_REGION_LIST_MAX + 1]; /* HM_FLEET_REF_S1_SERVERS */
};

/* What the S1 region selectors look at */
struct devsel {
    struct hm_slice tags, oui, pc;
};

/*
 * Raises (or clears) the device's alarm "HEMS-POOL-<pool>" in the store's alarm tables, in
 * <b>, unless the current-alarm set already says so: pool exhaustion is an alarm the
 * operator sees with the device's other alarms (docs/alarms.md), not only a log line.
 */
static int pool_alarm(struct hm_fleet *f, struct hm_store_reader *rd, struct hm_store_batch *b,
                      struct hm_slice dev, struct hm_pool *p, bool raise, int64_t tac)
{
    char id[HM_POOL_NAME_MAX + 16], mo[HM_POOL_NAME_MAX + 16], text[240];
    int il = snprintf(id, sizeof(id), "HEMS-POOL-%s", hm_pool_name(p));
    snprintf(mo, sizeof(mo), "hems.pool.%s", hm_pool_name(p));
    char ck[HM_STORE_MAX_KEY];
    struct hm_slice v;
    int cl = hm_key_alarm_cur(ck, sizeof(ck), dev, hm_slice(id, (size_t)il));
    if (cl < 0)
        return -E2BIG;
    bool raised = hm_store_get(rd, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl), &v) == 0;
    if (raised == raise)
        return 0;
    struct hm_pool_stats st;
    hm_pool_stats(p, &st);
    int tl = snprintf(text, sizeof(text), "parameter pool %s (%lld..%lld, %llu values) has no free value",
                      hm_pool_name(p), (long long)st.lo, (long long)st.hi,
                      (unsigned long long)st.size);
    if (st.pci)
        snprintf(text + tl, sizeof(text) - (size_t)tl,
                 " for TAC %lld (reuse distance %u: no value unused within TACs %lld..%lld)",
                 (long long)tac, st.distance, (long long)(tac < 0 ? tac : tac - st.distance < 0 ? 0 : tac - st.distance),
                 (long long)(tac < 0 ? tac : tac + st.distance));
    uint64_t now = hm_now_ms(), seq = hm_store_next_seq(f->st);
    struct hm_alarm_rec a = {
        .event_time_ms = now, .notification = raise ? HM_ALARM_NEW : HM_ALARM_CLEARED,
        .severity = raise ? HM_SEV_MAJOR : HM_SEV_CLEARED, .device = dev,
        .alarm_id = hm_slice(id, (size_t)il), .managed_object = hm_slice_cstr(mo),
        .event_type = HM_SLICE_LIT("Processing error alarm"),
        .probable_cause = HM_SLICE_LIT("Resource at or nearing capacity"),
        .specific_problem = HM_SLICE_LIT("parameter pool exhausted"),
        .additional_text = hm_slice_cstr(text), .additional_info = hm_slice("", 0)};
    char ak[HM_KEY_ALARM_LEN];
    size_t sz = hm_rec_alarm_size(&a);
    char *ap = hm_key_alarm(ak, sizeof(ak), now, seq) < 0
                   ? NULL
                   : hm_store_batch_put_reserve(b, HM_DB_ALARMS, hm_slice(ak, sizeof(ak)), sz);
    if (!ap || hm_rec_alarm_encode(&a, ap, sz) < 0)
        return -E2BIG;
    if (!raise)
        return hm_store_batch_del(b, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl)) < 0 ? -E2BIG : 0;
    struct hm_alarm_cur_rec cur = {.time_ms = now, .seq = seq, .severity = HM_SEV_MAJOR};
    size_t cs = hm_rec_alarm_cur_size(&cur);
    char *cp = hm_store_batch_put_reserve(b, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl), cs);
    return cp && hm_rec_alarm_cur_encode(&cur, cp, cs) >= 0 ? 0 : -E2BIG;
}

static bool value_of(const struct hm_desired_param *p, const struct resolved *rv, char *buf,
                     size_t cap, const char **out);

/*
 * The TAC a PCI pool allocates in: the desired value of the device's TAC parameter (a name
 * ending in "CellConfig.LTE.EPC.TAC", a literal or a plain pool's value resolved before), or
 * -1 when the desired state sets none.
 */
static int64_t desired_tac(const struct hm_desired *d, const struct resolved *rv)
{
    static const char suffix[] = "CellConfig.LTE.EPC.TAC";
    const size_t sl = sizeof(suffix) - 1;
    for (uint32_t i = 0; i < d->n; i++) {
        size_t nl = strlen(d->v[i].name);
        char buf[24];
        const char *want;
        if (nl < sl || memcmp(d->v[i].name + nl - sl, suffix, sl))
            continue;
        if (!value_of(&d->v[i], rv, buf, sizeof(buf), &want))
            return -1;
        char *end;
        long long t = strtoll(want, &end, 10);
        return *want && !*end && t >= 0 && t <= HM_PCI_MAX_TAC ? (int64_t)t : -1;
    }
    return -1;
}

/* Pool values of the device (allocating, persisted in <b> if non-NULL, with the exhaustion
 * alarm raised or cleared through <rd>; else lookup only). Plain pools first: a PCI pool
 * allocates within the TAC they may give. */
static bool uses_s1(const struct hm_desired *d)
{
    for (uint32_t i = 0; i < d->npools; i++)
        if (d->pools[i] >= HM_FLEET_MAX_POOLS)
            return true;
    return false;
}

/* The device's S1 list and port from its region into <rv> (ok bits), or nothing. */
static void resolve_s1(struct hm_fleet *f, struct hm_slice dev, const struct devsel *ds,
                       int64_t tac, struct resolved *rv, bool count)
{
    pthread_rwlock_rdlock(&f->rlock);
    const struct hm_region *r =
        hm_region_pick(f->regions, f->nreg, ds->tags, tac, ds->oui, ds->pc);
    if (r && hm_region_list(r, dev, rv->s1, sizeof(rv->s1)) > 0) {
        rv->ok |= 1ull << HM_FLEET_REF_S1_SERVERS;
        if (r->port > 0) {
            rv->val[HM_FLEET_REF_S1_PORT] = r->port;
            rv->ok |= 1ull << HM_FLEET_REF_S1_PORT;
        }
    }
    pthread_rwlock_unlock(&f->rlock);
    if (!r && count) {
        atomic_fetch_add(&f->s1_unassigned, 1);
        HM_LOG_RL(HM_LOG_WARN, "no S1 region selects the device: S1 far end left unset",
                  "device=%.*s tac=%" PRId64, (int)dev.len, dev.ptr, tac);
    }
}

static int resolve(struct hm_fleet *f, const struct hm_desired *d, struct hm_slice dev,
                   const struct devsel *ds, struct hm_store_reader *rd,
                   struct hm_store_batch *b, struct resolved *rv)
{
    uint64_t h = d->hash;
    rv->ok = 0;
    rv->s1[0] = '\0';
    rv->val[HM_FLEET_REF_S1_PORT] = -1;
    for (int pass = 0; pass < 2; pass++) {
        int64_t tac = pass ? desired_tac(d, rv) : -1;
        if (pass && uses_s1(d)) {
            resolve_s1(f, dev, ds, tac, rv, b != NULL);
            h = hm_hash_bytes(h, rv->s1, strlen(rv->s1));
            h = hm_hash_bytes(h, &rv->val[HM_FLEET_REF_S1_PORT], sizeof(int64_t));
        }
        for (uint32_t i = 0; i < d->npools; i++) {
            int pi = d->pools[i];
            if (pi >= HM_FLEET_MAX_POOLS)
                continue;
            struct hm_pool *p = hm_fleet_pool(f, (unsigned)pi);
            if (p && hm_pool_is_pci(p) != (pass == 1))
                continue;
            if (!p && pass == 1)
                continue;
            int64_t v = -1;
            bool fresh = false;
            int r = !p ? -ENOENT
                    : b ? hm_pool_get_tac(p, dev, tac, &v, &fresh)
                        : hm_pool_lookup(p, dev, &v);
            if (r == -ENOSPC) {
                atomic_fetch_add(&f->exhausted, 1);
                HM_LOG_RL(HM_LOG_ERR, "parameter pool exhausted: device gets no value",
                          "pool=%s device=%.*s tac=%" PRId64, hm_pool_name(p), (int)dev.len,
                          dev.ptr, tac);
            }
            if (b && rd && (r == -ENOSPC || fresh) && pool_alarm(f, rd, b, dev, p, !fresh, tac) < 0)
                return -E2BIG;
            if (r == 0) {
                rv->val[pi] = v;
                rv->ok |= 1ull << pi;
            } else {
                v = -1;
            }
            if (fresh) {
                char k[HM_STORE_MAX_KEY], num[48];
                int kl = key_of(k, sizeof(k), K_ALLOC, hm_slice_cstr(hm_pool_name(p)), true, dev);
                int nl = hm_pool_is_pci(p)
                             ? snprintf(num, sizeof(num), "%" PRId64 ",%" PRId64, v, tac)
                             : snprintf(num, sizeof(num), "%" PRId64, v);
                if (kl < 0 || hm_store_batch_put(b, HM_DB_META, hm_slice(k, (size_t)kl),
                                                 hm_slice(num, (size_t)nl)) < 0)
                    return -E2BIG;
            }
            h = hm_hash_bytes(h, &v, sizeof(v));
        }
    }
    rv->hash = h;
    snprintf(rv->key, sizeof(rv->key), "profile-%08x", (unsigned)(h >> 32));
    return 0;
}

/* The value to set for <p> ("" and false when its pool gave none). */
static bool value_of(const struct hm_desired_param *p, const struct resolved *rv, char *buf,
                     size_t cap, const char **out)
{
    if (p->pool < 0) {
        *out = p->value;
        return true;
    }
    if (!(rv->ok >> p->pool & 1))
        return false;
    if (p->pool == HM_FLEET_REF_S1_SERVERS) {
        *out = rv->s1;
        return true;
    }
    snprintf(buf, cap, "%" PRId64, rv->val[p->pool]);
    *out = buf;
    return true;
}

/* ---- task building -------------------------------------------------------------------------- */

struct spv {
    json_t *params; /* array of {name, value, type} */
    size_t bytes;
};

static int enqueue_spv(struct hm_fleet *f, struct hm_store_batch *b, struct hm_slice dev,
                       json_t *params, const char *pk, uint64_t *seq)
{
    json_t *args = json_pack("{s:s,s:O,s:s}", "rpc", "SetParameterValues", "params", params,
                             "parameter_key", pk);
    char *text = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(args);
    *seq = hm_store_next_seq(f->st);
    int r = hm_task_put_new(b, dev, *seq, HM_TASK_SET_PARAM_VALUES, hm_slice_cstr(text));
    free(text);
    if (r == 0)
        atomic_fetch_add(&f->queued, 1);
    return r;
}

/*
 * Queues <all> (array of {name,value,type}) as SetParameterValues tasks of at most
 * <max_batch> parameters (0: no limit) and ARGS_BUDGET bytes each. *<last> gets the last seq.
 */
static int enqueue_chunks(struct hm_fleet *f, struct hm_store_batch *b, struct hm_slice dev,
                          json_t *all, const char *pk, unsigned max_batch, uint64_t *last)
{
    json_t *cur = json_array();
    size_t bytes = 0;
    int r = 0;
    for (size_t i = 0; i < json_array_size(all) && r == 0; i++) {
        json_t *e = json_array_get(all, i);
        size_t eb = strlen(json_string_value(json_object_get(e, "name"))) +
                    strlen(json_string_value(json_object_get(e, "value"))) + 48;
        if (json_array_size(cur) &&
            ((max_batch && json_array_size(cur) >= max_batch) || bytes + eb > ARGS_BUDGET)) {
            r = enqueue_spv(f, b, dev, cur, pk, last);
            json_array_clear(cur);
            bytes = 0;
        }
        json_array_append(cur, e);
        bytes += eb;
    }
    if (r == 0 && json_array_size(cur))
        r = enqueue_spv(f, b, dev, cur, pk, last);
    json_decref(cur);
    return r;
}

static json_t *entry(const char *name, const char *value, uint8_t type)
{
    return json_pack("{s:s,s:s,s:s}", "name", name, "value", value, "type", hm_profile_xsi(type));
}

/* The value the device reported for <name> in this Inform, if it did. */
static const struct hm_cwmp_param *in_param(const struct hm_cwmp_inform *in, const char *name)
{
    for (uint32_t i = 0; in && i < in->params.n; i++)
        if (hm_slice_eq(in->params.v[i].name, hm_slice_cstr(name)))
            return &in->params.v[i];
    return NULL;
}

/* Full reconciliation: the desired values the device is not known to hold. */
static int reconcile(struct hm_fleet *f, struct hm_store_reader *rd, struct hm_store_batch *b,
                     struct hm_slice dev, const struct hm_desired *d, const struct resolved *rv,
                     const struct hm_cwmp_inform *in, bool reset, struct dstate *s)
{
    json_t *diff = json_array();
    bool same = s->hash == rv->hash;
    int r = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        const struct hm_desired_param *p = &d->v[i];
        char buf[24];
        const char *want;
        if (!value_of(p, rv, buf, sizeof(buf), &want) || (same && rejected(s->rej, p->name)))
            continue;
        struct hm_slice have;
        bool known = false;
        const struct hm_cwmp_param *ip = in_param(in, p->name);
        if (ip) {
            have = ip->value;
            known = true;
        } else if (!reset) {
            char k[HM_STORE_MAX_KEY];
            struct hm_slice v;
            struct hm_param_rec pr;
            int kl = hm_key_param(k, sizeof(k), dev, hm_slice_cstr(p->name));
            if (kl > 0 && hm_store_get(rd, HM_DB_PARAMS, hm_slice(k, (size_t)kl), &v) == 0 &&
                hm_rec_param_decode(v, &pr) == 0) {
                have = pr.value;
                known = true;
            }
        }
        if (known && value_eq(p->type, have, want))
            continue;
        json_array_append_new(diff, entry(p->name, want, p->type));
    }
    struct dstate ns = {.hash = rv->hash, .max_batch = s->max_batch,
                        .rej = same ? s->rej : hm_slice("", 0)};
    if (json_array_size(diff) == 0) {
        ns.st = ST_INSYNC;
        atomic_fetch_add(&f->insync, 1);
    } else {
        ns.st = ST_QUEUED;
        r = enqueue_chunks(f, b, dev, diff, rv->key, s->max_batch, &ns.seq);
    }
    json_decref(diff);
    return r == 0 ? state_put(b, dev, &ns) : r;
}

static bool task_pending(struct hm_store_reader *rd, struct hm_slice dev, uint64_t seq)
{
    char k[HM_STORE_MAX_KEY];
    struct hm_slice v;
    struct hm_task_rec t;
    int kl = hm_key_task(k, sizeof(k), dev, seq);
    return kl > 0 && hm_store_get(rd, HM_DB_TASKS, hm_slice(k, (size_t)kl), &v) == 0 &&
           hm_rec_task_decode(v, &t) == 0 &&
           (t.state == HM_TASK_QUEUED || t.state == HM_TASK_SENT);
}

static struct hm_slice device_tags(struct hm_store_reader *rd, struct hm_slice dev)
{
    char k[HM_STORE_MAX_KEY];
    struct hm_slice v = hm_slice("", 0);
    int kl = key_of(k, sizeof(k), K_TAGS, dev, false, hm_slice("", 0));
    if (kl < 0 || hm_store_get(rd, HM_DB_META, hm_slice(k, (size_t)kl), &v) < 0)
        return hm_slice("", 0);
    return v;
}

int hm_fleet_on_inform(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                       struct hm_store_batch *b, struct hm_slice dev,
                       const struct hm_cwmp_inform *in, const struct hm_dev_rec *d)
{
    /* only devices this node serves (not blocked, not redirected elsewhere) */
    if (!f || slot >= HOOK_SLOT || d->reg_state != HM_REG_REGISTERED)
        return 0;
    int r = 0;
    struct hm_profset *set = hm_fleet_acquire(f, slot);
    if (!hm_profset_count(set))
        goto out;
    bool ptags = hm_profset_uses_tags(set);
    struct devsel ds = {ptags || atomic_load(&f->reg_tags) ? device_tags(rd, dev)
                                                           : hm_slice("", 0),
                        d->oui, d->product_class};
    const struct hm_desired *des = hm_profset_lookup(set, slot, d->product_class, d->sw_version,
                                                     ptags ? ds.tags : hm_slice("", 0), dev);
    if (!des)
        goto out;
    struct resolved rv;
    r = resolve(f, des, dev, &ds, rd, b, &rv);
    if (r < 0)
        goto out;
    /* 0 BOOTSTRAP: a factory reset; what we stored about the device is void */
    bool reset = false;
    for (uint32_t i = 0; i < in->events.n; i++)
        reset |= hm_slice_eq_lit(in->events.v[i].code, "0 BOOTSTRAP");
    bool drift = false;
    for (uint32_t i = 0; i < in->params.n && !drift; i++) {
        const struct hm_desired_param *p = hm_desired_find(des, in->params.v[i].name);
        char buf[24];
        const char *want;
        if (p && value_of(p, &rv, buf, sizeof(buf), &want) &&
            !value_eq(p->type, in->params.v[i].value, want))
            drift = true;
    }
    if (!drift && !reset && hm_slice_eq(d->param_key, hm_slice_cstr(rv.key)))
        goto out;
    struct dstate s;
    if (state_get(rd, dev, &s) < 0)
        s = (struct dstate){0};
    if (reset)
        s.st = ST_NONE;
    if (drift) {
        /* a rejected parameter differs by design: not drift */
        bool real = false;
        for (uint32_t i = 0; i < in->params.n && !real; i++) {
            const struct hm_desired_param *p = hm_desired_find(des, in->params.v[i].name);
            char buf[24];
            const char *want;
            real = p && value_of(p, &rv, buf, sizeof(buf), &want) &&
                   !value_eq(p->type, in->params.v[i].value, want) &&
                   !(s.hash == rv.hash && rejected(s.rej, p->name));
        }
        drift = real;
        if (drift)
            atomic_fetch_add(&f->drift, 1);
    }
    if (!drift && s.hash == rv.hash &&
        (s.st == ST_INSYNC || (s.st == ST_QUEUED && task_pending(rd, dev, s.seq))))
        goto out;
    r = reconcile(f, rd, b, dev, des, &rv, in, reset, &s);
out:
    hm_fleet_release(f, slot);
    return r == -E2BIG ? r : 0;
}

/* ---- task results ------------------------------------------------------------------------- */

static int write_params(struct hm_store_batch *b, struct hm_slice dev, json_t *params)
{
    uint64_t now = hm_now_ms();
    size_t i;
    json_t *e;
    json_array_foreach(params, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        const char *v = json_string_value(json_object_get(e, "value"));
        const char *t = json_string_value(json_object_get(e, "type"));
        if (!n || !v)
            continue;
        static const char *const pt[] = {"xsd:string", "xsd:int", "xsd:unsignedInt",
                                         "xsd:boolean", "xsd:dateTime", "xsd:base64",
                                         "xsd:long", "xsd:unsignedLong", "xsd:hexBinary"};
        uint8_t type = HM_PT_STRING;
        for (size_t k = 0; t && k < HM_ARRAY_SIZE(pt); k++)
            if (!strcmp(t, pt[k]))
                type = (uint8_t)k;
        char k[HM_STORE_MAX_KEY];
        int kl = hm_key_param(k, sizeof(k), dev, hm_slice_cstr(n));
        struct hm_param_rec pr = {.type = type, .time_ms = now, .value = hm_slice_cstr(v)};
        size_t pn = hm_rec_param_size(&pr);
        char *p = kl > 0 ? hm_store_batch_put_reserve(b, HM_DB_PARAMS, hm_slice(k, (size_t)kl), pn)
                         : NULL;
        if (!p || hm_rec_param_encode(&pr, p, pn) < 0)
            return -E2BIG;
    }
    return 0;
}

static int spv_result(struct hm_fleet *f, struct hm_store_reader *rd, struct hm_store_batch *b,
                      struct hm_slice dev, uint64_t seq, json_t *args,
                      const struct hm_cwmp_msg *m)
{
    json_t *params = json_object_get(args, "params");
    const char *pk = json_string_value(json_object_get(args, "parameter_key"));
    bool profile = pk && !strncmp(pk, "profile-", 8);
    if (m->method == HM_CWMP_SET_PARAMETER_VALUES_RESPONSE) {
        int r = write_params(b, dev, params);
        struct dstate s;
        if (r == 0 && profile && state_get(rd, dev, &s) == 0 && s.st == ST_QUEUED &&
            s.seq == seq) {
            s.st = ST_INSYNC;
            atomic_fetch_add(&f->insync, 1);
            r = state_put(b, dev, &s);
        }
        return r;
    }
    if (m->method != HM_CWMP_FAULT || !profile)
        return 0;
    struct dstate s;
    char want[24];
    if (state_get(rd, dev, &s) < 0)
        return 0;
    snprintf(want, sizeof(want), "profile-%08x", (unsigned)(s.hash >> 32));
    if (strcmp(want, pk))
        return 0; /* the desired state moved on since: the next Inform reconciles */
    const struct hm_cwmp_fault *ft = &m->u.fault;
    size_t np = json_array_size(params);
    struct hm_buf rej = {0};
    hm_buf_append_slice(&rej, s.rej);
    json_t *rest = json_array();
    unsigned max_batch = s.max_batch;
    size_t i;
    json_t *e;
    if (ft->spv_faults.n || np == 1) {
        json_array_foreach(params, i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name"));
            bool bad = np == 1 && !ft->spv_faults.n;
            for (uint32_t k = 0; k < ft->spv_faults.n && !bad; k++)
                bad = hm_slice_eq(ft->spv_faults.v[k].name, hm_slice_cstr(n));
            if (!bad) {
                json_array_append(rest, e);
                continue;
            }
            atomic_fetch_add(&f->rejected, 1);
            hm_warn("profile parameter rejected by the device", "device=%.*s parameter=%s "
                    "fault=%u", (int)dev.len, dev.ptr, n, ft->code);
            if (!rejected(hm_buf_slice(&rej), n) && rej.len + strlen(n) + 1 <= REJ_MAX) {
                if (rej.len)
                    hm_buf_append_lit(&rej, "\n");
                hm_buf_append_str(&rej, n);
            }
        }
        if (json_array_size(rest) == np) { /* the fault named nothing we sent: give up */
            json_array_clear(rest);
        }
    } else {
        /* no per-parameter faults: the request as a whole was too much; halve it */
        max_batch = (unsigned)((np + 1) / 2);
        json_array_extend(rest, params);
        atomic_fetch_add(&f->splits, 1);
        hm_info("device refused a profile update as a whole; splitting",
                "device=%.*s params=%zu fault=%u batch=%u", (int)dev.len, dev.ptr, np, ft->code,
                max_batch);
    }
    struct dstate ns = {.hash = s.hash, .st = ST_INSYNC, .seq = s.seq,
                        .max_batch = (uint16_t)max_batch, .rej = hm_buf_slice(&rej)};
    int r = 0;
    if (json_array_size(rest)) {
        ns.st = ST_QUEUED;
        r = enqueue_chunks(f, b, dev, rest, pk, max_batch, &ns.seq);
    }
    if (r == 0)
        r = state_put(b, dev, &ns);
    json_decref(rest);
    hm_buf_free(&rej);
    return r;
}

static int gpv_result(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                      struct hm_store_batch *b, struct hm_slice dev, const struct hm_cwmp_msg *m)
{
    struct hm_slice v;
    struct hm_dev_rec d;
    if (hm_store_get(rd, HM_DB_DEVICES, dev, &v) < 0 || hm_rec_dev_decode(v, &d) < 0 ||
        d.reg_state != HM_REG_REGISTERED)
        return 0;
    int r = 0;
    struct hm_profset *set = hm_fleet_acquire(f, slot);
    bool ptags = hm_profset_uses_tags(set);
    struct devsel ds = {ptags || atomic_load(&f->reg_tags) ? device_tags(rd, dev)
                                                           : hm_slice("", 0),
                        d.oui, d.product_class};
    const struct hm_desired *des =
        hm_profset_count(set) ? hm_profset_lookup(set, slot, d.product_class, d.sw_version,
                                                  ptags ? ds.tags : hm_slice("", 0), dev)
                              : NULL;
    struct resolved rv;
    if (!des || resolve(f, des, dev, &ds, NULL, NULL, &rv) < 0)
        goto out;
    struct dstate s;
    if (state_get(rd, dev, &s) < 0)
        s = (struct dstate){0};
    bool same = s.hash == rv.hash;
    json_t *diff = json_array();
    for (uint32_t i = 0; i < m->u.params.n; i++) {
        const struct hm_cwmp_param *ip = &m->u.params.v[i];
        const struct hm_desired_param *p = hm_desired_find(des, ip->name);
        char buf[24];
        const char *want;
        if (p && value_of(p, &rv, buf, sizeof(buf), &want) && !value_eq(p->type, ip->value, want) &&
            !(same && rejected(s.rej, p->name)))
            json_array_append_new(diff, entry(p->name, want, p->type));
    }
    if (json_array_size(diff)) {
        atomic_fetch_add(&f->drift, 1);
        hm_info("drift from the desired state read back; correcting", "device=%.*s params=%zu",
                (int)dev.len, dev.ptr, json_array_size(diff));
        struct dstate ns = {.hash = rv.hash, .st = ST_QUEUED, .max_batch = s.max_batch,
                            .rej = same ? s.rej : hm_slice("", 0)};
        r = enqueue_chunks(f, b, dev, diff, rv.key, s.max_batch, &ns.seq);
        if (r == 0)
            r = state_put(b, dev, &ns);
    }
    json_decref(diff);
out:
    hm_fleet_release(f, slot);
    return r;
}

int hm_fleet_on_result(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                       struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                       uint8_t kind, struct hm_slice args, const struct hm_cwmp_msg *m)
{
    if (!f || slot >= HOOK_SLOT)
        return 0;
    if (kind == HM_TASK_GET_PARAM_VALUES && m->method == HM_CWMP_GET_PARAMETER_VALUES_RESPONSE)
        return gpv_result(f, slot, rd, b, dev, m) == -E2BIG ? -E2BIG : 0;
    if (kind != HM_TASK_SET_PARAM_VALUES)
        return 0;
    json_t *a = json_loadb(args.ptr, args.len, 0, NULL);
    if (!a)
        return 0;
    int r = spv_result(f, rd, b, dev, seq, a, m);
    json_decref(a);
    return r == -E2BIG ? r : 0;
}

/* ---- API view ------------------------------------------------------------------------------- */

json_t *hm_fleet_desired_json(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                              struct hm_slice dev)
{
    struct hm_slice v;
    struct hm_dev_rec d;
    json_t *out = NULL;
    if (slot >= HOOK_SLOT || hm_store_get(rd, HM_DB_DEVICES, dev, &v) < 0 ||
        hm_rec_dev_decode(v, &d) < 0)
        return NULL;
    struct hm_profset *set = hm_fleet_acquire(f, slot);
    struct hm_slice tags = device_tags(rd, dev);
    const struct hm_desired *des =
        hm_profset_count(set) ? hm_profset_lookup(set, slot, d.product_class, d.sw_version,
                                                  hm_profset_uses_tags(set) ? tags
                                                                            : hm_slice("", 0),
                                                  dev)
                              : NULL;
    struct resolved rv;
    struct devsel ds = {tags, d.oui, d.product_class};
    if (!des || resolve(f, des, dev, &ds, NULL, NULL, &rv) < 0)
        goto out;
    struct dstate s;
    if (state_get(rd, dev, &s) < 0)
        s = (struct dstate){0};
    bool same = s.hash == rv.hash;
    static const char *const states[] = {"pending", "queued", "applied"};
    const char *state = !same ? "pending" : states[s.st < 3 ? s.st : 0];
    if (hm_slice_eq(d.param_key, hm_slice_cstr(rv.key)))
        state = "applied";
    out = json_pack("{s:s,s:s,s:s%,s:[],s:[]}", "parameter_key", rv.key, "state", state, "tags",
                    tags.ptr ? tags.ptr : "", tags.len, "params", "rejected");
    json_t *ps = json_object_get(out, "params"), *rj = json_object_get(out, "rejected");
    for (uint32_t i = 0; i < des->n; i++) {
        char buf[24];
        const char *want;
        if (value_of(&des->v[i], &rv, buf, sizeof(buf), &want))
            json_array_append_new(ps, entry(des->v[i].name, want, des->v[i].type));
        if (same && rejected(s.rej, des->v[i].name))
            json_array_append_new(rj, json_string(des->v[i].name));
    }
out:
    hm_fleet_release(f, slot);
    return out;
}

/* ---- metrics ------------------------------------------------------------------------------- */

void hm_fleet_render_metrics(struct hm_buf *out, void *arg)
{
    struct hm_fleet *f = arg;
    pthread_mutex_lock(&f->mu);
    size_t nprof = f->nprof;
    pthread_mutex_unlock(&f->mu);
    hm_buf_printf(out, "# HELP hems_profiles_defined profiles defined\n"
                       "# TYPE hems_profiles_defined gauge\nhems_profiles_defined %zu\n",
                  nprof);
#define M(fld, name, help)                                                                   \
    hm_buf_printf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %llu\n",  \
                  (unsigned long long)atomic_load(&f->fld));
    M(queued, "hems_profile_tasks_queued_total", "SetParameterValues tasks queued by profiles")
    M(drift, "hems_profile_drift_total", "devices seen drifting from their desired state")
    M(rejected, "hems_profile_params_rejected_total", "profile parameters a device refused")
    M(splits, "hems_profile_splits_total", "profile updates split after a whole-request fault")
    M(insync, "hems_profile_in_sync_total", "reconciliations that ended with the device in sync")
    M(exhausted, "hems_pool_exhausted_total", "pool allocations refused: pool exhausted")
    M(s1_unassigned, "hems_s1_unassigned_total",
      "devices whose profile asks for ${s1:...} that no S1 region selects")
#undef M
    hm_buf_printf(out, "# HELP hems_pool_used values allocated per pool\n"
                       "# TYPE hems_pool_used gauge\n");
    for (unsigned i = 0; i < atomic_load(&f->npools); i++) {
        struct hm_pool_stats s;
        hm_pool_stats(f->pools[i], &s);
        hm_buf_printf(out, "hems_pool_used{pool=\"%s\"} %llu\n", hm_pool_name(f->pools[i]),
                      (unsigned long long)s.used);
    }
    hm_buf_printf(out, "# HELP hems_pool_size values per pool\n# TYPE hems_pool_size gauge\n");
    for (unsigned i = 0; i < atomic_load(&f->npools); i++) {
        struct hm_pool_stats s;
        hm_pool_stats(f->pools[i], &s);
        hm_buf_printf(out, "hems_pool_size{pool=\"%s\"} %llu\n", hm_pool_name(f->pools[i]),
                      (unsigned long long)s.size);
    }
}

/* ---- the S1 hook of core/hems_proc.c (core/fleet_s1.h) ------------------------------------ */

int hm_fleet_s1_source(void *arg, struct hm_slice dev, const struct hm_cwmp_inform *in,
                       char *list, size_t cap, int32_t *port)
{
    struct hm_fleet *f = arg;
    int found = 0;
    if (!f)
        return 0;
    pthread_rwlock_rdlock(&f->rlock);
    bool any = f->nreg > 0;
    pthread_rwlock_unlock(&f->rlock);
    if (!any)
        return 0;
    struct hm_slice sw = hm_slice("", 0);
    for (uint32_t i = 0; i < in->params.n; i++) {
        struct hm_slice n = in->params.v[i].name;
        static const char sv[] = ".DeviceInfo.SoftwareVersion";
        if (n.len >= sizeof(sv) - 1 && !memcmp(n.ptr + n.len - (sizeof(sv) - 1), sv, sizeof(sv) - 1))
            sw = in->params.v[i].value;
    }
    struct hm_store_reader *rd = NULL;
    pthread_mutex_lock(&f->hook_mu); /* the hook's reader slot: one user at a time */
    if (hm_store_reader_open(f->st, &rd) < 0 || hm_store_read_begin(rd) < 0)
        goto out;
    struct hm_profset *set = hm_fleet_acquire(f, HOOK_SLOT);
    bool ptags = hm_profset_uses_tags(set);
    struct devsel ds = {ptags || atomic_load(&f->reg_tags) ? device_tags(rd, dev)
                                                           : hm_slice("", 0),
                        in->dev.oui, in->dev.product_class};
    const struct hm_desired *des =
        hm_profset_count(set) ? hm_profset_lookup(set, HOOK_SLOT, in->dev.product_class, sw,
                                                  ptags ? ds.tags : hm_slice("", 0), dev)
                              : NULL;
    struct resolved rv;
    int64_t tac = des && resolve(f, des, dev, &ds, NULL, NULL, &rv) == 0 ? desired_tac(des, &rv)
                                                                         : -1;
    pthread_rwlock_rdlock(&f->rlock);
    const struct hm_region *r =
        hm_region_pick(f->regions, f->nreg, ds.tags, tac, ds.oui, ds.pc);
    if (r && hm_region_list(r, dev, list, cap) > 0) {
        *port = r->port;
        found = 1;
    }
    pthread_rwlock_unlock(&f->rlock);
    hm_fleet_release(f, HOOK_SLOT);
    hm_store_read_end(rd);
out:
    pthread_mutex_unlock(&f->hook_mu);
    hm_store_reader_close(rd);
    return found;
}
