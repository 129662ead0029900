#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/err.h"
#include "hm_check.h"
#include "proto/proxy.h"

static const char v2sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* Every split: each strict prefix is -EAGAIN, the whole gives <want>. */
static void check_splits(const char *b, size_t n, ssize_t want, size_t max)
{
    struct hm_proxy_hdr h;
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(hm_proxy_parse(b, i, &h, max) == -EAGAIN, "prefix %zu", i);
    ck_assert_int_eq(hm_proxy_parse(b, n, &h, max), want);
}

static void expect_in4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
    char buf[INET_ADDRSTRLEN];
    ck_assert_int_eq(s->sin_family, AF_INET);
    ck_assert_str_eq(inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf)), ip);
    ck_assert_uint_eq(ntohs(s->sin_port), port);
}

static void expect_in6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
    char buf[INET6_ADDRSTRLEN];
    ck_assert_int_eq(s->sin6_family, AF_INET6);
    ck_assert_str_eq(inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf)), ip);
    ck_assert_uint_eq(ntohs(s->sin6_port), port);
}

START_TEST(v1_tcp4_tcp6_unknown)
{
    struct hm_proxy_hdr h;
    const char *a = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 7547\r\nPOST /";
    size_t hl = strlen("PROXY TCP4 192.0.2.1 198.51.100.7 56324 7547\r\n");
    check_splits(a, hl, (ssize_t)hl, 0);
    ck_assert_int_eq(hm_proxy_parse(a, strlen(a), &h, 0), (ssize_t)hl);
    ck_assert_int_eq(h.version, 1);
    ck_assert(!h.local && !h.unknown);
    expect_in4(&h.src, "192.0.2.1", 56324);
    expect_in4(&h.dst, "198.51.100.7", 7547);

    const char *b = "PROXY TCP6 2001:db8::1 2001:db8:0:1::ff 65535 0\r\n";
    check_splits(b, strlen(b), (ssize_t)strlen(b), 0);
    ck_assert_int_eq(hm_proxy_parse(b, strlen(b), &h, 0), (ssize_t)strlen(b));
    expect_in6(&h.src, "2001:db8::1", 65535);
    expect_in6(&h.dst, "2001:db8:0:1::ff", 0);

    const char *c = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    ck_assert_int_eq(hm_proxy_parse(c, strlen(c), &h, 0), (ssize_t)strlen(c));
    ck_assert(h.unknown);
    ck_assert_int_eq(hm_proxy_parse("PROXY UNKNOWN\r\n", 15, &h, 0), 15);
    ck_assert(h.unknown);

    /* the longest legal line is 107 bytes */
    const char *lng = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ck_assert_uint_eq(strlen(lng), 104);
    ck_assert_int_eq(hm_proxy_parse(lng, strlen(lng), &h, 0), 104);
}
END_TEST

START_TEST(v1_malformed)
{
    static const char *bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 7547\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 7547 \r\n",
        "PROXY TCP4  192.0.2.1 198.51.100.7 56324 7547\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 65536 7547\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 -1 7547\r\n",
        "PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n",
        "PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n",
        "PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
        "PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n",
        "PROXY \r\n",
        "PROXYTCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
        "POST /cwmp HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\n",
        "\x16\x03\x01\x02\x00",
    };
    struct hm_proxy_hdr h;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(hm_proxy_parse(bad[i], strlen(bad[i]), &h, 0) == HM_EBADPROXY, "case %zu",
                      i);
    /* a wrong signature fails at its first byte, without waiting */
    ck_assert_int_eq(hm_proxy_parse("PO", 2, &h, 0), HM_EBADPROXY);
    ck_assert_int_eq(hm_proxy_parse("\x16", 1, &h, 0), HM_EBADPROXY);
    ck_assert_int_eq(hm_proxy_parse("\r\n\r\n\0\r\nQUIX", 12, &h, 0), HM_EBADPROXY);
    /* no CRLF within 107 bytes */
    char big[200];
    memset(big, '1', sizeof(big));
    memcpy(big, "PROXY UNKNOWN ", 14);
    ck_assert_int_eq(hm_proxy_parse(big, 106, &h, 0), -EAGAIN);
    ck_assert_int_eq(hm_proxy_parse(big, 107, &h, 0), HM_EBADPROXY);
    ck_assert_int_eq(hm_proxy_parse(big, sizeof(big), &h, 0), HM_EBADPROXY);
    memcpy(big + 105, "\r\n", 2);
    ck_assert_int_eq(hm_proxy_parse(big, sizeof(big), &h, 0), 107);
}
END_TEST

