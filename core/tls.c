/*
 * TLS engine: BoringSSL with a custom BIO over the shard's buffers (see core/tls.h).
 *
 * Copies: a received record is copied once from the kernel's provided buffer into
 * BoringSSL's record buffer (the BIO read), decrypted in place, and its plaintext copied
 * once into the shard's parse buffer (SSL_read). On the way out, BoringSSL seals into its
 * own write buffer and the BIO write copies the record once into the connection's output
 * queue, which io_uring sends asynchronously (the kernel may still read it after SSL_write
 * returns, so BoringSSL's buffer cannot be lent). BoringSSL frees its record buffers when
 * they are empty (SSL_MODE_RELEASE_BUFFERS is always on there) and the output queue is
 * freed when it drains, so an idle connection holds the SSL object and its session only.
 *
 * Idle memory: the session keeps only the SHA-256 of the client certificate (not the DER
 * chain and its parsed X509 objects, about 6 KB), the handshake configuration is shed once
 * the handshake is done, and the identity string (SubjectAltName/CN) is taken from the leaf
 * while the chain is verified. A resumed connection finds the identity in its ticket: tickets
 * are sealed by our own AES-256-GCM method (below) over the session and the identity, or,
 * for TLS 1.2 clients without tickets, in the cached session's ex_data.
 */
/* BoringSSL's headers first: core/bug.h poisons gets(), which bio.h names. */
#include <openssl/aead.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/err.h"
#include "core/log.h"

#define MAX_CERTS 8
#define OUT_MAX ((size_t)256 << 20) /* output queue limit per connection */
#define IDENT_MAX 255

/* TS 33.310 Annex E profile: AEAD suites with (EC)DHE only; TLS 1.3 suites are fixed. */
static const char ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char groups[] = "X25519:P-256:P-384";
static const unsigned char sid_ctx[] = "hems-cwmps";

struct ctxset {
    _Atomic unsigned refs;
    unsigned n;
    SSL_CTX *ctx[MAX_CERTS];
    struct hm_tls *tls;
};

struct tkey {
    uint8_t name[16];
    uint8_t aes[32];
    uint8_t hmac[32];
    uint64_t born_s;
};

struct hm_tls {
    pthread_mutex_t lock; /* guards cur */
    struct ctxset *cur;
    pthread_mutex_t tk_lock; /* guards tk, ntk, rotate_s */
    struct tkey tk[2];       /* [0] encrypts; both decrypt */
    unsigned ntk;
    uint64_t rotate_s;
    bool tk_file; /* keys from tls.ticket_key_file: rotated by the operator, not here */
    _Atomic uint64_t hs_full, hs_resumed, v12, v13, rotations, reload_ok, reload_failed;
    _Atomic uint64_t fail[HM_TLS_FAIL_MAX];
};

static _Atomic uint64_t identity_mismatch;

struct hm_tls_conn {
    SSL *ssl;
    struct ctxset *cs;
    const char *in; /* lent ciphertext */
    size_t in_len;
    struct hm_buf q[2]; /* q[fly]: handed to the kernel; q[!fly]: records being queued */
    size_t fly_off;
    uint8_t fly;
    bool established, overflow;
    uint8_t fail;
    const char *fail_detail;
    char *identity;    /* NULL: no client certificate */
    char *tk_identity; /* during the handshake: the identity an offered ticket carried */
    bool tk_has_id;    /* the ticket named a client (tk_identity may still be "") */
};

static const char *const fail_names[] = {
#define HM_TLS_FAIL_NAME(e, s) s,
    HM_TLS_FAIL_REASONS(HM_TLS_FAIL_NAME)
#undef HM_TLS_FAIL_NAME
};

const char *hm_tls_fail_name(enum hm_tls_fail f)
{
    return f < HM_TLS_FAIL_MAX ? fail_names[f] : "?";
}

static uint64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static inline void ctr_inc(_Atomic uint64_t *c)
{
    /* Several shards: one locked add per handshake, negligible next to the handshake. */
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* The first BoringSSL error as text, and clears the queue. */
static void ssl_errstr(char *out, size_t n)
{
    uint32_t e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, n);
    else
        snprintf(out, n, "unknown error");
    ERR_clear_error();
}

static char *cert_identity(X509 *x);
static int sess_id_index = -1; /* SSL_SESSION ex_data: identity of a cached TLS 1.2 session */
/* Guards that ex_data: a session enters the shared cache when its handshake ends, before its
 * identity is attached, so another shard may resume it while the first one attaches it. */
