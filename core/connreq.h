#ifndef HM_CONNREQ_H
#define HM_CONNREQ_H
/*
 * Connection Request client (TR-069 §3.2.2; docs/connreq.md): an HTTP GET with Digest
 * authentication to a device's ConnectionRequestURL, asking it to open a CWMP session.
 *
 * One dedicated thread with its own epoll loop does all network I/O (non-blocking sockets);
 * producers (shards) hand requests over a lock-free MPSC stack plus an eventfd, so a shard
 * never blocks on a device. Per request: connect + send + read the status line within
 * timeout_ms; a 401 challenge is answered once; a failure (refused, reset, timeout) is
 * retried once. Starts are limited to max_per_s (token bucket). Results per device (last
 * result and time) are kept in memory (a fixed table, oldest entry replaced) and counted.
 *
 * Results: "requested" (200/204), "busy" (503), "auth_failed" (401 after answering),
 * "offline" (refused/unreachable), "timeout", "error" (other status, bad URL, protocol).
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"

struct hm_connreq;

struct hm_connreq_opts {
    uint32_t timeout_ms; /* per attempt; 0: 5000 */
    uint32_t max_per_s;  /* request starts per second; 0: 50 */
    const char *username, *password; /* defaults when a request gives none; copied */
};

/* Starts the thread. Errors: -errno (eventfd, epoll, thread). *<out> owned: hm_connreq_stop. */
int hm_connreq_start(const struct hm_connreq_opts *o, struct hm_connreq **out);

/* Stops and joins the thread, drops pending requests, frees <c>. NULL is a no-op. */
void hm_connreq_stop(struct hm_connreq *c);

/*
 * Queues a connection request to <url> for device <dev>, with <user>/<pass> (empty user:
 * the defaults; <pass_is_ha1>: <pass> is the Digest HA1 in hex, as device records keep it). Any thread; copies everything (one allocation: control path, rate-limited
 * by the API). Returns 0, -EINVAL (empty URL or device, over 512 bytes), -ESHUTDOWN.
 */
int hm_connreq_request(struct hm_connreq *c, struct hm_slice dev, struct hm_slice url,
                       struct hm_slice user, struct hm_slice pass, bool pass_is_ha1);

/* Last result of device <dev>: true and *<result> (static string), *<at_ms> when known. */
bool hm_connreq_last(struct hm_connreq *c, struct hm_slice dev, const char **result,
                     uint64_t *at_ms);

/* Prometheus text: hems_connreq_total{result=...}, hems_connreq_pending. arg: the hm_connreq. */
void hm_connreq_render_metrics(struct hm_buf *o, void *arg);

#endif
