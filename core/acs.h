#ifndef HM_ACS_H
#define HM_ACS_H
/*
 * The ACS: CWMP sessions on the shards (TR-069 §3.7, reference §1.5).
 *
 * A session is bound to its TCP connection (CPEs keep the connection for the whole session,
 * TR-069 §3.4.1); a session cookie is set on the InformResponse and must come back
 * unchanged on later requests of the connection. One session per device at a time, over all
 * shards (core/sessreg.h): a second one is answered with Fault 8005.
 *
 *   POST Inform          -> device record + Inform parameters committed (group commit),
 *                           then 200 InformResponse (MaxEnvelopes 1) + Set-Cookie
 *   POST CPE request     -> its response (TransferComplete: after the task result commits)
 *   POST empty           -> next queued task as an RPC, or 204 (session over)
 *   POST RPC response    -> task result committed, then the next task or 204
 *
 * Every state change that is acknowledged to the CPE is durable first; the shard never
 * waits: the exchange is deferred and resumed by the store's completion message.
 */
#include "core/config.h"
#include "core/shard.h"
#include "storage/store.h"

struct hm_acs;

/*
 * Creates the ACS over <store> for the shards of <ss> (before they start): opens a store
 * reader and a parse arena per shard, installs the connection-close hook. <cfg> is read
 * now (auth, limits). Returns NULL with <err> on failure.
 */
struct hm_acs *hm_acs_create(const struct hm_config *cfg, struct hm_store *store,
                             struct hm_shards *ss, char *err, size_t errlen);

/* After the shards have stopped and before hm_store_close(): closes the store readers. */
void hm_acs_close_readers(struct hm_acs *a);

/* After the shards have stopped (and their inboxes were drained). */
void hm_acs_destroy(struct hm_acs *a);

/* Adds the CWMP route (<cfg>->cwmp_path on the CWMP listener); returns routes added (1). */
unsigned hm_acs_routes(struct hm_route *r, const struct hm_config *cfg);

/* Appends the ACS metrics (sessions, faults, auth, tasks) in Prometheus text to <out>. */
void hm_acs_render_metrics(struct hm_buf *out, void *acs);

/* The store reader of shard <s> (for other handlers on that shard, e.g. the API). */
struct hm_store_reader *hm_acs_shard_reader(struct hm_shard *s);

/* The store this ACS writes to (for the northbound API). */
struct hm_store *hm_acs_store(struct hm_acs *a);

#endif
