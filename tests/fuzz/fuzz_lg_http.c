/* libFuzzer: hems-loadgen's HTTP response-head parser and cookie jar (bench/loadgen_http.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    struct hm_lg_resp r;
    ssize_t n = hm_lg_http_parse_response(b, size, &r);
    if (n > 0) {
        if ((size_t)n > size || r.status < 100 || r.status > 999 || r.n_cookies > HM_LG_HTTP_MAX_COOKIES)
            abort();
        if (r.body == HM_LG_BODY_LENGTH && r.content_length < 0)
            abort();
        /* every prefix of a complete head needs more input */
        for (size_t i = 0; i + 1 < (size_t)n; i += 1 + i / 8)
            if (hm_lg_http_parse_response(b, i, &r) != -EAGAIN)
                abort();
        n = hm_lg_http_parse_response(b, size, &r);
        struct hm_lg_cookie_jar jar = {0};
        for (unsigned i = 0; i < r.n_cookies; i++) {
            int rc = hm_lg_cookie_set(&jar, r.set_cookie[i]);
            if (rc && rc != HM_EBADHTTP && rc != -ENOBUFS)
                abort();
            if (jar.len > HM_LG_COOKIE_MAX)
                abort();
        }
    }
    /* a Digest challenge: slices stay inside the input */
    struct hm_lg_challenge ch;
    if (hm_lg_http_parse_challenge(hm_slice(b, size), &ch) == 0) {
        if (!ch.nonce.len || ch.nonce.ptr < b || ch.nonce.ptr + ch.nonce.len > b + size ||
            (ch.realm.ptr && (ch.realm.ptr < b || ch.realm.ptr + ch.realm.len > b + size)))
            abort();
    }
    /* the jar on its own, with the input as one Set-Cookie value */
    struct hm_lg_cookie_jar jar = {0};
    for (int k = 0; k < 3; k++)
        if (hm_lg_cookie_set(&jar, hm_slice(b, size)) == 0 && jar.len > HM_LG_COOKIE_MAX)
            abort();
    return 0;
}