static size_t v2(unsigned char *b, unsigned vercmd, unsigned famproto, const void *body,
                 size_t n)
{
    memcpy(b, v2sig, 12);
    b[12] = (unsigned char)vercmd;
    b[13] = (unsigned char)famproto;
    b[14] = (unsigned char)(n >> 8);
    b[15] = (unsigned char)n;
    memcpy(b + 16, body, n);
    return 16 + n;
}

START_TEST(v2_inet_inet6_local)
{
    unsigned char b[600], body[300];
    struct hm_proxy_hdr h;
    /* IPv4 + a TLV (PP2_TYPE_AUTHORITY "acs") + PP2_TYPE_NOOP of 0 bytes */
    const unsigned char a4[] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x1d, 0x7b,
                                0x02, 0x00, 0x03, 'a', 'c', 's', 0x04, 0x00, 0x00};
    size_t n = v2(b, 0x21, 0x11, a4, sizeof(a4));
    check_splits((const char *)b, n, (ssize_t)n, 0);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), (ssize_t)n);
    ck_assert_int_eq(h.version, 2);
    expect_in4(&h.src, "192.0.2.1", 56324);
    expect_in4(&h.dst, "198.51.100.7", 7547);

    memset(body, 0, 36);
    inet_pton(AF_INET6, "2001:db8::1", body);
    inet_pton(AF_INET6, "2001:db8::2", body + 16);
    body[32] = 0x1d, body[33] = 0x7b, body[34] = 0x01, body[35] = 0xbb;
    n = v2(b, 0x21, 0x21, body, 36);
    check_splits((const char *)b, n, (ssize_t)n, 0);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), (ssize_t)n);
    expect_in6(&h.src, "2001:db8::1", 7547);
    expect_in6(&h.dst, "2001:db8::2", 443);

    n = v2(b, 0x20, 0x00, body, 0);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n + 5, &h, 0), 16);
    ck_assert(h.local);
    n = v2(b, 0x20, 0x11, body, 5); /* LOCAL ignores the family and its block */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), 21);
    ck_assert(h.local);
    n = v2(b, 0x21, 0x00, body, 7);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), 23);
    ck_assert(h.unknown && !h.local);
    n = v2(b, 0x21, 0x12, a4, 12); /* DGRAM */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), 28);
    ck_assert(h.unknown);
    memset(body, 0, 216);
    n = v2(b, 0x21, 0x31, body, 216); /* UNIX */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), 232);
    ck_assert(h.unknown);
}
END_TEST

START_TEST(v2_malformed)
{
    unsigned char b[70000], body[64] = {0};
    struct hm_proxy_hdr h;
    size_t n;
    n = v2(b, 0x11, 0x11, body, 12); /* version 1 */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    n = v2(b, 0x22, 0x11, body, 12); /* command 2 */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    n = v2(b, 0x21, 0x41, body, 12); /* family 4 */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    n = v2(b, 0x21, 0x13, body, 12); /* protocol 3 */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    n = v2(b, 0x21, 0x11, body, 11); /* short IPv4 block: refused before it completes */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, 16, &h, 0), HM_EBADPROXY);
    n = v2(b, 0x21, 0x21, body, 35);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    /* TLVs that overrun, or leave a fragment */
    unsigned char t1[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x02, 0x00, 0x05, 'a'};
    n = v2(b, 0x21, 0x11, t1, sizeof(t1));
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    unsigned char t2[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x02, 0x00};
    n = v2(b, 0x21, 0x11, t2, sizeof(t2));
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    unsigned char t3[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0xff, 0xff, 0xff};
    n = v2(b, 0x21, 0x11, t3, sizeof(t3));
    ck_assert_int_eq(hm_proxy_parse((const char *)b, n, &h, 0), HM_EBADPROXY);
    /* length over the bound is refused from the fixed part, without waiting for 64 KiB */
    memcpy(b, v2sig, 12);
    b[12] = 0x21, b[13] = 0x11, b[14] = 0xff, b[15] = 0xff;
    ck_assert_int_eq(hm_proxy_parse((const char *)b, 16, &h, 0), HM_EBADPROXY);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, 16, &h, 65551), -EAGAIN);
    memset(b + 16, 0, 65535);
    b[16 + 12] = 0x04, b[16 + 13] = 0xff, b[16 + 14] = 0xf0; /* one NOOP TLV filling it */
    ck_assert_int_eq(hm_proxy_parse((const char *)b, 65551, &h, 65551), 65551);
    ck_assert_int_eq(hm_proxy_parse((const char *)b, 65551, &h, 65550), HM_EBADPROXY);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_add_test(tc, v1_tcp4_tcp6_unknown);
    tcase_add_test(tc, v1_malformed);
    tcase_add_test(tc, v2_inet_inet6_local);
    tcase_add_test(tc, v2_malformed);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
