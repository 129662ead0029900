/* libFuzzer target for proto/multipart.c: the input is a form body for boundary "xYzZY",
 * fed in two chunks split where the first byte says; its first line is also tried as a
 * Content-Type. The callback checks the BEGIN/DATA/END order and reads every data byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static int cb(void *arg, enum hm_mp_event ev, const struct hm_mp_part *part,
              struct hm_slice d)
{
    int *open = arg;
    unsigned sum = 0;
    if ((ev == HM_MP_PART_BEGIN) == *open || (ev == HM_MP_PART_DATA && (!*open || !d.len)))
        abort();
    for (size_t i = 0; i < d.len; i++)
        sum += (unsigned char)d.ptr[i];
    sum += (unsigned)(part->name.len + part->filename.len + part->content_type.len);
    sink += sum;
    if (ev != HM_MP_PART_DATA)
        *open = ev == HM_MP_PART_BEGIN;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    struct hm_slice b;
    (void)hm_mp_boundary(hm_slice(s, nl ? (size_t)(nl - s) : size), &b);

    static struct hm_mp m;
    int open = 0;
    size_t cut = size ? (size_t)data[0] * size / 256 : 0;
    if (hm_mp_init(&m, hm_slice_cstr("multipart/form-data; boundary=xYzZY"), 8, cb, &open))
        abort();
    if (hm_mp_feed(&m, s, cut) == 0 && hm_mp_feed(&m, s + cut, size - cut) == 0 &&
        hm_mp_finish(&m) == 0 && open)
        abort();
    return 0;
}
