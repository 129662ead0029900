#include <errno.h>
#include <string.h>
#include <strings.h>

#include "bench/loadgen_http.h"

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static struct hm_slice trim(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return hm_slice(p, (size_t)(e - p));
}

/* 0..INT64_MAX decimal, nothing else; -1 when invalid. */
static int64_t parse_u63(struct hm_slice s)
{
    if (s.len == 0 || s.len > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        v = v * 10 + (s.ptr[i] - '0');
    }
    return v;
}

/* Does the comma-separated list <v> contain the token <tok> (case-insensitive)? */
static bool list_has(struct hm_slice v, const char *tok)
{
    size_t n = strlen(tok);
    const char *p = v.ptr, *e = v.ptr + v.len;
    while (p < e) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        if (!c)
            c = e;
        struct hm_slice t = trim(p, c);
        if (hm_slice_eq_lit_nocase(t, tok, n))
            return true;
        p = c + 1;
    }
    return false;
}

static int field(struct hm_lg_resp *r, struct hm_slice name, struct hm_slice value,
                 bool *te_seen)
{
    if (hm_slice_ieq(name, "content-length")) {
        int64_t v = parse_u63(value);
        if (v < 0)
            return HM_ESMUGGLE;
        if (r->content_length >= 0 && r->content_length != v)
            return HM_ESMUGGLE;
        r->content_length = v;
    } else if (hm_slice_ieq(name, "transfer-encoding")) {
        if (!hm_slice_ieq(value, "chunked"))
            return HM_ENOTIMPL;
        *te_seen = true;
    } else if (hm_slice_ieq(name, "connection")) {
        if (list_has(value, "close"))
            r->keep_alive = false;
        else if (list_has(value, "keep-alive"))
            r->keep_alive = true;
    } else if (hm_slice_ieq(name, "set-cookie")) {
        if (r->n_cookies < HM_LG_HTTP_MAX_COOKIES)
            r->set_cookie[r->n_cookies++] = value;
    } else if (hm_slice_ieq(name, "retry-after")) {
        int64_t v = parse_u63(value);
        if (v >= 0) { /* an HTTP-date is legal too; ignored, the backoff applies instead */
            r->has_retry_after = true;
            r->retry_after = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        }
    } else if (hm_slice_ieq(name, "content-type")) {
        r->content_type = value;
    } else if (hm_slice_ieq(name, "www-authenticate")) {
        /* several challenges (Basic and Digest): the Digest one, else the first */
        bool digest = value.len >= 7 && strncasecmp(value.ptr, "Digest ", 7) == 0;
        if (!r->www_authenticate.ptr || (digest && !r->www_auth_digest)) {
            r->www_authenticate = value;
            r->www_auth_digest = digest;
        }
    }
    return 0;
}

ssize_t hm_lg_http_parse_response(const char *buf, size_t len, struct hm_lg_resp *r)
{
    *r = (struct hm_lg_resp){.content_length = -1};
    const char *end = NULL;
    /* The head ends at the first CRLF CRLF; bare LF line ends are accepted too. */
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n') {
            end = buf + i + 2;
            break;
        }
        if (buf[i] == '\n' && buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n') {
            end = buf + i + 3;
            break;
        }
    }
    if (!end)
        return len > HM_LG_HTTP_MAX_HEAD ? HM_EHDRTOOLARGE : -EAGAIN;
    if ((size_t)(end - buf) > HM_LG_HTTP_MAX_HEAD)
        return HM_EHDRTOOLARGE;

    /* status-line = HTTP-version SP status-code SP [reason-phrase] */
    const char *p = buf;
    if (end - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        return HM_EBADHTTP;
    r->minor_version = p[7] - '0';
    r->keep_alive = r->minor_version == 1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return HM_EBADHTTP;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (r->status < 100)
        return HM_EBADHTTP;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || (eol - p > 12 && p[12] != ' ' && p[12] != '\r'))
        return HM_EBADHTTP;
    p = eol + 1;

    bool te = false;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        HM_BUG_ON(!eol); /* the head ends with an empty line */
        const char *le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (le == p)
            break; /* the empty line */
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p)
            return HM_EBADHTTP;
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return HM_EBADHTTP; /* also refuses obsolete line folding */
        int rc = field(r, hm_slice(p, (size_t)(colon - p)), trim(colon + 1, le), &te);
        if (rc)
            return rc;
        p = eol + 1;
    }

    if (te && r->content_length >= 0)
        return HM_ESMUGGLE;
    if (r->status < 200 || r->status == 204 || r->status == 304)
        r->body = HM_LG_BODY_NONE;
    else if (te)
        r->body = HM_LG_BODY_CHUNKED;
    else if (r->content_length >= 0)
        r->body = HM_LG_BODY_LENGTH;
    else {
        r->body = HM_LG_BODY_CLOSE;
        r->keep_alive = false;
    }
    return end - buf;
}

static bool cookie_name_eq(struct hm_slice a, struct hm_slice b)
{
    return hm_slice_eq(a, b);
}

