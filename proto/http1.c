/*
 * HTTP/1.x request-head parser and chunked decoder. See proto/http1.h for the contract and
 * docs/http.md for the design (one validating pass that treats the end of input as -EAGAIN;
 * after an -EAGAIN, a memchr search for the end of the head in the new bytes first; SSE2 or
 * SWAR scans for control characters in values).
 */
#include "proto/http1.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/bug.h"

const struct hm_http_limits hm_http_limits_default = {
    .max_request_line = 8190,
    .max_head_bytes = 16384,
    .max_headers = HM_HTTP_MAX_HEADERS,
};

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~" / DIGIT / ALPHA */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Non-zero iff some byte of <x> is < n (n <= 128) or equals 0x7f (DEL). */
static inline uint64_t word_has_below_or_del(uint64_t x, uint64_t n)
{
    uint64_t below = (x - ONES * n) & ~x & HIGHS;
    uint64_t y = x ^ (ONES * 0x7f);
    return below | ((y - ONES) & ~y & HIGHS);
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/*
 * Case-insensitive compare of <p,n> with <lit,ln>, a literal of lower-case letters and '-'.
 * OR-ing 0x20 lower-cases letters; for tchar input no other byte can turn into a letter or
 * '-' that way (only CR would map to '-', and CR is not in a name or token we compare), so
 * 8 bytes are compared per step.
 */
static inline bool ieq(const char *p, size_t n, const char *lit, size_t ln)
{
    if (n != ln)
        return false;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if ((load64(p + i) | (ONES * 0x20)) != load64(lit + i))
            return false;
    for (; i < n; i++)
        if (((unsigned char)p[i] | 0x20) != (unsigned char)lit[i])
            return false;
    return true;
}
#define IEQ(p, n, lit) ieq((p), (n), lit, sizeof(lit) - 1)

/*
 * Offset just past the empty line that ends the head, searching from <from>; 0 if absent.
 * Accepts CRLF and bare LF line ends.
 */
static size_t find_head_end(const char *buf, size_t len, size_t from)
{
    const char *p = buf + from, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl + 1 >= end)
            return 0;
        if (nl[1] == '\n')
            return (size_t)(nl + 2 - buf);
        if (nl[1] == '\r') {
            if (nl + 2 >= end)
                return 0;
            if (nl[2] == '\n')
                return (size_t)(nl + 3 - buf);
        }
        p = nl + 1;
    }
    return 0;
}

static int check_incomplete_limits(const char *buf, size_t len, size_t skip,
                                   const struct hm_http_limits *lim, size_t max_headers)
{
    const char *line = buf + skip;
    size_t avail = len - skip;
    size_t window = HM_MIN(avail, lim->max_request_line + 2);
    const char *nl = memchr(line, '\n', window);
    if (!nl && avail > lim->max_request_line &&
        (avail >= lim->max_request_line + 2 || line[lim->max_request_line] != '\r'))
        return HM_EURITOOLONG;
    if (nl) {
        size_t rl = (size_t)(nl - line);
        if (rl && line[rl - 1] == '\r')
            rl--;
        if (rl > lim->max_request_line)
            return HM_EURITOOLONG;
    }
    if (len > lim->max_head_bytes)
        return HM_EHDRTOOLARGE;
    /* Header lines so far: every '\n' after the request line's starts one. */
    if (nl && max_headers != SIZE_MAX) {
        size_t lines = 0;
        const char *p = nl + 1, *end = buf + len;
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            if (++lines > max_headers)
                return HM_EHDRTOOLARGE;
            p++;
        }
    }
    return -EAGAIN;
}

static enum hm_http_method method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0)
            return HM_HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0)
            return HM_HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "POST", 4) == 0)
            return HM_HTTP_POST;
        if (memcmp(m, "HEAD", 4) == 0)
            return HM_HTTP_HEAD;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0)
            return HM_HTTP_PATCH;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0)
            return HM_HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0)
            return HM_HTTP_OPTIONS;
        break;
    }
    return HM_HTTP_OTHER;
}