static pthread_mutex_t sess_id_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- the BIO over the connection's buffers ---- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, int len)
{
    struct hm_tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!c->in_len) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = c->in_len < (size_t)len ? c->in_len : (size_t)len;
    memcpy(out, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (int)n;
}

static int bio_write(BIO *b, const char *in, int len)
{
    struct hm_tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    struct hm_buf *q = &c->q[!c->fly];
    if (q->len + c->q[c->fly].len + (size_t)len > OUT_MAX) {
        c->overflow = true;
        return -1;
    }
    hm_buf_append(q, in, (size_t)len);
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void sess_id_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int index, long argl,
                         void *argp)
{
    (void)parent;
    (void)ad;
    (void)index;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void bio_init_once(void)
{
    sess_id_index = SSL_SESSION_get_ex_new_index(0, NULL, NULL, NULL, sess_id_free);
    if (sess_id_index < 0)
        abort();
    bio_method = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "hems-shard");
    if (!bio_method)
        abort();
    BIO_meth_set_read(bio_method, bio_read);
    BIO_meth_set_write(bio_method, bio_write);
    BIO_meth_set_ctrl(bio_method, bio_ctrl);
}

/* ---- ticket keys: shared by every shard and context, rotated lazily ---- */

static void tkey_new(struct tkey *k, uint64_t now)
{
    RAND_bytes(k->name, sizeof(k->name));
    RAND_bytes(k->aes, sizeof(k->aes));
    RAND_bytes(k->hmac, sizeof(k->hmac));
    k->born_s = now;
}

/* Copies the valid keys into <out> (current first), rotating when the current one is due. */
static unsigned tkeys_get(struct hm_tls *t, struct tkey out[2])
{
    uint64_t now = mono_s();
    pthread_mutex_lock(&t->tk_lock);
    uint64_t rot = t->rotate_s;
    if (t->tk_file)
        goto copy;
    if (t->ntk && now - t->tk[0].born_s >= 2 * rot)
        t->ntk = 0; /* both keys stale: nothing old may be accepted */
    if (!t->ntk || now - t->tk[0].born_s >= rot) {
        if (t->ntk)
            t->tk[1] = t->tk[0];
        tkey_new(&t->tk[0], now);
        t->ntk = t->ntk ? 2 : 1;
        ctr_inc(&t->rotations);
    }
copy:;
    unsigned n = t->ntk;
    memcpy(out, t->tk, n * sizeof(*out));
    pthread_mutex_unlock(&t->tk_lock);
    return n;
}

/*
 * Tickets: name(16) | nonce(12) | AES-256-GCM(session | identity | idlen) | tag(16), the key
 * name as additional data. idlen 0xff: no client certificate. The identity rides in the ticket
 * because the session keeps no certificate (see the top of this file).
 */
#define TK_HDR 28
#define TK_TAG 16
#define TK_NOID 0xff

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/*
 * tls.ticket_key_file: one key per line, 96 hex digits (16-byte name, 32-byte AES-256-GCM
 * key); '#' lines and blank lines are skipped. The first key seals new tickets, the second
 * (optional) still opens tickets. ops/ticket-keys.sh makes and rotates such a file.
 */
static int tkeys_load(const char *path, struct tkey out[2], unsigned *nout, char *err,
                      size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "tls.ticket_key_file %s: cannot open: %s", path, strerror(errno));
        return HM_EBADCONF;
    }
    char line[256];
    unsigned n = 0, lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t l = strcspn(line, "\r\n");
        line[l] = '\0';
        if (!l || line[0] == '#')
            continue;
        if (n == 2) {
            snprintf(err, errlen, "tls.ticket_key_file %s:%u: at most 2 keys (current, previous)",
                     path, lineno);
            rc = HM_EBADCONF;
            goto out;
        }
        uint8_t raw[48];
        bool ok = l == 2 * sizeof(raw);
        for (size_t i = 0; ok && i < sizeof(raw); i++) {
            int hi = hexval((unsigned char)line[2 * i]), lo = hexval((unsigned char)line[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            raw[i] = ok ? (uint8_t)(hi << 4 | lo) : 0;
        }
        if (!ok) {
            snprintf(err, errlen, "tls.ticket_key_file %s:%u: expected 96 hex digits (openssl "
                     "rand -hex 48)", path, lineno);
            rc = HM_EBADCONF;
            OPENSSL_cleanse(raw, sizeof(raw));
            goto out;
        }
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(out[n].name, raw, 16);
        memcpy(out[n].aes, raw + 16, 32);
        OPENSSL_cleanse(raw, sizeof(raw));
        n++;
    }
    if (!n) {
        snprintf(err, errlen, "tls.ticket_key_file %s: no key", path);
        rc = HM_EBADCONF;
    }
out:
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    *nout = n;
    return rc;
}

