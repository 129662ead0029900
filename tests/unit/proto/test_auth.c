#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "hm_check.h"
#include "proto/auth.h"

#define S(lit) HM_SLICE_LIT(lit)
#define SL_EQ(s, lit) ck_assert_msg(hm_slice_eq_lit((s), lit), "got '%.*s'", (int)(s).len, (s).ptr)

/* RFC 2617 section 3.5 */
static const char rfc2617[] =
    "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n"
    " nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n"
    " qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n"
    " response=\"6629fae49393a05397450978507c4ef1\",\r\n"
    " opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

START_TEST(rfc2617_mufasa)
{
    struct hm_auth_digest d;
    ck_assert_int_eq(hm_auth_digest_parse(hm_slice_cstr(rfc2617), &d), 0);
    SL_EQ(d.f[HM_AUTH_F_USERNAME], "Mufasa");
    SL_EQ(d.f[HM_AUTH_F_REALM], "testrealm@host.com");
    SL_EQ(d.f[HM_AUTH_F_URI], "/dir/index.html");
    SL_EQ(d.f[HM_AUTH_F_OPAQUE], "5ccc069c403ebaf9f0171e9517f40e41");
    SL_EQ(d.f[HM_AUTH_F_QOP], "auth");
    ck_assert_uint_eq(d.nc, 1);
    ck_assert(d.qop_auth && !d.sess);
    ck_assert_ptr_null(d.f[HM_AUTH_F_ALGORITHM].ptr);

    char ha1[HM_AUTH_HEX_LEN + 1], resp[HM_AUTH_HEX_LEN + 1];
    hm_auth_ha1(S("Mufasa"), S("testrealm@host.com"), S("Circle Of Life"), ha1);
    ck_assert_str_eq(ha1, "939e7578ed9e3c518a452acee763bce9");
    hm_auth_digest_response(&d, ha1, S("GET"), resp);
    ck_assert_str_eq(resp, "6629fae49393a05397450978507c4ef1");
    hm_auth_digest_response(&d, ha1, S("POST"), resp);
    ck_assert_str_ne(resp, "6629fae49393a05397450978507c4ef1");
}
END_TEST

/* RFC 7616 section 3.9.1, the MD5 half */
START_TEST(rfc7616_md5)
{
    const char *h = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", "
                    "uri=\"/dir/index.html\", algorithm=MD5, "
                    "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, "
                    "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, "
                    "response=\"8ca523f5e9506fed4657c9700eebdbec\", "
                    "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
    struct hm_auth_digest d;
    ck_assert_int_eq(hm_auth_digest_parse(hm_slice_cstr(h), &d), 0);
    char ha1[HM_AUTH_HEX_LEN + 1], resp[HM_AUTH_HEX_LEN + 1];
    hm_auth_ha1(S("Mufasa"), S("http-auth@example.org"), S("Circle of Life"), ha1);
    hm_auth_digest_response(&d, ha1, S("GET"), resp);
    ck_assert_str_eq(resp, "8ca523f5e9506fed4657c9700eebdbec");
}
END_TEST

START_TEST(md5_sess_and_escapes)
{
    /* expected value from Python hashlib, see docs/http.md */
    const char *h = "DIGEST Username=\"Mufasa\", realm=\"http-auth@example.org\", nonce=n, "
                    "uri=\"/cwmp\", qop=\"auth\", nc=00000001, cnonce=\"\\c\", "
                    "algorithm=md5-sess, response=248D1E377A93A78D8132F302FDAAC913";
    struct hm_auth_digest d;
    ck_assert_int_eq(hm_auth_digest_parse(hm_slice_cstr(h), &d), 0);
    ck_assert(d.sess);
    ck_assert_uint_eq(d.escaped, 1u << HM_AUTH_F_CNONCE);
    char ha1[HM_AUTH_HEX_LEN + 1], resp[HM_AUTH_HEX_LEN + 1], un[16];
    hm_auth_ha1(S("Mufasa"), S("http-auth@example.org"), S("Circle of Life"), ha1);
    hm_auth_digest_response(&d, ha1, S("POST"), resp);
    ck_assert_str_eq(resp, "248d1e377a93a78d8132f302fdaac913");
    ck_assert_int_eq(hm_auth_unquote(d.f[HM_AUTH_F_CNONCE], un, sizeof(un)), 1);
    ck_assert_str_eq(un, "c");
    ck_assert_int_eq(hm_auth_unquote(S("a\\\"b"), un, sizeof(un)), 3);
    ck_assert_str_eq(un, "a\"b");
    ck_assert_int_eq(hm_auth_unquote(S("abcd"), un, 4), -ENOSPC);
}
END_TEST

