/* PROXY protocol v1/v2 parser; see proto/proxy.h. */
#include "proto/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "core/bug.h"

static const char v2sig[12] = "\r\n\r\n\0\r\nQUIT\n";
static const char v1sig[6] = "PROXY ";

/* Parses a decimal port (1-5 digits, <= 65535). */
static bool parse_port(const char *p, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool parse_addr(int af, const char *p, size_t n, uint16_t port,
                       struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (af == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1;
}

static ssize_t parse_v1(const char *buf, size_t len, struct hm_proxy_hdr *h)
{
    size_t window = len < HM_PROXY_V1_MAX ? len : HM_PROXY_V1_MAX;
    const char *nl = memchr(buf, '\n', window);
    if (!nl)
        return len >= HM_PROXY_V1_MAX ? HM_EBADPROXY : -EAGAIN;
    size_t total = (size_t)(nl - buf) + 1;
    if (total < 8 || nl[-1] != '\r')
        return HM_EBADPROXY;
    const char *p = buf + sizeof(v1sig), *end = nl - 1;
    h->version = 1;

    /* fields: proto src dst sport dport, single spaces */
    const char *f[5];
    size_t fl[5], nf = 0;
    while (p < end && nf < 5) {
        const char *s = p;
        while (p < end && *p != ' ')
            p++;
        f[nf] = s;
        fl[nf++] = (size_t)(p - s);
        if (p < end)
            p++;
    }
    if (nf >= 1 && fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0) {
        h->unknown = true; /* the rest of the line is to be ignored */
        return (ssize_t)total;
    }
    if (nf != 5 || p != end || end[-1] == ' ' || fl[0] != 4)
        return HM_EBADPROXY;
    int af;
    if (memcmp(f[0], "TCP4", 4) == 0)
        af = AF_INET;
    else if (memcmp(f[0], "TCP6", 4) == 0)
        af = AF_INET6;
    else
        return HM_EBADPROXY;
    uint16_t sport, dport;
    if (!parse_port(f[3], fl[3], &sport) || !parse_port(f[4], fl[4], &dport) ||
        !parse_addr(af, f[1], fl[1], sport, &h->src) ||
        !parse_addr(af, f[2], fl[2], dport, &h->dst))
        return HM_EBADPROXY;
    return (ssize_t)total;
}

static ssize_t parse_v2(const unsigned char *b, size_t len, struct hm_proxy_hdr *h,
                        size_t max_len)
{
    if (len < 16)
        return -EAGAIN;
    unsigned ver = b[12] >> 4, cmd = b[12] & 15, fam = b[13] >> 4, proto = b[13] & 15;
    size_t body = (size_t)b[14] << 8 | b[15], total = 16 + body;
    if (ver != 2 || cmd > 1 || fam > 3 || proto > 2 || total > max_len)
        return HM_EBADPROXY;
    static const size_t addr_len[4] = {0, 12, 36, 216};
    if (cmd == 1 && body < addr_len[fam])
        return HM_EBADPROXY; /* LOCAL ignores the family, so its block may be anything */
    if (len < total)
        return -EAGAIN;
    h->version = 2;

    if (cmd == 0) {
        h->local = true;
        return (ssize_t)total;
    }
    if (fam == 0) {
        h->unknown = true; /* UNSPEC: the spec says to ignore the rest of the block */
        return (ssize_t)total;
    }
    /* TLVs must tile what follows the addresses exactly. */
    const unsigned char *t = b + 16 + addr_len[fam], *end = b + total;
    while (t < end) {
        if (end - t < 3)
            return HM_EBADPROXY;
        size_t tl = (size_t)t[1] << 8 | t[2];
        if ((size_t)(end - t - 3) < tl)
            return HM_EBADPROXY;
        t += 3 + tl;
    }

    if (proto != 1 || fam == 3) {
        h->unknown = true;
        return (ssize_t)total;
    }
    const unsigned char *a = b + 16;
    if (fam == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&h->src, *d = (struct sockaddr_in *)&h->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
    }
    return (ssize_t)total;
}

ssize_t hm_proxy_parse(const char *buf, size_t len, struct hm_proxy_hdr *h, size_t max_len)
{
    memset(h, 0, sizeof(*h));
    if (max_len == 0)
        max_len = HM_PROXY_V2_DEFAULT_MAX;
    if (len == 0)
        return -EAGAIN;
    if (buf[0] == 'P') {
        size_t n = len < sizeof(v1sig) ? len : sizeof(v1sig);
        if (memcmp(buf, v1sig, n) != 0)
            return HM_EBADPROXY;
        return n < sizeof(v1sig) ? -EAGAIN : parse_v1(buf, len, h);
    }
    size_t n = len < sizeof(v2sig) ? len : sizeof(v2sig);
    if (memcmp(buf, v2sig, n) != 0)
        return HM_EBADPROXY;
    return n < sizeof(v2sig) ? -EAGAIN : parse_v2((const unsigned char *)buf, len, h, max_len);
}
