#ifndef HM_MULTIPART_H
#define HM_MULTIPART_H
/*
 * Streaming multipart/form-data body parser (RFC 7578 over RFC 2046), for PM uploads that
 * some HeNBs POST as a form instead of a plain PUT body.
 *
 * struct hm_mp is embeddable and caller-owned (no allocation; ~8.4 KB, the part-header
 * buffer included). Feed the body in chunks of any size; the callback gets, per part,
 * HM_MP_PART_BEGIN (headers parsed), zero or more HM_MP_PART_DATA with the part's bytes
 * (slices into the fed chunk or into static memory, valid only during the call; never
 * copied or buffered here), then HM_MP_PART_END. Preamble and epilogue are ignored.
 *
 * Errors (sticky until hm_mp_init()):
 *   HM_EBADHTTP       malformed body, missing/invalid boundary, or truncated (at finish)
 *   HM_EHDRTOOLARGE   one part's headers exceed HM_MP_MAX_HEADER bytes
 *   HM_EBODYTOOLARGE  more than <max_parts> parts
 *   a negative value returned by the callback, passed through
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h" /* before bug.h: pulls <string.h> */
#include "core/bug.h"
#include "core/err.h"

#define HM_MP_MAX_BOUNDARY 70 /* RFC 2046 §5.1.1 */
#define HM_MP_MAX_HEADER 8192
#define HM_MP_DEFAULT_MAX_PARTS 64

enum hm_mp_event {
    HM_MP_PART_BEGIN,
    HM_MP_PART_DATA,
    HM_MP_PART_END,
};

/* One part's headers; slices point into the parser and are valid from PART_BEGIN until
 * PART_END returns. Empty slices where a header or parameter is absent. Quoted-string
 * escapes are undone. */
struct hm_mp_part {
    struct hm_slice name;         /* Content-Disposition name= */
    struct hm_slice filename;     /* Content-Disposition filename= */
    struct hm_slice content_type; /* Content-Type, whole value */
    unsigned index;               /* 0-based part number */
};

/* <data> is set for HM_MP_PART_DATA only. Return 0, or a negative error to stop. */
typedef int (*hm_mp_cb)(void *arg, enum hm_mp_event ev, const struct hm_mp_part *part,
                        struct hm_slice data);

struct hm_mp {
    hm_mp_cb cb;
    void *arg;
    int err;
    unsigned char state;
    bool in_part;
    unsigned max_parts;
    size_t match;  /* bytes of delim matched so far (may span feeds) */
    size_t dlen;   /* strlen("\r\n--" boundary) */
    char delim[4 + HM_MP_MAX_BOUNDARY];
    size_t hlen;   /* bytes in hdr */
    size_t hline;  /* where the current header line starts in hdr */
    unsigned nparts;
    struct hm_mp_part part;
    char hdr[HM_MP_MAX_HEADER];
};

/* Extracts the boundary from a Content-Type value ("multipart/form-data; boundary=..."),
 * quoted or not. Returns 0 and sets <out> (a slice of <content_type>), or HM_EBADHTTP. */
int hm_mp_boundary(struct hm_slice content_type, struct hm_slice *out) HM_MUST_CHECK;

/* Prepares <m> for one body with the boundary of <content_type>; <max_parts> 0 means
 * HM_MP_DEFAULT_MAX_PARTS. Returns 0 or HM_EBADHTTP. */
int hm_mp_init(struct hm_mp *m, struct hm_slice content_type, unsigned max_parts, hm_mp_cb cb,
               void *arg) HM_MUST_CHECK;

/* Feeds the next <len> body bytes. Returns 0 or an error (see above). */
int hm_mp_feed(struct hm_mp *m, const void *data, size_t len) HM_MUST_CHECK;

/* Ends the body: 0 if the closing delimiter was seen, else HM_EBADHTTP (or the sticky
 * error). */
int hm_mp_finish(struct hm_mp *m) HM_MUST_CHECK;

#endif
