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

void hm_pool_destroy(struct hm_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->cap; i++)
        if (p->tab[i].dev && p->tab[i].dev != TOMB)
            free(p->tab[i].dev);
    free(p->tab);
    free(p->bits);
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

static void insert(struct hm_pool *p, size_t slot, struct hm_slice dev, int64_t v)
{
    struct ent *e = &p->tab[slot];
    if (e->dev != TOMB)
        p->fill++;
    e->dev = hm_xstrndup(dev.ptr, dev.len);
    e->len = (uint32_t)dev.len;
    e->val = v;
    uint64_t b = (uint64_t)(v - p->lo);
    p->bits[b / 64] |= 1ull << (b % 64);
    p->used++;
    if (p->fill * 2 > p->cap)
        grow(p);
}

static bool in_use(const struct hm_pool *p, int64_t v)
{
    uint64_t b = (uint64_t)(v - p->lo);
    return p->bits[b / 64] >> (b % 64) & 1;
}

int hm_pool_get(struct hm_pool *p, struct hm_slice dev, int64_t *val, bool *fresh)
{
    int r = 0;
    bool found;
    *fresh = false;
    pthread_mutex_lock(&p->mu);
    size_t slot = probe(p, dev, &found);
    if (found) {
        *val = p->tab[slot].val;
        goto out;
    }
    uint64_t size = (uint64_t)(p->hi - p->lo) + 1;
    if (p->used >= size) {
        p->exhausted++;
        r = -ENOSPC;
        goto out;
    }
    /* next fit: word by word from the cursor, wrapping once */
    uint64_t b = p->next % size;
    for (;;) {
        uint64_t w = p->bits[b / 64] | ((1ull << (b % 64)) - 1); /* bits below b: skip */
        if (w != ~0ull) {
            uint64_t k = (b / 64) * 64 + (uint64_t)__builtin_ctzll(~w);
            if (k < size) {
                b = k;
                break;
            }
        }
        b = (b / 64 + 1) * 64;
        if (b >= size)
            b = 0;
    }
    *val = p->lo + (int64_t)b;
    p->next = b + 1;
    insert(p, slot, dev, *val);
    *fresh = true;
out:
    pthread_mutex_unlock(&p->mu);
    return r;
}

int hm_pool_lookup(struct hm_pool *p, struct hm_slice dev, int64_t *val)
{
    bool found;
    pthread_mutex_lock(&p->mu);
    size_t slot = probe(p, dev, &found);
    if (found)
        *val = p->tab[slot].val;
    pthread_mutex_unlock(&p->mu);
    return found ? 0 : -ENOENT;
}

int hm_pool_restore(struct hm_pool *p, struct hm_slice dev, int64_t val)
{
    int r = 0;
    bool found;
    pthread_mutex_lock(&p->mu);
    if (val < p->lo || val > p->hi) {
        r = -ERANGE;
        goto out;
    }
    size_t slot = probe(p, dev, &found);
    if (found) {
        r = p->tab[slot].val == val ? 0 : -EEXIST;
        goto out;
    }
    if (in_use(p, val)) {
        r = -EEXIST;
        goto out;
    }
    insert(p, slot, dev, val);
out:
    pthread_mutex_unlock(&p->mu);
    return r;
}

int hm_pool_release(struct hm_pool *p, struct hm_slice dev)
{
    bool found;
    pthread_mutex_lock(&p->mu);
    size_t slot = probe(p, dev, &found);
    if (found) {
        struct ent *e = &p->tab[slot];
        uint64_t b = (uint64_t)(e->val - p->lo);
        p->bits[b / 64] &= ~(1ull << (b % 64));
        p->used--;
        free(e->dev);
        e->dev = TOMB;
    }
    pthread_mutex_unlock(&p->mu);
    return found ? 0 : -ENOENT;
}

int hm_pool_resize(struct hm_pool *p, int64_t lo, int64_t hi)
{
    if (!range_ok(lo, hi))
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
    for (size_t i = 0; i < p->cap; i++) {
        struct ent *e = &p->tab[i];
        if (e->dev && e->dev != TOMB) {
            uint64_t b = (uint64_t)(e->val - lo);
            bits[b / 64] |= 1ull << (b % 64);
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

void hm_pool_stats(struct hm_pool *p, struct hm_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->lo = p->lo;
    out->hi = p->hi;
    out->size = (uint64_t)(p->hi - p->lo) + 1;
    out->used = p->used;
    out->exhausted = p->exhausted;
    pthread_mutex_unlock(&p->mu);
}