START_TEST(digest_parse_errors)
{
    static const char *bad[] = {
        "Basic dXNlcjpwYXNz",
        "Digest",
        "Digest ",
        "Digestusername=\"a\"",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\"",          /* no response */
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", "
        "username=\"b\"",                                                     /* repeated */
        "Digest username=\"a, realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",
        "Digest username=\"a\" realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",
        "Digest username=, realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", qop=auth",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", qop=auth, "
        "nc=1, cnonce=c",                                                     /* nc not 8 hex */
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", qop=auth, "
        "nc=0000000g, cnonce=c",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", "
        "qop=auth-int, nc=00000001, cnonce=c",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", "
        "algorithm=SHA-256",
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", "
        "algorithm=MD5-sess",                                                 /* sess w/o qop */
        "Digest username=\"a\x01\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\"",
        "Digest username=\"a\\",
    };
    struct hm_auth_digest d;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(hm_auth_digest_parse(hm_slice_cstr(bad[i]), &d) == HM_EBADAUTH, "case %zu",
                      i);
    ck_assert_int_eq(hm_auth_digest_parse(S("Digest ,username=a,,realm=r,nonce=n,uri=/,"
                                            "response=x, unknown=\"ignored\","),
                                          &d), 0);
    SL_EQ(d.f[HM_AUTH_F_URI], "/");
    ck_assert(!d.qop_auth);
    ck_assert_int_eq(hm_auth_scheme_of(S("digest x=y")), HM_AUTH_DIGEST);
    ck_assert_int_eq(hm_auth_scheme_of(S("Basic abc")), HM_AUTH_BASIC);
    ck_assert_int_eq(hm_auth_scheme_of(S("Bearer abc")), HM_AUTH_OTHER);
    ck_assert_int_eq(hm_auth_scheme_of(S("")), HM_AUTH_NONE);
}
END_TEST