/* Installs the configured key file's keys, or per-process random keys when none is set. */
static int tkeys_configure(struct hm_tls *t, const struct hm_config *cfg, char *err,
                           size_t errlen)
{
    struct tkey k[2];
    unsigned n = 0;
    bool file = *cfg->tls_ticket_key_file;
    if (file && tkeys_load(cfg->tls_ticket_key_file, k, &n, err, errlen) < 0) {
        OPENSSL_cleanse(k, sizeof(k));
        return HM_EBADCONF;
    }
    pthread_mutex_lock(&t->tk_lock);
    t->rotate_s = cfg->tls_ticket_key_rotate_s;
    if (file) {
        bool changed = !t->tk_file || n != t->ntk || memcmp(k[0].name, t->tk[0].name, 16) != 0;
        memcpy(t->tk, k, sizeof(k));
        t->ntk = n;
        if (changed)
            ctr_inc(&t->rotations);
    } else if (t->tk_file) {
        t->ntk = 0; /* back to our own keys, made on the next use */
    }
    t->tk_file = file;
    pthread_mutex_unlock(&t->tk_lock);
    OPENSSL_cleanse(k, sizeof(k));
    return 0;
}

static size_t tk_overhead(SSL *ssl)
{
    (void)ssl;
    return TK_HDR + TK_TAG + IDENT_MAX + 1;
}

/* The identity a ticket issued now must carry: the resumed one, else the verified one. */
static const char *conn_ticket_identity(const struct hm_tls_conn *c, bool *has)
{
    if (SSL_session_reused(c->ssl)) {
        *has = c->tk_has_id;
        return c->tk_identity;
    }
    *has = c->identity != NULL;
    return c->identity;
}

static int tk_seal(SSL *ssl, uint8_t *out, size_t *out_len, size_t max_out, const uint8_t *in,
                   size_t in_len)
{
    struct hm_tls_conn *c = SSL_get_app_data(ssl);
    struct tkey k[2];
    unsigned nk = tkeys_get(c->cs->tls, k);
    (void)nk;
    bool has;
    const char *id = conn_ticket_identity(c, &has);
    uint8_t extra[IDENT_MAX + 1];
    size_t idl = has && id ? strlen(id) : 0;
    memcpy(extra, id ? id : "", idl);
    extra[idl] = has ? (uint8_t)idl : TK_NOID;
    int rc = 0;
    EVP_AEAD_CTX a;
    EVP_AEAD_CTX_zero(&a);
    if (max_out < in_len + TK_HDR + TK_TAG + idl + 1)
        goto out;
    memmove(out + TK_HDR, in, in_len); /* <in> may be <out> */
    memcpy(out, k[0].name, 16);
    size_t tag_len;
    if (RAND_bytes(out + 16, 12) != 1 ||
        !EVP_AEAD_CTX_init(&a, EVP_aead_aes_256_gcm(), k[0].aes, 32, TK_TAG, NULL) ||
        !EVP_AEAD_CTX_seal_scatter(&a, out + TK_HDR, out + TK_HDR + in_len, &tag_len,
                                   max_out - TK_HDR - in_len, out + 16, 12, out + TK_HDR,
                                   in_len, extra, idl + 1, out, 16))
        goto out;
    *out_len = TK_HDR + in_len + tag_len;
    rc = 1;
out:
    EVP_AEAD_CTX_cleanup(&a);
    OPENSSL_cleanse(k, sizeof(k));
    ERR_clear_error();
    return rc;
}

