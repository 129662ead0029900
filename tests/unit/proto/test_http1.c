#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "hm_check.h"
#include "proto/http1.h"

static const char cwmp_post[] =
    "POST /cwmp?sn=0001 HTTP/1.1\r\n"
    "Host: acs.example.net:7547\r\n"
    "User-Agent: easycwmp\r\n"
    "Content-Type: text/xml; charset=\"utf-8\"\r\n"
    "Content-Length: 1234\r\n"
    "SOAPAction: \r\n"
    "Cookie: session=abc123\r\n"
    "Authorization: Digest username=\"000E8F-HeNB-0001\", realm=\"hems\", nonce=\"n1\", "
    "uri=\"/cwmp\", response=\"0123456789abcdef0123456789abcdef\", qop=auth, nc=00000001, "
    "cnonce=\"c1\"\r\n"
    "Expect: 100-continue\r\n"
    "\r\n";

static const struct hm_http_limits lim = {8190, 16384, 64};

#define SL_EQ(s, lit) ck_assert_msg(hm_slice_eq_lit((s), lit), "got '%.*s'", (int)(s).len, (s).ptr)

static void check_cwmp_post(const struct hm_http_req *r)
{
    ck_assert_int_eq(r->method, HM_HTTP_POST);
    SL_EQ(r->method_str, "POST");
    SL_EQ(r->target, "/cwmp?sn=0001");
    SL_EQ(r->path, "/cwmp");
    SL_EQ(r->query, "sn=0001");
    ck_assert_int_eq(r->minor_version, 1);
    ck_assert_uint_eq(r->nheaders, 8);
    SL_EQ(r->headers[1].name, "User-Agent");
    SL_EQ(r->headers[1].value, "easycwmp");
    ck_assert_int_eq(r->content_length, 1234);
    ck_assert(!r->chunked);
    ck_assert(r->keep_alive);
    ck_assert(r->expect_continue);
    SL_EQ(r->host, "acs.example.net:7547");
    SL_EQ(r->content_type, "text/xml; charset=\"utf-8\"");
    SL_EQ(r->cookie, "session=abc123");
    ck_assert_ptr_nonnull(r->soapaction.ptr);
    ck_assert_uint_eq(r->soapaction.len, 0);
    ck_assert(memcmp(r->authorization.ptr + r->authorization.len - 11, "cnonce=\"c1\"", 11) == 0);
    ck_assert(memcmp(r->authorization.ptr, "Digest username=", 16) == 0);
    ck_assert_ptr_null(r->content_encoding.ptr);
    SL_EQ(hm_http_header_get(r, "user-agent"), "easycwmp");
    ck_assert_ptr_null(hm_http_header_get(r, "x-none").ptr);
}

static ssize_t parse(const char *s, struct hm_http_req *r)
{
    return hm_http_parse_request(s, strlen(s), 0, r, &lim);
}

START_TEST(whole_request)
{
    struct hm_http_req r;
    ssize_t n = parse(cwmp_post, &r);
    ck_assert_int_eq(n, (ssize_t)strlen(cwmp_post));
    check_cwmp_post(&r);
}
END_TEST

/* The request arriving in two and three reads gives the same result at every split. */
START_TEST(split_every_position)
{
    size_t len = strlen(cwmp_post);
    struct hm_http_req r;
    char buf[sizeof(cwmp_post)];
    for (size_t i = 0; i < len; i++) {
        memcpy(buf, cwmp_post, i);
        ck_assert_int_eq(hm_http_parse_request(buf, i, 0, &r, &lim), -EAGAIN);
        memcpy(buf + i, cwmp_post + i, len - i);
        ssize_t n = hm_http_parse_request(buf, len, i, &r, &lim);
        ck_assert_int_eq(n, (ssize_t)len);
        check_cwmp_post(&r);
    }
    for (size_t i = 0; i < len; i += 3) {
        for (size_t j = i; j < len; j += 2) {
            ck_assert_int_eq(hm_http_parse_request(cwmp_post, i, 0, &r, &lim), -EAGAIN);
            ck_assert_int_eq(hm_http_parse_request(cwmp_post, j, i, &r, &lim), -EAGAIN);
            ck_assert_int_eq(hm_http_parse_request(cwmp_post, len, j, &r, &lim), (ssize_t)len);
            check_cwmp_post(&r);
        }
    }
}
END_TEST

