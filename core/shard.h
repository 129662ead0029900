#ifndef HM_SHARD_H
#define HM_SHARD_H
/*
 * Shards: one thread per core, each with its own io_uring, its own SO_REUSEPORT listeners,
 * connection table, buffer pools and timer wheel. Shards share nothing mutable; other threads
 * talk to a shard only through hm_shard_post() (a lock-free message stack plus an eventfd).
 *
 * Lifecycle (main thread): hm_shards_create() binds every listener and allocates every table
 * (so configuration and port errors show before anything runs), hm_shards_start() starts the
 * threads, hm_shards_stop() asks for a graceful drain, hm_shards_join() waits, and
 * hm_shards_destroy() frees.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "core/httpd.h"
#include "core/metrics.h"
#include "core/mpsc.h"

struct hm_shards;

/* A message to a shard; embed it in your own struct. <fn> runs on the shard's thread. */
struct hm_shard_msg {
    struct hm_mpsc_node node;
    void (*fn)(struct hm_shard *s, struct hm_shard_msg *m);
};

/* A route: requests on <listener> whose path starts with <prefix> (exact match when
 * <exact>) go to <fn>. Routes are tried in the order added; no match is 404. */
struct hm_route {
    enum hm_listener_kind listener;
    const char *prefix;
    bool exact;
    hm_http_handler fn;
    void *ctx;
};

/*
 * Creates <cfg>->shards shards (0: one per online CPU), binds their listeners and sizes
 * connection tables from RLIMIT_NOFILE (raising the soft limit to the hard one) unless
 * max_connections is set. Returns NULL with a message in <err> on failure. <cfg> is copied.
 */
struct hm_shards *hm_shards_create(const struct hm_config *cfg, const struct hm_route *routes,
                                   unsigned nroutes, char *err, size_t errlen);
int hm_shards_start(struct hm_shards *ss);
/* Stop accepting, finish or time out in-flight requests, close; threads then exit. */
void hm_shards_stop(struct hm_shards *ss);
void hm_shards_join(struct hm_shards *ss);
/*
 * After hm_shards_join() and once no other thread posts any more (the store is closed):
 * runs the messages still queued to the shards, on the calling thread, so that their
 * owners release what they hold. Then hm_shards_destroy().
 */
void hm_shards_drain_inboxes(struct hm_shards *ss);
void hm_shards_destroy(struct hm_shards *ss);

/* Pushes the reloadable keys of <cfg> to every shard (applied on their threads). */
void hm_shards_reload(struct hm_shards *ss, const struct hm_config *cfg);

unsigned hm_shards_count(const struct hm_shards *ss);
struct hm_shard *hm_shards_get(struct hm_shards *ss, unsigned i);
/* Connection slots per shard, as sized at creation. */
uint32_t hm_shards_conns_per_shard(const struct hm_shards *ss);

/* Any thread: queues <m> for <s>; <m> must stay valid until its fn runs. */
void hm_shard_post(struct hm_shard *s, struct hm_shard_msg *m);

unsigned hm_shard_id(const struct hm_shard *s);
struct hm_shards *hm_shard_group(struct hm_shard *s);
struct hm_shard_counters *hm_shard_counters(struct hm_shard *s);
/* True once the shard has started draining (shutdown in progress). */
bool hm_shard_draining(const struct hm_shard *s);
/* True while every shard's thread runs and none is draining. */
bool hm_shards_ready(struct hm_shards *ss);

/* Per-shard pointer for the application (one per process), e.g. session tables. */
void hm_shard_set_app(struct hm_shard *s, void *app);
void *hm_shard_app(struct hm_shard *s);

void hm_httpd_set_conn_close_hook(hm_conn_close_hook hook);

/* Sums counters of all shards into Prometheus text. */
void hm_shards_render_metrics(struct hm_shards *ss, struct hm_buf *out);

#endif