START_TEST(basic)
{
    char buf[64];
    struct hm_slice u, p;
    ck_assert_int_eq(hm_auth_basic_parse(S("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), buf,
                                         sizeof(buf), &u, &p), 0);
    SL_EQ(u, "Aladdin");
    SL_EQ(p, "open sesame");
    ck_assert_int_eq(hm_auth_basic_parse(S("basic dTo6cA=="), buf, sizeof(buf), &u, &p), 0);
    SL_EQ(u, "u");
    SL_EQ(p, ":p");
    ck_assert_int_eq(hm_auth_basic_parse(S("Basic bm9jb2xvbg=="), buf, sizeof(buf), &u, &p),
                     HM_EBADAUTH); /* "nocolon" */
    ck_assert_int_eq(hm_auth_basic_parse(S("Basic QWxh!GRpbjpvcGVuIHNlc2FtZQ=="), buf,
                                         sizeof(buf), &u, &p), HM_EBADAUTH);
    ck_assert_int_eq(hm_auth_basic_parse(S("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), buf, 8, &u,
                                         &p), HM_EBADAUTH);
    ck_assert_int_eq(hm_auth_basic_parse(S("Digest QWxh"), buf, sizeof(buf), &u, &p),
                     HM_EBADAUTH);
    ck_assert_int_eq(hm_auth_basic_parse(S("Basic "), buf, sizeof(buf), &u, &p), HM_EBADAUTH);
}
END_TEST

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";

START_TEST(nonces)
{
    struct hm_auth_nonce_key k, k2;
    ck_assert_int_eq(hm_auth_nonce_key_init(&k, secret, 300), 0);
    ck_assert_int_eq(hm_auth_nonce_key_init(&k2, NULL, 300), 0);
    char n[HM_AUTH_NONCE_LEN + 1], n2[HM_AUTH_NONCE_LEN + 1];
    hm_auth_nonce_make(&k, 42, 1000, n);
    ck_assert_uint_eq(strlen(n), HM_AUTH_NONCE_LEN);
    hm_auth_nonce_make(&k, 42, 1001, n2);
    ck_assert_str_ne(n, n2);
    hm_auth_nonce_make(&k, 43, 1000, n2);
    ck_assert_str_ne(n, n2);
    uint64_t t = 0;
    ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 1000, hm_slice_cstr(n), &t), 0);
    ck_assert_uint_eq(t, 1000);
    ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 1300, hm_slice_cstr(n), NULL), 0);
    ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 1301, hm_slice_cstr(n), NULL), HM_ESTALE_NONCE);
    ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 999, hm_slice_cstr(n), NULL), HM_ESTALE_NONCE);
    ck_assert_int_eq(hm_auth_nonce_check(&k, 43, 1000, hm_slice_cstr(n), NULL), HM_EAUTHFAIL);
    ck_assert_int_eq(hm_auth_nonce_check(&k2, 42, 1000, hm_slice_cstr(n), NULL), HM_EAUTHFAIL);
    /* every single-character change is detected */
    for (size_t i = 0; i < HM_AUTH_NONCE_LEN; i++) {
        memcpy(n2, n, sizeof(n));
        n2[i] = n2[i] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 1000, hm_slice_cstr(n2), NULL),
                         HM_EAUTHFAIL);
    }
    ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 1000, hm_slice(n, 31), NULL), HM_EAUTHFAIL);
    ck_assert_int_eq(hm_auth_nonce_check(&k, 42, 1000, S("dcd98b7102dd2f0e8b11d0f600bfb0c0"),
                                         NULL), HM_EAUTHFAIL);
}
END_TEST

/* A CPE's Digest answer to our challenge, as a client library would build it. */
static void client_answer(char *out, size_t cap, const char *nonce, const char *nc,
                          const char *method, const char *uri, const char *password)
{
    char hdr[512], ha1[HM_AUTH_HEX_LEN + 1], resp[HM_AUTH_HEX_LEN + 1];
    snprintf(hdr, sizeof(hdr),
             "Digest username=\"000E8F-HeNB-0001\", realm=\"hems\", nonce=\"%s\", uri=\"%s\", "
             "qop=auth, nc=%s, cnonce=\"a1b2c3\", response=\"%032d\", opaque=\"o\"",
             nonce, uri, nc, 0);
    struct hm_auth_digest d;
    ck_assert_int_eq(hm_auth_digest_parse(hm_slice_cstr(hdr), &d), 0);
    hm_auth_ha1(S("000E8F-HeNB-0001"), S("hems"), hm_slice_cstr(password), ha1);
    hm_auth_digest_response(&d, ha1, hm_slice_cstr(method), resp);
    snprintf(out, cap,
             "Digest username=\"000E8F-HeNB-0001\", realm=\"hems\", nonce=\"%s\", uri=\"%s\", "
             "qop=auth, nc=%s, cnonce=\"a1b2c3\", response=\"%s\", opaque=\"o\"",
             nonce, uri, nc, resp);
}

static int verify(const char *hdr, const char *ha1, const struct hm_auth_nonce_key *k,
                  uint64_t conn, uint64_t now, struct hm_auth_nonce_state *st)
{
    struct hm_auth_digest d;
    int rc = hm_auth_digest_parse(hm_slice_cstr(hdr), &d);
    if (rc < 0)
        return rc;
    return hm_auth_digest_verify(&d, ha1, S("POST"), S("/cwmp"), k, conn, now, st);
}