START_TEST(pipelined)
{
    const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                    "\r\nHEAD /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                    "DELETE /c HTTP/1.1\nHost: y\nConnection: close\n\n";
    size_t len = strlen(s), off = 0;
    struct hm_http_req r;
    ssize_t n = hm_http_parse_request(s, len, 0, &r, &lim);
    ck_assert_int_eq(n, 28);
    ck_assert_int_eq(r.method, HM_HTTP_GET);
    SL_EQ(r.path, "/a");
    ck_assert_uint_eq(r.query.len, 0);
    off += (size_t)n;
    n = hm_http_parse_request(s + off, len - off, 0, &r, &lim);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(r.method, HM_HTTP_HEAD);
    ck_assert_int_eq(r.minor_version, 0);
    ck_assert(r.keep_alive);
    ck_assert_int_eq(r.content_length, -1);
    off += (size_t)n;
    n = hm_http_parse_request(s + off, len - off, 0, &r, &lim);
    ck_assert_int_eq((size_t)n, len - off);
    ck_assert_int_eq(r.method, HM_HTTP_DELETE);
    ck_assert(!r.keep_alive);
    SL_EQ(r.host, "y");
}
END_TEST

START_TEST(methods_and_keepalive)
{
    static const struct {
        const char *m;
        enum hm_http_method e;
    } t[] = {{"GET", HM_HTTP_GET},         {"HEAD", HM_HTTP_HEAD},   {"POST", HM_HTTP_POST},
             {"PUT", HM_HTTP_PUT},         {"DELETE", HM_HTTP_DELETE},
             {"OPTIONS", HM_HTTP_OPTIONS}, {"PATCH", HM_HTTP_PATCH}, {"PROPFIND", HM_HTTP_OTHER},
             {"get", HM_HTTP_OTHER}};
    char buf[128];
    struct hm_http_req r;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: h\r\n\r\n", t[i].m);
        ck_assert_int_gt(parse(buf, &r), 0);
        ck_assert_int_eq(r.method, t[i].e);
    }
    ck_assert_int_gt(parse("GET / HTTP/1.0\r\n\r\n", &r), 0);
    ck_assert(!r.keep_alive);
    ck_assert_int_gt(parse("POST http://acs.example:7547/cwmp/x?a=b HTTP/1.1\r\nHost: h\r\n\r\n",
                           &r), 0);
    SL_EQ(r.path, "/cwmp/x");
    SL_EQ(r.query, "a=b");
    ck_assert_int_gt(parse("GET http://acs HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
    ck_assert_uint_eq(r.path.len, 0);
    ck_assert_int_gt(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &r), 0);
    SL_EQ(r.path, "*");
    ck_assert_int_eq(parse("GET cwmp HTTP/1.1\r\nHost: h\r\n\r\n", &r), HM_EBADHTTP);
    ck_assert_int_gt(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r), 0);
    ck_assert(r.keep_alive);
    ck_assert_int_gt(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &r), 0);
    ck_assert(!r.expect_continue);
    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, close\r\n\r\n", &r), 0);
    ck_assert(!r.keep_alive);
    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", &r), 0);
    ck_assert(r.keep_alive);
    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: h\r\nX-A:   padded  \t\r\n\r\n", &r), 0);
    SL_EQ(r.headers[1].value, "padded");
    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: h\r\nX-E:\r\n\r\n", &r), 0);
    ck_assert_uint_eq(r.headers[1].value.len, 0);
    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: h\r\nX-O: caf\xc3\xa9\r\n\r\n", &r), 0);
    ck_assert_int_gt(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &r),
                     0);
    ck_assert(r.chunked);
    ck_assert_int_eq(r.content_length, -1);
    ck_assert_int_gt(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                           "Content-Length: 5\r\nContent-Encoding: gzip\r\n\r\n", &r), 0);
    ck_assert_int_eq(r.content_length, 5);
    SL_EQ(r.content_encoding, "gzip");
}
END_TEST

START_TEST(obs_fold_and_bare_lf)
{
    struct hm_http_req r;
    const char *s = "GET / HTTP/1.1\nHost: h\nX-Long: part one\n  part two\nX-B: b\n\n";
    ck_assert_int_eq(parse(s, &r), (ssize_t)strlen(s));
    ck_assert_uint_eq(r.nheaders, 3);
    SL_EQ(r.headers[1].value, "part one\n  part two");
    SL_EQ(r.headers[2].value, "b");
    /* a fold cannot turn a framing header into something else */
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n 2\r\n\r\n", &r),
                     HM_ESMUGGLE);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\n folded: first\r\n\r\n", &r), HM_EBADHTTP);
}
END_TEST