/* Removes the pair named <name> from <jar>, if present. */
static void jar_remove(struct hm_lg_cookie_jar *jar, struct hm_slice name)
{
    size_t pos = 0;
    while (pos < jar->len) {
        const char *s = jar->buf + pos;
        const char *sep = memchr(s, ';', jar->len - pos);
        size_t plen = sep ? (size_t)(sep - s) : jar->len - pos;
        const char *eq = memchr(s, '=', plen);
        struct hm_slice n = hm_slice(s, eq ? (size_t)(eq - s) : plen);
        if (cookie_name_eq(n, name)) {
            /* drop the pair and the "; " that joins it to its neighbour */
            size_t from = pos, to = pos + plen;
            if (to < jar->len)
                to += 2;
            else if (from >= 2)
                from -= 2;
            memmove(jar->buf + from, jar->buf + to, jar->len - to);
            jar->len = (uint16_t)(jar->len - (to - from));
            return;
        }
        pos += plen + 2;
    }
}

int hm_lg_cookie_set(struct hm_lg_cookie_jar *jar, struct hm_slice sc)
{
    const char *p = sc.ptr, *e = sc.ptr + sc.len;
    const char *semi = memchr(p, ';', sc.len);
    const char *pe = semi ? semi : e;
    const char *eq = memchr(p, '=', (size_t)(pe - p));
    if (!eq)
        return HM_EBADHTTP;
    struct hm_slice name = trim(p, eq), value = trim(eq + 1, pe);
    if (name.len == 0)
        return HM_EBADHTTP;
    for (size_t i = 0; i < name.len; i++)
        if (!is_tchar((unsigned char)name.ptr[i]))
            return HM_EBADHTTP;
    for (size_t i = 0; i < value.len; i++)
        if ((unsigned char)value.ptr[i] < 0x21 || value.ptr[i] == ';' || value.ptr[i] == 0x7f)
            return HM_EBADHTTP;

    bool del = false;
    for (const char *a = semi; a && a < e;) {
        const char *next = memchr(a + 1, ';', (size_t)(e - a - 1));
        struct hm_slice attr = trim(a + 1, next ? next : e);
        if (hm_slice_ieq(attr, "max-age=0"))
            del = true;
        a = next;
    }

    struct hm_lg_cookie_jar old = *jar;
    jar_remove(jar, name);
    if (del)
        return 0;
    size_t need = name.len + 1 + value.len + (jar->len ? 2 : 0);
    if (jar->len + need > HM_LG_COOKIE_MAX) {
        *jar = old;
        return -ENOBUFS;
    }
    char *w = jar->buf + jar->len;
    if (jar->len) {
        memcpy(w, "; ", 2);
        w += 2;
    }
    memcpy(w, name.ptr, name.len);
    w += name.len;
    *w++ = '=';
    memcpy(w, value.ptr, value.len);
    jar->len = (uint16_t)(jar->len + need);
    return 0;
}

int hm_lg_http_parse_challenge(struct hm_slice v, struct hm_lg_challenge *c)
{
    *c = (struct hm_lg_challenge){0};
    const char *p = v.ptr, *e = v.ptr + v.len;
    if (v.len < 7 || strncasecmp(p, "digest", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return HM_EBADAUTH;
    p += 7;
    for (;;) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == e)
            break;
        const char *k = p;
        while (p < e && is_tchar((unsigned char)*p))
            p++;
        struct hm_slice key = hm_slice(k, (size_t)(p - k));
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (key.len == 0 || p == e || *p != '=')
            return HM_EBADAUTH;
        p++;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        struct hm_slice val;
        if (p < e && *p == '"') {
            const char *q = ++p;
            while (p < e && *p != '"') {
                if (*p == '\\')
                    return HM_EBADAUTH;
                p++;
            }
            if (p == e)
                return HM_EBADAUTH;
            val = hm_slice(q, (size_t)(p - q));
            p++;
        } else {
            const char *q = p;
            while (p < e && is_tchar((unsigned char)*p))
                p++;
            val = hm_slice(q, (size_t)(p - q));
        }
        if (hm_slice_ieq(key, "realm"))
            c->realm = val;
        else if (hm_slice_ieq(key, "nonce"))
            c->nonce = val;
        else if (hm_slice_ieq(key, "opaque"))
            c->opaque = val;
        else if (hm_slice_ieq(key, "stale"))
            c->stale = hm_slice_ieq(val, "true");
        else if (hm_slice_ieq(key, "qop")) {
            if (!list_has(val, "auth"))
                return HM_EBADAUTH;
            c->qop_auth = true;
        } else if (hm_slice_ieq(key, "algorithm")) {
            if (hm_slice_ieq(val, "md5-sess"))
                c->sess = true;
            else if (!hm_slice_ieq(val, "md5"))
                return HM_EBADAUTH;
        }
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p < e && *p != ',')
            return HM_EBADAUTH;
    }
    if (!c->realm.ptr || !c->nonce.len)
        return HM_EBADAUTH;
    return 0;
}
