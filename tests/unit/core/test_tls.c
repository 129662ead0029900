/* The TLS engine driven in memory against a BoringSSL client: handshakes (1.2/1.3, full and
 * resumed, with and without client certificates), records both ways, failure reasons, the
 * TS 33.320 identity check, and the memory an idle connection keeps. Certificates come from
 * ops/make-test-pki.sh. */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/tls.h"
#include "hm_check.h"

static char pki[256];

static void make_pki(void)
{
    if (pki[0])
        return;
    char src[512], cmd[1200];
    snprintf(src, sizeof(src), "%s", __FILE__);
    snprintf(pki, sizeof(pki), "/tmp/hems-tls-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(pki));
    /* __FILE__ is tests/unit/core/test_tls.c under the source root. */
    snprintf(cmd, sizeof(cmd), "%s/../../../ops/make-test-pki.sh %s SN0001 >/dev/null",
             dirname(src), pki);
    ck_assert_int_eq(system(cmd), 0);
}

static void cleanup_pki(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", pki);
}

static char *path(const char *name)
{
    static char buf[8][400];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, sizeof(buf[0]), "%s/%s", pki, name);
    return b;
}

/* Sets <key>=<val> in <c>; the test fails if the configuration refuses it. */
static void cfg_set(struct hm_config *c, const char *key, const char *val)
{
    char a[1200], err[512];
    snprintf(a, sizeof(a), "%s=%s", key, val);
    ck_assert_msg(hm_config_set(c, a, err, sizeof(err)) == 0, "%s: %s", a, err);
}

static const char *key_file; /* tls.ticket_key_file for the next server_ex(), or NULL */

static struct hm_tls *server_ex(const char *client_auth, const char *min_version,
                                uint64_t rotate_s)
{
    make_pki();
    struct hm_config c;
    char err[512];
    hm_config_defaults(&c);
    cfg_set(&c, "tls.cert", path("server-ec.pem"));
    cfg_set(&c, "tls.key", path("server-ec.key"));
    cfg_set(&c, "tls.ca", path("ca.pem"));
    cfg_set(&c, "tls.crl", path("crl.pem"));
    cfg_set(&c, "tls.client_auth", client_auth);
    cfg_set(&c, "tls.min_version", min_version);
    if (key_file) {
        cfg_set(&c, "tls.ticket_key_file", key_file);
    }
    c.tls_ticket_key_rotate_s = rotate_s; /* below the configurable minimum, for the test */
    struct hm_tls *t = hm_tls_create(&c, err, sizeof(err));
    ck_assert_msg(t != NULL, "%s", err);
    hm_config_free(&c);
    return t;
}

static struct hm_tls *server(const char *client_auth, const char *min_version)
{
    return server_ex(client_auth, min_version, 3600);
}

struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio; /* rbio: what the server sent; wbio: what the client sends */
};

/* The newest session the client got (TLS 1.3 tickets arrive after the handshake). */
static SSL_SESSION *last_session;

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    SSL_SESSION_free(last_session);
    last_session = sess;
    return 1; /* we keep the reference */
}

static SSL_CTX *client_ctx(const char *dev, uint16_t version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    ck_assert(SSL_CTX_load_verify_locations(ctx, path("ca.pem"), NULL));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (version) {
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
    }
    if (dev) {
        char c[64], k[64];
        snprintf(c, sizeof(c), "dev-%s.pem", dev);
        snprintf(k, sizeof(k), "dev-%s.key", dev);
        ck_assert(SSL_CTX_use_certificate_chain_file(ctx, path(c)));
        ck_assert(SSL_CTX_use_PrivateKey_file(ctx, path(k), SSL_FILETYPE_PEM));
    }
    return ctx;
}

static void client_open(struct client *cl, SSL_CTX *ctx, SSL_SESSION *sess)
{
    cl->ctx = ctx;
    cl->ssl = SSL_new(ctx);
    cl->rbio = BIO_new(BIO_s_mem());
    cl->wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
    SSL_set_connect_state(cl->ssl);
    SSL_set_tlsext_host_name(cl->ssl, "hems.test");
    if (sess)
        SSL_set_session(cl->ssl, sess);
}