static enum ssl_ticket_aead_result_t tk_open(SSL *ssl, uint8_t *out, size_t *out_len,
                                             size_t max_out, const uint8_t *in, size_t in_len)
{
    struct hm_tls_conn *c = SSL_get_app_data(ssl);
    if (in_len < TK_HDR + TK_TAG + 1 || max_out < in_len - TK_HDR)
        return ssl_ticket_aead_ignore_ticket;
    struct tkey k[2];
    unsigned nk = tkeys_get(c->cs->tls, k);
    enum ssl_ticket_aead_result_t rc = ssl_ticket_aead_ignore_ticket;
    uint8_t hdr[TK_HDR];
    memcpy(hdr, in, TK_HDR); /* <in> may be <out> */
    unsigned i = 0;
    while (i < nk && memcmp(hdr, k[i].name, 16) != 0)
        i++;
    EVP_AEAD_CTX a;
    EVP_AEAD_CTX_zero(&a);
    size_t n;
    if (i == nk) /* unknown or expired key: a full handshake */
        goto out;
    memmove(out, in + TK_HDR, in_len - TK_HDR);
    if (!EVP_AEAD_CTX_init(&a, EVP_aead_aes_256_gcm(), k[i].aes, 32, TK_TAG, NULL) ||
        !EVP_AEAD_CTX_open(&a, out, &n, max_out, hdr + 16, 12, out, in_len - TK_HDR, hdr, 16))
        goto out;
    uint8_t idl = out[n - 1];
    size_t l = idl == TK_NOID ? 0 : idl;
    if (l + 1 > n || l > IDENT_MAX)
        goto out;
    free(c->tk_identity);
    c->tk_identity = idl == TK_NOID ? NULL : hm_xstrndup((const char *)out + n - 1 - l, l);
    c->tk_has_id = idl != TK_NOID;
    *out_len = n - 1 - l;
    rc = ssl_ticket_aead_success;
out:
    EVP_AEAD_CTX_cleanup(&a);
    OPENSSL_cleanse(k, sizeof(k));
    ERR_clear_error();
    return rc;
}

static const SSL_TICKET_AEAD_METHOD tk_method = {
    .max_overhead = tk_overhead,
    .seal = tk_seal,
    .open = tk_open,
};

/* ---- contexts ---- */

/* Verifies the client chain as BoringSSL would, and takes the identity from the leaf: the
 * session keeps no certificate afterwards. */
static int on_verify(X509_STORE_CTX *sc, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct hm_tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    int r = X509_verify_cert(sc);
    X509 *leaf = X509_STORE_CTX_get0_cert(sc);
    if (r == 1 && c && leaf) {
        free(c->identity);
        c->identity = cert_identity(leaf);
    }
    return r;
}

static int on_sni(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    struct ctxset *cs = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || cs->n < 2)
        return SSL_TLSEXT_ERR_OK;
    for (unsigned i = 0; i < cs->n; i++) {
        X509 *leaf = SSL_CTX_get0_certificate(cs->ctx[i]);
        if (leaf && X509_check_host(leaf, name, strlen(name), 0, NULL) == 1) {
            if (i)
                SSL_set_SSL_CTX(ssl, cs->ctx[i]);
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* unknown name: the default certificate */
}

static int load_crls(X509_STORE *st, const char *path, char *err, size_t errlen)
{
    BIO *b = BIO_new_file(path, "r");
    if (!b) {
        snprintf(err, errlen, "tls.crl %s: cannot open", path);
        return HM_EBADCONF;
    }
    STACK_OF(X509_INFO) *inf = PEM_X509_INFO_read_bio(b, NULL, NULL, NULL);
    BIO_free(b);
    int n = 0;
    for (size_t i = 0; inf && i < sk_X509_INFO_num(inf); i++) {
        X509_INFO *xi = sk_X509_INFO_value(inf, i);
        if (xi->crl && X509_STORE_add_crl(st, xi->crl))
            n++;
    }
    sk_X509_INFO_pop_free(inf, X509_INFO_free);
    ERR_clear_error();
    if (!n) {
        snprintf(err, errlen, "tls.crl %s: no PEM CRL in the file", path);
        return HM_EBADCONF;
    }
    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    return 0;
}

static int readable(const char *key, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) == -1) {
        snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
        return -errno;
    }
    return 0;
}

