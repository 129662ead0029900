#include <errno.h>
#include <string.h>

#include "bench/loadgen_http.h"
#include "core/err.h"
#include "hm_check.h"
#include "proto/http1.h"

static ssize_t parse(const char *s, struct hm_lg_resp *r)
{
    return hm_lg_http_parse_response(s, strlen(s), r);
}

START_TEST(content_length_response)
{
    struct hm_lg_resp r;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"
                    "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n"
                    "Set-Cookie: sid=abc123; Path=/; HttpOnly\r\nContent-Length: 42\r\n\r\nBODY";
    ck_assert_int_eq(parse(s, &r), (ssize_t)strlen(s) - 4);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.body, HM_LG_BODY_LENGTH);
    ck_assert_int_eq(r.content_length, 42);
    ck_assert(r.keep_alive);
    ck_assert_uint_eq(r.n_cookies, 1);
    ck_assert(hm_slice_eq_lit(r.set_cookie[0], "sid=abc123; Path=/; HttpOnly"));
    ck_assert(hm_slice_eq_lit(r.content_type, "text/xml; charset=\"utf-8\""));
    ck_assert(hm_slice_eq_lit(r.www_authenticate, "Digest realm=\"r\", nonce=\"n\""));
}
END_TEST

START_TEST(incomplete_heads_need_more)
{
    const char *s = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    struct hm_lg_resp r;
    for (size_t n = 0; n < strlen(s); n++)
        ck_assert_int_eq(hm_lg_http_parse_response(s, n, &r), -EAGAIN);
    ck_assert_int_eq(parse(s, &r), (ssize_t)strlen(s));
    ck_assert_int_eq(r.status, 204);
    ck_assert_int_eq(r.body, HM_LG_BODY_NONE);
    ck_assert(!r.keep_alive);
}
END_TEST

START_TEST(framing_rules)
{
    struct hm_lg_resp r;
    ck_assert_int_gt(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 0);
    ck_assert_int_eq(r.body, HM_LG_BODY_CHUNKED);
    ck_assert_int_gt(parse("HTTP/1.1 200 OK\r\n\r\n", &r), 0);
    ck_assert_int_eq(r.body, HM_LG_BODY_CLOSE);
    ck_assert(!r.keep_alive);
    ck_assert_int_gt(parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", &r), 0);
    ck_assert(!r.keep_alive);
    ck_assert_int_gt(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", &r), 0);
    ck_assert(r.keep_alive);
    ck_assert_int_gt(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", &r), 0);
    ck_assert_int_eq(r.body, HM_LG_BODY_NONE);
    ck_assert_int_gt(parse("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n", &r), 0);
    ck_assert(r.has_retry_after);
    ck_assert_uint_eq(r.retry_after, 120);
    ck_assert_int_gt(parse("HTTP/1.1 503 x\r\nRetry-After: Fri, 07 Nov 2026 10:00:00 GMT\r\n\r\n", &r), 0);
    ck_assert(!r.has_retry_after);
    ck_assert_int_gt(parse("HTTP/1.1 200 OK\nContent-Length: 3\n\n", &r), 0); /* bare LF */
    ck_assert_int_eq(r.content_length, 3);
    /* the same Content-Length twice is fine, two different ones are not */
    ck_assert_int_gt(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &r), 0);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", &r), HM_ESMUGGLE);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", &r), HM_ESMUGGLE);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &r), HM_ESMUGGLE);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &r), HM_ENOTIMPL);
}
END_TEST

