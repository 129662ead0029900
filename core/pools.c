/* Integer parameter pools (see pools.h). */
#include "core/pools.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

struct ent {
    char *dev; /* NULL: empty slot; TOMB: deleted */
    uint32_t len;
    int64_t val;
    int64_t tac; /* PCI pools; -1 on plain pools */
};

#define PCI_WORDS (HM_PCI_POOL_MAX_SIZE / 64)

/* PCI pools: the values in use within one TAC */
struct tacset {
    int64_t tac;
    uint64_t count;
    uint64_t bits[PCI_WORDS];
};

static char tomb_mark;
#define TOMB (&tomb_mark)

struct hm_pool {
    char name[HM_POOL_NAME_MAX + 1];
    pthread_mutex_t mu;
    int64_t lo, hi;
    uint64_t *bits; /* bit (v - lo) set: value v in use */
    uint64_t used, exhausted, next;
    struct ent *tab; /* open addressing, power-of-two size, load <= 1/2 */
    size_t cap, fill; /* fill counts live entries and tombstones */
    /* PCI pools (bits unused): TAC -> tacset, open addressing over indices into <ts> */
    bool pci;
    uint32_t distance;
    struct tacset *ts;
    size_t nts, capts;
    int32_t *tidx; /* -1: empty */
    size_t tcap;
};