START_TEST(malformed)
{
    static const char *bad[] = {
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",          /* white space before colon */
        "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\001b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", /* bare CR */
        "GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nNo-colon\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                      /* 1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTX/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: h\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1\rHost: h\r\n\r\n",
    };
    struct hm_http_req r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        ck_assert_msg(hm_http_parse_request(bad[i], len, 0, &r, &lim) == HM_EBADHTTP,
                      "case %zu", i);
    }
    /* a bad line is refused once complete, before the head ends; a partial one waits */
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nBad Name: x\r\n", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: a\001", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: a\r", &r), -EAGAIN);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: a\r\n\r", &r), -EAGAIN);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: a\r\n\rx", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("GET / HTTX", &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("GET / HTTP/2", &r), -EAGAIN);
    ck_assert_int_eq(parse("GET / HTTP/2.0\r\nHost: h\r\n\r\n", &r), HM_EHTTPVERSION);
    ck_assert_int_eq(parse("GET / HTTP/1.2\r\nHost: h\r\n\r\n", &r), HM_EHTTPVERSION);
    ck_assert_int_eq(parse("GET / HTTP/0.9\r\n\r\n", &r), HM_EHTTPVERSION);
}
END_TEST

START_TEST(smuggling)
{
    struct hm_http_req r;
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n", &r), HM_ESMUGGLE);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Length: 4\r\n\r\n", &r), HM_ESMUGGLE);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                           "Content-Length: 5\r\n\r\n", &r), HM_ESMUGGLE);
    static const char *cls[] = {"-1", "+4", "4 4", "0x10", "4,4", "", "1234567890123456789",
                                "4a"};
    char buf[256];
    for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
        snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n",
                 cls[i]);
        ck_assert_msg(parse(buf, &r) == HM_ESMUGGLE, "CL '%s'", cls[i]);
    }
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                           &r), HM_ENOTIMPL);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
                           &r), HM_ENOTIMPL);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
                           &r), HM_ENOTIMPL);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n", &r), HM_ESMUGGLE);
    ck_assert_int_eq(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &r),
                     HM_ESMUGGLE);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
                           &r), HM_EBADHTTP);
    ck_assert_int_eq(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\x0b" "4\r\n\r\n", &r),
                     HM_EBADHTTP);
}
END_TEST

START_TEST(limits)
{
    struct hm_http_limits l = {32, 200, 4};
    struct hm_http_req r;
    char buf[1024];

    /* request line: 32 bytes ok, 33 bytes is 414, complete or not */
    snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n", "aaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(strlen("GET /aaaaaaaaaaaaaaaaaa HTTP/1.1"), 32);
    ck_assert_int_gt(hm_http_parse_request(buf, strlen(buf), 0, &r, &l), 0);
    ck_assert_int_eq(hm_http_parse_request(buf, 33, 0, &r, &l), -EAGAIN); /* ends in \r */
    snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n", "aaaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(hm_http_parse_request(buf, strlen(buf), 0, &r, &l), HM_EURITOOLONG);
    ck_assert_int_eq(hm_http_parse_request(buf, 33, 0, &r, &l), HM_EURITOOLONG);
    ck_assert_int_eq(hm_http_parse_request(buf, 32, 0, &r, &l), -EAGAIN);
    memset(buf, 'a', 100);
    memcpy(buf, "GET /", 5);
    ck_assert_int_eq(hm_http_parse_request(buf, 100, 0, &r, &l), HM_EURITOOLONG);

    /* too many fields: complete and incomplete */
    const char *many = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    ck_assert_int_eq(hm_http_parse_request(many, strlen(many), 0, &r, &l), HM_EHDRTOOLARGE);
    ck_assert_int_eq(hm_http_parse_request(many, strlen(many) - 2, 0, &r, &l), HM_EHDRTOOLARGE);
    const char *four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    ck_assert_int_eq(hm_http_parse_request(four, strlen(four), 0, &r, &l), (ssize_t)strlen(four));

    /* head bytes: complete and incomplete */
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: %0180d\r\n\r\n",
                                0);
    ck_assert_int_gt(n, 200);
    ck_assert_int_eq(hm_http_parse_request(buf, n, 0, &r, &l), HM_EHDRTOOLARGE);
    ck_assert_int_eq(hm_http_parse_request(buf, 201, 0, &r, &l), HM_EHDRTOOLARGE);
    ck_assert_int_eq(hm_http_parse_request(buf, 200, 0, &r, &l), -EAGAIN);

    /* the header array ceiling holds whatever the limits say */
    struct hm_http_limits big = {8190, 1 << 20, 1000};
    size_t off = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < HM_HTTP_MAX_HEADERS; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "X:%d\r\n", i % 10);
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\r\n");
    ck_assert_int_eq(hm_http_parse_request(buf, off, 0, &r, &big), HM_EHDRTOOLARGE);
    ck_assert_int_eq(hm_http_parse_request(buf, off, 0, &r, NULL), HM_EHDRTOOLARGE);
}
END_TEST

