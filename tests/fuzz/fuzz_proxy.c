/* libFuzzer: PROXY protocol v1/v2 header, whole and byte-split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_proxy_hdr h;
    const char *b = (const char *)data;
    ssize_t n = hm_proxy_parse(b, size, &h, 0);
    if (n > 0 && ((size_t)n > size || (h.version != 1 && h.version != 2)))
        abort();
    if (n > 0 && !h.local && !h.unknown && h.src.ss_family != h.dst.ss_family)
        abort();
    /* a complete header must be -EAGAIN at every shorter length, never an error */
    if (n > 0)
        for (size_t i = 0; i < (size_t)n; i++)
            if (hm_proxy_parse(b, i, &h, 0) != -EAGAIN)
                abort();
    return 0;
}