static uint64_t hash(struct hm_slice s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

bool hm_pool_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > HM_POOL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool range_ok(int64_t lo, int64_t hi)
{
    return lo >= 0 && hi >= lo && (uint64_t)(hi - lo) < HM_POOL_MAX_SIZE;
}

struct hm_pool *hm_pool_create(const char *name, int64_t lo, int64_t hi)
{
    if (!hm_pool_name_ok(name) || !range_ok(lo, hi))
        return NULL;
    struct hm_pool *p = hm_xcalloc(1, sizeof(*p));
    memcpy(p->name, name, strlen(name) + 1);
    pthread_mutex_init(&p->mu, NULL);
    p->lo = lo;
    p->hi = hi;
    p->bits = hm_xcalloc((size_t)(hi - lo) / 64 + 1, sizeof(uint64_t));
    p->cap = 64;
    p->tab = hm_xcalloc(p->cap, sizeof(*p->tab));
    return p;
}

struct hm_pool *hm_pool_create_pci(const char *name, int64_t lo, int64_t hi, uint32_t distance)
{
    if (!hm_pool_name_ok(name) || !range_ok(lo, hi) ||
        (uint64_t)(hi - lo) >= HM_PCI_POOL_MAX_SIZE || distance > HM_PCI_MAX_DISTANCE)
        return NULL;
    struct hm_pool *p = hm_pool_create(name, lo, hi);
    p->pci = true;
    p->distance = distance;
    p->tcap = 16;
    p->tidx = hm_xmalloc(p->tcap * sizeof(*p->tidx));
    memset(p->tidx, 0xff, p->tcap * sizeof(*p->tidx));
    return p;
}

bool hm_pool_is_pci(const struct hm_pool *p)
{
    return p->pci;
}

void hm_pool_destroy(struct hm_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->cap; i++)
        if (p->tab[i].dev && p->tab[i].dev != TOMB)
            free(p->tab[i].dev);
    free(p->tab);
    free(p->bits);
    free(p->ts);
    free(p->tidx);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

const char *hm_pool_name(const struct hm_pool *p)
{
    return p->name;
}

/* Slot of <dev>, or of the first free slot where it would go (*found false). */
static size_t probe(const struct hm_pool *p, struct hm_slice dev, bool *found)
{
    size_t mask = p->cap - 1, i = hash(dev) & mask, tomb = SIZE_MAX;
    for (;;) {
        struct ent *e = &p->tab[i];
        if (!e->dev) {
            *found = false;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (e->dev == TOMB) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (e->len == dev.len && memcmp(e->dev, dev.ptr, dev.len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void grow(struct hm_pool *p)
{
    struct ent *old = p->tab;
    size_t ocap = p->cap;
    p->cap = ocap * 2;
    p->tab = hm_xcalloc(p->cap, sizeof(*p->tab));
    p->fill = 0;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].dev || old[i].dev == TOMB)
            continue;
        bool f;
        size_t k = probe(p, hm_slice(old[i].dev, old[i].len), &f);
        p->tab[k] = old[i];
        p->fill++;
    }
    free(old);
}

/* ---- PCI pools: TAC sets ---------------------------------------------------------------- */

static size_t tac_hash(int64_t tac, size_t mask)
{
    uint64_t h = (uint64_t)tac * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 31)) & mask;
}

static struct tacset *tac_find(const struct hm_pool *p, int64_t tac)
{
    size_t mask = p->tcap - 1;
    for (size_t i = tac_hash(tac, mask);; i = (i + 1) & mask) {
        if (p->tidx[i] < 0)
            return NULL;
        if (p->ts[p->tidx[i]].tac == tac)
            return &p->ts[p->tidx[i]];
    }
}

static void tac_index(struct hm_pool *p, size_t k)
{
    size_t mask = p->tcap - 1, i = tac_hash(p->ts[k].tac, mask);
    while (p->tidx[i] >= 0)
        i = (i + 1) & mask;
    p->tidx[i] = (int32_t)k;
}

/* The set of <tac>, created empty when new (TAC sets are never removed). */
static struct tacset *tac_get(struct hm_pool *p, int64_t tac)
{
    struct tacset *t = tac_find(p, tac);
    if (t)
        return t;
    if (p->nts == p->capts) {
        p->capts = p->capts ? p->capts * 2 : 16;
        p->ts = hm_xrealloc(p->ts, p->capts * sizeof(*p->ts));
    }
    size_t k = p->nts++;
    memset(&p->ts[k], 0, sizeof(p->ts[k]));
    p->ts[k].tac = tac;
    if (p->nts * 2 > p->tcap) {
        free(p->tidx);
        p->tcap *= 2;
        p->tidx = hm_xmalloc(p->tcap * sizeof(*p->tidx));
        memset(p->tidx, 0xff, p->tcap * sizeof(*p->tidx));
        for (size_t j = 0; j < p->nts; j++)
            tac_index(p, j);
    } else {
        tac_index(p, k);
    }
    return &p->ts[k];
}

static bool tac_near(const struct hm_pool *p, int64_t a, int64_t b)
{
    if (a < 0 || b < 0)
        return a == b;
    return (uint64_t)(a > b ? a - b : b - a) <= p->distance;
}

/* ORs into <mask> the values in use by the TACs within the distance of <tac>. */
static void tac_mask(const struct hm_pool *p, int64_t tac, uint64_t mask[PCI_WORDS])
{
    memset(mask, 0, PCI_WORDS * sizeof(uint64_t));
    if (tac >= 0 && 2 * (uint64_t)p->distance + 1 <= p->nts) {
        int64_t from = tac - (int64_t)p->distance < 0 ? 0 : tac - (int64_t)p->distance;
        for (int64_t t = from; t <= tac + (int64_t)p->distance; t++) {
            const struct tacset *s = tac_find(p, t);
            for (unsigned w = 0; s && s->count && w < PCI_WORDS; w++)
                mask[w] |= s->bits[w];
        }
        return;
    }
    for (size_t k = 0; k < p->nts; k++) {
        const struct tacset *s = &p->ts[k];
        for (unsigned w = 0; s->count && tac_near(p, tac, s->tac) && w < PCI_WORDS; w++)
            mask[w] |= s->bits[w];
    }
}

static void tac_set(struct hm_pool *p, int64_t tac, uint64_t b, bool on)
{
    struct tacset *s = on ? tac_get(p, tac) : tac_find(p, tac);
    if (!s)
        return;
    if (on) {
        s->bits[b / 64] |= 1ull << (b % 64);
        s->count++;
    } else {
        s->bits[b / 64] &= ~(1ull << (b % 64));
        s->count--;
    }
}

/* ---- allocation ------------------------------------------------------------------------- */

static void insert(struct hm_pool *p, size_t slot, struct hm_slice dev, int64_t v, int64_t tac)
{
    struct ent *e = &p->tab[slot];
    if (e->dev != TOMB)
        p->fill++;
    e->dev = hm_xstrndup(dev.ptr, dev.len);
    e->len = (uint32_t)dev.len;
    e->val = v;
    e->tac = p->pci ? tac : -1;
    uint64_t b = (uint64_t)(v - p->lo);
    if (p->pci)
        tac_set(p, tac, b, true);
    else
        p->bits[b / 64] |= 1ull << (b % 64);
    p->used++;
    if (p->fill * 2 > p->cap)
        grow(p);
}

static void remove_ent(struct hm_pool *p, struct ent *e)
{
    uint64_t b = (uint64_t)(e->val - p->lo);
    if (p->pci)
        tac_set(p, e->tac, b, false);
    else
        p->bits[b / 64] &= ~(1ull << (b % 64));
    p->used--;
    free(e->dev);
    e->dev = TOMB;
}

static bool in_use(const struct hm_pool *p, int64_t v)
{
    uint64_t b = (uint64_t)(v - p->lo);
    return p->bits[b / 64] >> (b % 64) & 1;
}

/* Next free bit of <bits> (<size> bits) at or after the cursor, wrapping once; -1 if none. */
static int64_t next_free(const uint64_t *bits, uint64_t size, uint64_t from)
{
    uint64_t b = from % size, words = (size + 63) / 64;
    for (uint64_t n = 0; n <= words; n++) {
        uint64_t w = bits[b / 64] | ((1ull << (b % 64)) - 1); /* bits below b: skip */
        if (w != ~0ull) {
            uint64_t k = (b / 64) * 64 + (uint64_t)__builtin_ctzll(~w);
            if (k < size)
                return (int64_t)k;
        }
        b = (b / 64 + 1) * 64;
        if (b >= size)
            b = 0;
    }
    return -1;
}

int hm_pool_get_tac(struct hm_pool *p, struct hm_slice dev, int64_t tac, int64_t *val,
                    bool *fresh)
{
    int r = 0;
    bool found;
    *fresh = false;
    if (tac < -1 || tac > HM_PCI_MAX_TAC)
        tac = -1;
    pthread_mutex_lock(&p->mu);
    size_t slot = probe(p, dev, &found);
    uint64_t size = (uint64_t)(p->hi - p->lo) + 1;
    uint64_t mask[PCI_WORDS];
    if (found) {
        struct ent *e = &p->tab[slot];
        *val = e->val;
        if (!p->pci || e->tac == tac)
            goto out;
        /* the device moved to another TAC: keep its value if the new neighbourhood allows */
        uint64_t b = (uint64_t)(e->val - p->lo);
        tac_set(p, e->tac, b, false);
        tac_mask(p, tac, mask);
        if (!(mask[b / 64] >> (b % 64) & 1)) {
            tac_set(p, tac, b, true);
            e->tac = tac;
            *fresh = true;
            goto out;
        }
        tac_set(p, e->tac, b, true);
        remove_ent(p, e);
        slot = probe(p, dev, &found);
    }
    int64_t k;
    if (p->pci) {
        tac_mask(p, tac, mask);
        k = next_free(mask, size, p->next);
    } else {
        k = p->used >= size ? -1 : next_free(p->bits, size, p->next);
    }
    if (k < 0) {
        p->exhausted++;
        r = -ENOSPC;
        goto out;
    }
    *val = p->lo + k;
    p->next = (uint64_t)k + 1;
    insert(p, slot, dev, *val, tac);
    *fresh = true;
out:
    pthread_mutex_unlock(&p->mu);
    return r;
}

int hm_pool_get(struct hm_pool *p, struct hm_slice dev, int64_t *val, bool *fresh)
{
    return hm_pool_get_tac(p, dev, -1, val, fresh);
}

int hm_pool_lookup_tac(struct hm_pool *p, struct hm_slice dev, int64_t *val, int64_t *tac)
{
    bool found;
    pthread_mutex_lock(&p->mu);
    size_t slot = probe(p, dev, &found);
    if (found) {
        *val = p->tab[slot].val;
        *tac = p->tab[slot].tac;
    }
    pthread_mutex_unlock(&p->mu);
    return found ? 0 : -ENOENT;
}

int hm_pool_lookup(struct hm_pool *p, struct hm_slice dev, int64_t *val)
{
    int64_t tac;
    return hm_pool_lookup_tac(p, dev, val, &tac);
}

int hm_pool_restore_tac(struct hm_pool *p, struct hm_slice dev, int64_t tac, int64_t val)
{
    int r = 0;
    bool found;
    if (tac < -1 || tac > HM_PCI_MAX_TAC)
        tac = -1;
    pthread_mutex_lock(&p->mu);
    if (val < p->lo || val > p->hi) {
        r = -ERANGE;
        goto out;
    }
    size_t slot = probe(p, dev, &found);
    if (found) {
        r = p->tab[slot].val == val && (!p->pci || p->tab[slot].tac == tac) ? 0 : -EEXIST;
        goto out;
    }
    uint64_t b = (uint64_t)(val - p->lo);
    const struct tacset *t = p->pci ? tac_find(p, tac) : NULL;
    if (p->pci ? t && (t->bits[b / 64] >> (b % 64) & 1) : in_use(p, val)) {
        r = -EEXIST;
        goto out;
    }
    insert(p, slot, dev, val, tac);
out:
    pthread_mutex_unlock(&p->mu);
    return r;
}

int hm_pool_restore(struct hm_pool *p, struct hm_slice dev, int64_t val)
{
    return hm_pool_restore_tac(p, dev, -1, val);
}

int hm_pool_release(struct hm_pool *p, struct hm_slice dev)
{
    bool found;
    pthread_mutex_lock(&p->mu);
    size_t slot = probe(p, dev, &found);
    if (found)
        remove_ent(p, &p->tab[slot]);
    pthread_mutex_unlock(&p->mu);
    return found ? 0 : -ENOENT;
}

int hm_pool_resize(struct hm_pool *p, int64_t lo, int64_t hi)
{
    if (!range_ok(lo, hi) || (p->pci && (uint64_t)(hi - lo) >= HM_PCI_POOL_MAX_SIZE))
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->cap; i++) {
        struct ent *e = &p->tab[i];
        if (e->dev && e->dev != TOMB && (e->val < lo || e->val > hi)) {
            r = -EBUSY;
            goto out;
        }
    }
    uint64_t *bits = hm_xcalloc((size_t)(hi - lo) / 64 + 1, sizeof(uint64_t));
    for (size_t k = 0; k < p->nts; k++)
        memset(p->ts[k].bits, 0, sizeof(p->ts[k].bits));
    for (size_t i = 0; i < p->cap; i++) {
        struct ent *e = &p->tab[i];
        if (e->dev && e->dev != TOMB) {
            uint64_t b = (uint64_t)(e->val - lo);
            if (p->pci) {
                struct tacset *t = tac_find(p, e->tac);
                t->bits[b / 64] |= 1ull << (b % 64);
            } else {
                bits[b / 64] |= 1ull << (b % 64);
            }
        }
    }
    free(p->bits);
    p->bits = bits;
    p->lo = lo;
    p->hi = hi;
    p->next = 0;
out:
    pthread_mutex_unlock(&p->mu);
    return r;
}