START_TEST(status_and_reason)
{
    ck_assert_int_eq(hm_http_status_for_error(HM_EBADHTTP), 400);
    ck_assert_int_eq(hm_http_status_for_error(HM_ESMUGGLE), 400);
    ck_assert_int_eq(hm_http_status_for_error(HM_EBADCHUNK), 400);
    ck_assert_int_eq(hm_http_status_for_error(HM_EURITOOLONG), 414);
    ck_assert_int_eq(hm_http_status_for_error(HM_EHDRTOOLARGE), 431);
    ck_assert_int_eq(hm_http_status_for_error(HM_EBODYTOOLARGE), 413);
    ck_assert_int_eq(hm_http_status_for_error(HM_ENOTIMPL), 501);
    ck_assert_int_eq(hm_http_status_for_error(HM_EHTTPVERSION), 505);
    ck_assert_int_eq(hm_http_status_for_error(-12345), 400);
    static const int codes[] = {100, 200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404,
                                405, 408, 409, 411, 413, 414, 415, 416, 429, 431, 500, 501, 503,
                                505};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        ck_assert_str_ne(hm_http_reason(codes[i]), "Unknown");
    ck_assert_str_eq(hm_http_reason(404), "Not Found");
    ck_assert_str_eq(hm_http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(hm_http_reason(999), "Unknown");
}
END_TEST

/* ---- chunked ---- */

static const char chunked_body[] = "4;ext=\"v\"\r\nWiki\r\n"
                                   "5\r\npedia\r\n"
                                   "E ; name=value\r\n in\r\n\r\nchunks.\r\n"
                                   "0\r\n"
                                   "X-Trailer: yes\r\n"
                                   "\r\n"
                                   "NEXT";
static const char chunked_decoded[] = "Wikipedia in\r\n\r\nchunks.";

/* Feeds <src> in pieces cut at <cuts>, the way a connection would: decoded bytes are
 * appended to <out>, unconsumed input is kept in front of the next read. */
static ssize_t feed(const char *src, size_t len, const size_t *cuts, size_t ncuts, char *out,
                    size_t *outlen, uint64_t max)
{
    struct hm_http_chunked c;
    hm_http_chunked_init(&c);
    static char buf[65536];
    size_t have = 0, pos = 0;
    *outlen = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t upto = k < ncuts ? cuts[k] : len;
        memcpy(buf + have, src + pos, upto - pos);
        have += upto - pos;
        pos = upto;
        size_t l = have;
        ssize_t rc = hm_http_chunked_decode(&c, buf, &l, max);
        memcpy(out + *outlen, buf, l);
        *outlen += l;
        if (rc != -EAGAIN) {
            if (rc >= 0) {
                memmove(out + *outlen, buf + l, (size_t)rc);
                memcpy(out + *outlen + rc, src + pos, len - pos);
                return rc + (ssize_t)(len - pos);
            }
            return rc;
        }
        have = 0;
    }
    return -EAGAIN;
}

START_TEST(chunked_every_split)
{
    size_t len = strlen(chunked_body);
    char out[256];
    size_t outlen;
    ssize_t rc = feed(chunked_body, len, NULL, 0, out, &outlen, 1024);
    ck_assert_int_eq(rc, 4);
    ck_assert_uint_eq(outlen, strlen(chunked_decoded));
    ck_assert(memcmp(out, chunked_decoded, outlen) == 0);
    ck_assert(memcmp(out + outlen, "NEXT", 4) == 0);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            size_t cuts[2] = {i, j};
            rc = feed(chunked_body, len, cuts, 2, out, &outlen, 1024);
            ck_assert_int_eq(rc, 4);
            ck_assert_uint_eq(outlen, strlen(chunked_decoded));
            ck_assert(memcmp(out, chunked_decoded, outlen) == 0);
            ck_assert(memcmp(out + outlen, "NEXT", 4) == 0);
        }
    }
}
END_TEST

