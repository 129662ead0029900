#ifndef HM_HTTP1_H
#define HM_HTTP1_H
/*
 * Incremental, zero-copy HTTP/1.1 request parser (picohttpparser-shaped).
 *
 * hm_http_parse_request() parses the request line and header fields at the start of
 * <buf>. Every slice it fills in points into <buf>: the caller keeps <buf> alive and
 * unmoved for as long as it uses <req>. Nothing is allocated.
 *
 * Returns the length of the head (request line + headers + the empty line) when complete,
 * -EAGAIN when <buf> holds an incomplete head (call again with more bytes; <prev_len> is
 * the length passed on the previous call for the same request, or 0, so already-scanned
 * bytes are not scanned for the end of the head again), or one of:
 *   HM_EBADHTTP       400  malformed request line / header / framing
 *   HM_ESMUGGLE       400  Content-Length together with Transfer-Encoding, or two different
 *                          Content-Length values, or an invalid Content-Length
 *   HM_EURITOOLONG    414  request line longer than <lim>->max_request_line
 *   HM_EHDRTOOLARGE   431  head longer than <lim>->max_head_bytes or more than
 *                          <lim>->max_headers fields
 *   HM_ENOTIMPL       501  a Transfer-Encoding other than "chunked"
 *   HM_EHTTPVERSION   505  a version other than HTTP/1.0 or HTTP/1.1
 * The limits are checked on incomplete input too, so a client cannot hold a growing head.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/slice.h"

#define HM_HTTP_MAX_HEADERS 64 /* hard ceiling of the header array; limits may be lower */

enum hm_http_method {
    HM_HTTP_OTHER = 0,
    HM_HTTP_GET,
    HM_HTTP_HEAD,
    HM_HTTP_POST,
    HM_HTTP_PUT,
    HM_HTTP_DELETE,
    HM_HTTP_OPTIONS,
    HM_HTTP_PATCH,
};

struct hm_http_header {
    struct hm_slice name; /* as sent (case preserved); compare with hm_slice_ieq() */
    struct hm_slice value; /* leading and trailing white space removed */
};

struct hm_http_limits {
    size_t max_request_line; /* bytes, excluding CRLF */
    size_t max_head_bytes;   /* request line + all header lines */
    size_t max_headers;      /* <= HM_HTTP_MAX_HEADERS */
};

/* 8190-byte request line, 16 KiB head, HM_HTTP_MAX_HEADERS fields; used when <lim> is NULL. */
extern const struct hm_http_limits hm_http_limits_default;

struct hm_http_req {
    enum hm_http_method method;
    struct hm_slice method_str;
    struct hm_slice target; /* request-target as sent, e.g. "/cwmp?x=1" */
    struct hm_slice path;   /* target up to '?' (not percent-decoded) */
    struct hm_slice query;  /* after '?', without it; empty if none */
    int minor_version;      /* 0 or 1 */
    size_t nheaders;
    struct hm_http_header headers[HM_HTTP_MAX_HEADERS];

    /* Derived from the headers while parsing: */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* HTTP/1.1 default true unless "Connection: close";
                               HTTP/1.0 default false unless "Connection: keep-alive" */
    bool expect_continue;   /* "Expect: 100-continue" */
    struct hm_slice host, content_type, authorization, cookie, soapaction, content_encoding;
};

/* See the contract at the top of this file. <req> is fully overwritten on each call. */
ssize_t hm_http_parse_request(const char *buf, size_t len, size_t prev_len,
                              struct hm_http_req *req, const struct hm_http_limits *lim);

/* Value of the first header named <name> (case-insensitive), or an empty slice. */
struct hm_slice hm_http_header_get(const struct hm_http_req *req, const char *name);

/*
 * In-place chunked transfer-coding decoder. Zero-initialise (or hm_http_chunked_init) one
 * per body. Each call decodes the <*len> bytes at <buf>, moving the body bytes to the front
 * of <buf> and setting <*len> to the number of decoded body bytes now at <buf>.
 * Returns -EAGAIN when the body continues past this input, or the number of bytes left
 * unconsumed after the final chunk and trailers (they start at buf + *len and belong to the
 * next request), or HM_EBADCHUNK, or HM_EBODYTOOLARGE when the total decoded size would
 * exceed <max_body>. Chunk extensions are skipped; trailer fields are skipped.
 */
struct hm_http_chunked {
    uint64_t remaining; /* bytes left in the current chunk */
    uint64_t total;     /* decoded bytes so far */
    size_t hex_digits;
    unsigned state;
};

static inline void hm_http_chunked_init(struct hm_http_chunked *c)
{
    *c = (struct hm_http_chunked){0};
}

ssize_t hm_http_chunked_decode(struct hm_http_chunked *c, char *buf, size_t *len,
                               uint64_t max_body);

/* HTTP status code for a parser error code above (400 for anything unknown). */
int hm_http_status_for_error(int err);

/* Reason phrase for <status>, e.g. "Not Found"; never NULL. */
const char *hm_http_reason(int status);

#endif
