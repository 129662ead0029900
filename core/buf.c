#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>

void hm_buf__grow(struct hm_buf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < need)
        cap *= 2;
    b->base = hm_xrealloc(b->base, cap);
    b->cap = cap;
}

void hm_buf_vprintf(struct hm_buf *b, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(b->base ? b->base + b->len : NULL, b->cap - b->len, fmt, aq);
    va_end(aq);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        hm_buf_reserve(b, (size_t)n + 1);
        n = vsnprintf(b->base + b->len, b->cap - b->len, fmt, ap);
        if (n < 0)
            return;
    }
    b->len += (size_t)n;
}

void hm_buf_printf(struct hm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hm_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void hm_buf_append_u64(struct hm_buf *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hm_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void hm_buf_free(struct hm_buf *b)
{
    free(b->base);
    *b = (struct hm_buf){0};
}