static SSL_CTX *make_ctx(const struct hm_config *cfg, const char *cert, const char *key,
                         struct ctxset *cs, char *err, size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    uint16_t minv = strcmp(cfg->tls_min_version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, minv) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_strict_cipher_list(ctx, ciphers) || !SSL_CTX_set1_curves_list(ctx, groups)) {
        ssl_errstr(e, sizeof(e));
        snprintf(err, errlen, "TLS parameters refused: %s", e);
        goto fail;
    }
    if (readable("tls.cert", cert, err, errlen) < 0 || readable("tls.key", key, err, errlen) < 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_errstr(e, sizeof(e));
        snprintf(err, errlen, "tls.cert %s: not a PEM certificate chain (%s)", cert, e);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        uint32_t code = ERR_peek_error();
        if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
            (ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH ||
             ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH)) {
            ERR_clear_error();
            snprintf(err, errlen, "tls.key %s does not match the certificate in %s", key, cert);
            goto fail;
        }
        ssl_errstr(e, sizeof(e));
        snprintf(err, errlen, "tls.key %s: not a usable PEM private key for %s (%s)", key, cert,
                 e);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "tls.key %s does not match the certificate in %s", key, cert);
        goto fail;
    }
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (leaf && X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
        hm_warn("TLS server certificate has expired: HeNBs will refuse it", "cert=\"%s\"", cert);

    bool none = strcmp(cfg->tls_client_auth, "none") == 0;
    if (!none) {
        if (readable("tls.ca", cfg->tls_ca, err, errlen) < 0)
            goto fail;
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1) {
            ssl_errstr(e, sizeof(e));
            snprintf(err, errlen, "tls.ca %s: no PEM CA certificate (%s)", cfg->tls_ca, e);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
        if (*cfg->tls_crl && (readable("tls.crl", cfg->tls_crl, err, errlen) < 0 ||
                              load_crls(SSL_CTX_get_cert_store(ctx), cfg->tls_crl, err,
                                        errlen) < 0))
            goto fail;
        int mode = SSL_VERIFY_PEER;
        if (strcmp(cfg->tls_client_auth, "required") == 0)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
        SSL_CTX_set_verify_depth(ctx, 5);
    }
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (cfg->tls_session_cache_size) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, (unsigned long)cfg->tls_session_cache_size);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    /* A ticket stays decryptable for up to two key periods (current, then previous). */
    uint32_t life = (uint32_t)(cfg->tls_ticket_key_rotate_s < UINT32_MAX / 2
                                   ? 2 * cfg->tls_ticket_key_rotate_s
                                   : UINT32_MAX);
    SSL_CTX_set_timeout(ctx, life);
    SSL_CTX_set_session_psk_dhe_timeout(ctx, life);
    SSL_CTX_set_ticket_aead_method(ctx, &tk_method);
    SSL_CTX_set_retain_only_sha256_of_client_certs(ctx, 1);
    SSL_CTX_set_cert_verify_callback(ctx, on_verify, NULL);
    SSL_CTX_set_num_tickets(ctx, 1); /* a CPE resumes one session at a time (default: 2) */
    SSL_CTX_set_tlsext_servername_callback(ctx, on_sni);
    SSL_CTX_set_tlsext_servername_arg(ctx, cs);
    SSL_CTX_set_app_data(ctx, cs);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void ctxset_put(struct ctxset *cs)
{
    if (!cs || atomic_fetch_sub_explicit(&cs->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (unsigned i = 0; i < cs->n; i++)
        SSL_CTX_free(cs->ctx[i]);
    free(cs);
}

/* Splits a comma-separated list in place; returns the count (at most <max>). */
static unsigned split(char *s, char **out, unsigned max)
{
    unsigned n = 0;
    for (char *save, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ')
            tok[--l] = '\0';
        if (!*tok)
            continue;
        if (n == max)
            return max + 1;
        out[n++] = tok;
    }
    return n;
}

static struct ctxset *ctxset_make(struct hm_tls *t, const struct hm_config *cfg, char *err,
                                  size_t errlen)
{
    char *certs = hm_xstrndup(cfg->tls_cert, strlen(cfg->tls_cert));
    char *keys = hm_xstrndup(cfg->tls_key, strlen(cfg->tls_key));
    char *cv[MAX_CERTS], *kv[MAX_CERTS];
    unsigned nc = split(certs, cv, MAX_CERTS), nk = split(keys, kv, MAX_CERTS);
    struct ctxset *cs = hm_xcalloc(1, sizeof(*cs));
    atomic_init(&cs->refs, 1);
    cs->tls = t;
    if (nc == 0 || nc > MAX_CERTS) {
        snprintf(err, errlen, "tls.cert: give 1 to %d certificate files", MAX_CERTS);
        goto fail;
    }
    if (nk != nc) {
        snprintf(err, errlen, "tls.key lists %u files but tls.cert %u: one key per certificate",
                 nk, nc);
        goto fail;
    }
    for (unsigned i = 0; i < nc; i++) {
        cs->ctx[i] = make_ctx(cfg, cv[i], kv[i], cs, err, errlen);
        if (!cs->ctx[i])
            goto fail;
        cs->n++;
    }
    free(certs);
    free(keys);
    return cs;
fail:
    free(certs);
    free(keys);
    ctxset_put(cs);
    return NULL;
}

struct hm_tls *hm_tls_create(const struct hm_config *cfg, char *err, size_t errlen)
{
    pthread_once(&bio_once, bio_init_once);
    struct hm_tls *t = hm_xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->tk_lock, NULL);
    t->rotate_s = cfg->tls_ticket_key_rotate_s;
    if (tkeys_configure(t, cfg, err, errlen) < 0) {
        hm_tls_destroy(t);
        return NULL;
    }
    t->cur = ctxset_make(t, cfg, err, errlen);
    if (!t->cur) {
        hm_tls_destroy(t);
        return NULL;
    }
    hm_info("TLS ready", "certificates=%u client_auth=%s min_version=%s crl=%s "
            "ticket_key_rotate_s=%llu ticket_key_file=%s", t->cur->n, cfg->tls_client_auth,
            cfg->tls_min_version, *cfg->tls_crl ? "yes" : "no", (unsigned long long)t->rotate_s,
            *cfg->tls_ticket_key_file ? cfg->tls_ticket_key_file : "none");
    return t;
}

int hm_tls_reload(struct hm_tls *t, const struct hm_config *cfg, char *err, size_t errlen)
{
    struct ctxset *cs = ctxset_make(t, cfg, err, errlen);
    if (!cs) {
        ctr_inc(&t->reload_failed);
        return HM_EBADCONF;
    }
    if (tkeys_configure(t, cfg, err, errlen) < 0) {
        ctxset_put(cs);
        ctr_inc(&t->reload_failed);
        return HM_EBADCONF;
    }
    pthread_mutex_lock(&t->lock);
    struct ctxset *old = t->cur;
    t->cur = cs;
    pthread_mutex_unlock(&t->lock);
    ctxset_put(old);
    ctr_inc(&t->reload_ok);
    return 0;
}

void hm_tls_destroy(struct hm_tls *t)
{
    if (!t)
        return;
    ctxset_put(t->cur);
    OPENSSL_cleanse(t->tk, sizeof(t->tk));
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->tk_lock);
    free(t);
}