/* Parses the request line at <p>; returns the position after its line end, or NULL + *err. */
static const char *parse_request_line(const char *p, const char *end, struct hm_http_req *req,
                                      const struct hm_http_limits *lim, int *err)
{
    const char *start = p;
    while (p < end && tchar[(unsigned char)*p])
        p++;
    if (p == end)
        goto again;
    if (p == start || *p != ' ')
        goto bad;
    req->method_str = hm_slice(start, (size_t)(p - start));
    req->method = method_of(start, (size_t)(p - start));
    p++;

    const char *t = p;
    while (p + 8 <= end && !word_has_below_or_del(load64(p), 0x21))
        p += 8;
    while (p < end && (unsigned char)*p > 0x20 && *p != 0x7f)
        p++;
    if (p == end)
        goto again;
    if (p == t || *p != ' ')
        goto bad;
    req->target = hm_slice(t, (size_t)(p - t));
    const char *q = memchr(t, '?', (size_t)(p - t));
    const char *pe = q ? q : p, *ps = t;
    if (*t != '/' && *t != '*') {
        /* absolute-form (RFC 9112 3.2.2): the path starts at the first '/' after "//" */
        const char *auth = memchr(t, ':', (size_t)(pe - t));
        if (!auth || pe - auth < 3 || auth[1] != '/' || auth[2] != '/')
            goto bad;
        const char *slash = memchr(auth + 3, '/', (size_t)(pe - auth - 3));
        ps = slash ? slash : pe;
    }
    req->path = hm_slice(ps, (size_t)(pe - ps));
    req->query = q ? hm_slice(q + 1, (size_t)(p - q - 1)) : hm_slice(NULL, 0);
    p++;

    if (end - p < 8) {
        if (memcmp(p, "HTTP/", HM_MIN((size_t)(end - p), (size_t)5)) != 0)
            goto bad;
        goto again;
    }
    if (memcmp(p, "HTTP/", 5) != 0)
        goto bad;
    if (p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
        goto bad;
    bool v1x = p[5] == '1' && (p[7] == '0' || p[7] == '1');
    req->minor_version = p[7] - '0';
    p += 8;
    if (p < end && *p == '\r')
        p++;
    if (p == end)
        goto again;
    if (*p != '\n')
        goto bad;
    size_t rl = (size_t)(p - start);
    if (p[-1] == '\r')
        rl--;
    if (rl > lim->max_request_line) {
        *err = HM_EURITOOLONG;
        return NULL;
    }
    if (!v1x) {
        *err = HM_EHTTPVERSION;
        return NULL;
    }
    return p + 1;
again:
    *err = -EAGAIN;
    return NULL;
bad:
    *err = HM_EBADHTTP;
    return NULL;
}

/*
 * Scans a field value starting at <p> up to its line end. Returns the position of the CR or
 * LF ending it, <end> if the input ends first (a CR as the last byte included), or NULL if
 * it holds a control character (HTAB excepted) or a bare CR.
 * Values are most of a head's bytes: x86-64 always has SSE2, so 16 bytes are tested per
 * step; elsewhere 8-byte SWAR. Either stops at the first suspicious byte, and the byte loop
 * decides.
 */
static inline const char *scan_value(const char *p, const char *end)
{
    for (;;) {
#ifdef __SSE2__
        const __m128i lim = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, lim), v),
                                       _mm_cmpeq_epi8(v, del));
            unsigned m = (unsigned)_mm_movemask_epi8(bad);
            if (m) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
        }
#endif
        while (p + 8 <= end && !word_has_below_or_del(load64(p), 0x20))
            p += 8;
        for (int i = 0; i < 8 && p < end; i++, p++) {
            unsigned char c = (unsigned char)*p;
            if (c >= 0x20 && c != 0x7f)
                continue;
            if (c == '\t')
                continue;
            if (c == '\n')
                return p;
            if (c == '\r')
                return p + 1 == end ? end : p[1] == '\n' ? p : NULL;
            return NULL;
        }
        if (p >= end)
            return end;
    }
}