/* Moves bytes both ways until nothing moves. Returns the server's last handshake result. */
static int pump(struct client *cl, struct hm_tls_conn *s)
{
    int hs = -EAGAIN;
    for (int round = 0; round < 20; round++) {
        bool moved = false;
        if (!SSL_is_init_finished(cl->ssl))
            SSL_do_handshake(cl->ssl);
        char buf[32768];
        int n;
        while ((n = BIO_read(cl->wbio, buf, sizeof(buf))) > 0) {
            moved = true;
            hm_tls_conn_input(s, buf, (size_t)n);
            if (!hm_tls_conn_established(s)) {
                hs = hm_tls_conn_handshake(s);
                if (hs == -EPROTO)
                    return hs;
            }
            hm_tls_conn_input(s, NULL, 0);
        }
        size_t len;
        const char *p;
        while ((p = hm_tls_conn_out_next(s, &len)) != NULL) {
            moved = true;
            BIO_write(cl->rbio, p, (int)len);
            hm_tls_conn_out_advance(s, len);
        }
        if (!moved)
            break;
    }
    return hm_tls_conn_established(s) ? 0 : hs;
}

/* A request one way and a response the other, over the established pair. */
static void exchange(struct client *cl, struct hm_tls_conn *s)
{
    static const char req[] = "POST /cwmp HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    ck_assert_int_eq(SSL_write(cl->ssl, req, sizeof(req) - 1), (int)sizeof(req) - 1);
    char buf[32768], plain[HM_TLS_PLAIN_MAX];
    int n = BIO_read(cl->wbio, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    hm_tls_conn_input(s, buf, (size_t)n);
    ssize_t r = hm_tls_conn_read(s, plain, sizeof(plain));
    ck_assert_int_eq(r, (ssize_t)sizeof(req) - 1);
    ck_assert(memcmp(plain, req, sizeof(req) - 1) == 0);
    ck_assert_int_eq(hm_tls_conn_read(s, plain, sizeof(plain)), -EAGAIN);
    hm_tls_conn_input(s, NULL, 0);
    /* A response bigger than a record. */
    static char body[40000];
    memset(body, 'b', sizeof(body));
    ck_assert_int_eq(hm_tls_conn_write(s, body, sizeof(body)), 0);
    size_t len, got = 0;
    const char *p;
    while ((p = hm_tls_conn_out_next(s, &len)) != NULL) {
        BIO_write(cl->rbio, p, (int)len);
        hm_tls_conn_out_advance(s, len);
    }
    while ((n = SSL_read(cl->ssl, buf, sizeof(buf))) > 0) {
        ck_assert(memcmp(buf, body, (size_t)n) == 0);
        got += (size_t)n;
    }
    ck_assert_uint_eq(got, sizeof(body));
}

static void client_close(struct client *cl)
{
    SSL_free(cl->ssl);
    cl->ssl = NULL;
}

START_TEST(handshakes_full_and_resumed)
{
    struct hm_tls *t = server("required", "1.2");
    static const uint16_t versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (int v = 0; v < 2; v++) {
        SSL_CTX *ctx = client_ctx("SN0001", versions[v]);
        struct client cl;
        client_open(&cl, ctx, NULL);
        struct hm_tls_conn *s = hm_tls_conn_new(t);
        ck_assert_int_eq(pump(&cl, s), 0);
        ck_assert_str_eq(hm_tls_conn_identity(s), "SN0001.hnb.hems.test");
        ck_assert_str_eq(hm_tls_conn_version(s), v == 0 ? "TLSv1.3" : "TLSv1.2");
        ck_assert(!hm_tls_conn_resumed(s));
        exchange(&cl, s);
        pump(&cl, s); /* TLS 1.3 tickets reach the client with the response */
        SSL_SESSION *sess = last_session;
        last_session = NULL;
        ck_assert_ptr_nonnull(sess);
        ck_assert(SSL_SESSION_is_resumable(sess));
        client_close(&cl);
        hm_tls_conn_free(s);

        client_open(&cl, ctx, sess);
        s = hm_tls_conn_new(t);
        ck_assert_int_eq(pump(&cl, s), 0);
        ck_assert_msg(hm_tls_conn_resumed(s), "version %d", v);
        /* The identity survives resumption (the session keeps the peer certificate). */
        ck_assert_str_eq(hm_tls_conn_identity(s), "SN0001.hnb.hems.test");
        exchange(&cl, s);
        client_close(&cl);
        hm_tls_conn_free(s);
        SSL_SESSION_free(sess);
        SSL_CTX_free(ctx);
    }
    struct hm_buf m = {0};
    hm_tls_render_metrics(t, &m);
    ck_assert_ptr_nonnull(strstr(m.base, "hems_tls_handshakes_total{kind=\"full\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(m.base, "hems_tls_handshakes_total{kind=\"resumed\"} 2\n"));
    hm_buf_free(&m);
    hm_tls_destroy(t);
}
END_TEST

/* One connection offering <sess> (or none): whether it resumed. */
static bool try_resume(struct hm_tls *t, SSL_CTX *ctx, SSL_SESSION *sess)
{
    struct client cl;
    client_open(&cl, ctx, sess);
    struct hm_tls_conn *s = hm_tls_conn_new(t);
    ck_assert_int_eq(pump(&cl, s), 0);
    exchange(&cl, s);
    pump(&cl, s);
    bool r = hm_tls_conn_resumed(s);
    client_close(&cl);
    hm_tls_conn_free(s);
    return r;
}

START_TEST(ticket_keys_rotate)
{
    struct hm_tls *t = server_ex("required", "1.2", 2);
    SSL_CTX *ctx = client_ctx("SN0001", TLS1_3_VERSION);
    ck_assert(!try_resume(t, ctx, NULL));
    SSL_SESSION *first = last_session;
    last_session = NULL;
    ck_assert_ptr_nonnull(first);
    ck_assert(try_resume(t, ctx, first)); /* current key */
    sleep(3);
    /* Rotated: the first ticket is under the previous key, still accepted. */
    ck_assert(try_resume(t, ctx, first));
    sleep(3);
    /* Two rotations later its key is gone: a full handshake. */
    ck_assert(!try_resume(t, ctx, first));
    struct hm_buf m = {0};
    hm_tls_render_metrics(t, &m);
    ck_assert_ptr_nonnull(strstr(m.base, "hems_tls_ticket_key_rotations_total 3\n"));
    hm_buf_free(&m);
    SSL_SESSION_free(first);
    SSL_SESSION_free(last_session);
    last_session = NULL;
    SSL_CTX_free(ctx);
    hm_tls_destroy(t);
}
END_TEST

/* A TLS 1.2 client without tickets resumes from the server's session cache; the identity
 * (the session keeps no certificate) comes back with the session. */
START_TEST(session_cache_keeps_identity)
{
    struct hm_tls *t = server("required", "1.2");
    SSL_CTX *ctx = client_ctx("SN0001", TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    ck_assert(!try_resume(t, ctx, NULL));
    SSL_SESSION *sess = last_session;
    last_session = NULL;
    ck_assert_ptr_nonnull(sess);
    struct client cl;
    client_open(&cl, ctx, sess);
    struct hm_tls_conn *s = hm_tls_conn_new(t);
    ck_assert_int_eq(pump(&cl, s), 0);
    ck_assert(hm_tls_conn_resumed(s));
    ck_assert_str_eq(hm_tls_conn_identity(s), "SN0001.hnb.hems.test");
    client_close(&cl);
    hm_tls_conn_free(s);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(last_session);
    last_session = NULL;
    SSL_CTX_free(ctx);
    hm_tls_destroy(t);
}
END_TEST

/* A ticket from a server with other keys is ignored (full handshake), and an optional-auth
 * client that resumes without a certificate stays anonymous. */
START_TEST(foreign_ticket_and_anonymous_resumption)
{
    struct hm_tls *a = server("optional", "1.2"), *b = server("optional", "1.2");
    SSL_CTX *ctx = client_ctx(NULL, TLS1_3_VERSION);
    ck_assert(!try_resume(a, ctx, NULL));
    SSL_SESSION *sess = last_session;
    last_session = NULL;
    ck_assert_ptr_nonnull(sess);
    ck_assert(!try_resume(b, ctx, sess)); /* b cannot open a's ticket */
    struct client cl;
    client_open(&cl, ctx, sess);
    struct hm_tls_conn *s = hm_tls_conn_new(a);
    ck_assert_int_eq(pump(&cl, s), 0);
    ck_assert(hm_tls_conn_resumed(s));
    ck_assert_ptr_null(hm_tls_conn_identity(s));
    client_close(&cl);
    hm_tls_conn_free(s);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(last_session);
    last_session = NULL;
    SSL_CTX_free(ctx);
    hm_tls_destroy(a);
    hm_tls_destroy(b);
}
END_TEST

static void write_keys(const char *file, const char *k1, const char *k2)
{
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# ticket keys\n%s\n%s%s", k1, k2 ? k2 : "", k2 ? "\n" : "");
    fclose(f);
}

/* Two nodes with the same tls.ticket_key_file resume each other's tickets; the operator
 * rotates the file (new key first, old second) and reloads: old tickets still resume, and
 * once the old key leaves the file they do not. Bad files are refused with the line. */
START_TEST(shared_ticket_key_file)
{
    static const char k1[] = "00112233445566778899aabbccddeeff"
                             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                      k2[] = "ffeeddccbbaa99887766554433221100"
                             "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    char *file = path("ticket.keys");
    char fbuf[400];
    snprintf(fbuf, sizeof(fbuf), "%s", file);
    write_keys(fbuf, k1, NULL);
    key_file = fbuf;
    struct hm_tls *a = server("required", "1.2"), *b = server("required", "1.2");
    key_file = NULL;
    SSL_CTX *ctx = client_ctx("SN0001", TLS1_3_VERSION);
    ck_assert(!try_resume(a, ctx, NULL));
    SSL_SESSION *first = last_session;
    last_session = NULL;
    ck_assert(try_resume(b, ctx, first)); /* node a's ticket on node b */
    SSL_SESSION_free(last_session);
    last_session = NULL;

    struct hm_config c;
    char err[512];
    hm_config_defaults(&c);
    cfg_set(&c, "tls.cert", path("server-ec.pem"));
    cfg_set(&c, "tls.key", path("server-ec.key"));
    cfg_set(&c, "tls.ca", path("ca.pem"));
    cfg_set(&c, "tls.ticket_key_file", fbuf);
    write_keys(fbuf, k2, k1); /* rotated */
    ck_assert_int_eq(hm_tls_reload(b, &c, err, sizeof(err)), 0);
    ck_assert(try_resume(b, ctx, first)); /* the previous key still opens it */
    SSL_SESSION *second = last_session; /* sealed under k2 */
    last_session = NULL;
    ck_assert(!try_resume(a, ctx, second)); /* a has not reloaded: k2 unknown there */
    SSL_SESSION_free(last_session);
    last_session = NULL;
    write_keys(fbuf, k2, NULL); /* k1 retired */
    ck_assert_int_eq(hm_tls_reload(b, &c, err, sizeof(err)), 0);
    ck_assert(!try_resume(b, ctx, first));
    SSL_SESSION_free(last_session);
    last_session = NULL;
    ck_assert(try_resume(b, ctx, second));
    SSL_SESSION_free(last_session);
    last_session = NULL;

    /* A bad file is refused and the running keys stay. */
    write_keys(fbuf, "00112233", NULL);
    ck_assert_int_eq(hm_tls_reload(b, &c, err, sizeof(err)), HM_EBADCONF);
    ck_assert_msg(strstr(err, "ticket.keys:2: expected 96 hex digits") != NULL, "%s", err);
    ck_assert(try_resume(b, ctx, second));
    SSL_SESSION_free(last_session);
    last_session = NULL;
    hm_config_free(&c);
    SSL_SESSION_free(first);
    SSL_SESSION_free(second);
    SSL_CTX_free(ctx);
    hm_tls_destroy(a);
    hm_tls_destroy(b);
}
END_TEST

START_TEST(bad_clients_refused_with_reason)
{
    struct hm_tls *t = server("required", "1.3");
    static const struct {
        const char *dev;
        uint16_t version;
        enum hm_tls_fail why;
    } cases[] = {
        {NULL, TLS1_3_VERSION, HM_TLS_FAIL_NO_CLIENT_CERT},
        {"expired", TLS1_3_VERSION, HM_TLS_FAIL_EXPIRED},
        {"revoked", TLS1_3_VERSION, HM_TLS_FAIL_REVOKED},
        {"rogue", TLS1_3_VERSION, HM_TLS_FAIL_BAD_CHAIN},
        {"SN0001", TLS1_2_VERSION, HM_TLS_FAIL_VERSION}, /* min_version 1.3 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL_CTX *ctx = client_ctx(cases[i].dev, cases[i].version);
        struct client cl;
        client_open(&cl, ctx, NULL);
        struct hm_tls_conn *s = hm_tls_conn_new(t);
        ck_assert_int_eq(pump(&cl, s), -EPROTO);
        ck_assert_msg(hm_tls_conn_fail_reason(s) == cases[i].why, "case %zu: %s (%s)", i,
                      hm_tls_fail_name(hm_tls_conn_fail_reason(s)),
                      hm_tls_conn_fail_detail(s));
        /* An alert is queued for the client. */
        size_t len;
        ck_assert_ptr_nonnull(hm_tls_conn_out_next(s, &len));
        client_close(&cl);
        hm_tls_conn_free(s);
        SSL_CTX_free(ctx);
    }
    hm_tls_destroy(t);
}
END_TEST

START_TEST(garbage_is_a_protocol_failure)
{
    struct hm_tls *t = server("none", "1.2");
    struct hm_tls_conn *s = hm_tls_conn_new(t);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    hm_tls_conn_input(s, req, sizeof(req) - 1);
    ck_assert_int_eq(hm_tls_conn_handshake(s), -EPROTO);
    ck_assert_int_eq(hm_tls_conn_fail_reason(s), HM_TLS_FAIL_PROTOCOL);
    hm_tls_conn_free(s);
    /* client_auth none: a client without a certificate has no identity. */
    s = hm_tls_conn_new(t);
    SSL_CTX *ctx = client_ctx(NULL, 0);
    struct client cl;
    client_open(&cl, ctx, NULL);
    ck_assert_int_eq(pump(&cl, s), 0);
    ck_assert_ptr_null(hm_tls_conn_identity(s));
    client_close(&cl);
    hm_tls_conn_free(s);
    SSL_CTX_free(ctx);
    hm_tls_destroy(t);
}
END_TEST

START_TEST(start_errors_are_clear)
{
    make_pki();
    struct hm_config c;
    char err[512], a[600];
    hm_config_defaults(&c);
    snprintf(a, sizeof(a), "tls.cert=%s", path("server-ec.pem"));
    hm_config_set(&c, a, err, sizeof(err));
    snprintf(a, sizeof(a), "tls.key=%s", path("server-rsa.key"));
    hm_config_set(&c, a, err, sizeof(err));
    snprintf(a, sizeof(a), "tls.ca=%s", path("ca.pem"));
    hm_config_set(&c, a, err, sizeof(err));
    ck_assert_ptr_null(hm_tls_create(&c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "does not match the certificate"));
    snprintf(a, sizeof(a), "tls.key=%s", path("nope.key"));
    hm_config_set(&c, a, err, sizeof(err));
    ck_assert_ptr_null(hm_tls_create(&c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
    snprintf(a, sizeof(a), "tls.key=%s,%s", path("server-ec.key"), path("server-rsa.key"));
    hm_config_set(&c, a, err, sizeof(err));
    ck_assert_ptr_null(hm_tls_create(&c, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "one key per certificate"));
    hm_config_free(&c);
}
END_TEST

START_TEST(identity_binding)
{
    struct hm_slice oui = HM_SLICE_LIT("00005A"), pc = HM_SLICE_LIT("HeNB"),
                    sn = HM_SLICE_LIT("SN0001");
    ck_assert(hm_tls_identity_check("SN0001", oui, pc, sn));
    ck_assert(hm_tls_identity_check("sn0001.hnb.vendor.example", oui, pc, sn));
    ck_assert(hm_tls_identity_check("00005A-SN0001", oui, pc, sn));
    ck_assert(hm_tls_identity_check("00005a-henb-sn0001.hnb.vendor.example", oui, pc, sn));
    ck_assert(!hm_tls_identity_check("SN0002", oui, pc, sn));
    ck_assert(!hm_tls_identity_check("SN00011", oui, pc, sn));
    ck_assert(!hm_tls_identity_check("hnb.SN0001", oui, pc, sn));
    ck_assert(!hm_tls_identity_check("", oui, pc, sn));
    ck_assert(!hm_tls_identity_check("00005A-HeNB-SN0001", oui, HM_SLICE_LIT("Other"), sn));
    ck_assert(!hm_tls_identity_check(".SN0001", oui, pc, sn));
}
END_TEST

START_TEST(idle_connection_memory)
{
    struct hm_tls *t = server("required", "1.2");
    SSL_CTX *ctx = client_ctx("SN0001", TLS1_3_VERSION);
    enum { N = 64 };
    static struct hm_tls_conn *conns[N];
    /* Warm up: one connection brings the lazily allocated process-wide state. */
    struct client cl;
    client_open(&cl, ctx, NULL);
    struct hm_tls_conn *w = hm_tls_conn_new(t);
    ck_assert_int_eq(pump(&cl, w), 0);
    client_close(&cl);
    hm_tls_conn_free(w);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        /* Everything the client allocates is freed by client_close(): what stays is the
         * server's idle connection (and the latest client session, replaced each time). */
        struct mallinfo2 m0 = mallinfo2();
        client_open(&cl, ctx, NULL);
        conns[i] = hm_tls_conn_new(t);
        ck_assert_int_eq(pump(&cl, conns[i]), 0);
        exchange(&cl, conns[i]);
        client_close(&cl);
        struct mallinfo2 m1 = mallinfo2();
        total += m1.uordblks - m0.uordblks;
    }
    size_t per = total / N;
    fprintf(stderr, "idle TLS 1.3 server connection (mTLS, after one exchange): %zu bytes\n",
            per);
    /* No record buffer, no certificate chain (parsed X509 objects: about 6 KB). */
    ck_assert_uint_lt(per, 4608);
    for (int i = 0; i < N; i++)
        hm_tls_conn_free(conns[i]);
    SSL_CTX_free(ctx);
    hm_tls_destroy(t);
}
END_TEST

static Suite *suite(void)
{
    hm_log_set_level(HM_LOG_ERR);
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, make_pki, cleanup_pki);
    tcase_add_test(tc, identity_binding);
    tcase_add_test(tc, handshakes_full_and_resumed);
    tcase_add_test(tc, bad_clients_refused_with_reason);
    tcase_add_test(tc, ticket_keys_rotate);
    tcase_add_test(tc, garbage_is_a_protocol_failure);
    tcase_add_test(tc, start_errors_are_clear);
    tcase_add_test(tc, idle_connection_memory);
    tcase_add_test(tc, session_cache_keeps_identity);
    tcase_add_test(tc, shared_ticket_key_file);
    tcase_add_test(tc, foreign_ticket_and_anonymous_resumption);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
