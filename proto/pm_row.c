/* Compact PM storage rows; see proto/pm_row.h. */
#include "proto/pm_row.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/bug.h"
#include "core/err.h"
#include "storage/store-t.h" /* HM_STORE_MAX_KEY */

static inline uint64_t ld64le(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v)); /* one load: this is the schema hash's inner loop */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static void st64le(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* One multiply per 8-byte word (rows are short; this is on the ingestion path), a full
 * avalanche at the end. Not for adversarial keys: a collision only merges two schemas'
 * rows under one key, which needs a deliberate 64-bit collision from the uploader. */
uint64_t hm_pm_schema_hash(const char *names, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0x100000001b3ull);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        h ^= ld64le(names + i);
        h = (h << 29 | h >> 35) * 0x9e3779b97f4a7c15ull;
    }
    uint64_t t = 0;
    for (size_t k = len; k > i; k--)
        t = (t << 8) | (unsigned char)names[k - 1];
    h = mix(h ^ t ^ 0x5555555555555555ull);
    return h ? h : 1;
}

void hm_pm_schema_key(char out[HM_PM_SCHEMA_KEY_LEN + 1], uint64_t schema)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "pm/s/", 5);
    for (int i = 0; i < 16; i++)
        out[5 + i] = hex[(schema >> (60 - 4 * i)) & 0xf];
    out[HM_PM_SCHEMA_KEY_LEN] = '\0';
}

int hm_pm_schema_index(struct hm_slice names, struct hm_slice counter)
{
    const char *s = names.ptr, *e = names.ptr + names.len;
    for (int i = 0; s < e; i++) {
        const char *z = memchr(s, '\0', (size_t)(e - s));
        size_t l = z ? (size_t)(z - s) : (size_t)(e - s);
        if (l == counter.len && memcmp(s, counter.ptr, l) == 0)
            return i;
        if (!z)
            break;
        s = z + 1;
    }
    return -ENOENT;
}

static void be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

int hm_pm_row_key(char *out, size_t cap, struct hm_slice object, uint64_t start_ms,
                  struct hm_slice info_id, uint64_t schema)
{
    size_t need = object.len + 1 + 8 + info_id.len + 1 + 8;
    if (need > cap)
        return -E2BIG;
    char *p = out;
    if (object.len)
        memcpy(p, object.ptr, object.len);
    p += object.len;
    *p++ = '\0';
    be64(p, start_ms);
    p += 8;
    if (info_id.len)
        memcpy(p, info_id.ptr, info_id.len);
    p += info_id.len;
    *p++ = '\0';
    be64(p, schema);
    return (int)need;
}

void hm_pm_row_hdr(char *out, bool suspect, uint32_t gran_s, uint64_t schema, uint16_t n)
{
    out[0] = HM_PM_ROW_VERSION;
    out[1] = suspect ? 1 : 0;
    for (int i = 0; i < 4; i++)
        out[2 + i] = (char)((gran_s >> (8 * i)) & 0xff);
    st64le(out + 6, schema);
    out[14] = (char)(n & 0xff);
    out[15] = (char)(n >> 8);
}

size_t hm_pm_row_put_int(char *out, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t k = 0;
    out[k++] = HM_PM_ROW_INT;
    while (z >= 0x80) {
        out[k++] = (char)(z | 0x80);
        z >>= 7;
    }
    out[k++] = (char)z;
    return k;
}

size_t hm_pm_row_put_real(char *out, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    out[0] = HM_PM_ROW_REAL;
    st64le(out + 1, u);
    return 9;
}

size_t hm_pm_row_put_nan(char *out)
{
    out[0] = HM_PM_ROW_NAN;
    return 1;
}

/* Reads the value at *<p> (< <e>); advances *<p>. 0 or HM_ECORRUPT. */
static int next_value(const char **p, const char *e, enum hm_pm_row_tag *tag, int64_t *i,
                      double *d)
{
    const char *s = *p;
    if (s >= e)
        return HM_ECORRUPT;
    unsigned char t = (unsigned char)*s++;
    if (t == HM_PM_ROW_NAN) {
        *tag = HM_PM_ROW_NAN;
        *d = NAN;
    } else if (t == HM_PM_ROW_INT) {
        uint64_t z = 0;
        for (int sh = 0;; sh += 7) {
            if (s >= e || sh > 63)
                return HM_ECORRUPT;
            unsigned char b = (unsigned char)*s++;
            z |= (uint64_t)(b & 0x7f) << sh;
            if (!(b & 0x80))
                break;
        }
        *tag = HM_PM_ROW_INT;
        *i = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    } else if (t == HM_PM_ROW_REAL) {
        if (e - s < 8)
            return HM_ECORRUPT;
        uint64_t u = ld64le(s);
        memcpy(d, &u, 8);
        s += 8;
        *tag = HM_PM_ROW_REAL;
    } else {
        return HM_ECORRUPT;
    }
    *p = s;
    return 0;
}

