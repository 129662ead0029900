/* libFuzzer: request-head parse (whole, then split in two reads) and chunked decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct hm_http_limits lim = {1024, 4096, 32};
    struct hm_http_req req, req2;
    const char *buf = (const char *)data;
    ssize_t n = hm_http_parse_request(buf, size, 0, &req, &lim);
    if (n > 0 && (size_t)n > size)
        abort();
    /*
     * The same input in two reads must give the same complete head. (Not the same error:
     * a first call parses what it has and may report an error that a call with prev_len,
     * which only looks for the end of the head, reports later.)
     */
    size_t cut = size ? data[0] % (size + 1) : 0;
    ssize_t a = hm_http_parse_request(buf, cut, 0, &req2, &lim);
    if (a == -EAGAIN) {
        ssize_t b = hm_http_parse_request(buf, size, cut, &req2, &lim);
        if ((n > 0 || b > 0) &&
            (b != n || req.nheaders != req2.nheaders ||
             req.content_length != req2.content_length || req.chunked != req2.chunked ||
             req.keep_alive != req2.keep_alive))
            abort();
    }
    size_t off = n > 0 ? (size_t)n : 0;
    char *body = malloc(size - off + 1);
    memcpy(body, buf + off, size - off);
    struct hm_http_chunked c;
    hm_http_chunked_init(&c);
    size_t len = size - off;
    ssize_t rc = hm_http_chunked_decode(&c, body, &len, 1 << 20);
    if (len > size - off || (rc >= 0 && len + (size_t)rc > size - off))
        abort();
    free(body);
    return 0;
}
