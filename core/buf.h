#ifndef HM_BUF_H
#define HM_BUF_H
/*
 * struct hm_buf: a growable byte buffer for building output (HTTP responses, SOAP
 * envelopes, JSON). Zero-initialised is a valid empty buffer. The bytes at <base> are owned
 * by the buffer: valid until the next append (which may move them) or hm_buf_free().
 * Growth uses hm_xrealloc (aborts on OOM, see core/err.h); hot paths keep buffers and
 * hm_buf_reset() them instead of freeing, so steady state allocates nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include "core/bug.h"
#include "core/slice.h"

struct hm_buf {
    char *base;
    size_t len;
    size_t cap;
};

void hm_buf__grow(struct hm_buf *b, size_t need);

static inline void hm_buf_reserve(struct hm_buf *b, size_t extra)
{
    if (HM_UNLIKELY(b->cap - b->len < extra))
        hm_buf__grow(b, extra);
}

static inline void hm_buf_append(struct hm_buf *b, const void *p, size_t n)
{
    hm_buf_reserve(b, n);
    if (n)
        memcpy(b->base + b->len, p, n);
    b->len += n;
}

static inline void hm_buf_append_slice(struct hm_buf *b, struct hm_slice s)
{
    hm_buf_append(b, s.ptr, s.len);
}

#define hm_buf_append_lit(b, lit) hm_buf_append((b), (lit), sizeof(lit) - 1)

static inline void hm_buf_append_str(struct hm_buf *b, const char *s)
{
    hm_buf_append(b, s, strlen(s));
}

/* Appends printf-formatted text. */
void hm_buf_printf(struct hm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hm_buf_vprintf(struct hm_buf *b, const char *fmt, va_list ap);

/* Appends <v> in decimal. */
void hm_buf_append_u64(struct hm_buf *b, unsigned long long v);

/* Empties the buffer, keeping its memory. */
static inline void hm_buf_reset(struct hm_buf *b)
{
    b->len = 0;
}

/* Releases the memory; <b> is empty and reusable afterwards. */
void hm_buf_free(struct hm_buf *b);

static inline struct hm_slice hm_buf_slice(const struct hm_buf *b)
{
    return hm_slice(b->base, b->len);
}

#endif
