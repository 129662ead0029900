#include <string.h>
#include <strings.h>

#include "proto/multipart.h"

enum {
    S_PREAMBLE = 0,
    S_AB,      /* just after a delimiter: "--", padding or CRLF follows */
    S_AB_DASH, /* one '-' of the closing "--" seen */
    S_AB_PAD,  /* transport padding (LWSP) before CRLF */
    S_AB_LF,   /* CR seen, LF expected */
    S_HEADERS,
    S_DATA,
    S_EPILOGUE,
};

static bool is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("'()+_,-./:=? ", c) != NULL);
}

static struct hm_slice trim(struct hm_slice s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t'))
        s.ptr++, s.len--;
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Next ';'-separated parameter of <*rest>: name and (unquoted) value. Quoted values may
 * hold ';'. When <writable> (the bytes are ours) quoted-pair escapes are undone in place;
 * the output never overtakes the input. Returns false at the end or on a malformed
 * parameter (*bad set). */
static bool next_param(struct hm_slice *rest, bool writable, struct hm_slice *name,
                       struct hm_slice *val, bool *bad)
{
    const char *s = rest->ptr, *e = rest->ptr + rest->len;
    while (s < e && (*s == ' ' || *s == '\t' || *s == ';'))
        s++;
    if (s == e)
        return false;
    const char *eq = s;
    while (eq < e && *eq != '=' && *eq != ';')
        eq++;
    if (eq == e || *eq != '=') {
        *bad = true;
        return false;
    }
    *name = trim(hm_slice(s, (size_t)(eq - s)));
    const char *v = eq + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    if (v < e && *v == '"') {
        const char *q = v + 1;
        char *out = writable ? (char *)q : NULL;
        char *o = out;
        for (; q < e && *q != '"'; q++) {
            if (*q == '\\' && q + 1 < e)
                q++;
            if (o)
                *o++ = *q;
        }
        if (q == e) {
            *bad = true;
            return false;
        }
        *val = out ? hm_slice(out, (size_t)(o - out)) : hm_slice(v + 1, (size_t)(q - v - 1));
        s = q + 1;
    } else {
        const char *q = v;
        while (q < e && *q != ';')
            q++;
        *val = trim(hm_slice(v, (size_t)(q - v)));
        s = q;
    }
    rest->len = (size_t)(e - s);
    rest->ptr = s;
    return true;
}

int hm_mp_boundary(struct hm_slice ct, struct hm_slice *out)
{
    if (!ct.ptr)
        return HM_EBADHTTP;
    const char *semi = memchr(ct.ptr, ';', ct.len);
    struct hm_slice type = trim(hm_slice(ct.ptr, semi ? (size_t)(semi - ct.ptr) : ct.len));
    if (type.len < 10 || strncasecmp(type.ptr, "multipart/", 10) != 0 || !semi)
        return HM_EBADHTTP;
    struct hm_slice rest = hm_slice(semi, ct.len - (size_t)(semi - ct.ptr));
    struct hm_slice name, val;
    bool bad = false;
    while (next_param(&rest, false, &name, &val, &bad)) {
        if (!hm_slice_ieq(name, "boundary"))
            continue;
        if (val.len == 0 || val.len > HM_MP_MAX_BOUNDARY || val.ptr[val.len - 1] == ' ')
            return HM_EBADHTTP;
        for (size_t i = 0; i < val.len; i++)
            if (!is_bchar((unsigned char)val.ptr[i]))
                return HM_EBADHTTP;
        *out = val;
        return 0;
    }
    return HM_EBADHTTP;
}

int hm_mp_init(struct hm_mp *m, struct hm_slice content_type, unsigned max_parts, hm_mp_cb cb,
               void *arg)
{
    struct hm_slice b;
    memset(m, 0, offsetof(struct hm_mp, hdr));
    int rc = hm_mp_boundary(content_type, &b);
    if (rc)
        return m->err = rc;
    m->cb = cb;
    m->arg = arg;
    m->max_parts = max_parts ? max_parts : HM_MP_DEFAULT_MAX_PARTS;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, b.ptr, b.len);
    m->dlen = 4 + b.len;
    m->state = S_PREAMBLE;
    /* The first delimiter may open the body with no CRLF before it: start as if the CRLF
     * had been seen. */
    m->match = 2;
    return 0;
}

static int fail(struct hm_mp *m, int err)
{
    if (!m->err)
        m->err = err;
    return m->err;
}

static int call(struct hm_mp *m, enum hm_mp_event ev, struct hm_slice data)
{
    int rc = m->cb ? m->cb(m->arg, ev, &m->part, data) : 0;
    return rc < 0 ? fail(m, rc) : 0;
}