int hm_pm_row_decode(struct hm_slice in, struct hm_pm_row *out)
{
    if (in.len < 1)
        return HM_ECORRUPT;
    if ((unsigned char)in.ptr[0] != HM_PM_ROW_VERSION)
        return HM_EVERSION;
    if (in.len < HM_PM_ROW_HDR || ((unsigned char)in.ptr[1] & ~1u))
        return HM_ECORRUPT;
    const unsigned char *u = (const unsigned char *)in.ptr;
    out->suspect = u[1] & 1;
    out->gran_s = (uint32_t)u[2] | (uint32_t)u[3] << 8 | (uint32_t)u[4] << 16 |
                  (uint32_t)u[5] << 24;
    out->schema = ld64le(in.ptr + 6);
    out->n = (uint16_t)(u[14] | u[15] << 8);
    out->vals = hm_slice(in.ptr + HM_PM_ROW_HDR, in.len - HM_PM_ROW_HDR);
    const char *p = out->vals.ptr, *e = p + out->vals.len;
    for (unsigned k = 0; k < out->n; k++) {
        enum hm_pm_row_tag t;
        int64_t i;
        double d;
        if (next_value(&p, e, &t, &i, &d) < 0)
            return HM_ECORRUPT;
    }
    return p == e ? 0 : HM_ECORRUPT;
}

int hm_pm_row_value(const struct hm_pm_row *r, unsigned idx, enum hm_pm_row_tag *tag,
                    int64_t *i, double *d)
{
    if (idx >= r->n)
        return -ENOENT;
    const char *p = r->vals.ptr, *e = p + r->vals.len;
    for (unsigned k = 0;; k++) {
        int rc = next_value(&p, e, tag, i, d);
        if (rc < 0)
            return rc;
        if (k == idx)
            return 0;
    }
}

/* ---- per-file packs (layout 3) --------------------------------------------------------- */

int hm_pm_pack_key(char *out, size_t cap, struct hm_slice who, uint64_t start_ms,
                   uint64_t file_id, uint16_t part)
{
    size_t need = who.len + HM_PM_PACK_KEY_TAIL;
    if (need > cap || need > HM_STORE_MAX_KEY)
        return -E2BIG;
    char *p = out;
    if (who.len)
        memcpy(p, who.ptr, who.len);
    p += who.len;
    *p++ = '\0';
    be64(p, start_ms);
    be64(p + 8, file_id);
    p[16] = (char)(part >> 8);
    p[17] = (char)(part & 0xff);
    return (int)need;
}

size_t hm_pm_pack_row_hdr_len(unsigned flags, size_t objlen, size_t infolen)
{
    return 1 + (flags & HM_PM_PACK_F_OBJ ? 2 + objlen : 0) +
           (flags & HM_PM_PACK_F_INFO ? 2 + infolen + 8 : 0) + (flags & HM_PM_PACK_F_GRAN ? 4 : 0) +
           2;
}

static char *put16le(char *p, size_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    return p + 2;
}

size_t hm_pm_pack_row_hdr(char *out, unsigned flags, struct hm_slice obj,
                          struct hm_slice info_id, uint64_t schema, uint32_t gran_s,
                          uint16_t n)
{
    char *p = out;
    *p++ = (char)flags;
    if (flags & HM_PM_PACK_F_OBJ) {
        p = put16le(p, obj.len);
        if (obj.len)
            memcpy(p, obj.ptr, obj.len);
        p += obj.len;
    }
    if (flags & HM_PM_PACK_F_INFO) {
        p = put16le(p, info_id.len);
        if (info_id.len)
            memcpy(p, info_id.ptr, info_id.len);
        p += info_id.len;
        st64le(p, schema);
        p += 8;
    }
    if (flags & HM_PM_PACK_F_GRAN) {
        for (int i = 0; i < 4; i++)
            *p++ = (char)((gran_s >> (8 * i)) & 0xff);
    }
    p = put16le(p, n);
    return (size_t)(p - out);
}

void hm_pm_pack_reset(struct hm_pm_pack *pk)
{
    pk->len = 0;
}