static int parse_content_length(struct hm_slice v, int64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return HM_ESMUGGLE;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned char)v.ptr[i] - '0';
        if (d > 9)
            return HM_ESMUGGLE;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* "Connection" is a comma-separated token list; only close and keep-alive matter. */
static void parse_connection(struct hm_slice v, bool *close, bool *keep)
{
    const char *p = v.ptr, *end = v.ptr + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *t = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (IEQ(t, (size_t)(p - t), "close"))
            *close = true;
        else if (IEQ(t, (size_t)(p - t), "keep-alive"))
            *keep = true;
    }
}

struct derive {
    bool seen_cl, seen_te, seen_host, conn_close, conn_keep;
};

static int derive_header(struct hm_http_req *req, struct derive *d, const char *n, size_t nl,
                         struct hm_slice v)
{
    int rc;
    switch (lower((unsigned char)n[0])) {
    case 'a':
        if (IEQ(n, nl, "authorization") && !req->authorization.ptr)
            req->authorization = v;
        break;
    case 'c':
        if (IEQ(n, nl, "content-length")) {
            int64_t cl;
            if ((rc = parse_content_length(v, &cl)) < 0)
                return rc;
            if (d->seen_cl && cl != req->content_length)
                return HM_ESMUGGLE;
            d->seen_cl = true;
            req->content_length = cl;
        } else if (IEQ(n, nl, "content-type")) {
            if (!req->content_type.ptr)
                req->content_type = v;
        } else if (IEQ(n, nl, "connection")) {
            parse_connection(v, &d->conn_close, &d->conn_keep);
        } else if (IEQ(n, nl, "cookie")) {
            if (!req->cookie.ptr)
                req->cookie = v;
        } else if (IEQ(n, nl, "content-encoding")) {
            if (!req->content_encoding.ptr)
                req->content_encoding = v;
        }
        break;
    case 'e':
        if (IEQ(n, nl, "expect") && IEQ(v.ptr, v.len, "100-continue"))
            req->expect_continue = true;
        break;
    case 'h':
        if (IEQ(n, nl, "host")) {
            if (d->seen_host)
                return HM_EBADHTTP; /* RFC 9112 3.2: more than one Host is a 400 */
            d->seen_host = true;
            req->host = v;
        }
        break;
    case 's':
        if (IEQ(n, nl, "soapaction") && !req->soapaction.ptr)
            req->soapaction = v;
        break;
    case 't':
        if (IEQ(n, nl, "transfer-encoding")) {
            if (d->seen_te)
                return HM_ESMUGGLE;
            d->seen_te = true;
            if (!IEQ(v.ptr, v.len, "chunked"))
                return HM_ENOTIMPL;
            req->chunked = true;
        }
        break;
    }
    return 0;
}

ssize_t hm_http_parse_request(const char *buf, size_t len, size_t prev_len,
                              struct hm_http_req *req, const struct hm_http_limits *lim)
{
    if (!lim)
        lim = &hm_http_limits_default;
    size_t max_headers = HM_MIN(lim->max_headers, (size_t)HM_HTTP_MAX_HEADERS);

    /* RFC 9112 2.2: ignore empty lines before the request line (left over after a body). */
    size_t skip = 0;
    while (skip < len && (buf[skip] == '\r' || buf[skip] == '\n'))
        skip++;
    if (skip > lim->max_head_bytes)
        return HM_EHDRTOOLARGE;
    if (skip == len)
        return -EAGAIN;

    /*
     * A head that has not ended within the limit is refused anyway: scan no further. After
     * an -EAGAIN, look for the end of the head in the new bytes before parsing again.
     */
    size_t scan = HM_MIN(len, lim->max_head_bytes + 3);
    if (prev_len) {
        size_t from = prev_len > skip + 3 ? prev_len - 3 : skip;
        if (from >= scan || !find_head_end(buf, scan, from))
            return check_incomplete_limits(buf, len, skip, lim, max_headers);
    }

