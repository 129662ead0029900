#ifndef HM_METRICS_H
#define HM_METRICS_H
/*
 * Per-shard counters, written by their shard only (relaxed atomic stores, no RMW, no lock)
 * and summed by whoever renders /metrics. Declared once in HM_SHARD_COUNTERS so names,
 * help texts and fields cannot drift.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"

/* X(field, prometheus name, type, help) */
#define HM_SHARD_COUNTERS(X)                                                                 \
    X(accepted, "hems_connections_accepted_total", counter, "TCP connections accepted")      \
    X(refused_full, "hems_connections_refused_total", counter,                               \
      "connections refused because the connection table was full")                           \
    X(refused_source, "hems_connections_refused_per_source_total", counter,                   \
      "connections refused because their source address held too many")                     \
    X(closed, "hems_connections_closed_total", counter, "connections closed")                \
    X(active, "hems_connections_active", gauge, "open connections")                          \
    X(requests, "hems_http_requests_total", counter, "HTTP requests dispatched")             \
    X(responses_2xx, "hems_http_responses_2xx_total", counter, "2xx responses")              \
    X(responses_4xx, "hems_http_responses_4xx_total", counter, "4xx responses")              \
    X(responses_5xx, "hems_http_responses_5xx_total", counter, "5xx responses")              \
    X(bytes_in, "hems_http_received_bytes_total", counter, "bytes received")                 \
    X(bytes_out, "hems_http_sent_bytes_total", counter, "bytes sent")                        \
    X(err_bad_request, "hems_http_errors_bad_request_total", counter,                        \
      "requests refused as malformed (400)")                                                 \
    X(err_uri_too_long, "hems_http_errors_uri_too_long_total", counter,                      \
      "requests refused with 414")                                                           \
    X(err_head_too_large, "hems_http_errors_head_too_large_total", counter,                  \
      "requests refused with 431")                                                           \
    X(err_body_too_large, "hems_http_errors_body_too_large_total", counter,                  \
      "requests refused with 413")                                                           \
    X(err_timeout, "hems_http_errors_timeout_total", counter,                                \
      "requests cut by a header or body timeout (408)")                                      \
    X(idle_closed, "hems_connections_idle_closed_total", counter,                            \
      "keep-alive connections closed after the idle timeout")                                \
    X(recv_nobufs, "hems_recv_buffer_exhausted_total", counter,                              \
      "times the provided receive-buffer ring ran dry")                                      \
    X(io_errors, "hems_io_errors_total", counter, "socket errors on receive or send")

struct hm_shard_counters {
#define HM_CTR_FIELD(f, n, t, h) _Atomic uint64_t f;
    HM_SHARD_COUNTERS(HM_CTR_FIELD)
#undef HM_CTR_FIELD
};

/* Single-writer increment: a relaxed load and store, no locked instruction. */
#define HM_CTR_ADD(c, field, n)                                                              \
    atomic_store_explicit(&(c)->field,                                                       \
                          atomic_load_explicit(&(c)->field, memory_order_relaxed) + (n),     \
                          memory_order_relaxed)
#define HM_CTR_INC(c, field) HM_CTR_ADD(c, field, 1)
/* Same, for element <i> of a counter array (histogram buckets). */
#define HM_CTR_INC_ARR(arr, i)                                                               \
    atomic_store_explicit(&(arr)[i], atomic_load_explicit(&(arr)[i], memory_order_relaxed) + 1, \
                          memory_order_relaxed)
#define HM_CTR_DEC(c, field) HM_CTR_ADD(c, field, (uint64_t)-1)

/* Appends the Prometheus text rendering of the sum of <n> shards' counters to <out>. */
void hm_metrics_render_shards(struct hm_buf *out, struct hm_shard_counters *const *c, unsigned n);

#endif