int hm_pool_set_distance(struct hm_pool *p, uint32_t distance)
{
    if (!p->pci || distance > HM_PCI_MAX_DISTANCE)
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&p->mu);
    uint32_t old = p->distance;
    p->distance = distance;
    /* every pair of TACs now within the distance must share no value (control path:
     * O(TACs^2) cheap comparisons, then the bitmaps of the pairs that are near) */
    for (size_t i = 0; i < p->nts && r == 0 && distance > old; i++)
        for (size_t k = i + 1; k < p->nts && r == 0; k++) {
            const struct tacset *x = &p->ts[i], *y = &p->ts[k];
            if (!x->count || !y->count || !tac_near(p, x->tac, y->tac))
                continue;
            for (unsigned w = 0; w < PCI_WORDS && r == 0; w++)
                if (x->bits[w] & y->bits[w])
                    r = -EBUSY;
        }
    if (r < 0)
        p->distance = old;
    pthread_mutex_unlock(&p->mu);
    return r;
}

void hm_pool_foreach(struct hm_pool *p, hm_pool_each_fn fn, void *arg)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->cap; i++) {
        struct ent *e = &p->tab[i];
        if (e->dev && e->dev != TOMB)
            fn(arg, hm_slice(e->dev, e->len), e->val, e->tac);
    }
    pthread_mutex_unlock(&p->mu);
}

void hm_pool_stats(struct hm_pool *p, struct hm_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->lo = p->lo;
    out->hi = p->hi;
    out->size = (uint64_t)(p->hi - p->lo) + 1;
    out->used = p->used;
    out->exhausted = p->exhausted;
    out->pci = p->pci;
    out->distance = p->distance;
    out->tacs = 0;
    for (size_t k = 0; k < p->nts; k++)
        out->tacs += p->ts[k].count > 0;
    pthread_mutex_unlock(&p->mu);
}
