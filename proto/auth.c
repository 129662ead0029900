/*
 * HTTP Digest/Basic authentication: parsing, MD5 request-digests, stateless HMAC nonces.
 * BoringSSL supplies MD5, HMAC-SHA256, base64 (Basic), CRYPTO_memcmp and RAND_bytes.
 */
#include "proto/auth.h"

#include <string.h>

#include <openssl/base64.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include "core/bug.h"

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool ieq(const char *p, size_t n, const char *lit)
{
    size_t ln = strlen(lit);
    if (n != ln)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

/* Byte classes: bit 0 tchar, bit 1 bare value byte, bit 2 qdtext (RFC 9110 5.6.4). */
enum { C_TCHAR = 1, C_BARE = 2, C_QDTEXT = 4 };
static unsigned char cls[256];

__attribute__((constructor)) static void cls_init(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c && strchr("!#$%&'*+-.^_`|~", c)))
            k |= C_TCHAR;
        if (c > 0x20 && c < 0x7f && c != ',' && c != '"' && c != '\\')
            k |= C_BARE;
        if (c == '\t' || (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f))
            k |= C_QDTEXT;
        cls[c] = k;
    }
}

static inline bool is_tchar(unsigned char c)
{
    return cls[c] & C_TCHAR;
}

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Unquoted directive values: tokens, but clients also send uri=/x and base64 nonces bare. */
static inline bool is_bare(unsigned char c)
{
    return cls[c] & C_BARE;
}

/* Splits "<scheme> <rest>"; returns the scheme length, *rest after the white space. */
static size_t scheme_split(struct hm_slice v, struct hm_slice *rest)
{
    size_t i = 0;
    while (i < v.len && is_tchar((unsigned char)v.ptr[i]))
        i++;
    size_t j = i;
    while (j < v.len && is_ws(v.ptr[j]))
        j++;
    *rest = hm_slice(v.ptr + j, v.len - j);
    return (j > i || j == v.len) ? i : 0;
}

enum hm_auth_scheme hm_auth_scheme_of(struct hm_slice value)
{
    struct hm_slice rest;
    size_t n = scheme_split(value, &rest);
    if (value.len == 0)
        return HM_AUTH_NONE;
    if (ieq(value.ptr, n, "digest"))
        return HM_AUTH_DIGEST;
    if (ieq(value.ptr, n, "basic"))
        return HM_AUTH_BASIC;
    return HM_AUTH_OTHER;
}

static const char *const field_names[HM_AUTH_F_COUNT] = {
    [HM_AUTH_F_USERNAME] = "username", [HM_AUTH_F_REALM] = "realm",
    [HM_AUTH_F_NONCE] = "nonce",       [HM_AUTH_F_URI] = "uri",
    [HM_AUTH_F_RESPONSE] = "response", [HM_AUTH_F_QOP] = "qop",
    [HM_AUTH_F_NC] = "nc",             [HM_AUTH_F_CNONCE] = "cnonce",
    [HM_AUTH_F_OPAQUE] = "opaque",     [HM_AUTH_F_ALGORITHM] = "algorithm",
};

/* Directive name to field, or -1: dispatch on the first letter, then one compare. */
static int field_of(const char *k, size_t n)
{
    int f;
    switch (lower((unsigned char)k[0])) {
    case 'u': f = n == 3 ? HM_AUTH_F_URI : HM_AUTH_F_USERNAME; break;
    case 'r': f = n == 5 ? HM_AUTH_F_REALM : HM_AUTH_F_RESPONSE; break;
    case 'n': f = n == 2 ? HM_AUTH_F_NC : HM_AUTH_F_NONCE; break;
    case 'q': f = HM_AUTH_F_QOP; break;
    case 'c': f = HM_AUTH_F_CNONCE; break;
    case 'o': f = HM_AUTH_F_OPAQUE; break;
    case 'a': f = HM_AUTH_F_ALGORITHM; break;
    default: return -1;
    }
    return ieq(k, n, field_names[f]) ? f : -1;
}

#define HM_AUTH_MAX_VALUE 1024 /* no directive we use is longer; bounds the hashing work */

