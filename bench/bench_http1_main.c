/*
 * bench-http1: parses a realistic CWMP POST head N times and reports ns per request.
 * Usage: bench-http1 [N]   (default 2000000). Also times the same head arriving in two
 * reads (-EAGAIN then complete, with prev_len), the Digest Authorization parse, a small
 * chunked body decode, and memmem() for the end of the head as a floor to compare with. Single thread; pin it with taskset for stable figures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bug.h"
#include "proto/auth.h"
#include "proto/http1.h"

static const char head[] =
    "POST /cwmp HTTP/1.1\r\n"
    "Host: acs.operator.example:7547\r\n"
    "User-Agent: HeNB-FAP/4.2.1 (TR-069; CWMP 1.4)\r\n"
    "Content-Type: text/xml; charset=\"utf-8\"\r\n"
    "Content-Length: 3217\r\n"
    "SOAPAction: \"urn:dslforum-org:cwmp-1-2#Inform\"\r\n"
    "Cookie: session=6f1c2b8e9d0a4f3b8c7d6e5f4a3b2c1d\r\n"
    "Authorization: Digest username=\"000E8F-FAP-HNB0001234\", realm=\"hems\", "
    "nonce=\"AAAAAGV2Y3Rmn8yLrKx0aQkH3kJmL2Qw\", uri=\"/cwmp\", qop=auth, nc=00000001, "
    "cnonce=\"0a4f113b9c8d7e6f\", response=\"6629fae49393a05397450978507c4ef1\", "
    "opaque=\"5ccc069c403ebaf9\", algorithm=MD5\r\n"
    "\r\n";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    if (n <= 0) {
        fprintf(stderr, "usage: bench-http1 [N]\n");
        return 2;
    }
    size_t len = sizeof(head) - 1;
    static struct hm_http_req req;
    volatile long sink = 0;

    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        ssize_t r = hm_http_parse_request(head, len, 0, &req, NULL);
        sink += r + (long)req.nheaders;
    }
    double t1 = now_ns();
    if (hm_http_parse_request(head, len, 0, &req, NULL) != (ssize_t)len)
        return 1;
    double whole = (t1 - t0) / (double)n;

    /* Floor for comparison: only finding the end of the head, as a framing-only proxy would. */
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        const char *volatile e = memmem(head + (i & 1), len - (i & 1), "\r\n\r\n", 4);
        sink += e != NULL;
    }
    t1 = now_ns();
    double floor_ns = (t1 - t0) / (double)n;

    size_t cut = len / 2;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        sink += hm_http_parse_request(head, cut, 0, &req, NULL);
        sink += hm_http_parse_request(head, len, cut, &req, NULL);
    }
    t1 = now_ns();
    double split = (t1 - t0) / (double)n;

    struct hm_auth_digest d;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        sink += hm_auth_digest_parse(req.authorization, &d) + (long)d.nc;
    t1 = now_ns();
    double auth = (t1 - t0) / (double)n;

    static const char body[] = "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n10;x=y\r\n0123456789abcdef\r\n"
                               "0\r\n\r\n";
    char buf[sizeof(body)];
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        struct hm_http_chunked c;
        hm_http_chunked_init(&c);
        memcpy(buf, body, sizeof(body) - 1);
        size_t l = sizeof(body) - 1;
        sink += hm_http_chunked_decode(&c, buf, &l, 1 << 20) + (long)l;
    }
    t1 = now_ns();
    double chunk = (t1 - t0) / (double)n;

    printf("head bytes          %zu (%zu fields)\n", len, req.nheaders);
    printf("parse whole head    %8.1f ns/request  %7.0f MB/s\n", whole, (double)len / whole * 1e3);
    printf("memmem CRLFCRLF     %8.1f ns/request  (floor; parse/floor = %.1fx)\n", floor_ns,
           whole / floor_ns);
    printf("parse in two reads  %8.1f ns/request\n", split);
    printf("digest parse        %8.1f ns/header\n", auth);
    printf("chunked decode      %8.1f ns/body (%zu bytes)\n", chunk, sizeof(body) - 1);
    printf("iterations          %ld (sink %ld)\n", n, (long)sink);
    return 0;
}
