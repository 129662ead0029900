/*
 * Pull tokenizer for SOAP envelopes: see proto/soap.h for the contract.
 *
 * The hot loops are memchr() for '<' in text and for the closing quote in attribute values
 * (both vectorised by glibc), and a 256-entry class table for names. Nothing is copied
 * unless a reference must be decoded.
 */
#include "proto/soap.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/bug.h"

/* ':' is deliberately not a name character: a QName is scanned as NCName [':' NCName]. */
enum { C_NAME = 1, C_START = 2, C_WS = 4, C_TSTOP = 8 };

static const uint8_t cls[256] = {
    ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS, [' '] = C_WS,
    ['<'] = C_TSTOP, ['&'] = C_TSTOP,
    ['-'] = C_NAME, ['.'] = C_NAME, ['_'] = C_NAME | C_START,
    ['0' ... '9'] = C_NAME,
    ['A' ... 'Z'] = C_NAME | C_START,
    ['a' ... 'z'] = C_NAME | C_START,
    [0x80 ... 0xff] = C_NAME | C_START,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

static const struct {
    const char *uri;
    size_t len;
    uint8_t ns;
} known_ns[] = {
#define NS(u, id) {u, sizeof(u) - 1, id}
    NS("http://schemas.xmlsoap.org/soap/envelope/", HM_NS_SOAPENV),
    NS("http://schemas.xmlsoap.org/soap/encoding/", HM_NS_SOAPENC),
    NS("urn:dslforum-org:cwmp-1-0", HM_NS_CWMP_1_0),
    NS("urn:dslforum-org:cwmp-1-1", HM_NS_CWMP_1_1),
    NS("urn:dslforum-org:cwmp-1-2", HM_NS_CWMP_1_2),
    NS("urn:dslforum-org:cwmp-1-3", HM_NS_CWMP_1_3),
    NS("urn:dslforum-org:cwmp-1-4", HM_NS_CWMP_1_4),
    NS("http://www.w3.org/2001/XMLSchema", HM_NS_XSD),
    NS("http://www.w3.org/2001/XMLSchema-instance", HM_NS_XSI),
#undef NS
};

static uint8_t intern_ns(struct hm_slice uri)
{
    if (!uri.len)
        return HM_NS_NONE;
    for (size_t i = 0; i < HM_ARRAY_SIZE(known_ns); i++)
        if (uri.len == known_ns[i].len && memcmp(uri.ptr, known_ns[i].uri, uri.len) == 0)
            return known_ns[i].ns;
    return HM_NS_OTHER;
}

char *hm_soap_arena_put(struct hm_soap_arena *a, const char *p, size_t n)
{
    if (!a || a->cap - a->lo - a->hi < n)
        return NULL;
    char *d = a->base + a->lo;
    if (n)
        memcpy(d, p, n);
    a->lo += n;
    return d;
}

static bool xml_char_ok(unsigned long c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

static size_t utf8_put(char *d, unsigned long c)
{
    if (c < 0x80) {
        d[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        d[0] = (char)(0xC0 | (c >> 6));
        d[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        d[0] = (char)(0xE0 | (c >> 12));
        d[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        d[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (c >> 18));
    d[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    d[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Decodes one reference at <s> (just after '&') up to <e>; writes to <d>. Returns the
 * number of input bytes consumed (through ';'), or 0 when invalid. */
static size_t decode_ref(const char *s, const char *e, char *d, size_t *wrote)
{
    const char *semi = memchr(s, ';', (size_t)HM_MIN(e - s, 12));
    if (!semi)
        return 0;
    size_t n = (size_t)(semi - s);
    if (n >= 2 && s[0] == '#') {
        unsigned long c = 0;
        if (s[1] == 'x') {
            if (n < 3)
                return 0;
            for (size_t i = 2; i < n; i++) {
                char ch = s[i];
                unsigned v;
                if (ch >= '0' && ch <= '9')
                    v = (unsigned)(ch - '0');
                else if (ch >= 'a' && ch <= 'f')
                    v = (unsigned)(ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'F')
                    v = (unsigned)(ch - 'A' + 10);
                else
                    return 0;
                c = c * 16 + v;
                if (c > 0x10FFFF)
                    return 0;
            }
        } else {
            for (size_t i = 1; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                    return 0;
                c = c * 10 + (unsigned)(s[i] - '0');
                if (c > 0x10FFFF)
                    return 0;
            }
        }
        if (!xml_char_ok(c))
            return 0;
        *wrote = utf8_put(d, c);
        return n + 1;
    }
    char ch;
    if (n == 2 && s[0] == 'l' && s[1] == 't')
        ch = '<';
    else if (n == 2 && s[0] == 'g' && s[1] == 't')
        ch = '>';
    else if (n == 3 && memcmp(s, "amp", 3) == 0)
        ch = '&';
    else if (n == 4 && memcmp(s, "quot", 4) == 0)
        ch = '"';
    else if (n == 4 && memcmp(s, "apos", 4) == 0)
        ch = '\'';
    else
        return 0;
    *d = ch;
    *wrote = 1;
    return n + 1;
}

int hm_soap_decode(struct hm_soap_arena *a, struct hm_slice in, struct hm_slice *out)
{
    const char *amp = in.len ? memchr(in.ptr, '&', in.len) : NULL;
    if (!amp) {
        *out = in;
        return 0;
    }
    /* A reference never decodes to more bytes than it is written with, so <in.len> bounds
     * the output and one capacity check suffices. */
    if (!a || a->cap - a->lo - a->hi < in.len)
        return HM_EXMLLIMIT;
    char *d0 = a->base + a->lo, *d = d0;
    const char *s = in.ptr, *e = in.ptr + in.len;
    while (amp) {
        size_t lit = (size_t)(amp - s);
        memcpy(d, s, lit);
        d += lit;
        size_t w = 0, used = decode_ref(amp + 1, e, d, &w);
        if (!used)
            return HM_EBADXML;
        d += w;
        s = amp + 1 + used;
        amp = memchr(s, '&', (size_t)(e - s));
    }
    memcpy(d, s, (size_t)(e - s));
    d += e - s;
    a->lo += (size_t)(d - d0);
    *out = hm_slice(d0, (size_t)(d - d0));
    return 0;
}

void hm_soap_init(struct hm_soap *p, const char *buf, size_t len, struct hm_soap_arena *arena,
                  const struct hm_soap_limits *lim)
{
    p->p = p->start = buf;
    p->end = buf + len;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        p->p += 3; /* UTF-8 byte order mark, which some CPEs send */
    p->arena = arena;
    p->lim = (struct hm_soap_limits){32, 65536, 256, 65536};
    if (lim) {
        if (lim->max_depth)
            p->lim.max_depth = HM_MIN(lim->max_depth, (uint32_t)HM_SOAP_MAX_DEPTH_CAP);
        if (lim->max_elements)
            p->lim.max_elements = lim->max_elements;
        if (lim->max_name)
            p->lim.max_name = lim->max_name;
        if (lim->max_text)
            p->lim.max_text = lim->max_text;
    }
    p->err = 0;
    p->nelem = 0;
    p->depth = 0;
    p->nns = 0;
    p->nsgen = 1;
    memset(p->nscache, 0, sizeof(p->nscache));
    p->pending_end = false;
    p->seen_root = false;
    p->done = false;
}

static inline const char *skip_ws(const char *q, const char *e)
{
    while (q < e && IS(*q, C_WS))
        q++;
    return q;
}

static inline const char *scan_ncname(const char *q, const char *e)
{
    while (e - q >= 4) {
        if (!IS(q[0], C_NAME))
            return q;
        if (!IS(q[1], C_NAME))
            return q + 1;
        if (!IS(q[2], C_NAME))
            return q + 2;
        if (!IS(q[3], C_NAME))
            return q + 3;
        q += 4;
    }
    while (q < e && IS(*q, C_NAME))
        q++;
    return q;
}

/* First '<' or '&' in [q, e), or e. Text runs in CWMP are mostly parameter names of 30 to
 * 100 bytes: 16 bytes per step pays off, a memchr() call per run does not. */
static inline const char *scan_text(const char *q, const char *e)
{
#ifdef __SSE2__
    const __m128i lt = _mm_set1_epi8('<'), amp = _mm_set1_epi8('&');
    while (e - q >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, amp)));
        if (m)
            return q + __builtin_ctz(m);
        q += 16;
    }
#endif
    while (q < e && !IS(*q, C_TSTOP))
        q++;
    return q;
}

/* Scans a QName at <q>; sets <prefix> (empty if none) and <local>. Returns the end or NULL
 * (error in *err). */
static const char *scan_qname(struct hm_soap *p, const char *q, struct hm_slice *qname,
                              struct hm_slice *prefix, struct hm_slice *local, int *err)
{
    const char *s = q, *e = p->end;
    if (q >= e || !IS(*q, C_START)) {
        *err = HM_EBADXML;
        return NULL;
    }
    q = scan_ncname(q + 1, e);
    if (q < e && *q == ':') {
        const char *l = q + 1;
        if (l >= e || !IS(*l, C_START)) {
            *err = HM_EBADXML;
            return NULL;
        }
        q = scan_ncname(l + 1, e);
        if (q < e && *q == ':') {
            *err = HM_EBADXML;
            return NULL;
        }
        *prefix = hm_slice(s, (size_t)(l - 1 - s));
        *local = hm_slice(l, (size_t)(q - l));
    } else {
        *prefix = hm_slice(NULL, 0);
        *local = hm_slice(s, (size_t)(q - s));
    }
    size_t n = (size_t)(q - s);
    if (n > p->lim.max_name) {
        *err = HM_EXMLLIMIT;
        return NULL;
    }
    *qname = hm_slice(s, n);
    return q;
}

/* Names are short: 8 bytes at a time beats a memcmp() call. */
static inline bool same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    for (; n >= 8; n -= 8, a += 8, b += 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return false;
    }
    for (; n; n--)
        if (*a++ != *b++)
            return false;
    return true;
}

static const struct hm_soap_nsdecl xml_ns = {
    {"xml", 3}, {"http://www.w3.org/XML/1998/namespace", 36}, HM_NS_OTHER};

/* Resolves <prefix> against the declarations in scope; NULL if unbound. For the empty
 * prefix returns the innermost default declaration or NULL (no namespace). Two cached
 * answers (the empty prefix and the last other prefix) hold until the declarations change:
 * a CWMP envelope declares everything on the root, so nearly every lookup hits. */
static const struct hm_soap_nsdecl *resolve(struct hm_soap *p, struct hm_slice prefix)
{
    struct hm_soap_nscache *c = &p->nscache[prefix.len != 0];
    if (c->gen == p->nsgen && c->prefix.len == prefix.len &&
        same_bytes(c->prefix.ptr, prefix.ptr, prefix.len))
        return c->decl;
    const struct hm_soap_nsdecl *d = NULL;
    for (int i = (int)p->nns - 1; i >= 0; i--)
        if (hm_slice_eq(p->ns[i].prefix, prefix)) {
            d = &p->ns[i];
            break;
        }
    if (!d && prefix.len == 3 && memcmp(prefix.ptr, "xml", 3) == 0)
        d = &xml_ns;
    *c = (struct hm_soap_nscache){prefix, d, p->nsgen};
    return d;
}

static int fail(struct hm_soap *p, int err)
{
    p->err = err;
    return err;
}

static int start_tag(struct hm_soap *p, struct hm_soap_tok *tok)
{
    const char *q = p->p + 1, *e = p->end;
    struct hm_slice qn, prefix, local;
    int err = 0;
    bool self_close = false;

    if (p->seen_root && p->depth == 0)
        return HM_EBADXML; /* a second root element */
    q = scan_qname(p, q, &qn, &prefix, &local, &err);
    if (!q)
        return err;
    if (p->depth >= p->lim.max_depth || p->nelem >= p->lim.max_elements)
        return HM_EXMLLIMIT;
    p->nelem++;

    uint8_t nsbase = p->nns;
    unsigned na = 0;
    for (;;) {
        const char *w = q;
        q = skip_ws(q, e);
        if (q >= e)
            return HM_EBADXML;
        if (*q == '>') {
            q++;
            break;
        }
        if (*q == '/') {
            if (q + 1 >= e || q[1] != '>')
                return HM_EBADXML;
            q += 2;
            self_close = true;
            break;
        }
        if (q == w)
            return HM_EBADXML; /* attributes must be separated by white space */
        struct hm_slice aqn, apfx, aloc, val;
        q = scan_qname(p, q, &aqn, &apfx, &aloc, &err);
        if (!q)
            return err;
        q = skip_ws(q, e);
        if (q >= e || *q != '=')
            return HM_EBADXML;
        q = skip_ws(q + 1, e);
        if (q >= e || (*q != '"' && *q != '\''))
            return HM_EBADXML;
        const char quote = *q, *vs = q + 1, *ve = vs;
        bool amp = false;
        for (;;) {
            ve = scan_text(ve, e);
            const char *qe = memchr(vs, quote, (size_t)(ve - vs));
            if (qe) {
                ve = qe;
                break;
            }
            if (ve >= e || *ve == '<')
                return HM_EBADXML; /* unterminated, or '<' inside a value */
            amp = true;
            ve++;
        }
        if ((size_t)(ve - vs) > p->lim.max_text)
            return HM_EXMLLIMIT;
        q = ve + 1;
        val = hm_slice(vs, (size_t)(ve - vs));
        if (amp) {
            err = hm_soap_decode(p->arena, val, &val);
            if (err)
                return err;
        }

        bool is_default = !apfx.len && hm_slice_eq_lit(aloc, "xmlns");
        if (is_default || hm_slice_eq_lit(apfx, "xmlns")) {
            if (p->nns >= HM_SOAP_MAX_NSDECL)
                return HM_EXMLLIMIT;
            if (!is_default && !val.len)
                return HM_EBADXML; /* xmlns:p="" is not allowed in XML 1.0 namespaces */
            p->nsgen++;
            p->ns[p->nns++] = (struct hm_soap_nsdecl){
                is_default ? hm_slice(NULL, 0) : aloc, val, intern_ns(val)};
            continue;
        }
        if (na >= HM_SOAP_MAX_ATTRS)
            return HM_EXMLLIMIT;
        /* The prefix waits in <uri> until every declaration on this tag is known. */
        p->attrs[na++] = (struct hm_soap_attr){aloc, apfx, val, HM_NS_NONE,
                                               hm_soap_name_lookup(aloc.ptr, aloc.len)};
    }

    const struct hm_soap_nsdecl *d = resolve(p, prefix);
    if (!d && prefix.len)
        return HM_EBADXML;
    for (unsigned i = 0; i < na; i++) {
        struct hm_soap_attr *a = &p->attrs[i];
        if (a->uri.len) {
            const struct hm_soap_nsdecl *ad = resolve(p, a->uri);
            if (!ad)
                return HM_EBADXML;
            a->uri = ad->uri;
            a->ns = ad->ns;
        }
        for (unsigned j = 0; j < i; j++)
            if (hm_slice_eq(p->attrs[j].local, a->local) && hm_slice_eq(p->attrs[j].uri, a->uri))
                return HM_EBADXML;
    }

    struct hm_soap_frame *f = &p->stack[p->depth++];
    f->qname = qn;
    f->local = local;
    f->uri = d ? d->uri : hm_slice(NULL, 0);
    f->ns = d ? d->ns : HM_NS_NONE;
    f->name = hm_soap_name_lookup(local.ptr, local.len);
    f->nsdecl_base = nsbase;
    p->seen_root = true;
    p->pending_end = self_close;
    p->p = q;

    tok->type = HM_SOAP_START;
    tok->ns = f->ns;
    tok->name = f->name;
    tok->depth = p->depth;
    tok->nattr = (uint16_t)na;
    tok->local = f->local;
    tok->uri = f->uri;
    tok->attrs = p->attrs;
    return 0;
}

static inline __attribute__((always_inline)) void pop(struct hm_soap *p,
                                                      struct hm_soap_tok *tok)
{
    struct hm_soap_frame *f = &p->stack[p->depth - 1];
    tok->type = HM_SOAP_END;
    tok->ns = f->ns;
    tok->name = f->name;
    tok->depth = p->depth;
    tok->nattr = 0;
    tok->local = f->local;
    tok->uri = f->uri;
    tok->attrs = NULL;
    if (p->nns != f->nsdecl_base) {
        p->nns = f->nsdecl_base;
        p->nsgen++;
    }
    p->depth--;
}

static int end_tag(struct hm_soap *p, struct hm_soap_tok *tok)
{
    const char *q = p->p + 2, *e = p->end;
    if (p->depth == 0)
        return HM_EBADXML;
    struct hm_slice qn = p->stack[p->depth - 1].qname;
    if ((size_t)(e - q) <= qn.len)
        return HM_EBADXML;
    if (!same_bytes(q, qn.ptr, qn.len))
        return HM_EBADXML;
    q += qn.len;
    if (*q != '>') {
        if (IS(*q, C_NAME) || *q == ':')
            return HM_EBADXML; /* </ab> for <a> */
        q = skip_ws(q, e);
        if (q >= e || *q != '>')
            return HM_EBADXML;
    }
    p->p = q + 1;
    pop(p, tok);
    return 0;
}

static bool starts(const char *q, const char *e, const char *lit, size_t n)
{
    return (size_t)(e - q) >= n && memcmp(q, lit, n) == 0;
}

/* Inlined into its single caller: one call level less per token. */
static inline __attribute__((always_inline)) int next(struct hm_soap *p, struct hm_soap_tok *tok)
{
    const char *e = p->end;
    if (p->pending_end) {
        p->pending_end = false;
        pop(p, tok);
        return 0;
    }
    for (;;) {
        const char *q = p->p;
        if (q >= e) {
            if (!p->seen_root || p->depth)
                return HM_EBADXML; /* empty or truncated document */
            p->done = true;
            tok->type = HM_SOAP_EOF;
            return 0;
        }
        if (*q != '<') {
            const char *te = scan_text(q, e);
            bool amp = te < e && *te == '&';
            if (amp) {
                const char *lt = memchr(te, '<', (size_t)(e - te));
                te = lt ? lt : e;
            }
            p->p = te;
            if (p->depth == 0) {
                if (skip_ws(q, te) != te)
                    return HM_EBADXML;
                continue;
            }
            if ((size_t)(te - q) > p->lim.max_text)
                return HM_EXMLLIMIT;
            tok->text = hm_slice(q, (size_t)(te - q));
            if (amp) {
                int err = hm_soap_decode(p->arena, tok->text, &tok->text);
                if (err)
                    return err;
            }
            tok->type = HM_SOAP_TEXT;
            tok->depth = p->depth;
            return 0;
        }
        if (q + 1 >= e)
            return HM_EBADXML;
        switch (q[1]) {
        case '/':
            return end_tag(p, tok);
        case '?': {
            const char *pe = memmem(q + 2, (size_t)(e - q - 2), "?>", 2);
            if (!pe)
                return HM_EBADXML;
            p->p = pe + 2;
            continue;
        }
        case '!':
            if (starts(q, e, "<!--", 4)) {
                const char *ce = memmem(q + 4, (size_t)(e - q - 4), "-->", 3);
                if (!ce)
                    return HM_EBADXML;
                p->p = ce + 3;
                continue;
            }
            if (starts(q, e, "<![CDATA[", 9)) {
                if (p->depth == 0)
                    return HM_EBADXML;
                const char *ds = q + 9;
                const char *de = memmem(ds, (size_t)(e - ds), "]]>", 3);
                if (!de)
                    return HM_EBADXML;
                if ((size_t)(de - ds) > p->lim.max_text)
                    return HM_EXMLLIMIT;
                p->p = de + 3;
                if (de == ds)
                    continue;
                tok->type = HM_SOAP_TEXT;
                tok->depth = p->depth;
                tok->text = hm_slice(ds, (size_t)(de - ds));
                return 0;
            }
            if (starts(q, e, "<!DOCTYPE", 9) || starts(q, e, "<!ENTITY", 8) ||
                starts(q, e, "<!ELEMENT", 9) || starts(q, e, "<!ATTLIST", 9))
                return HM_EXMLDTD;
            return HM_EBADXML;
        default:
            return start_tag(p, tok);
        }
    }
}

int hm_soap_next(struct hm_soap *p, struct hm_soap_tok *tok)
{
    if (HM_UNLIKELY(p->err))
        return p->err;
    if (p->done) {
        tok->type = HM_SOAP_EOF;
        return 0;
    }
    int err = next(p, tok);
    if (HM_UNLIKELY(err))
        p->err = err;
    return err;
}

int hm_soap_leaf_text(struct hm_soap *p, struct hm_slice *out)
{
    struct hm_soap_tok t;
    struct hm_soap_arena *a = p->arena;
    size_t pieces = 0, jend = 0;
    uint16_t d = p->depth;
    *out = hm_slice(NULL, 0);
    for (;;) {
        int err = hm_soap_next(p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            return 0;
        if (t.type != HM_SOAP_TEXT)
            return fail(p, HM_EBADSOAP);
        if (pieces++ == 0) {
            *out = t.text;
            continue;
        }
        /* Joining: the pieces so far end at <jend> in the arena; a decoded piece
         * was written at the arena's low mark, which is exactly jend. */
        if (!a)
            return fail(p, HM_EXMLLIMIT);
        if (pieces == 2) {
            /* Piece 2 may already sit in the arena (decoded); copying piece 1 after it and
             * then piece 2 again keeps the join contiguous at the cost of a few bytes. */
            char *c = hm_soap_arena_put(a, out->ptr, out->len);
            if (!c || !hm_soap_arena_put(a, t.text.ptr, t.text.len))
                return fail(p, HM_EXMLLIMIT);
            *out = hm_slice(c, out->len + t.text.len);
        } else {
            if (t.text.ptr != a->base + jend && !hm_soap_arena_put(a, t.text.ptr, t.text.len))
                return fail(p, HM_EXMLLIMIT);
            out->len += t.text.len;
        }
        jend = a->lo;
        if (out->len > p->lim.max_text)
            return fail(p, HM_EXMLLIMIT);
    }
}

int hm_soap_skip(struct hm_soap *p)
{
    struct hm_soap_tok t;
    uint16_t d = p->depth;
    for (;;) {
        int err = hm_soap_next(p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_END && t.depth == d)
            return 0;
    }
}

const struct hm_soap_attr *hm_soap_attr_find(const struct hm_soap_tok *tok, unsigned name)
{
    for (unsigned i = 0; i < tok->nattr; i++)
        if (tok->attrs[i].name == name)
            return &tok->attrs[i];
    return NULL;
}
