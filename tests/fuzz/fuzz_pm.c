/* libFuzzer target for proto/pm.c: the whole input as one PM file (raw or gzip), fed in
 * two chunks split where the first byte says, plus the 32.432 file-name parser. The callback
 * checks the names_gen promise the pipeline relies on: within one non-zero generation, an
 * equal counter pointer and length always carry the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/pm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct seen {
    const char *ptr;
    size_t len;
    char bytes[64];
} seen[64];
static uint64_t seen_gen;

static int cb(void *arg, const struct hm_pm_meas *m)
{
    volatile double sink = m->value + (double)m->counter.len + (double)m->obj.len;
    (void)sink;
    if (!m->names_gen)
        return 0;
    if (m->names_gen != seen_gen) {
        memset(seen, 0, sizeof(seen));
        seen_gen = m->names_gen;
    }
    struct seen *e = &seen[((uintptr_t)m->counter.ptr >> 1) % 64];
    size_t n = m->counter.len < sizeof(e->bytes) ? m->counter.len : sizeof(e->bytes);
    if (e->ptr == m->counter.ptr && e->len == m->counter.len) {
        if (memcmp(e->bytes, m->counter.ptr, n) != 0)
            __builtin_trap(); /* same generation and pointer, different name */
    } else {
        e->ptr = m->counter.ptr;
        e->len = m->counter.len;
        memcpy(e->bytes, m->counter.ptr, n);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hm_pm_parser *p;
    if (!p)
        p = hm_pm_parser_create();
    struct hm_pm_name name;
    hm_pm_name_parse(hm_slice((const char *)data, size < 256 ? size : 256), &name);
    size_t cut = size ? (size_t)data[0] * size / 256 : 0;
    struct hm_pm_summary sum;
    if (hm_pm_begin(p, cb, NULL) == 0 && hm_pm_feed(p, data, cut) == 0 &&
        hm_pm_feed(p, data + cut, size - cut) == 0)
        (void)hm_pm_finish(p, &sum);
    return 0;
}