void hm_tls_render_metrics(struct hm_tls *t, struct hm_buf *out)
{
#define LD(x) (unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed)
    hm_buf_printf(out,
                  "# HELP hems_tls_handshakes_total completed TLS handshakes on the CWMPS "
                  "listener\n# TYPE hems_tls_handshakes_total counter\n"
                  "hems_tls_handshakes_total{kind=\"full\"} %llu\n"
                  "hems_tls_handshakes_total{kind=\"resumed\"} %llu\n"
                  "# HELP hems_tls_version_total completed TLS handshakes by protocol version\n"
                  "# TYPE hems_tls_version_total counter\n"
                  "hems_tls_version_total{version=\"TLSv1.2\"} %llu\n"
                  "hems_tls_version_total{version=\"TLSv1.3\"} %llu\n"
                  "# HELP hems_tls_handshake_failures_total failed TLS handshakes by reason\n"
                  "# TYPE hems_tls_handshake_failures_total counter\n",
                  LD(t->hs_full), LD(t->hs_resumed), LD(t->v12), LD(t->v13));
    for (unsigned i = 0; i < HM_TLS_FAIL_MAX; i++)
        hm_buf_printf(out, "hems_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
                      fail_names[i], LD(t->fail[i]));
    hm_buf_printf(out,
                  "# HELP hems_tls_identity_mismatch_total Informs refused because the client "
                  "certificate names another device\n"
                  "# TYPE hems_tls_identity_mismatch_total counter\n"
                  "hems_tls_identity_mismatch_total %llu\n"
                  "# HELP hems_tls_ticket_key_rotations_total session-ticket keys generated\n"
                  "# TYPE hems_tls_ticket_key_rotations_total counter\n"
                  "hems_tls_ticket_key_rotations_total %llu\n"
                  "# HELP hems_tls_reloads_total certificate reloads (SIGHUP)\n"
                  "# TYPE hems_tls_reloads_total counter\n"
                  "hems_tls_reloads_total{result=\"ok\"} %llu\n"
                  "hems_tls_reloads_total{result=\"failed\"} %llu\n",
                  LD(identity_mismatch), LD(t->rotations), LD(t->reload_ok),
                  LD(t->reload_failed));
#undef LD
}

/* ---- connections ---- */

