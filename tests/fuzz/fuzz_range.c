/* libFuzzer: Range header resolution (proto/http_range.h). The first 8 bytes are the
 * representation size, the rest the header value. Invariants: a satisfiable answer lies
 * inside the representation, and unsatisfiable / ignored answers leave the outputs alone. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http_range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t total = 0;
    if (size >= 8) {
        memcpy(&total, data, 8);
        data += 8;
        size -= 8;
    }
    if (total & 1)
        total &= 0xffff; /* small sizes half of the time: more edge cases near the end */
    uint64_t a = 42, b = 43;
    int r = hm_http_range_parse(hm_slice((const char *)data, size), total, &a, &b);
    if (r == 1 && !(a <= b && b < total))
        abort();
    if (r != 1 && (a != 42 || b != 43))
        abort();
    if (r != 1 && r != 0 && r != -ERANGE)
        abort();
    return 0;
}
