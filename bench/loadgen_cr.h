#ifndef HM_LOADGEN_CR_H
#define HM_LOADGEN_CR_H
/*
 * Connection Request listener of one hems-loadgen worker (TR-069 §3.2.2): the HTTP server
 * side of the simulated HeNBs. The worker's devices announce
 * ConnectionRequestURL = http://127.0.0.1:<port>/crq/<device index>; an ACS GET to it is
 * authenticated with Digest (RFC 7616, MD5, qop=auth; stateless nonces from proto/auth.h, not
 * bound to a connection since an ACS answers a challenge on a new one) when credentials are
 * set, answered 200 and closed, and reported to the worker, which starts a session with
 * "6 CONNECTION REQUEST". Runs on the worker's epoll loop: non-blocking, a fixed table of
 * connections (extra ones are closed at once), no allocation after open.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

#define HM_LG_CR_TAG_MIN 0xFFFFF000u /* epoll data.u32 values at or above are the listener's */

struct hm_lg_cr_stats {
    uint64_t received;    /* authenticated requests answered 200 */
    uint64_t challenges;  /* 401 with a challenge (no or stale credentials) */
    uint64_t refused;     /* 401 for wrong credentials */
    uint64_t bad;         /* malformed, unknown path or device, too large, table full */
};

struct hm_lg_cr;

/* Called for each authenticated connection request, with the device index from the URL. */
typedef void (*hm_lg_cr_fn)(void *arg, uint64_t device_index);

/* Listens on 127.0.0.1:<port> (0: an ephemeral port) and registers with epoll <ep>. <user>/<password> empty: no
 * authentication. Returns 0 or -errno. */
int hm_lg_cr_open(struct hm_lg_cr **out, int ep, uint16_t port, const char *user,
                  const char *password, hm_lg_cr_fn fn, void *arg);
void hm_lg_cr_close(struct hm_lg_cr *c);

/* An epoll event whose data.u32 is >= HM_LG_CR_TAG_MIN. */
void hm_lg_cr_event(struct hm_lg_cr *c, uint32_t tag, uint32_t events);

const struct hm_lg_cr_stats *hm_lg_cr_stats(const struct hm_lg_cr *c);

/* The port listened on (the one given, or the ephemeral one chosen for port 0). */
uint16_t hm_lg_cr_port(const struct hm_lg_cr *c);

/* A connection request's head <buf>[<len>] (up to and including CRLF CRLF): "GET
 * /crq/<index> HTTP/1.x" and its Authorization field. Returns 0 with *<index>, *<path>
 * (the request-target) and *<auth> (empty when absent) as slices of <buf>, or -EINVAL. */
int hm_lg_cr_parse(const char *buf, size_t len, uint64_t *index, struct hm_slice *path,
                   struct hm_slice *auth);

#endif
