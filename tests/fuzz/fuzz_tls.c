/* libFuzzer: the TLS engine's server side fed arbitrary bytes (ClientHello and records),
 * split into chunks as the reactor would see them, plus the TS 33.320 identity check.
 * A throw-away self-signed P-256 certificate (valid to 2126) is embedded for the server. */
#include <openssl/ssl.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBiTCCAS+gAwIBAgIUbt2UYpdyuZAhHxXPnBSGOPHzM9EwCgYIKoZIzj0EAwIw\n"
    "GTEXMBUGA1UEAwwOZnV6ei5oZW1zLnRlc3QwIBcNMjYxMTI3MDM1OTA5WhgPMjEy\n"
    "NjExMDMwMzU5MDlaMBkxFzAVBgNVBAMMDmZ1enouaGVtcy50ZXN0MFkwEwYHKoZI\n"
    "zj0CAQYIKoZIzj0DAQcDQgAEzZdaAmsYLvZZ3fb7KMdC5LceH2oL2vvCmFUEZ2Qd\n"
    "VHX4myLBTW6pEQHJbr3AMarOab42caPEMPtoGXSsWNQLyqNTMFEwHQYDVR0OBBYE\n"
    "FCGf7WGU8YnKodPNyoMYy7+cjUcTMB8GA1UdIwQYMBaAFCGf7WGU8YnKodPNyoMY\n"
    "y7+cjUcTMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgV4U21kuE\n"
    "xe17QJl4g4MH3vDraw3WLcjqZf3GL+Liej0CIQDQGMDA7FY604dMSFLI/PLwhiwG\n"
    "+lpT/m5wgsvoXVCclg==\n"
    "-----END CERTIFICATE-----\n";
static const char key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDD/JRZd5H+kNMRSR\n"
    "pdC7DNxzwa3QrDoNcQ6Asy7fADihRANCAATNl1oCaxgu9lnd9vsox0Lktx4fagva\n"
    "+8KYVQRnZB1UdfibIsFNbqkRAcluvcAxqs5pvjZxo8Qw+2gZdKxY1AvK\n"
    "-----END PRIVATE KEY-----\n";

static struct hm_tls *tls;

static void write_file(char *tmpl, const char *s)
{
    int fd = mkstemp(tmpl);
    if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        abort();
    close(fd);
}

static void init(void)
{
    char c[] = "/tmp/hems-fuzz-tls-cert-XXXXXX", k[] = "/tmp/hems-fuzz-tls-key-XXXXXX";
    write_file(c, cert_pem);
    write_file(k, key_pem);
    struct hm_config cfg;
    char err[512];
    hm_config_defaults(&cfg);
    free(cfg.tls_cert);
    free(cfg.tls_key);
    free(cfg.tls_client_auth);
    cfg.tls_cert = strdup(c);
    cfg.tls_key = strdup(k);
    cfg.tls_client_auth = strdup("none");
    hm_log_set_level(HM_LOG_CRIT);
    tls = hm_tls_create(&cfg, err, sizeof(err));
    if (!tls) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(c);
    unlink(k);
    hm_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tls)
        init();
    if (!size)
        return 0;
    /* The first byte sets the chunk size: records split anywhere. */
    size_t chunk = 1 + (size_t)data[0] * 37 % 1500;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct hm_tls_conn *c = hm_tls_conn_new(tls);
    if (!c)
        abort();
    char plain[HM_TLS_PLAIN_MAX];
    bool dead = false;
    while (n && !dead) {
        size_t k = n < chunk ? n : chunk;
        hm_tls_conn_input(c, p, k);
        if (!hm_tls_conn_established(c)) {
            int r = hm_tls_conn_handshake(c);
            if (r != 0 && r != -EAGAIN && r != -EPROTO)
                abort();
            if (r == -EPROTO) {
                if (hm_tls_conn_fail_reason(c) >= HM_TLS_FAIL_MAX)
                    abort();
                dead = true;
            }
        }
        while (!dead && hm_tls_conn_established(c)) {
            ssize_t r = hm_tls_conn_read(c, plain, sizeof(plain));
            if (r == -EAGAIN)
                break;
            if (r <= 0)
                dead = true;
            else if ((size_t)r > sizeof(plain))
                abort();
        }
        hm_tls_conn_input(c, NULL, 0);
        size_t len;
        const char *o;
        while ((o = hm_tls_conn_out_next(c, &len)) != NULL)
            hm_tls_conn_out_advance(c, len);
        p += k;
        n -= k;
    }
    hm_tls_conn_free(c);

    /* The identity rules on the same bytes as a certificate name. */
    char id[256];
    size_t il = size - 1 < sizeof(id) - 1 ? size - 1 : sizeof(id) - 1;
    memcpy(id, data + 1, il);
    id[il] = '\0';
    struct hm_slice oui = HM_SLICE_LIT("00005A"), pc = HM_SLICE_LIT("HeNB");
    struct hm_slice sn = hm_slice(id, strlen(id));
    if (sn.len && !memchr(id, '.', sn.len) && !hm_tls_identity_check(id, oui, pc, sn))
        abort(); /* an identity equal to the serial always matches */
    hm_tls_identity_check(id, oui, pc, HM_SLICE_LIT("SN0001"));
    return 0;
}