struct hm_tls_conn *hm_tls_conn_new(struct hm_tls *t)
{
    struct hm_tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_lock(&t->lock);
    struct ctxset *cs = t->cur;
    atomic_fetch_add_explicit(&cs->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    c->cs = cs;
    c->ssl = SSL_new(cs->ctx[0]);
    BIO *b = c->ssl ? BIO_new(bio_method) : NULL;
    if (!b) {
        ERR_clear_error();
        hm_tls_conn_free(c);
        return NULL;
    }
    BIO_set_data(b, c);
    BIO_set_init(b, 1);
    SSL_set_bio(c->ssl, b, b);
    SSL_set_app_data(c->ssl, c);
    SSL_set_accept_state(c->ssl);
    SSL_set_shed_handshake_config(c->ssl, 1); /* the server never renegotiates */
    return c;
}

void hm_tls_conn_free(struct hm_tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);
    ctxset_put(c->cs);
    hm_buf_free(&c->q[0]);
    hm_buf_free(&c->q[1]);
    free(c->identity);
    free(c->tk_identity);
    free(c);
}

void hm_tls_conn_input(struct hm_tls_conn *c, const char *p, size_t n)
{
    c->in = p;
    c->in_len = n;
}

static bool ident_char_ok(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '@';
}

/* SubjectAltName dNSName (the first), else the subject CN; "" when unusable. */
static char *cert_identity(X509 *x)
{
    char buf[IDENT_MAX + 1];
    size_t n = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (size_t i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        size_t l = (size_t)ASN1_STRING_length(g->d.dNSName);
        if (l && l <= IDENT_MAX) {
            memcpy(buf, ASN1_STRING_get0_data(g->d.dNSName), l);
            n = l;
        }
        break;
    }
    GENERAL_NAMES_free(gens);
    if (!n) {
        int r = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
                                          sizeof(buf));
        n = r > 0 ? (size_t)r : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!ident_char_ok((unsigned char)buf[i]))
            n = 0;
    buf[n] = '\0';
    ERR_clear_error();
    return hm_xstrndup(buf, n);
}

/* At the end of the handshake: the identity of a resumed session comes from its ticket or,
 * for a cached TLS 1.2 session, its ex_data; a new cached session records it there. */
static void settle_identity(struct hm_tls_conn *c)
{
    SSL_SESSION *sess = SSL_get_session(c->ssl);
    pthread_mutex_lock(&sess_id_mu);
    const char *cached = sess ? SSL_SESSION_get_ex_data(sess, sess_id_index) : NULL;
    if (SSL_session_reused(c->ssl)) {
        free(c->identity);
        c->identity = c->tk_identity;
        c->tk_identity = NULL;
        if (!c->tk_has_id && cached)
            c->identity = hm_xstrndup(cached, strlen(cached));
    } else if (sess && c->identity && !cached && SSL_version(c->ssl) != TLS1_3_VERSION) {
        unsigned idl = 0;
        SSL_SESSION_get_id(sess, &idl);
        if (idl) /* in the server's cache (a client without tickets) */
            SSL_SESSION_set_ex_data(sess, sess_id_index,
                                    hm_xstrndup(c->identity, strlen(c->identity)));
    }
    pthread_mutex_unlock(&sess_id_mu);
    free(c->tk_identity);
    c->tk_identity = NULL;
}

static void classify_failure(struct hm_tls_conn *c)
{
    uint32_t e = ERR_peek_error();
    long v = SSL_get_verify_result(c->ssl);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        c->fail = HM_TLS_FAIL_NO_CLIENT_CERT;
        c->fail_detail = "no client certificate";
        return;
    }
    if (v != X509_V_OK && v != X509_V_ERR_INVALID_CALL) { /* INVALID_CALL: not verified */
        switch (v) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
            c->fail = HM_TLS_FAIL_EXPIRED;
            break;
        case X509_V_ERR_CERT_REVOKED:
            c->fail = HM_TLS_FAIL_REVOKED;
            break;
        default:
            c->fail = HM_TLS_FAIL_BAD_CHAIN;
            break;
        }
        c->fail_detail = X509_verify_cert_error_string(v);
        return;
    }
    c->fail = HM_TLS_FAIL_PROTOCOL;
    c->fail_detail = e ? ERR_reason_error_string(e) : "connection error";
    if (!c->fail_detail)
        c->fail_detail = "TLS error";
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_UNSUPPORTED_PROTOCOL_FOR_CUSTOM_KEY:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        c->fail = HM_TLS_FAIL_VERSION;
        break;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUP:
        c->fail = HM_TLS_FAIL_CIPHER;
        break;
    default:
        break;
    }
}

int hm_tls_conn_handshake(struct hm_tls_conn *c)
{
    struct hm_tls *t = c->cs->tls;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->established = true;
        settle_identity(c);
        ctr_inc(SSL_session_reused(c->ssl) ? &t->hs_resumed : &t->hs_full);
        ctr_inc(SSL_version(c->ssl) == TLS1_3_VERSION ? &t->v13 : &t->v12);
        return 0;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return -EAGAIN;
    }
    classify_failure(c);
    ERR_clear_error();
    ctr_inc(&t->fail[c->fail]);
    return -EPROTO;
}

