#ifndef HM_FLEET_H
#define HM_FLEET_H
/*
 * Fleet configuration at run time (docs/profiles.md): the profiles and parameter pools of
 * this node, their durable copy in the store, and the two hooks the ACS calls.
 *
 * Durable layout (keys in HM_DB_META, so the store schema is unchanged):
 *   "fleet/p/" name '\0' idx   profile JSON, in chunks of < HM_STORE_MAX_VAL bytes
 *   "fleet/P/" name            pool {"lo":N,"hi":N}
 *   "fleet/a/" pool '\0' dev   allocated value (decimal)
 *   "fleet/t/" dev             the device's tags, normalised ("a,b")
 *   "fleet/s/" dev             reconciliation state (hash applied or queued, task, rejects)
 *   "fleet/r/" name            S1 region, normalised JSON (core/regions.h)
 *
 * Concurrency: profiles are compiled into an immutable struct hm_profset published through
 * one atomic pointer; a shard takes it with a hazard pointer in its own slot (two atomic
 * stores, no lock) for the duration of a hook. Writers (the API, on any shard) serialise on
 * a mutex, publish the new set, wait until no slot holds the old one (hooks are short and
 * never block), then free it. Pools have their own mutex (core/pools.h).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"
#include "proto/cwmp.h"
#include "storage/store.h"

#define HM_FLEET_MAX_POOLS 62
/* Profile value references that are not pools ("${s1:servers}", "${s1:port}": the device's
 * S1 far end from its region, core/regions.h), in the pool index space. */
#define HM_FLEET_REF_S1_SERVERS 62
#define HM_FLEET_REF_S1_PORT 63

struct hm_fleet;
struct hm_profset;
struct hm_pool;

/*
 * Loads pools, allocations and profiles from <st> (control path, main thread, before the
 * shards start). Profiles that no longer validate (e.g. a data model changed) are logged and
 * skipped. *<out> is owned by the caller: hm_fleet_destroy() after the shards stopped.
 */
int hm_fleet_create(struct hm_store *st, struct hm_fleet **out, char *err, size_t errlen);
void hm_fleet_destroy(struct hm_fleet *f);

/*
 * Inform hook (core/acs.c on_inform), on the shard thread with <slot> = its shard id, inside
 * the read snapshot of <rd>, before the device record <d> is written to batch <b>. Only for
 * devices this node serves (d->reg_state registered: not blocked or redirected). Looks the
 * device's desired state up (one hash probe), allocates pool values (persisted in <b>), and
 * when the state's hash is neither the device's ParameterKey nor recorded as applied, or a
 * parameter of the Inform drifted from its desired value, queues the difference as
 * SetParameterValues tasks (ParameterKey "profile-<hash8>") in <b>. Returns 0, or -E2BIG when
 * the batch cannot take more; internal problems are logged, never refuse the Inform.
 */
int hm_fleet_on_inform(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                       struct hm_store_batch *b, struct hm_slice dev,
                       const struct hm_cwmp_inform *in, const struct hm_dev_rec *d);

/*
 * Task-result hook (core/acs.c record_result), same thread and snapshot rules. For a
 * SetParameterValues task <seq> with JSON <args>: on success the values become the device's
 * known parameters (HM_DB_PARAMS) and a profile task marks the state applied; on a fault of
 * a profile task, the faulting parameters (SetParameterValuesFault) are recorded as rejected
 * for this desired state and the rest is queued again at once, or, without per-parameter
 * faults, the request is split in halves (the device's batch limit is remembered). For a
 * GetParameterValues response, values that drifted from the desired state are queued for
 * correction. Returns 0 or -E2BIG.
 */
int hm_fleet_on_result(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                       struct hm_store_batch *b, struct hm_slice dev, uint64_t seq,
                       uint8_t kind, struct hm_slice args, const struct hm_cwmp_msg *m);

/* Wires <f> (not owned, outlives the ACS) into the ACS (core/acs.c). */
struct hm_acs;
void hm_acs_set_fleet(struct hm_acs *a, struct hm_fleet *f);

/* Appends the Prometheus metrics (hems_profiles_*, hems_pool_*). */
void hm_fleet_render_metrics(struct hm_buf *out, void *arg);

/* ---- for the API (core/api_profiles.c) ------------------------------------------------ */

struct hm_store *hm_fleet_store(struct hm_fleet *f);

/* Takes / releases the current set in reader slot <slot> (the caller's shard id). */
struct hm_profset *hm_fleet_acquire(struct hm_fleet *f, unsigned slot);
void hm_fleet_release(struct hm_fleet *f, unsigned slot);

/* Pools: the i-th (append-only; NULL past the end) and by name. */
struct hm_pool *hm_fleet_pool(struct hm_fleet *f, unsigned i);
int hm_fleet_pool_index(struct hm_fleet *f, const char *name);

/*
 * Writers. Each validates, adds the durable change to <b> (not submitted) and applies it in
 * memory, serialised with the other writers, in the order the batches are submitted: the
 * caller submits <b> before calling anything else on <f> and answers after the commit.
 * Errors: -EINVAL (message in <err>), -ENOENT, -EBUSY (pool range would drop an allocation),
 * -E2BIG. <json> of a profile PUT is returned normalised in *<norm> (new reference).
 */
int hm_fleet_profile_put(struct hm_fleet *f, const char *name, json_t *in,
                         struct hm_store_batch *b, json_t **norm, char *err, size_t errlen);
int hm_fleet_profile_del(struct hm_fleet *f, const char *name, struct hm_store_batch *b);
/*
 * Undoes the last hm_fleet_profile_put/del of <name> when its batch could not be submitted
 * (still under the lock). hm_fleet_profile_done() forgets the undo record once submitted.
 */
void hm_fleet_profile_undo(struct hm_fleet *f);
void hm_fleet_profile_done(struct hm_fleet *f);
int hm_fleet_pool_put(struct hm_fleet *f, const char *name, json_t *in,
                      struct hm_store_batch *b, char *err, size_t errlen);
/*
 * S1 regions. put/del validate, add the durable change to <b> and stage it (under the fleet
 * lock); hm_fleet_region_commit() applies the staged change once <b> was submitted
 * (<submitted> true) or drops it. -EINVAL (message in <err>), -ENOENT, -E2BIG. The
 * normalised region is returned in *<norm> (new reference).
 */
int hm_fleet_region_put(struct hm_fleet *f, const char *name, json_t *in,
                        struct hm_store_batch *b, json_t **norm, char *err, size_t errlen);
int hm_fleet_region_del(struct hm_fleet *f, const char *name, struct hm_store_batch *b);
void hm_fleet_region_commit(struct hm_fleet *f, bool submitted);
/* All regions (array, by name) or one (NULL: none); deep copies, new references. */
json_t *hm_fleet_regions_json(struct hm_fleet *f, const char *name);

void hm_fleet_lock(struct hm_fleet *f);
void hm_fleet_unlock(struct hm_fleet *f);

/*
 * The device's desired state as JSON {"parameter_key", "params":[{name,value,type}],
 * "state", "rejected":[...]} (new reference), inside <rd>'s snapshot; NULL when no profile
 * applies. Pool values are shown only once allocated.
 */
json_t *hm_fleet_desired_json(struct hm_fleet *f, unsigned slot, struct hm_store_reader *rd,
                              struct hm_slice dev);

#endif
