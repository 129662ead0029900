#ifndef HM_SLICE_H
#define HM_SLICE_H
/*
 * A slice is a window {ptr, len} into memory owned by someone else (a receive buffer, a
 * session arena, a static string). It never owns its bytes; the owner's lifetime bounds it.
 * A zero slice {NULL, 0} is the empty value.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct hm_slice {
    const char *ptr;
    size_t len;
};

#define HM_SLICE_LIT(s) ((struct hm_slice){(s), sizeof(s) - 1})
#define HM_SLICE_FMT "%.*s"
#define HM_SLICE_ARG(s) (int)(s).len, (s).ptr

static inline struct hm_slice hm_slice(const char *p, size_t n)
{
    return (struct hm_slice){p, n};
}

static inline struct hm_slice hm_slice_cstr(const char *s)
{
    return (struct hm_slice){s, s ? strlen(s) : 0};
}

static inline bool hm_slice_eq(struct hm_slice a, struct hm_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool hm_slice_eq_lit_nocase(struct hm_slice a, const char *lit, size_t n)
{
    return a.len == n && strncasecmp(a.ptr, lit, n) == 0;
}
#define hm_slice_ieq(s, lit) hm_slice_eq_lit_nocase((s), (lit), sizeof(lit) - 1)
#define hm_slice_eq_lit(s, lit)                                                              \
    ((s).len == sizeof(lit) - 1 && memcmp((s).ptr, (lit), sizeof(lit) - 1) == 0)

#endif