START_TEST(exchange_forged_stale_replayed)
{
    struct hm_auth_nonce_key k;
    hm_auth_nonce_key_init(&k, secret, 300);
    struct hm_auth_nonce_state st = {0}, st2 = {0};
    char ha1[HM_AUTH_HEX_LEN + 1], nonce[HM_AUTH_NONCE_LEN + 1], hdr[512], chal[256];
    hm_auth_ha1(S("000E8F-HeNB-0001"), S("hems"), S("secret"), ha1);

    hm_auth_nonce_make(&k, 7, 5000, nonce);
    ssize_t cl = hm_auth_challenge(chal, sizeof(chal), S("hems"), hm_slice_cstr(nonce), S("o"),
                                   false);
    ck_assert_int_gt(cl, 0);
    ck_assert_uint_eq(strlen(chal), (size_t)cl);
    ck_assert(strncmp(chal, "Digest realm=\"hems\", qop=\"auth\", nonce=\"", 40) == 0);
    ck_assert(strstr(chal, ", opaque=\"o\", algorithm=MD5") != NULL);
    ck_assert_ptr_null(strstr(chal, "stale"));

    client_answer(hdr, sizeof(hdr), nonce, "00000001", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5010, &st), 0);
    /* replay of the same nc, and a lower one */
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5011, &st), HM_ESTALE_NONCE);
    client_answer(hdr, sizeof(hdr), nonce, "00000003", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5012, &st), 0);
    client_answer(hdr, sizeof(hdr), nonce, "00000002", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5012, &st), HM_ESTALE_NONCE);
    /* wrong password, wrong method, other uri, other connection */
    client_answer(hdr, sizeof(hdr), nonce, "00000009", "POST", "/cwmp", "guess");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5013, &st), HM_EAUTHFAIL);
    client_answer(hdr, sizeof(hdr), nonce, "00000009", "GET", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5013, &st), HM_EAUTHFAIL);
    client_answer(hdr, sizeof(hdr), nonce, "00000009", "POST", "/other", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5013, &st), HM_EAUTHFAIL);
    client_answer(hdr, sizeof(hdr), nonce, "00000009", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 8, 5013, &st2), HM_EAUTHFAIL);
    /* forged nonce: a right response computed over a nonce we never issued */
    client_answer(hdr, sizeof(hdr), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "00000001", "POST",
                  "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5013, &st), HM_EAUTHFAIL);
    /* expired: stale only when the response is right */
    client_answer(hdr, sizeof(hdr), nonce, "00000010", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5301, &st), HM_ESTALE_NONCE);
    client_answer(hdr, sizeof(hdr), nonce, "00000010", "POST", "/cwmp", "guess");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5301, &st), HM_EAUTHFAIL);
    cl = hm_auth_challenge(chal, sizeof(chal), S("hems"), hm_slice_cstr(nonce), S(""), true);
    ck_assert(strstr(chal, "algorithm=MD5, stale=true") != NULL);
    ck_assert_ptr_null(strstr(chal, "opaque"));

    /* tracker: two newer nonces push the first out; it cannot come back with nc=1 */
    char n2[HM_AUTH_NONCE_LEN + 1], n3[HM_AUTH_NONCE_LEN + 1];
    hm_auth_nonce_make(&k, 7, 5020, n2);
    hm_auth_nonce_make(&k, 7, 5030, n3);
    client_answer(hdr, sizeof(hdr), n2, "00000001", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5031, &st), 0);
    client_answer(hdr, sizeof(hdr), n3, "00000001", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5031, &st), 0);
    client_answer(hdr, sizeof(hdr), nonce, "00000100", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5032, &st), HM_ESTALE_NONCE);
    client_answer(hdr, sizeof(hdr), n2, "00000002", "POST", "/cwmp", "secret");
    ck_assert_int_eq(verify(hdr, ha1, &k, 7, 5032, &st), 0);

    ck_assert_int_eq(hm_auth_challenge(chal, 20, S("hems"), hm_slice_cstr(nonce), S(""), false),
                     -ENOSPC);
    cl = hm_auth_challenge(chal, sizeof(chal), S("a\"b"), S("n"), S(""), false);
    ck_assert(strncmp(chal, "Digest realm=\"a\\\"b\"", 19) == 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_add_test(tc, rfc2617_mufasa);
    tcase_add_test(tc, rfc7616_md5);
    tcase_add_test(tc, md5_sess_and_escapes);
    tcase_add_test(tc, digest_parse_errors);
    tcase_add_test(tc, basic);
    tcase_add_test(tc, nonces);
    tcase_add_test(tc, exchange_forged_stale_replayed);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