    memset(req, 0, offsetof(struct hm_http_req, headers));
    req->content_length = -1;
    req->chunked = req->expect_continue = req->keep_alive = false;
    req->host = req->content_type = req->authorization = req->cookie = req->soapaction =
        req->content_encoding = hm_slice(NULL, 0);

    /* One pass that treats running out of input as -EAGAIN (picohttpparser's approach). */
    int err = 0;
    const char *end = buf + scan;
    const char *p = parse_request_line(buf + skip, end, req, lim, &err);
    if (!p)
        goto fail;

    struct derive d = {0};
    struct hm_http_header *last = NULL;
    size_t n = 0;
    for (;;) {
        if (p == end)
            goto again;
        if (*p == '\n')
            break; /* the empty line */
        if (*p == '\r') {
            if (p + 1 == end)
                goto again;
            if (p[1] == '\n')
                break;
            return HM_EBADHTTP;
        }
        if (*p == ' ' || *p == '\t') {
            /* obs-fold (RFC 9112 5.2): the continuation joins the previous value. */
            if (!last)
                return HM_EBADHTTP;
            const char *e = scan_value(p, end);
            if (!e)
                return HM_EBADHTTP;
            if (e == end)
                goto again;
            const char *ve = e;
            while (ve > p && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve > p)
                last->value.len = (size_t)(ve - last->value.ptr);
            p = e + (*e == '\r' ? 2 : 1);
            continue;
        }
        const char *name = p;
        while (end - p >= 4 && tchar[(unsigned char)p[0]] && tchar[(unsigned char)p[1]] &&
               tchar[(unsigned char)p[2]] && tchar[(unsigned char)p[3]])
            p += 4;
        while (p < end && tchar[(unsigned char)*p])
            p++;
        if (p == end)
            goto again;
        if (p == name || *p != ':')
            return HM_EBADHTTP; /* includes white space before the colon */
        size_t name_len = (size_t)(p - name);
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = scan_value(p, end);
        if (!e)
            return HM_EBADHTTP;
        if (e == end)
            goto again;
        const char *ve = e;
        while (ve > p && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (n >= max_headers)
            return HM_EHDRTOOLARGE;
        last = &req->headers[n++];
        last->name = hm_slice(name, name_len);
        last->value = hm_slice(p, (size_t)(ve - p));
        p = e + (*e == '\r' ? 2 : 1);
    }
    size_t head_end = (size_t)(p + (*p == '\r' ? 2 : 1) - buf);
    if (head_end > lim->max_head_bytes)
        return HM_EHDRTOOLARGE;
    req->nheaders = n;

    /* Derived fields after the loop so that an obs-fold continuation is included. */
    for (size_t i = 0; i < n; i++) {
        int rc = derive_header(req, &d, req->headers[i].name.ptr, req->headers[i].name.len,
                               req->headers[i].value);
        if (rc < 0)
            return rc;
    }
    if (d.seen_te && (d.seen_cl || req->minor_version == 0))
        return HM_ESMUGGLE; /* RFC 9112 6.1 and 6.3 */
    if (req->minor_version == 1 && !d.seen_host)
        return HM_EBADHTTP; /* RFC 9112 3.2 */
    req->keep_alive = req->minor_version == 1 ? !d.conn_close : (d.conn_keep && !d.conn_close);
    if (req->minor_version == 0)
        req->expect_continue = false; /* RFC 9110 10.1.1: ignore it from HTTP/1.0 */
    return (ssize_t)head_end;

again:
    err = -EAGAIN;
fail:
    /* The parse counted complete fields against max_headers already. */
    if (err == -EAGAIN)
        return check_incomplete_limits(buf, len, skip, lim, SIZE_MAX);
    return err;
}

struct hm_slice hm_http_header_get(const struct hm_http_req *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name.len == nl &&
            strncasecmp(req->headers[i].name.ptr, name, nl) == 0)
            return req->headers[i].value;
    return hm_slice(NULL, 0);
}

