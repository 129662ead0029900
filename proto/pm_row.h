#ifndef HM_PM_ROW_H
#define HM_PM_ROW_H
/*
 * Compact PM storage rows (docs/pm.md, "Storage layout"): one row per measValue (CMCC: per
 * Pm element), the counter names kept once per distinct name list (a "schema") in
 * HM_DB_FILES. Since data layout 3 the pipeline writes the rows of a file inside ONE
 * per-file value ("pack", below); the standalone layout-2 row (key and header below) is
 * no longer written but its value codec is what a pack row's values use. Pure codec: no
 * allocation, no I/O, any thread.
 *
 *   layout 2 (read by nothing any more):
 *   HM_DB_PM    key   object '\0' BE64(period_start_ms) info_id '\0' BE64(schema)
 *               value u8 version (2) | u8 flags (bit 0 suspect) | LE32 gran_s |
 *                     LE64 schema | LE16 n | n values
 *   values:     u8 tag 0 (NIL / not a number) | tag 1 + zigzag LEB128 int64 |
 *               tag 2 + LE64 IEEE double
 *   HM_DB_FILES key   "pm/s/" 16 lowercase hex digits of the schema hash
 *               value u8 version (1) | the n counter names, each followed by '\0'
 *
 * The schema hash is a fixed 64-bit hash of the names region (stable across builds and
 * hosts: little-endian word loads), never 0. The i-th value of a row belongs to the i-th
 * name of its schema.
 *
 * Errors: -E2BIG (key over <cap> or HM_STORE_MAX_KEY), HM_ECORRUPT (truncated or trailing
 * bytes, bad tag, count mismatch), HM_EVERSION (unknown version byte), -ENOENT (no such
 * counter / index).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h> /* before core/bug.h poisons names it declares */

#include "core/bug.h" /* HM_MUST_CHECK */
#include "core/slice.h"
#include "storage/store-t.h" /* HM_STORE_MAX_VAL */

#define HM_PM_ROW_VERSION 2
#define HM_PM_ROW_HDR 16      /* bytes before the first value */
#define HM_PM_ROW_VAL_MAX 11  /* most bytes one encoded value takes */
#define HM_PM_ROW_MAX_N 65535 /* values per row */
#define HM_PM_SCHEMA_KEY_LEN 21 /* "pm/s/" + 16 hex */

enum hm_pm_row_tag { HM_PM_ROW_NAN = 0, HM_PM_ROW_INT = 1, HM_PM_ROW_REAL = 2 };

struct hm_pm_row {
    bool suspect;
    uint32_t gran_s;
    uint64_t schema;
    uint16_t n;
    struct hm_slice vals; /* the encoded values (points into the decoded slice) */
};

/* The schema hash of a names region (names each followed by '\0'); never 0. */
uint64_t hm_pm_schema_hash(const char *names, size_t len);

/* Writes "pm/s/<16 hex>" (HM_PM_SCHEMA_KEY_LEN bytes, plus a NUL) into <out>. */
void hm_pm_schema_key(char out[HM_PM_SCHEMA_KEY_LEN + 1], uint64_t schema);

/* Index of <counter> in the names region <names> (as stored, without the version byte),
 * or -ENOENT. A name present twice yields its first index. */
int hm_pm_schema_index(struct hm_slice names, struct hm_slice counter);

/* Writes the row key; returns its length or -E2BIG. */
int hm_pm_row_key(char *out, size_t cap, struct hm_slice object, uint64_t start_ms,
                  struct hm_slice info_id, uint64_t schema);

/* Writes the HM_PM_ROW_HDR-byte header into <out>. */
void hm_pm_row_hdr(char *out, bool suspect, uint32_t gran_s, uint64_t schema, uint16_t n);

/* Append one value at <out> (room for HM_PM_ROW_VAL_MAX bytes); return the bytes written. */
size_t hm_pm_row_put_int(char *out, int64_t v);
size_t hm_pm_row_put_real(char *out, double v);
size_t hm_pm_row_put_nan(char *out);

/* Decodes and validates a row value (walks every value). 0, HM_ECORRUPT, HM_EVERSION. On 0
 * <out>'s slice points into <in>. */
int hm_pm_row_decode(struct hm_slice in, struct hm_pm_row *out);

/* The value at <idx> of a decoded row: 0 and *<tag>, *<i> (INT) or *<d> (REAL; NAN for
 * tag NAN); -ENOENT if idx >= n; HM_ECORRUPT. */
int hm_pm_row_value(const struct hm_pm_row *r, unsigned idx, enum hm_pm_row_tag *tag,
                    int64_t *i, double *d);

/*
 * Per-file values (layout 3, docs/pm.md "Storage layout"): the rows of one file that share a
 * sender ("who": fileSender localDn, else managedElement localDn) and a period go into ONE
 * HM_DB_PM value, a "pack", cut into parts where a part would exceed HM_STORE_MAX_VAL:
 *
 *   key   who '\0' BE64(period_start_ms) BE64(file_id) BE16(part)
 *   value u8 version (3) | rows
 *   row   u8 flags | [LE16 len, obj] (F_OBJ) | [LE16 len, info_id, LE64 schema] (F_INFO) |
 *         [LE32 gran_s] (F_GRAN) | LE16 n | n values (encoded as in a layout-2 row)
 *
 * flags: bit 0 suspect, then F_OBJ / F_INFO / F_GRAN; the first row of a value carries all
 * three, a later row without one keeps the previous row's. <obj> is the measObjLdn (the
 * series API's object is "<who>/<obj>", or <obj> alone when who is empty). file_id names the
 * file (a hash of its spool key), so two files of one sender and period both stay, and a
 * re-ingestion of the same file writes the same keys (idempotent).
 */
