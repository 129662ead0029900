/* hems-loadgen TLS client (see bench/loadgen_tls.h). */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen_tls.h"
#include "core/bug.h"

struct hm_lg_tls {
    SSL_CTX *ctx;
    char cert_dir[512];
    char sni[256];
};

static int ssl_data_index = -1; /* SSL ex_data: the newest session seen by the client */

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION *old = SSL_get_ex_data(ssl, ssl_data_index);
    SSL_SESSION_free(old);
    SSL_set_ex_data(ssl, ssl_data_index, sess);
    return 1; /* the reference is ours */
}

struct hm_lg_tls *hm_lg_tls_create(const char *ca, const char *cert, const char *key,
                                   const char *cert_dir, const char *sni, char *err,
                                   size_t errlen)
{
    if (ssl_data_index < 0)
        ssl_data_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    struct hm_lg_tls *t = hm_xcalloc(1, sizeof(*t));
    t->ctx = SSL_CTX_new(TLS_method());
    snprintf(t->cert_dir, sizeof(t->cert_dir), "%s", cert_dir ? cert_dir : "");
    snprintf(t->sni, sizeof(t->sni), "%s", sni ? sni : "");
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(t->ctx, on_new_session);
    if (ca && *ca) {
        if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
            snprintf(err, errlen, "--tls-ca %s: cannot load", ca);
            goto fail;
        }
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (cert && *cert) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(t->ctx, key && *key ? key : cert, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(t->ctx) != 1) {
            snprintf(err, errlen, "--tls-cert %s / --tls-key %s: cannot load a matching pair",
                     cert, key ? key : "");
            goto fail;
        }
    }
    ERR_clear_error();
    return t;
fail:
    ERR_clear_error();
    hm_lg_tls_destroy(t);
    return NULL;
}

void hm_lg_tls_destroy(struct hm_lg_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

SSL *hm_lg_tls_open(struct hm_lg_tls *t, int fd, const char *serial, SSL_SESSION *sess)
{
    SSL *s = SSL_new(t->ctx);
    if (!s)
        goto fail;
    if (t->cert_dir[0]) {
        char c[700], k[700];
        snprintf(c, sizeof(c), "%s/dev-%s.pem", t->cert_dir, serial);
        snprintf(k, sizeof(k), "%s/dev-%s.key", t->cert_dir, serial);
        if (SSL_use_certificate_file(s, c, SSL_FILETYPE_PEM) != 1 || /* leaf only */
            SSL_use_PrivateKey_file(s, k, SSL_FILETYPE_PEM) != 1)
            goto fail;
    }
    if (!SSL_set_fd(s, fd))
        goto fail;
    if (t->sni[0])
        SSL_set_tlsext_host_name(s, t->sni);
    if (sess)
        SSL_set_session(s, sess);
    SSL_set_connect_state(s);
    return s;
fail:
    ERR_clear_error();
    SSL_free(s);
    return NULL;
}

void hm_lg_tls_close(SSL *s, SSL_SESSION **keep)
{
    if (!s)
        return;
    SSL_SESSION *newest = SSL_get_ex_data(s, ssl_data_index);
    SSL_set_ex_data(s, ssl_data_index, NULL);
    if (keep && newest) {
        SSL_SESSION_free(*keep);
        *keep = newest;
    } else {
        SSL_SESSION_free(newest);
    }
    SSL_free(s);
    ERR_clear_error();
}

void hm_lg_tls_session_free(SSL_SESSION *sess)
{
    SSL_SESSION_free(sess);
}

static ssize_t result(SSL *s, int r)
{
    if (r > 0)
        return r;
    int e = SSL_get_error(s, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0))
        return 0;
    return -EPROTO;
}

ssize_t hm_lg_tls_send(SSL *s, const void *p, size_t n)
{
    ERR_clear_error();
    ssize_t r = result(s, SSL_write(s, p, n > INT_MAX ? INT_MAX : (int)n));
    return r == 0 ? -EPROTO : r;
}

ssize_t hm_lg_tls_recv(SSL *s, void *p, size_t n)
{
    ERR_clear_error();
    return result(s, SSL_read(s, p, n > INT_MAX ? INT_MAX : (int)n));
}

bool hm_lg_tls_resumed(SSL *s)
{
    return SSL_session_reused(s);
}