int hm_auth_digest_parse(struct hm_slice value, struct hm_auth_digest *d)
{
    memset(d, 0, sizeof(*d));
    struct hm_slice rest;
    size_t n = scheme_split(value, &rest);
    if (!ieq(value.ptr, n, "digest") || rest.len == 0)
        return HM_EBADAUTH;

    const char *p = rest.ptr, *end = rest.ptr + rest.len;
    uint32_t seen = 0;
    for (;;) {
        while (p < end && (is_ws(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        const char *k = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        size_t klen = (size_t)(p - k);
        while (p < end && is_ws(*p))
            p++;
        if (klen == 0 || p == end || *p != '=')
            return HM_EBADAUTH;
        p++;
        while (p < end && is_ws(*p))
            p++;
        struct hm_slice v;
        bool esc = false;
        if (p < end && *p == '"') {
            const char *s = ++p;
            for (;;) {
                while (p < end && (cls[(unsigned char)*p] & C_QDTEXT))
                    p++;
                if (p == end)
                    return HM_EBADAUTH;
                if (*p == '"')
                    break;
                /* a quoted-pair: HTAB, SP, VCHAR or obs-text may follow the backslash */
                if (*p != '\\' || p + 1 == end ||
                    !((cls[(unsigned char)p[1]] & C_QDTEXT) || p[1] == '"' || p[1] == '\\'))
                    return HM_EBADAUTH;
                esc = true;
                p += 2;
            }
            v = hm_slice(s, (size_t)(p - s));
            p++;
        } else {
            const char *s = p;
            while (p < end && is_bare((unsigned char)*p))
                p++;
            v = hm_slice(s, (size_t)(p - s));
            if (v.len == 0)
                return HM_EBADAUTH;
        }
        while (p < end && is_ws(*p))
            p++;
        if (p < end && *p != ',')
            return HM_EBADAUTH;
        if (v.len > HM_AUTH_MAX_VALUE)
            return HM_EBADAUTH;
        int f = field_of(k, klen);
        if (f >= 0) {
            if (seen & (1u << f))
                return HM_EBADAUTH;
            seen |= 1u << f;
            d->f[f] = v;
            if (esc)
                d->escaped |= 1u << f;
        }
    }

    const uint32_t required = 1u << HM_AUTH_F_USERNAME | 1u << HM_AUTH_F_REALM |
                              1u << HM_AUTH_F_NONCE | 1u << HM_AUTH_F_URI |
                              1u << HM_AUTH_F_RESPONSE;
    if ((seen & required) != required)
        return HM_EBADAUTH;
    struct hm_slice alg = d->f[HM_AUTH_F_ALGORITHM];
    if (alg.ptr && !ieq(alg.ptr, alg.len, "md5")) {
        if (!ieq(alg.ptr, alg.len, "md5-sess"))
            return HM_EBADAUTH;
        d->sess = true;
    }
    if (seen & 1u << HM_AUTH_F_QOP) {
        struct hm_slice q = d->f[HM_AUTH_F_QOP], nc = d->f[HM_AUTH_F_NC];
        if (!ieq(q.ptr, q.len, "auth") || !(seen & 1u << HM_AUTH_F_CNONCE) || nc.len != 8)
            return HM_EBADAUTH;
        uint32_t v = 0;
        for (size_t i = 0; i < 8; i++) {
            unsigned char c = lower((unsigned char)nc.ptr[i]);
            unsigned h = 16;
            if (c >= '0' && c <= '9')
                h = (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                h = (unsigned)(c - 'a' + 10);
            if (h > 15)
                return HM_EBADAUTH;
            v = v << 4 | h;
        }
        d->nc = v;
        d->qop_auth = true;
    } else if (d->sess) {
        return HM_EBADAUTH; /* MD5-sess needs a cnonce, which comes with qop */
    }
    return 0;
}

ssize_t hm_auth_unquote(struct hm_slice s, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\\' && i + 1 < s.len)
            i++;
        if (o + 1 >= cap)
            return -ENOSPC;
        dst[o++] = s.ptr[i];
    }
    if (cap == 0)
        return -ENOSPC;
    dst[o] = '\0';
    return (ssize_t)o;
}

int hm_auth_basic_parse(struct hm_slice value, char *buf, size_t cap, struct hm_slice *user,
                        struct hm_slice *pass)
{
    struct hm_slice rest;
    size_t n = scheme_split(value, &rest);
    if (!ieq(value.ptr, n, "basic"))
        return HM_EBADAUTH;
    while (rest.len && is_ws(rest.ptr[rest.len - 1]))
        rest.len--;
    size_t need, out_len;
    if (rest.len == 0 || !EVP_DecodedLength(&need, rest.len) || need > cap ||
        !EVP_DecodeBase64((uint8_t *)buf, &out_len, cap, (const uint8_t *)rest.ptr, rest.len))
        return HM_EBADAUTH;
    const char *colon = memchr(buf, ':', out_len);
    if (!colon)
        return HM_EBADAUTH;
    for (const char *c = buf; c < colon; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return HM_EBADAUTH;
    *user = hm_slice(buf, (size_t)(colon - buf));
    *pass = hm_slice(colon + 1, out_len - (size_t)(colon + 1 - buf));
    return 0;
}

/* ---- MD5 request-digest ---- */

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Feeds <s> to <ctx>, removing quoted-pair escapes when <esc>. */
static void md5_upd(MD5_CTX *ctx, struct hm_slice s, bool esc)
{
    if (!esc) {
        MD5_Update(ctx, s.ptr, s.len);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\\' && i + 1 < s.len) {
            MD5_Update(ctx, s.ptr + start, i - start);
            start = ++i;
        }
    }
    MD5_Update(ctx, s.ptr + start, s.len - start);
}

static void md5_hex_final(MD5_CTX *ctx, char out[HM_AUTH_HEX_LEN + 1])
{
    uint8_t md[MD5_DIGEST_LENGTH];
    MD5_Final(md, ctx);
    to_hex(md, sizeof(md), out);
}

void hm_auth_ha1(struct hm_slice user, struct hm_slice realm, struct hm_slice password,
                 char out[HM_AUTH_HEX_LEN + 1])
{
    MD5_CTX c;
    MD5_Init(&c);
    MD5_Update(&c, user.ptr, user.len);
    MD5_Update(&c, ":", 1);
    MD5_Update(&c, realm.ptr, realm.len);
    MD5_Update(&c, ":", 1);
    MD5_Update(&c, password.ptr, password.len);
    md5_hex_final(&c, out);
}

#define ESC(d, f) (((d)->escaped >> (f)) & 1)

void hm_auth_digest_response(const struct hm_auth_digest *d, const char ha1[HM_AUTH_HEX_LEN],
                             struct hm_slice method, char out[HM_AUTH_HEX_LEN + 1])
{
    char h1[HM_AUTH_HEX_LEN + 1], h2[HM_AUTH_HEX_LEN + 1];
    MD5_CTX c;
    memcpy(h1, ha1, HM_AUTH_HEX_LEN);
    if (d->sess) {
        MD5_Init(&c);
        MD5_Update(&c, ha1, HM_AUTH_HEX_LEN);
        MD5_Update(&c, ":", 1);
        md5_upd(&c, d->f[HM_AUTH_F_NONCE], ESC(d, HM_AUTH_F_NONCE));
        MD5_Update(&c, ":", 1);
        md5_upd(&c, d->f[HM_AUTH_F_CNONCE], ESC(d, HM_AUTH_F_CNONCE));
        md5_hex_final(&c, h1);
    }
    MD5_Init(&c);
    MD5_Update(&c, method.ptr, method.len);
    MD5_Update(&c, ":", 1);
    md5_upd(&c, d->f[HM_AUTH_F_URI], ESC(d, HM_AUTH_F_URI));
    md5_hex_final(&c, h2);

    MD5_Init(&c);
    MD5_Update(&c, h1, HM_AUTH_HEX_LEN);
    MD5_Update(&c, ":", 1);
    md5_upd(&c, d->f[HM_AUTH_F_NONCE], ESC(d, HM_AUTH_F_NONCE));
    MD5_Update(&c, ":", 1);
    if (d->qop_auth) {
        md5_upd(&c, d->f[HM_AUTH_F_NC], false);
        MD5_Update(&c, ":", 1);
        md5_upd(&c, d->f[HM_AUTH_F_CNONCE], ESC(d, HM_AUTH_F_CNONCE));
        MD5_Update(&c, ":auth:", 6);
    }
    MD5_Update(&c, h2, HM_AUTH_HEX_LEN);
    md5_hex_final(&c, out);
}

/* ---- nonces ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define NONCE_RAW 24 /* 8-byte big-endian issue time || first 16 bytes of the HMAC */
HM_BUILD_ASSERT(NONCE_RAW / 3 * 4 == HM_AUTH_NONCE_LEN);

int hm_auth_nonce_key_init(struct hm_auth_nonce_key *k, const uint8_t *secret,
                           uint32_t lifetime_s)
{
    k->lifetime_s = lifetime_s;
    if (secret) {
        memcpy(k->secret, secret, sizeof(k->secret));
        return 0;
    }
    return RAND_bytes(k->secret, sizeof(k->secret)) == 1 ? 0 : -EIO;
}

static void nonce_mac(const struct hm_auth_nonce_key *k, const uint8_t t[8], uint64_t conn_id,
                      uint8_t mac[16])
{
    uint8_t msg[16], md[32];
    unsigned int mdlen = 0;
    memcpy(msg, t, 8);
    for (int i = 0; i < 8; i++)
        msg[8 + i] = (uint8_t)(conn_id >> (56 - 8 * i));
    HMAC(EVP_sha256(), k->secret, sizeof(k->secret), msg, sizeof(msg), md, &mdlen);
    memcpy(mac, md, 16);
}

void hm_auth_nonce_make(const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                        char out[HM_AUTH_NONCE_LEN + 1])
{
    uint8_t raw[NONCE_RAW];
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)(now_s >> (56 - 8 * i));
    nonce_mac(k, raw, conn_id, raw + 8);
    for (size_t i = 0, o = 0; i < NONCE_RAW; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    out[HM_AUTH_NONCE_LEN] = '\0';
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static int nonce_decode(struct hm_slice nonce, uint8_t raw[NONCE_RAW])
{
    if (nonce.len != HM_AUTH_NONCE_LEN)
        return HM_EAUTHFAIL;
    for (size_t i = 0, o = 0; i < HM_AUTH_NONCE_LEN; i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int x = b64url_val((unsigned char)nonce.ptr[i + j]);
            if (x < 0)
                return HM_EAUTHFAIL;
            v = v << 6 | (uint32_t)x;
        }
        raw[o++] = (uint8_t)(v >> 16);
        raw[o++] = (uint8_t)(v >> 8);
        raw[o++] = (uint8_t)v;
    }
    return 0;
}

static int nonce_check_raw(const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                           struct hm_slice nonce, uint8_t raw[NONCE_RAW], uint64_t *issued_s)
{
    uint8_t mac[16];
    int rc = nonce_decode(nonce, raw);
    if (rc < 0)
        return rc;
    nonce_mac(k, raw, conn_id, mac);
    if (CRYPTO_memcmp(mac, raw + 8, sizeof(mac)) != 0)
        return HM_EAUTHFAIL;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | raw[i];
    if (issued_s)
        *issued_s = t;
    if (t > now_s || now_s - t > k->lifetime_s)
        return HM_ESTALE_NONCE;
    return 0;
}

int hm_auth_nonce_check(const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                        struct hm_slice nonce, uint64_t *issued_s)
{
    uint8_t raw[NONCE_RAW];
    return nonce_check_raw(k, conn_id, now_s, nonce, raw, issued_s);
}

/* Replay check and update for an authenticated (nonce, nc); 0 or HM_ESTALE_NONCE. */
static int replay_track(struct hm_auth_nonce_state *st, const uint8_t raw[NONCE_RAW],
                        uint64_t issued, uint32_t nc)
{
    for (unsigned i = 0; i < HM_AUTH_NONCE_SLOTS; i++) {
        if (st->slot[i].used && memcmp(st->slot[i].id, raw, NONCE_RAW) == 0) {
            if (nc <= st->slot[i].last_nc)
                return HM_ESTALE_NONCE;
            st->slot[i].last_nc = nc;
            return 0;
        }
    }
    if (st->evicted_issued && issued <= st->evicted_issued)
        return HM_ESTALE_NONCE;
    unsigned v = st->next % HM_AUTH_NONCE_SLOTS;
    if (st->slot[v].used) {
        uint64_t t = 0;
        for (int i = 0; i < 8; i++)
            t = t << 8 | st->slot[v].id[i];
        if (t > st->evicted_issued)
            st->evicted_issued = t;
    }
    memcpy(st->slot[v].id, raw, NONCE_RAW);
    st->slot[v].last_nc = nc;
    st->slot[v].used = true;
    st->next = v + 1;
    return 0;
}

int hm_auth_digest_verify(const struct hm_auth_digest *d, const char ha1[HM_AUTH_HEX_LEN],
                          struct hm_slice method, struct hm_slice target,
                          const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                          struct hm_auth_nonce_state *st)
{
    uint8_t raw[NONCE_RAW];
    uint64_t issued = 0;
    int nrc = nonce_check_raw(k, conn_id, now_s, d->f[HM_AUTH_F_NONCE], raw, &issued);
    if (nrc == HM_EAUTHFAIL)
        return nrc;
    if (target.ptr && !hm_slice_eq(target, d->f[HM_AUTH_F_URI]))
        return HM_EAUTHFAIL;

    char want[HM_AUTH_HEX_LEN + 1], got[HM_AUTH_HEX_LEN];
    struct hm_slice r = d->f[HM_AUTH_F_RESPONSE];
    if (r.len != HM_AUTH_HEX_LEN)
        return HM_EAUTHFAIL;
    for (size_t i = 0; i < HM_AUTH_HEX_LEN; i++)
        got[i] = (char)lower((unsigned char)r.ptr[i]);
    hm_auth_digest_response(d, ha1, method, want);
    if (CRYPTO_memcmp(want, got, HM_AUTH_HEX_LEN) != 0)
        return HM_EAUTHFAIL;
    /* Stale only now: RFC 7616 3.3 wants stale=true only for a response that was right. */
    if (nrc < 0)
        return nrc;
    /* Without qop there is no nc: a nonce then authenticates one request only. */
    return replay_track(st, raw, issued, d->qop_auth ? d->nc : 1);
}

/* Appends <s> to <out> as the inside of a quoted-string. */
static bool put_quoted(char *out, size_t cap, size_t *o, struct hm_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '"' || s.ptr[i] == '\\') {
            if (*o + 1 >= cap)
                return false;
            out[(*o)++] = '\\';
        }
        if (*o + 1 >= cap)
            return false;
        out[(*o)++] = s.ptr[i];
    }
    return true;
}

static bool put(char *out, size_t cap, size_t *o, const char *lit)
{
    size_t n = strlen(lit);
    if (*o + n >= cap)
        return false;
    memcpy(out + *o, lit, n);
    *o += n;
    return true;
}

ssize_t hm_auth_challenge(char *out, size_t cap, struct hm_slice realm, struct hm_slice nonce,
                          struct hm_slice opaque, bool stale)
{
    size_t o = 0;
    if (cap == 0)
        return -ENOSPC;
    bool ok = put(out, cap, &o, "Digest realm=\"") && put_quoted(out, cap, &o, realm) &&
              put(out, cap, &o, "\", qop=\"auth\", nonce=\"") &&
              put_quoted(out, cap, &o, nonce) && put(out, cap, &o, "\"");
    if (ok && opaque.len)
        ok = put(out, cap, &o, ", opaque=\"") && put_quoted(out, cap, &o, opaque) &&
             put(out, cap, &o, "\"");
    ok = ok && put(out, cap, &o, ", algorithm=MD5");
    if (ok && stale)
        ok = put(out, cap, &o, ", stale=true");
    if (!ok) {
        out[0] = '\0';
        return -ENOSPC;
    }
    out[o] = '\0';
    return (ssize_t)o;
}
