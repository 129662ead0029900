#ifndef HM_HTTPD_H
#define HM_HTTPD_H
/*
 * The HTTP/1.1 server on the shard reactor: what request handlers see.
 *
 * A handler runs on the shard that owns the connection, once per complete request (head
 * and body). It reads <x>->req and <x>->body, fills <x>->out with the response body, may add
 * header lines to <x>->headers ("Name: value\r\n" each), sets <x>->content_type, and returns
 * the HTTP status (>= 100) to send at once, or HM_HTTP_DEFER to answer later.
 *
 * Lifetime: <x>, <x>->req and <x>->body are valid only during the handler call; they point
 * into the receive buffer, which is recycled right after. A handler that defers copies what it
 * needs, keeps <x>->ref and later calls hm_httpd_finish() on the same shard. Requests on one
 * connection are strictly serialised: the next one is not read until this one is answered.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "proto/http1.h"

#define HM_HTTP_DEFER 0

struct hm_shard;

/* A weak reference to a connection: stale once the connection closes. */
struct hm_conn_ref {
    struct hm_shard *shard;
    uint32_t idx;
    uint32_t gen;
};

enum hm_listener_kind { HM_LISTENER_CWMP = 0, HM_LISTENER_ADMIN = 1, HM_LISTENER_MAX };

struct hm_http_exchange {
    struct hm_shard *shard;
    enum hm_listener_kind listener;
    const struct hm_http_req *req;
    char *body; /* decoded body, writable in place; NULL when empty */
    size_t body_len;
    const struct sockaddr *peer;     /* the client (or PROXY-protocol source) address */
    void **conn_data;                /* per-connection slot for the application */
    const char *tls_identity;        /* verified client-certificate identity (TLS listener,
                                      * core/tls.h); NULL: plain HTTP or no certificate */
    struct hm_buf *out;              /* response body */
    struct hm_buf *headers;          /* extra response header lines */
    const char *content_type;        /* static string or NULL */
    bool close;                      /* set to close the connection after the response */
    bool gate_paid;                  /* first request of a connection that the admission gate
                                      * let through at accept, paying its admission then
                                      * (core/admission_gate.h) */
    struct hm_conn_ref ref;
};

typedef int (*hm_http_handler)(struct hm_http_exchange *x, void *ctx);

/*
 * Called when a connection whose conn_data slot is non-NULL closes, on its shard, with the
 * slot's value. Set once per process with hm_httpd_set_conn_close_hook().
 */
typedef void (*hm_conn_close_hook)(struct hm_shard *s, void *conn_data);

/*
 * Output buffers of a deferred exchange, or false when <ref> is stale (the connection is
 * gone: drop the answer). Shard thread only.
 */
bool hm_httpd_deferred_bufs(struct hm_conn_ref ref, struct hm_buf **out, struct hm_buf **headers);

/*
 * Sends the response of a deferred exchange: <status>, <content_type> (static or NULL), the
 * body and headers put in the buffers from hm_httpd_deferred_bufs(). Returns 0, or -ENOENT
 * when <ref> is stale. Shard thread only.
 */
int hm_httpd_finish(struct hm_conn_ref ref, int status, const char *content_type, bool close);

/* ---- streaming responses (Server-Sent Events and the like); shard thread only ----
 * A deferred exchange may answer with a stream instead of hm_httpd_finish():
 * hm_httpd_stream_begin() sends the head (no Content-Length, "Connection: close", the header
 * lines and body bytes already put in the deferred buffers), then hm_httpd_stream_write()
 * queues bytes (copied) and hm_httpd_stream_end() closes once they are sent (or at once
 * with <abort_now>). The connection closes when the stream ends; a peer that goes away
 * makes <ref> stale: every call then returns -ENOENT (poll hm_httpd_stream_pending(), e.g.
 * on a timer). Pending counts bytes accepted but not yet taken by the kernel: bound it to
 * cut slow readers. Nothing here blocks; memory grows only with what the caller queues.
 */
#include <sys/types.h>

#include "core/timer.h"

/* Returns 0, -ENOENT (stale <ref>) or -EPROTONOSUPPORT (a TLS connection: not supported). */
int hm_httpd_stream_begin(struct hm_conn_ref ref, int status, const char *content_type,
                          size_t sndbuf /* SO_SNDBUF for the socket; 0: system default */);
/* Queues <len> bytes; returns the bytes now pending or -ENOENT. */
ssize_t hm_httpd_stream_write(struct hm_conn_ref ref, const void *data, size_t len);
ssize_t hm_httpd_stream_pending(struct hm_conn_ref ref);
void hm_httpd_stream_end(struct hm_conn_ref ref, bool abort_now);
/* A timer on shard <s>'s wheel (100 ms ticks), fired on its thread; <t> set up with
 * hm_timer_init(). Shard thread only. */
void hm_shard_timer_arm(struct hm_shard *s, struct hm_timer *t, uint64_t ms);
void hm_shard_timer_disarm(struct hm_shard *s, struct hm_timer *t);
/* ---- end of streaming responses ---- */

#endif
