/* libFuzzer target for proto/pm.c: the whole input as one PM file (raw or gzip), fed in
 * two chunks split where the first byte says, plus the 32.432 file-name parser. */
#include <stddef.h>
#include <stdint.h>

#include "proto/pm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cb(void *arg, const struct hm_pm_meas *m)
{
    volatile double sink = m->value + (double)m->counter.len + (double)m->obj.len;
    (void)sink;
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