int hm_pm_pack_add(struct hm_pm_pack *pk, const struct hm_pm_pack_row *row)
{
    const struct hm_pm_row *r = &row->r;
    if (row->obj.len > 65535 || row->info_id.len > 65535 ||
        1 + hm_pm_pack_row_hdr_len(HM_PM_PACK_F_ALL, row->obj.len, row->info_id.len) +
                r->vals.len >
            HM_STORE_MAX_VAL)
        return -E2BIG;
    unsigned f = r->suspect ? HM_PM_PACK_F_SUSPECT : 0;
    if (!pk->len) {
        f |= HM_PM_PACK_F_ALL;
    } else {
        if (!hm_slice_eq(row->obj, hm_slice(pk->val + pk->obj_off, pk->obj_len)))
            f |= HM_PM_PACK_F_OBJ;
        if (r->schema != pk->schema ||
            !hm_slice_eq(row->info_id, hm_slice(pk->val + pk->info_off, pk->info_len)))
            f |= HM_PM_PACK_F_INFO;
        if (r->gran_s != pk->gran_s)
            f |= HM_PM_PACK_F_GRAN;
    }
    size_t at = pk->len ? pk->len : 1;
    size_t hl = hm_pm_pack_row_hdr_len(f, row->obj.len, row->info_id.len);
    if (at + hl + r->vals.len > HM_STORE_MAX_VAL)
        return -ENOSPC; /* not empty here: an empty pack takes the row (checked above) */
    pk->val[0] = HM_PM_PACK_VERSION;
    hm_pm_pack_row_hdr(pk->val + at, f, row->obj, row->info_id, r->schema, r->gran_s, r->n);
    /* where hm_pm_pack_row_hdr put them: flags, [LE16 len, obj], [LE16 len, info_id, ...] */
    size_t p = at + 1;
    if (f & HM_PM_PACK_F_OBJ) {
        pk->obj_off = p + 2;
        pk->obj_len = row->obj.len;
        p += 2 + row->obj.len;
    }
    if (f & HM_PM_PACK_F_INFO) {
        pk->info_off = p + 2;
        pk->info_len = row->info_id.len;
        pk->schema = r->schema;
    }
    pk->gran_s = r->gran_s;
    if (r->vals.len)
        memcpy(pk->val + at + hl, r->vals.ptr, r->vals.len);
    pk->len = at + hl + r->vals.len;
    return 0;
}

int hm_pm_pack_begin(struct hm_slice val, struct hm_pm_pack_it *it)
{
    if (val.len < 1)
        return HM_ECORRUPT;
    if ((unsigned char)val.ptr[0] != HM_PM_PACK_VERSION)
        return HM_EVERSION;
    *it = (struct hm_pm_pack_it){.p = val.ptr + 1, .e = val.ptr + val.len, .first = true};
    return val.len > 1 ? 0 : HM_ECORRUPT; /* a pack holds at least one row */
}

/* LE16 length + that many bytes at *<p> (< e): the slice, or false. */
static bool get_str16(const char **p, const char *e, struct hm_slice *out)
{
    const unsigned char *u = (const unsigned char *)*p;
    if (e - *p < 2)
        return false;
    size_t l = (size_t)u[0] | (size_t)u[1] << 8;
    if ((size_t)(e - *p - 2) < l)
        return false;
    *out = hm_slice(*p + 2, l);
    *p += 2 + l;
    return true;
}

int hm_pm_pack_next(struct hm_pm_pack_it *it, struct hm_pm_pack_row *out)
{
    const char *p = it->p, *e = it->e;
    if (p >= e)
        return 0;
    unsigned f = (unsigned char)*p++;
    if (f & ~(HM_PM_PACK_F_SUSPECT | HM_PM_PACK_F_ALL))
        return HM_ECORRUPT;
    if (it->first && (f & HM_PM_PACK_F_ALL) != HM_PM_PACK_F_ALL)
        return HM_ECORRUPT;
    struct hm_pm_pack_row *c = &it->cur;
    if ((f & HM_PM_PACK_F_OBJ) && !get_str16(&p, e, &c->obj))
        return HM_ECORRUPT;
    if (f & HM_PM_PACK_F_INFO) {
        if (!get_str16(&p, e, &c->info_id) || e - p < 8)
            return HM_ECORRUPT;
        c->r.schema = ld64le(p);
        p += 8;
    }
    if (f & HM_PM_PACK_F_GRAN) {
        if (e - p < 4)
            return HM_ECORRUPT;
        const unsigned char *u = (const unsigned char *)p;
        c->r.gran_s = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
                      (uint32_t)u[3] << 24;
        p += 4;
    }
    if (e - p < 2)
        return HM_ECORRUPT;
    c->r.n = (uint16_t)((unsigned char)p[0] | (unsigned char)p[1] << 8);
    p += 2;
    c->r.suspect = (f & HM_PM_PACK_F_SUSPECT) != 0;
    const char *vs = p;
    for (unsigned k = 0; k < c->r.n; k++) {
        enum hm_pm_row_tag t;
        int64_t i;
        double d;
        if (next_value(&p, e, &t, &i, &d) < 0)
            return HM_ECORRUPT;
    }
    c->r.vals = hm_slice(vs, (size_t)(p - vs));
    it->p = p;
    it->first = false;
    *out = *c;
    return 1;
}