START_TEST(malformed)
{
    struct hm_lg_resp r;
    ck_assert_int_eq(parse("HTTP/2.0 200 OK\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("HTTP/1.1 2x0 OK\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("HTTP/1.1 099 OK\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("HTTP/1.1 2000 OK\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_gt(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &r), 0); /* no reason */
    static char big[HM_LG_HTTP_MAX_HEAD + 100];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    ck_assert_int_eq(hm_lg_http_parse_response(big, sizeof(big) - 1, &r), HM_EHDRTOOLARGE);
}
END_TEST

START_TEST(chunked_body_with_proto_decoder)
{
    /* the engine decodes chunked bodies in place with proto/http1.h */
    char body[] = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
    struct hm_http_chunked ch;
    hm_http_chunked_init(&ch);
    size_t len = strlen(body);
    ck_assert_int_eq(hm_http_chunked_decode(&ch, body, &len, 1 << 20), 0);
    ck_assert_uint_eq(len, 12);
    ck_assert(memcmp(body, "hello, world", 12) == 0);
}
END_TEST

START_TEST(cookie_jar)
{
    struct hm_lg_cookie_jar jar = {0};
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("sid=1; Path=/")), 0);
    ck_assert(hm_slice_eq_lit(hm_lg_cookie_header(&jar), "sid=1"));
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("lb=node2")), 0);
    ck_assert(hm_slice_eq_lit(hm_lg_cookie_header(&jar), "sid=1; lb=node2"));
    /* same name replaces, wherever it sits */
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("sid=22; HttpOnly")), 0);
    ck_assert(hm_slice_eq_lit(hm_lg_cookie_header(&jar), "lb=node2; sid=22"));
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("lb=node3")), 0);
    ck_assert(hm_slice_eq_lit(hm_lg_cookie_header(&jar), "sid=22; lb=node3"));
    /* Max-Age=0 deletes */
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("sid=; Max-Age=0")), 0);
    ck_assert(hm_slice_eq_lit(hm_lg_cookie_header(&jar), "lb=node3"));
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("lb=x; max-age=0")), 0);
    ck_assert_uint_eq(jar.len, 0);
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("novalue")), HM_EBADHTTP);
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("=v")), HM_EBADHTTP);
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("a=b c")), HM_EBADHTTP);
    /* the jar keeps HM_LG_COOKIE_MAX bytes and refuses more, unchanged */
    char big[400];
    memset(big, 'v', sizeof(big));
    memcpy(big, "c1=", 3);
    ck_assert_int_eq(hm_lg_cookie_set(&jar, hm_slice(big, sizeof(big))), 0);
    memcpy(big, "c2=", 3);
    ck_assert_int_eq(hm_lg_cookie_set(&jar, hm_slice(big, sizeof(big))), -ENOBUFS);
    ck_assert_uint_eq(jar.len, 400);
    ck_assert_int_eq(hm_lg_cookie_set(&jar, HM_SLICE_LIT("c1=short")), 0);
    ck_assert(hm_slice_eq_lit(hm_lg_cookie_header(&jar), "c1=short"));
}
END_TEST

START_TEST(digest_challenge)
{
    struct hm_lg_challenge c;
    ck_assert_int_eq(hm_lg_http_parse_challenge(
                         HM_SLICE_LIT("Digest realm=\"hems\", qop=\"auth,auth-int\", "
                                      "nonce=\"AAAAZ2x-_q\", opaque=\"op\", algorithm=MD5"),
                         &c),
                     0);
    ck_assert(hm_slice_eq_lit(c.realm, "hems"));
    ck_assert(hm_slice_eq_lit(c.nonce, "AAAAZ2x-_q"));
    ck_assert(hm_slice_eq_lit(c.opaque, "op"));
    ck_assert(c.qop_auth && !c.sess && !c.stale);
    ck_assert_int_eq(hm_lg_http_parse_challenge(
                         HM_SLICE_LIT("digest nonce=abc,realm=\"\",stale=TRUE,algorithm=MD5-sess"),
                         &c),
                     0);
    ck_assert(c.stale && c.sess && !c.qop_auth);
    ck_assert_uint_eq(c.realm.len, 0);
    ck_assert_int_eq(hm_lg_http_parse_challenge(HM_SLICE_LIT("Basic realm=\"x\""), &c), HM_EBADAUTH);
    ck_assert_int_eq(hm_lg_http_parse_challenge(HM_SLICE_LIT("Digest realm=\"x\""), &c), HM_EBADAUTH);
    ck_assert_int_eq(hm_lg_http_parse_challenge(HM_SLICE_LIT("Digest realm=\"x\", nonce=\"n"), &c), HM_EBADAUTH);
    ck_assert_int_eq(hm_lg_http_parse_challenge(
                         HM_SLICE_LIT("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256"), &c),
                     HM_EBADAUTH);
    ck_assert_int_eq(hm_lg_http_parse_challenge(
                         HM_SLICE_LIT("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""), &c),
                     HM_EBADAUTH);
    ck_assert_int_eq(hm_lg_http_parse_challenge(HM_SLICE_LIT("Digest realm=\"x\" nonce=\"n\""), &c),
                     HM_EBADAUTH);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loadgen_http");
    TCase *tc = tcase_create("bench");
    tcase_add_test(tc, content_length_response);
    tcase_add_test(tc, incomplete_heads_need_more);
    tcase_add_test(tc, framing_rules);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, chunked_body_with_proto_decoder);
    tcase_add_test(tc, cookie_jar);
    tcase_add_test(tc, digest_challenge);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