START_TEST(chunked_errors)
{
    static const char *bad[] = {
        "x\r\n",        "\r\n",           "4\r\nWikiX\r\n", "4\r\nWiki\n",  "4\nWiki\r\n",
        "4 x\r\n",      "4;\x01\r\n",     "-1\r\n",         "4\rX",         "0\r\nX: y\rZ",
        "0\r\n\rX",     "1000000000000000\r\n",
    };
    static char out[65536];
    size_t outlen;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(feed(bad[i], strlen(bad[i]), NULL, 0, out, &outlen, UINT64_MAX) ==
                          HM_EBADCHUNK, "case %zu", i);
    /* a 32 KiB extension or trailer section is refused, not buffered */
    static char big[40000];
    memset(big, 'e', sizeof(big) - 1);
    memcpy(big, "1;", 2);
    ck_assert_int_eq(feed(big, sizeof(big) - 1, NULL, 0, out, &outlen, 1024), HM_EBADCHUNK);
    memcpy(big, "0\r\nX: ", 6);
    ck_assert_int_eq(feed(big, sizeof(big) - 1, NULL, 0, out, &outlen, 1024), HM_EBADCHUNK);
    /* oversize: refused from the size line, before the data arrives */
    ck_assert_int_eq(feed("10\r\n", 4, NULL, 0, out, &outlen, 15), HM_EBODYTOOLARGE);
    ck_assert_int_eq(feed("8\r\n12345678\r\n8\r\n", 16, NULL, 0, out, &outlen, 15),
                     HM_EBODYTOOLARGE);
    ck_assert_int_eq(feed("8\r\n12345678\r\n7\r\n1234567\r\n0\r\n\r\n", 30, NULL, 0, out, &outlen,
                          15), 0);
    ck_assert_uint_eq(outlen, 15);
    ck_assert_int_eq(feed("4\r\nab", 5, NULL, 0, out, &outlen, 15), -EAGAIN);
    ck_assert_uint_eq(outlen, 2);
}
END_TEST

/* Property: random bodies in random chunkings, fed in random pieces, decode to the body. */
START_TEST(chunked_random)
{
    static char body[4096], enc[16384], out[16384];
    uint64_t x = 0x9e3779b97f4a7c15ull;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    for (int iter = 0; iter < 300; iter++) {
        size_t blen = RND() % sizeof(body), elen = 0;
        for (size_t i = 0; i < blen; i++)
            body[i] = (char)RND();
        for (size_t off = 0; off < blen;) {
            size_t k = 1 + RND() % 300;
            if (k > blen - off)
                k = blen - off;
            elen += (size_t)snprintf(enc + elen, sizeof(enc) - elen, "%zx%s\r\n", k,
                                     RND() % 4 ? "" : ";a=b");
            memcpy(enc + elen, body + off, k);
            elen += k;
            memcpy(enc + elen, "\r\n", 2);
            elen += 2;
            off += k;
        }
        elen += (size_t)snprintf(enc + elen, sizeof(enc) - elen, "0\r\n%s\r\nGET",
                                 RND() % 2 ? "T: v\r\n" : "");
        size_t cuts[8], nc = RND() % 8;
        for (size_t i = 0; i < nc; i++)
            cuts[i] = RND() % (elen + 1);
        for (size_t i = 1; i < nc; i++) /* insertion sort */
            for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        size_t outlen;
        ssize_t rc = feed(enc, elen, cuts, nc, out, &outlen, 1 << 20);
        ck_assert_int_eq(rc, 3);
        ck_assert_uint_eq(outlen, blen);
        ck_assert(memcmp(out, body, blen) == 0);
        ck_assert(memcmp(out + outlen, "GET", 3) == 0);
    }
#undef RND
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http1");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, whole_request);
    tcase_add_test(tc, split_every_position);
    tcase_add_test(tc, pipelined);
    tcase_add_test(tc, methods_and_keepalive);
    tcase_add_test(tc, obs_fold_and_bare_lf);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, smuggling);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, status_and_reason);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("chunked");
    tcase_add_test(tc2, chunked_every_split);
    tcase_add_test(tc2, chunked_errors);
    tcase_add_test(tc2, chunked_random);
    suite_add_tcase(s, tc2);
    return s;
}

HM_TEST_MAIN(suite)
