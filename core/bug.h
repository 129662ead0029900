#ifndef HM_BUG_H
#define HM_BUG_H
/*
 * Executable invariants. HM_BUG_ON(cond) aborts with file:line in debug, test and sanitizer
 * builds (HM_BUG_LEVEL 2, the default unless NDEBUG); in release builds (NDEBUG) it counts
 * the violation in hm_bug_count and logs once per call site, and execution continues.
 * HM_BUILD_ASSERT checks layout assumptions at compile time.
 *
 * This header also poisons the unbounded string functions; include it (via a module
 * header) in every .c file of the project.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef HM_BUG_LEVEL
#ifdef NDEBUG
#define HM_BUG_LEVEL 1
#else
#define HM_BUG_LEVEL 2
#endif
#endif

extern _Atomic unsigned long hm_bug_count;

#define HM_LIKELY(x) __builtin_expect(!!(x), 1)
#define HM_UNLIKELY(x) __builtin_expect(!!(x), 0)

#if HM_BUG_LEVEL >= 2
#define HM_BUG_ON(cond)                                                                      \
    do {                                                                                     \
        if (HM_UNLIKELY(cond)) {                                                             \
            fprintf(stderr, "BUG: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                         \
        }                                                                                    \
    } while (0)
#else
#define HM_BUG_ON(cond)                                                                      \
    do {                                                                                     \
        if (HM_UNLIKELY(cond)) {                                                             \
            static _Atomic int hm_bug_once_;                                                 \
            atomic_fetch_add_explicit(&hm_bug_count, 1, memory_order_relaxed);               \
            if (!atomic_exchange_explicit(&hm_bug_once_, 1, memory_order_relaxed))           \
                fprintf(stderr, "level=crit msg=\"BUG\" where=%s:%d cond=\"%s\"\n",          \
                        __FILE__, __LINE__, #cond);                                          \
        }                                                                                    \
    } while (0)
#endif

#define HM_BUILD_ASSERT(cond) _Static_assert(cond, #cond)
#define HM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define HM_MUST_CHECK __attribute__((warn_unused_result))
#define HM_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define HM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HM_MAX(a, b) ((a) > (b) ? (a) : (b))
#define HM_CACHELINE 64

/* Allocation that aborts on failure: boot and control paths only (see core/err.h). */
void *hm_xmalloc(size_t n);
void *hm_xcalloc(size_t n, size_t m);
void *hm_xrealloc(void *p, size_t n);
char *hm_xstrndup(const char *s, size_t n);

#ifndef HM_NO_POISON
#pragma GCC poison strcpy strcat sprintf vsprintf gets
#endif

#endif