#define HM_PM_PACK_VERSION 3
#define HM_PM_PACK_KEY_TAIL 19 /* '\0' + BE64 + BE64 + BE16 after who */
#define HM_PM_PACK_F_SUSPECT 1u
#define HM_PM_PACK_F_OBJ 2u
#define HM_PM_PACK_F_INFO 4u
#define HM_PM_PACK_F_GRAN 8u
#define HM_PM_PACK_F_ALL (HM_PM_PACK_F_OBJ | HM_PM_PACK_F_INFO | HM_PM_PACK_F_GRAN)

struct hm_pm_pack_row {
    struct hm_pm_row r;           /* suspect, gran_s, schema, n, vals */
    struct hm_slice obj, info_id; /* point into the decoded value */
};

struct hm_pm_pack_it {
    const char *p, *e;
    struct hm_pm_pack_row cur; /* the state rows inherit */
    bool first;
};

/* Writes the pack key; returns its length or -E2BIG (over <cap> or HM_STORE_MAX_KEY). */
int hm_pm_pack_key(char *out, size_t cap, struct hm_slice who, uint64_t start_ms,
                   uint64_t file_id, uint16_t part);

/* Bytes a row header with <flags> takes (flags byte to the count included). */
size_t hm_pm_pack_row_hdr_len(unsigned flags, size_t objlen, size_t infolen);

/* Writes a row header (hm_pm_pack_row_hdr_len bytes) at <out>; the n values follow.
 * <obj>/<info_id>+<schema>/<gran_s> are written only where <flags> has F_OBJ/F_INFO/F_GRAN;
 * lengths must be at most 65535. Returns the bytes written. */
size_t hm_pm_pack_row_hdr(char *out, unsigned flags, struct hm_slice obj,
                          struct hm_slice info_id, uint64_t schema, uint32_t gran_s,
                          uint16_t n);

/*
 * Pack builder: the one writer of pack values (the ingestion pipeline and the layout-2
 * migration). Embeddable and caller-owned, no allocation: the value is built inside the
 * struct, never longer than HM_STORE_MAX_VAL. A zeroed struct is an empty pack. It decides
 * each row's flags itself (a row states only the object, measInfoId + schema, granularity
 * that differ from the previous row of the value; the first row states all three) and cuts
 * where the next row would pass HM_STORE_MAX_VAL: the caller stores the value under the
 * next part's key (hm_pm_pack_key) and starts the next part with hm_pm_pack_reset().
 * Invariant: <len> is 0 (empty) or 1 + the rows appended; the previous row's object and
 * measInfoId are not copied, they are read back from where they were written in <val>.
 */
struct hm_pm_pack {
    size_t len;                /* bytes of <val> in use; 0: no row yet */
    size_t obj_off, obj_len;   /* the previous row's object, inside <val> */
    size_t info_off, info_len; /* its measInfoId, inside <val> */
    uint64_t schema;
    uint32_t gran_s;
    char val[HM_STORE_MAX_VAL];
};

/* Empties <pk> for the next part (or the next key). */
void hm_pm_pack_reset(struct hm_pm_pack *pk);

static inline bool hm_pm_pack_empty(const struct hm_pm_pack *pk)
{
    return pk->len == 0;
}

/* The value built so far (empty slice: no row). Points into <pk>: valid until the next
 * hm_pm_pack_add() or hm_pm_pack_reset(); the caller copies it (hm_store_batch_put does). */
static inline struct hm_slice hm_pm_pack_value(const struct hm_pm_pack *pk)
{
    return hm_slice(pk->val, pk->len);
}

/*
 * Appends <row> (<row>->r: suspect, gran_s, schema, n and the n encoded values in vals,
 * which are copied as they are, not walked: the caller vouches for them; obj, info_id),
 * copying what it needs: nothing of <row> is referenced afterwards.
 * Returns 0 (appended), -ENOSPC (the value is full: nothing appended, the pack holds at
 * least one row; store hm_pm_pack_value(), hm_pm_pack_reset() and add the row again, it
 * then fits) or -E2BIG (the row alone, with a full header, would pass HM_STORE_MAX_VAL, or
 * obj / info_id is over 65535 bytes: it can never be a pack row; <pk> is unchanged).
 */
HM_MUST_CHECK int hm_pm_pack_add(struct hm_pm_pack *pk, const struct hm_pm_pack_row *row);

/* Starts decoding a pack value: 0, HM_EVERSION (not layout 3), HM_ECORRUPT. */
int hm_pm_pack_begin(struct hm_slice val, struct hm_pm_pack_it *it);

/* The next row (its values validated): 1 and *<out>, 0 at the end, HM_ECORRUPT. Slices
 * point into the value given to hm_pm_pack_begin(). */
int hm_pm_pack_next(struct hm_pm_pack_it *it, struct hm_pm_pack_row *out);

#endif
