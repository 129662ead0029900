#ifndef HM_ALARM_STREAM_H
#define HM_ALARM_STREAM_H
/*
 * Live alarm stream: GET /api/v1/alarms/stream as Server-Sent Events (docs/alarms.md).
 *
 * Every event is an alarm read back from the committed history (HM_DB_ALARMS), so a stream
 * shows only what is durable, and its "id:" is the alarm's history key (32 hex digits): a
 * consumer that reconnects with "Last-Event-ID: KEY" (or ?cursor=KEY) gets every alarm after
 * it, from the store. Without a cursor a stream starts at the present (?since=MS: at that
 * event time). ?device=ID keeps one device's alarms.
 *
 * Threads and wake-ups: a stream lives on the shard that accepted it and is served by a
 * per-shard poll that reads the history after each stream's cursor in the shard's own MVCC
 * snapshot. The poll runs when alarms were committed (hm_alarm_streams_notify, from the
 * ACS's commit completion: one message per shard with streams, at most one in flight) and,
 * as a fallback, on a timer (every poll_ms, armed only while the shard has streams). Every
 * second the timer also rescans the last late_window_ms of event time for alarms committed
 * late (event time behind the cursor: HeNB clocks, queued events, concurrent commits from
 * other shards); keys already sent are remembered in a per-stream sorted set (the newest
 * HM_ALARM_STREAM_SEEN).
 *
 * Bounds: at most max_buffer bytes queued per stream (plus a socket send buffer of the same
 * size): a consumer still that far behind at the next poll is disconnected with a log line
 * and resumes from its last id; nothing is lost and no shard waits. A comment line is sent
 * after heartbeat_ms without events. Streams end when the shard drains (shutdown).
 */
#include "core/httpd.h"
#include "storage/store.h"

#define HM_ALARM_STREAM_SEEN 1024

struct hm_alarm_stream_opts {
    uint64_t heartbeat_ms;   /* 0: 15000 */
    uint64_t max_buffer;     /* bytes; 0: 1 MiB */
    uint64_t late_window_ms; /* 0: none */
    uint64_t poll_ms;        /* 0: 100 */
    uint64_t max_streams;    /* per shard; 0: 256 */
    /* The store reader of shard <s> (used on that shard's thread only). */
    struct hm_store_reader *(*reader_of)(struct hm_shard *s);
};

struct hm_alarm_streams;

/* <nshards>: hm_shards_count(). Owned by the caller; destroy after hm_shards_join(). */
struct hm_alarm_streams *hm_alarm_streams_create(const struct hm_alarm_stream_opts *o,
                                                 unsigned nshards);
void hm_alarm_streams_destroy(struct hm_alarm_streams *h);

/* Request handler body (already authorised): returns an HTTP status or HM_HTTP_DEFER. */
int hm_alarm_stream_open(struct hm_alarm_streams *h, struct hm_http_exchange *x);

/* Alarms were committed (an hm_alarm_notify_fn, core/alarm_notify.h; any thread): each
 * shard with streams polls at once instead of at its next timer tick. At most one wake
 * message per shard is in flight; the timer poll stays as the fallback. */
void hm_alarm_streams_notify(void *arg);

/* Prometheus text: open streams, events sent, consumers cut (any thread). */
void hm_alarm_streams_render_metrics(struct hm_buf *out, void *arg);

#endif
