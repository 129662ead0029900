#ifndef HM_CAMPAIGNS_H
#define HM_CAMPAIGNS_H
/*
 * Campaign runtime (docs/campaigns.md): the control thread that drives every rollout
 * campaign (core/campaign.h has the state machine) and its northbound API.
 *
 * Threads: one control thread owns every mutation. It wakes every tick_ms (or when a
 * command arrives), and per campaign: reads the outcome of its devices in progress (task
 * records in HM_DB_TASKS, SoftwareVersion in HM_DB_DEVICES) from its own read snapshot,
 * advances the state machine (timeouts, halt, waves), dispatches the next devices at the
 * campaign's pace (a Download task record per device), commits every change in one batch
 * and waits for that commit, and only then sends the connection requests of the devices just
 * dispatched (core/connreq.h). Nothing of this runs on a shard: Informs and task results are
 * recorded by the ACS as usual, the campaign reads them afterwards.
 *
 * The API handler runs on the shard that got the request: reads (GET) take the runtime's
 * mutex and render from memory; changes (create, start, pause, resume, cancel, delete) are
 * validated on the shard where they can be, handed to the control thread, and answered from
 * there through hm_shard_post() once committed (HM_HTTP_DEFER).
 *
 * Durable layout (HM_DB_META, so the store schema is unchanged):
 *   "camp/c/" name               campaign record (definition, state, wave cursor), JSON
 *   "camp/d/" name '\0' BE32 i   device i: state, wave, task id, fault, times (34 B + id)
 * A restart reloads both: a campaign resumes in the state and wave it had, with every
 * device's outcome; devices in progress keep their task and their timeout clock.
 */
#include <stdint.h>

#include "core/buf.h"
#include "core/httpd.h"
#include "storage/store.h"

struct hm_campaigns;
struct hm_files;
struct hm_connreq;

struct hm_campaigns_opts {
    struct hm_store *store;     /* not owned */
    struct hm_files *files;     /* not owned; resolves the campaign's file */
    struct hm_connreq *connreq; /* not owned; NULL: no connection requests (devices pick the
                                 * task up at their next periodic Inform) */
    uint32_t tick_ms;           /* control loop period; 0: 200 */
};

/* Loads the campaigns from the store and starts the control thread (main thread, before the
 * shards start). 0 or -errno with <err>. *<out> owned: hm_campaigns_destroy(). */
int hm_campaigns_create(const struct hm_campaigns_opts *o, struct hm_campaigns **out, char *err,
                        size_t errlen);
/* Stops and joins the control thread (before hm_connreq_stop() and hm_store_close(), after
 * the shards stopped: pending commands are dropped unanswered), frees everything. NULL: no-op. */
void hm_campaigns_destroy(struct hm_campaigns *c);

/*
 * API (called by core/api.c after authorisation): <sub> is the path after "/api/v1/",
 * "campaigns" or "campaigns/...". Returns an HTTP status or HM_HTTP_DEFER.
 *   GET    campaigns                      summaries
 *   POST   campaigns                      create (201)
 *   GET    campaigns/{name}               progress: state, reason, per-wave counts
 *   DELETE campaigns/{name}               created, completed or cancelled ones (204)
 *   POST   campaigns/{name}/{start|pause|resume|cancel}
 *   GET    campaigns/{name}/devices?state=&wave=&offset=&limit=   per-device outcomes
 */
int hm_campaigns_api(struct hm_http_exchange *x, struct hm_campaigns *c, struct hm_slice sub);

/* Prometheus text (hems_campaigns, hems_campaign_devices, ...). arg: the hm_campaigns. */
void hm_campaigns_render_metrics(struct hm_buf *out, void *arg);

#endif