/* ---- chunked transfer coding (RFC 9112 7.1) ---- */

enum {
    CH_SIZE = 0,   /* hex digits of the chunk size */
    CH_SIZE_WS,    /* BWS after the digits */
    CH_EXT,        /* chunk extension, skipped */
    CH_SIZE_LF,    /* CR seen, LF expected */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_BOL, /* start of a trailer line or of the final empty line */
    CH_TRAILER,     /* inside a trailer field, skipped */
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
};

#define CH_MAX_LINE 4096 /* bytes of chunk extension or trailer section we skip */

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

ssize_t hm_http_chunked_decode(struct hm_http_chunked *c, char *buf, size_t *len,
                               uint64_t max_body)
{
    size_t in = 0, out = 0, n = *len;
    ssize_t ret = -EAGAIN;

    while (in < n) {
        unsigned char ch = (unsigned char)buf[in];
        switch (c->state) {
        case CH_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (c->hex_digits >= 15)
                    goto bad; /* over 2^60: not a body we would accept anyway */
                c->remaining = c->remaining * 16 + (unsigned)h;
                c->hex_digits++;
                in++;
                break;
            }
            if (c->hex_digits == 0)
                goto bad;
            if (c->total + c->remaining > max_body) {
                ret = HM_EBODYTOOLARGE;
                goto out;
            }
            c->state = CH_SIZE_WS;
            c->hex_digits = 0; /* from here: bytes of extension seen */
            break;
        }
        case CH_SIZE_WS:
            if (ch == ' ' || ch == '\t') {
                in++;
            } else if (ch == ';') {
                c->state = CH_EXT;
                in++;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
                in++;
            } else {
                goto bad;
            }
            break;
        case CH_EXT:
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f || ++c->hex_digits > CH_MAX_LINE) {
                goto bad;
            }
            in++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto bad;
            in++;
            c->hex_digits = 0;
            if (c->remaining == 0) {
                c->state = CH_TRAILER_BOL;
            } else {
                c->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t k = (size_t)HM_MIN((uint64_t)(n - in), c->remaining);
            if (out != in)
                memmove(buf + out, buf + in, k);
            out += k;
            in += k;
            c->remaining -= k;
            c->total += k;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                goto bad;
            c->state = CH_DATA_LF;
            in++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_SIZE;
            in++;
            break;
        case CH_TRAILER_BOL:
            if (ch == '\r') {
                c->state = CH_END_LF;
                in++;
                break;
            }
            c->state = CH_TRAILER;
            break;
        case CH_TRAILER:
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                goto bad;
            if (++c->hex_digits > CH_MAX_LINE)
                goto bad;
            in++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_TRAILER_BOL;
            in++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                goto bad;
            c->state = CH_DONE;
            in++;
            break;
        case CH_DONE:
            goto done;
        default:
            goto bad;
        }
        if (c->state == CH_DONE)
            goto done;
    }
    if (c->state == CH_DONE)
        goto done;
    goto out;

done:
    if (in < n && out != in)
        memmove(buf + out, buf + in, n - in);
    ret = (ssize_t)(n - in);
    goto out;
bad:
    ret = HM_EBADCHUNK;
out:
    *len = out;
    return ret;
}

int hm_http_status_for_error(int err)
{
    switch (err) {
    case HM_EURITOOLONG:
        return 414;
    case HM_EHDRTOOLARGE:
        return 431;
    case HM_EBODYTOOLARGE:
        return 413;
    case HM_ENOTIMPL:
        return 501;
    case HM_EHTTPVERSION:
        return 505;
    case HM_EAUTHFAIL:
    case HM_ESTALE_NONCE:
        return 401;
    case HM_EOVERLOAD:
        return 503;
    case -ETIMEDOUT:
        return 408;
    default:
        return 400;
    }
}

const char *hm_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
