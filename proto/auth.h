#ifndef HM_AUTH_H
#define HM_AUTH_H
/*
 * HTTP authentication for the ACS (RFC 7616 Digest with MD5/MD5-sess and qop=auth, RFC 7617
 * Basic), without allocation. See docs/http.md for the nonce design.
 *
 * Parsing fills slices that point into the header value: the caller keeps it alive while
 * using them. Digest values keep their quoted-pair escapes (bit set in <escaped>); the
 * hashing functions remove them, hm_auth_unquote() copies a value without them.
 *
 * Stored credentials are HA1 = MD5(username ":" realm ":" password) in lower-case hex, so a
 * leaked credential store does not give the passwords (it still allows authenticating to
 * this realm: protect it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/slice.h"

#define HM_AUTH_HEX_LEN 32   /* an MD5 digest in hex, without NUL */
#define HM_AUTH_NONCE_LEN 32 /* base64url(8-byte time || 16-byte MAC), without NUL */

enum hm_auth_scheme {
    HM_AUTH_NONE = 0, /* empty header */
    HM_AUTH_BASIC,
    HM_AUTH_DIGEST,
    HM_AUTH_OTHER,
};

/* Scheme of an Authorization header value (case-insensitive). */
enum hm_auth_scheme hm_auth_scheme_of(struct hm_slice value);

enum hm_auth_field {
    HM_AUTH_F_USERNAME,
    HM_AUTH_F_REALM,
    HM_AUTH_F_NONCE,
    HM_AUTH_F_URI,
    HM_AUTH_F_RESPONSE,
    HM_AUTH_F_QOP,
    HM_AUTH_F_NC,
    HM_AUTH_F_CNONCE,
    HM_AUTH_F_OPAQUE,
    HM_AUTH_F_ALGORITHM,
    HM_AUTH_F_COUNT
};

struct hm_auth_digest {
    struct hm_slice f[HM_AUTH_F_COUNT]; /* indexed by enum hm_auth_field; {NULL,0} if absent */
    uint32_t escaped;                   /* bit (1 << field): the value holds quoted-pairs */
    uint32_t nc;                        /* <f[NC]> as a number (0 without qop) */
    bool sess;                          /* algorithm=MD5-sess */
    bool qop_auth;                      /* qop=auth (false: RFC 2069 compatibility) */
};

/*
 * Parses `Digest k=v, k="v", ...` from an Authorization header value. Returns 0, or
 * HM_EBADAUTH when the syntax is wrong, a directive repeats, username/realm/nonce/uri/
 * response is missing, qop is present without nc/cnonce, qop is not "auth", or the
 * algorithm is not MD5 / MD5-sess. Unknown directives are ignored.
 */
int hm_auth_digest_parse(struct hm_slice value, struct hm_auth_digest *d);

/* Copies <s> without quoted-pair escapes into <dst> (NUL-terminated); returns the length or
 * -ENOSPC when <cap> is too small. */
ssize_t hm_auth_unquote(struct hm_slice s, char *dst, size_t cap);

/*
 * Parses `Basic <base64>` into <buf> (caller's scratch, <cap> bytes) and sets <user> and
 * <pass> to slices of <buf>. Returns 0 or HM_EBADAUTH (bad base64, no ':', control
 * characters in the user-id, or <buf> too small).
 */
int hm_auth_basic_parse(struct hm_slice value, char *buf, size_t cap, struct hm_slice *user,
                        struct hm_slice *pass);

/* HA1 = hex(MD5(<user> ":" <realm> ":" <password>)), written to <out> with a NUL. */
void hm_auth_ha1(struct hm_slice user, struct hm_slice realm, struct hm_slice password,
                 char out[HM_AUTH_HEX_LEN + 1]);

/*
 * The request-digest of RFC 7616 3.4.1 for qop=auth (or RFC 2069 when <d->qop_auth> is
 * false), from the stored <ha1> (hex) and the request <method>; MD5-sess when <d->sess>.
 * Used by the server to check a response and by the ACS as a client (connection request).
 */
void hm_auth_digest_response(const struct hm_auth_digest *d, const char ha1[HM_AUTH_HEX_LEN],
                             struct hm_slice method, char out[HM_AUTH_HEX_LEN + 1]);

/* ---- server nonces: stateless, HMAC-SHA256 over (issue time, connection id) ---- */

struct hm_auth_nonce_key {
    uint8_t secret[32];
    uint32_t lifetime_s; /* a nonce older than this is stale */
};

/* <secret> may be NULL: 32 random bytes are drawn. Returns 0 or -EIO (no randomness). */
int hm_auth_nonce_key_init(struct hm_auth_nonce_key *k, const uint8_t *secret,
                           uint32_t lifetime_s);

/* Writes a nonce issued at <now_s> for connection <conn_id> (HM_AUTH_NONCE_LEN bytes + NUL). */
void hm_auth_nonce_make(const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                        char out[HM_AUTH_NONCE_LEN + 1]);

/*
 * Checks that <nonce> was made with <k> for <conn_id>: 0, HM_EAUTHFAIL when it was not
 * (forged, garbled, other connection), HM_ESTALE_NONCE when older than the lifetime (or
 * from the future: the clock went back). *<issued_s> gets its issue time when not NULL.
 */
int hm_auth_nonce_check(const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                        struct hm_slice nonce, uint64_t *issued_s);

/*
 * Per-connection replay tracker, kept by the caller in its connection (zero = empty). It
 * remembers the highest nc for the last HM_AUTH_NONCE_SLOTS nonces; a nonce that fell out
 * of it is refused as stale when it is not newer than the newest one evicted.
 */
#define HM_AUTH_NONCE_SLOTS 2
struct hm_auth_nonce_state {
    struct {
        uint8_t id[24]; /* the decoded nonce */
        uint32_t last_nc;
        bool used;
    } slot[HM_AUTH_NONCE_SLOTS];
    uint64_t evicted_issued; /* issue time of the newest nonce evicted */
    unsigned next;           /* round-robin victim */
};

/*
 * Full server check of a parsed Digest response against the stored <ha1> (hex):
 *   HM_EAUTHFAIL     nonce not ours, wrong response, or uri differs from <target> (when
 *                    <target.ptr> is not NULL)
 *   HM_ESTALE_NONCE  the response is right but the nonce expired, or nc was not above the
 *                    last nc seen with that nonce on this connection (replay)
 * On 0 the tracker <st> records the nc. Compares in constant time.
 */
int hm_auth_digest_verify(const struct hm_auth_digest *d, const char ha1[HM_AUTH_HEX_LEN],
                          struct hm_slice method, struct hm_slice target,
                          const struct hm_auth_nonce_key *k, uint64_t conn_id, uint64_t now_s,
                          struct hm_auth_nonce_state *st);

/*
 * Builds a WWW-Authenticate value: `Digest realm="<realm>", qop="auth", nonce="<nonce>",
 * opaque="<opaque>", algorithm=MD5[, stale=true]` (opaque left out when empty) into <out>.
 * Returns its length (NUL added) or -ENOSPC.
 */
ssize_t hm_auth_challenge(char *out, size_t cap, struct hm_slice realm, struct hm_slice nonce,
                          struct hm_slice opaque, bool stale);

#endif
