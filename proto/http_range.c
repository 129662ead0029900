#include "proto/http_range.h"

#include <errno.h>
#include <stdbool.h>
#include <strings.h>

/* Digits at [*i, n) into *<out>; false when there are none or the value overflows. */
static bool num(const char *p, size_t n, size_t *i, uint64_t *out)
{
    size_t s = *i;
    uint64_t v = 0;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9') {
        uint64_t d = (uint64_t)(p[*i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        (*i)++;
    }
    *out = v;
    return *i > s;
}

static void ows(const char *p, size_t n, size_t *i)
{
    while (*i < n && (p[*i] == ' ' || p[*i] == '\t'))
        (*i)++;
}

int hm_http_range_parse(struct hm_slice v, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *p = v.ptr;
    size_t n = v.len, i = 0;
    if (n < 7 || strncasecmp(p, "bytes=", 6) != 0)
        return 0;
    i = 6;
    ows(p, n, &i);
    uint64_t a = 0, b = 0;
    bool suffix = false, open_end = false;
    if (i < n && p[i] == '-') {
        i++;
        if (!num(p, n, &i, &b))
            return 0;
        suffix = true;
    } else {
        if (!num(p, n, &i, &a) || i >= n || p[i] != '-')
            return 0;
        i++;
        open_end = !num(p, n, &i, &b);
        if (!open_end && b < a)
            return 0;
    }
    ows(p, n, &i);
    if (i != n)
        return 0; /* a second range (',') or trailing garbage: ignore the header */
    if (suffix) {
        if (b == 0 || size == 0)
            return -ERANGE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (a >= size)
        return -ERANGE;
    *first = a;
    *last = open_end || b >= size ? size - 1 : b;
    return 1;
}
