#ifndef HM_LG_HTTP_H
#define HM_LG_HTTP_H
/*
 * Client side of HTTP/1.1 for hems-loadgen: an incremental, zero-copy response-head parser
 * and a small cookie jar. (proto/http1.h parses requests only; a response head differs in
 * its first line and in which fields matter to a client.)
 *
 * hm_lg_http_parse_response() parses the status line and header fields at the start of
 * <buf>. Slices in <r> point into <buf>, which must stay alive and unmoved while <r> is
 * used. Returns the head length (> 0) when the head is complete, -EAGAIN when more bytes
 * are needed, HM_EHDRTOOLARGE when the head exceeds HM_LG_HTTP_MAX_HEAD bytes (checked on
 * incomplete input too), HM_ESMUGGLE for conflicting framing (two different Content-Length
 * values, or Content-Length with Transfer-Encoding), HM_ENOTIMPL for a Transfer-Encoding
 * other than chunked, or HM_EBADHTTP.
 *
 * Framing of the body that follows (RFC 9112 §6.3), in <r>->body:
 *   HM_LG_BODY_NONE    1xx, 204, 304 (and answers to HEAD, which the caller knows)
 *   HM_LG_BODY_LENGTH  <r>->content_length bytes
 *   HM_LG_BODY_CHUNKED decode with hm_http_chunked_decode() (proto/http1.h)
 *   HM_LG_BODY_CLOSE   until the server closes the connection
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/bug.h"
#include "core/err.h"
#include "core/slice.h"

#define HM_LG_HTTP_MAX_HEAD 16384
#define HM_LG_HTTP_MAX_COOKIES 4 /* Set-Cookie fields kept per response */

enum hm_lg_body { HM_LG_BODY_NONE = 0, HM_LG_BODY_LENGTH, HM_LG_BODY_CHUNKED, HM_LG_BODY_CLOSE };

struct hm_lg_resp {
    int status;
    int minor_version;
    uint8_t body;            /* enum hm_lg_body */
    bool keep_alive;         /* false on "Connection: close" or HTTP/1.0 without keep-alive */
    bool has_retry_after;
    uint32_t retry_after;    /* seconds (the delta-seconds form only) */
    int64_t content_length;  /* -1 when absent */
    unsigned n_cookies;
    struct hm_slice set_cookie[HM_LG_HTTP_MAX_COOKIES];
    struct hm_slice content_type;
    struct hm_slice www_authenticate; /* the Digest WWW-Authenticate field, else the first */
    bool www_auth_digest;
};

/* See the contract at the top. <r> is fully overwritten. */
ssize_t hm_lg_http_parse_response(const char *buf, size_t len, struct hm_lg_resp *r);

/*
 * A Digest challenge (RFC 7616 §3.3) from a WWW-Authenticate value. Slices point into the
 * value (quoted strings without their quotes; quoted-pairs are refused, no real server puts
 * them in a realm or nonce). hm_lg_http_parse_challenge() returns 0, or HM_EBADAUTH for
 * another scheme, bad syntax, no realm/nonce, a qop list without "auth", or an algorithm
 * other than MD5 / MD5-sess.
 */
struct hm_lg_challenge {
    struct hm_slice realm, nonce, opaque;
    bool qop_auth; /* qop offered "auth" (else RFC 2069 digest) */
    bool sess;     /* algorithm=MD5-sess */
    bool stale;
};

int hm_lg_http_parse_challenge(struct hm_slice value, struct hm_lg_challenge *c) HM_MUST_CHECK;

/*
 * Cookie jar of one simulated CPE session: the name=value pairs of the Set-Cookie fields
 * received so far, kept as the ready-made value of a Cookie request field ("a=1; b=2").
 * Attributes are ignored, except that Max-Age=0 deletes the cookie (Expires is not
 * evaluated: a session is short). A cookie with an existing name replaces the old one. TR-069 asks the
 * CPE to keep at least 512 bytes of cookies: HM_LG_COOKIE_MAX. Embeddable; zero = empty.
 */
#define HM_LG_COOKIE_MAX 512

struct hm_lg_cookie_jar {
    uint16_t len;
    char buf[HM_LG_COOKIE_MAX];
};

/* Stores the cookie of one Set-Cookie field value. Returns 0, HM_EBADHTTP for a field
 * without "name=", or -ENOBUFS when the jar would exceed HM_LG_COOKIE_MAX (jar unchanged). */
int hm_lg_cookie_set(struct hm_lg_cookie_jar *jar, struct hm_slice set_cookie) HM_MUST_CHECK;

static inline struct hm_slice hm_lg_cookie_header(const struct hm_lg_cookie_jar *jar)
{
    return hm_slice(jar->buf, jar->len);
}

#endif