static int parse_headers(struct hm_mp *m)
{
    memset(&m->part, 0, sizeof m->part);
    m->part.index = m->nparts - 1;
    size_t i = 0;
    while (i < m->hlen) {
        char *ln = m->hdr + i;
        char *nl = memchr(ln, '\n', m->hlen - i);
        size_t n = nl ? (size_t)(nl - ln) : m->hlen - i;
        i += n + 1;
        if (n && ln[n - 1] == '\r')
            n--;
        if (n == 0 || ln[0] == ' ' || ln[0] == '\t') /* the end, or obsolete folding */
            continue;
        char *colon = memchr(ln, ':', n);
        if (!colon || colon == ln)
            return fail(m, HM_EBADHTTP);
        struct hm_slice name = hm_slice(ln, (size_t)(colon - ln));
        struct hm_slice val = trim(hm_slice(colon + 1, n - (size_t)(colon + 1 - ln)));
        if (hm_slice_ieq(name, "Content-Type")) {
            m->part.content_type = val;
        } else if (hm_slice_ieq(name, "Content-Disposition")) {
            const char *semi = memchr(val.ptr, ';', val.len);
            if (!semi)
                continue;
            struct hm_slice rest = hm_slice(semi, val.len - (size_t)(semi - val.ptr));
            struct hm_slice pn, pv;
            bool bad = false;
            while (next_param(&rest, true, &pn, &pv, &bad)) { /* hdr is ours */
                if (hm_slice_ieq(pn, "name"))
                    m->part.name = pv;
                else if (hm_slice_ieq(pn, "filename"))
                    m->part.filename = pv;
            }
            if (bad)
                return fail(m, HM_EBADHTTP);
        }
    }
    return 0;
}

/* Appends header bytes up to and including the blank line; returns bytes used. */
static size_t headers(struct hm_mp *m, const char *d, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(d + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (d + i)) + 1 : len - i;
        if (m->hlen + n > sizeof m->hdr) {
            fail(m, HM_EHDRTOOLARGE);
            return len;
        }
        memcpy(m->hdr + m->hlen, d + i, n);
        m->hlen += n;
        i += n;
        if (!nl)
            break;
        size_t ll = m->hlen - m->hline; /* the line just completed, with its LF */
        m->hline = m->hlen;
        if (ll == 1 || (ll == 2 && m->hdr[m->hlen - 2] == '\r')) {
            if (parse_headers(m) == 0 && call(m, HM_MP_PART_BEGIN, hm_slice(NULL, 0)) == 0) {
                m->in_part = true;
                m->state = S_DATA;
                m->match = 0;
            }
            break;
        }
    }
    return i;
}

int hm_mp_feed(struct hm_mp *m, const void *data, size_t len)
{
    const char *d = data;
    size_t i = 0;
    while (i < len && !m->err) {
        switch (m->state) {
        case S_PREAMBLE:
        case S_DATA: {
            bool out = m->state == S_DATA;
            if (m->match == 0) {
                /* No delimiter can start before the next CR: pass the run through. */
                const char *cr = memchr(d + i, '\r', len - i);
                size_t end = cr ? (size_t)(cr - d) : len;
                if (out && end > i && call(m, HM_MP_PART_DATA, hm_slice(d + i, end - i)))
                    break;
                i = end;
                if (cr) {
                    m->match = 1;
                    i++;
                }
                break;
            }
            if (d[i] == m->delim[m->match]) {
                i++;
                if (++m->match == m->dlen) {
                    m->match = 0;
                    if (out) {
                        m->in_part = false;
                        if (call(m, HM_MP_PART_END, hm_slice(NULL, 0)))
                            break;
                    }
                    m->state = S_AB;
                }
                break;
            }
            /* Mismatch: the held bytes were data. '\r' occurs in the delimiter only at its
             * start, so no shorter restart exists inside them; re-examine d[i] afresh. */
            if (out && m->match && call(m, HM_MP_PART_DATA, hm_slice(m->delim, m->match)))
                break;
            m->match = 0;
            break;
        }
        case S_AB:
            if (d[i] == '-')
                m->state = S_AB_DASH;
            else if (d[i] == '\r')
                m->state = S_AB_LF;
            else if (d[i] == ' ' || d[i] == '\t')
                m->state = S_AB_PAD;
            else
                return fail(m, HM_EBADHTTP);
            i++;
            break;
        case S_AB_DASH:
            if (d[i++] != '-')
                return fail(m, HM_EBADHTTP);
            m->state = S_EPILOGUE;
            break;
        case S_AB_PAD:
            if (d[i] == '\r')
                m->state = S_AB_LF;
            else if (d[i] != ' ' && d[i] != '\t')
                return fail(m, HM_EBADHTTP);
            i++;
            break;
        case S_AB_LF:
            if (d[i++] != '\n')
                return fail(m, HM_EBADHTTP);
            if (m->nparts == m->max_parts)
                return fail(m, HM_EBODYTOOLARGE);
            m->nparts++;
            m->hlen = m->hline = 0;
            m->state = S_HEADERS;
            break;
        case S_HEADERS:
            i += headers(m, d + i, len - i);
            break;
        case S_EPILOGUE:
            i = len;
            break;
        }
    }
    return m->err;
}

int hm_mp_finish(struct hm_mp *m)
{
    if (m->err)
        return m->err;
    return m->state == S_EPILOGUE ? 0 : fail(m, HM_EBADHTTP);
}