bool hm_tls_conn_established(const struct hm_tls_conn *c)
{
    return c->established;
}

void hm_tls_conn_count_closed(struct hm_tls_conn *c)
{
    c->fail = HM_TLS_FAIL_CLOSED;
    c->fail_detail = "peer closed or timed out during the handshake";
    ctr_inc(&c->cs->tls->fail[HM_TLS_FAIL_CLOSED]);
}

ssize_t hm_tls_conn_read(struct hm_tls_conn *c, char *buf, size_t cap)
{
    ERR_clear_error();
    int r = SSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ)
        return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    return c->overflow ? -ENOBUFS : -EPROTO;
}

int hm_tls_conn_write(struct hm_tls_conn *c, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ERR_clear_error();
        int r = SSL_write(c->ssl, b, n > INT_MAX ? INT_MAX : (int)n);
        if (r <= 0) {
            ERR_clear_error();
            return c->overflow ? -ENOBUFS : -EPROTO;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

void hm_tls_conn_shutdown(struct hm_tls_conn *c)
{
    if (c->established)
        SSL_shutdown(c->ssl);
    ERR_clear_error();
}

const char *hm_tls_conn_out_next(struct hm_tls_conn *c, size_t *len)
{
    struct hm_buf *f = &c->q[c->fly];
    if (c->fly_off == f->len && c->q[!c->fly].len) {
        hm_buf_reset(f);
        c->fly_off = 0;
        c->fly = !c->fly;
        f = &c->q[c->fly];
    }
    *len = f->len - c->fly_off;
    return *len ? f->base + c->fly_off : NULL;
}

void hm_tls_conn_out_advance(struct hm_tls_conn *c, size_t n)
{
    struct hm_buf *f = &c->q[c->fly];
    HM_BUG_ON(n > f->len - c->fly_off);
    c->fly_off += n;
    if (c->fly_off < f->len)
        return;
    hm_buf_reset(f);
    c->fly_off = 0;
    if (!c->q[!c->fly].len) {
        /* Drained: an idle connection keeps no output buffer. */
        hm_buf_free(&c->q[0]);
        hm_buf_free(&c->q[1]);
    }
}

enum hm_tls_fail hm_tls_conn_fail_reason(const struct hm_tls_conn *c)
{
    return (enum hm_tls_fail)c->fail;
}

const char *hm_tls_conn_fail_detail(const struct hm_tls_conn *c)
{
    return c->fail_detail ? c->fail_detail : "";
}

const char *hm_tls_conn_identity(const struct hm_tls_conn *c)
{
    return c->identity;
}

const char *hm_tls_conn_version(const struct hm_tls_conn *c)
{
    return SSL_get_version(c->ssl);
}

bool hm_tls_conn_resumed(const struct hm_tls_conn *c)
{
    return SSL_session_reused(c->ssl);
}

/* ---- TS 33.320 identity binding ---- */

static bool ieq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && an && strncasecmp(a, b, an) == 0;
}

bool hm_tls_identity_check(const char *id, struct hm_slice oui, struct hm_slice pc,
                           struct hm_slice serial)
{
    char full[200], short_[140];
    int nf = snprintf(full, sizeof(full), "%.*s-%.*s-%.*s", HM_SLICE_ARG(oui), HM_SLICE_ARG(pc),
                      HM_SLICE_ARG(serial));
    int ns = snprintf(short_, sizeof(short_), "%.*s-%.*s", HM_SLICE_ARG(oui),
                      HM_SLICE_ARG(serial));
    size_t n = id ? strlen(id) : 0;
    const char *dot = n ? memchr(id, '.', n) : NULL;
    size_t cand[2] = {n, dot ? (size_t)(dot - id) : 0};
    for (unsigned i = 0; i < 2; i++) {
        size_t l = cand[i];
        if (!l)
            continue;
        if (ieq(id, l, serial.ptr, serial.len) ||
            (ns > 0 && (size_t)ns < sizeof(short_) && oui.len && ieq(id, l, short_, (size_t)ns)) ||
            (nf > 0 && (size_t)nf < sizeof(full) && oui.len && pc.len &&
             ieq(id, l, full, (size_t)nf)))
            return true;
    }
    ctr_inc(&identity_mismatch);
    return false;
}
