#include <stddef.h>
#include <string.h>

#include "core/bug.h"

_Atomic unsigned long hm_bug_count;

static void oom(size_t n)
{
    fprintf(stderr, "level=crit msg=\"out of memory\" bytes=%zu\n", n);
    abort();
}

void *hm_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *hm_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        oom(n * m);
    return p;
}

void *hm_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *hm_xstrndup(const char *s, size_t n)
{
    char *p = hm_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
