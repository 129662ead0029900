/* libFuzzer: hems-loadgen's connection-request head parser (bench/loadgen_cr.h) and the
 * Digest Authorization parser it hands the field to. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen_cr.h"
#include "proto/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *b = (const char *)data;
    uint64_t idx;
    struct hm_slice path, auth;
    if (hm_lg_cr_parse(b, size, &idx, &path, &auth) != 0)
        return 0;
    /* the slices lie inside the input, the path is the request-target */
    if (path.ptr < b || path.ptr + path.len > b + size || path.len < 6 ||
        memcmp(path.ptr, "/crq/", 5) != 0)
        abort();
    if (auth.len && (auth.ptr < b || auth.ptr + auth.len > b + size))
        abort();
    struct hm_auth_digest d;
    /* a parsed Digest field always has a nonce (possibly empty: the server's check refuses
     * that, not the parser) */
    if (auth.len && hm_auth_digest_parse(auth, &d) == 0 && !d.f[HM_AUTH_F_NONCE].ptr)
        abort();
    return 0;
}
