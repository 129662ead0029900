/* libFuzzer: Authorization header parsing (Digest, Basic) and Digest verification. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[32] = "fuzz-secret-fuzz-secret-fuzz-sec";
    struct hm_slice v = hm_slice((const char *)data, size);
    struct hm_auth_digest d;
    if (hm_auth_digest_parse(v, &d) == 0) {
        char un[64], ha1[HM_AUTH_HEX_LEN + 1];
        (void)hm_auth_unquote(d.f[HM_AUTH_F_USERNAME], un, sizeof(un));
        hm_auth_ha1(d.f[HM_AUTH_F_USERNAME], d.f[HM_AUTH_F_REALM], HM_SLICE_LIT("pw"), ha1);
        struct hm_auth_nonce_key k;
        hm_auth_nonce_key_init(&k, secret, 300);
        struct hm_auth_nonce_state st = {0};
        int rc = hm_auth_digest_verify(&d, ha1, HM_SLICE_LIT("POST"), hm_slice(NULL, 0), &k, 1,
                                       1000, &st);
        if (rc == 0)
            abort(); /* a nonce we never issued (no fuzzer can forge HMAC-SHA256) */
    }
    char buf[256];
    struct hm_slice u, p;
    if (hm_auth_basic_parse(v, buf, sizeof(buf), &u, &p) == 0 &&
        (u.ptr < buf || p.ptr + p.len > buf + sizeof(buf)))
        abort();
    char chal[512];
    (void)hm_auth_challenge(chal, sizeof(chal), v, v, v, size & 1);
    return 0;
}
