#ifndef HM_PM_PIPE_H
#define HM_PM_PIPE_H
/*
 * PM ingestion pipeline (docs/pm.md, "Pipeline"): upload endpoint on the CWMP listener,
 * a spool thread (writes + fsyncs each upload before the 201), pipeline threads (parse with
 * proto/pm.h, store in HM_DB_PM through the group-commit writer, per-counter aggregates,
 * quarantine of malformed files), and the query API under /api/v1/pm/ on the admin listener.
 *
 * Threads: shards only copy the body and push a job (lock-free hm_mpsc + eventfd); every
 * disk write, fsync and parse happens on the spool / pipeline threads.
 *
 * Ownership: hm_pm_pipe_create() returns a pipe owned by the caller; hm_pm_pipe_destroy()
 * joins its threads (after hm_shards_join(), before hm_store_close()).
 */
#include <stdint.h>

#include "core/buf.h"
#include "core/shard.h"
#include "storage/store.h"

struct hm_pm_pipe;

struct hm_pm_pipe_opts {
    const char *data_dir;       /* spool in <data_dir>/pm-spool, <data_dir>/pm-quarantine */
    const char *upload_path;    /* URL prefix on the CWMP listener, e.g. "/pm/" */
    uint64_t spool_max_files;   /* 503 beyond this many files waiting */
    uint64_t spool_max_bytes;   /* 503 beyond this many bytes waiting */
    uint64_t max_file_bytes;    /* 413 above this upload size */
    unsigned threads;           /* pipeline threads (>= 1) */
    const char *username;       /* upload credentials (Basic or Digest); "" = no auth */
    const char *password;
    const char *realm;
    /* Verify uploads against the per-device credentials of the device records (PM tail,
     * core/hems_pm.h): Basic/Digest username = device id; devices with PM disabled, unknown
     * users and another device's credentials get 403. */
    bool device_credentials;
    /* The store reader owned by shard <s> (API reads). */
    struct hm_store_reader *(*reader_of)(struct hm_shard *s);
};

/* Creates the folders, re-queues files left in the spool, starts the threads.
 * 0 or -errno / HM_E* with a message in <err>. */
int hm_pm_pipe_create(const struct hm_pm_pipe_opts *o, struct hm_store *store,
                      struct hm_pm_pipe **out, char *err, size_t errlen);
/* Stops and joins the threads; spooled files stay for the next start. NULL is a no-op. */
void hm_pm_pipe_destroy(struct hm_pm_pipe *p);

/* Hands a file to the spool thread as an upload would (bench, tests, other transports).
 * <data> (malloc'ed, <len> bytes) is taken over. <done>(<arg>, status) runs once on the spool
 * thread with the status an upload would get: 201 (durably spooled), 200 (duplicate), 400,
 * 500. Returns 0, or -EBUSY when the spool is over its limits (<done> is not called and
 * <data> stays the caller's). Any thread. */
int hm_pm_pipe_spool(struct hm_pm_pipe *p, const char *name, char *data, size_t len,
                     void (*done)(void *arg, int status), void *arg);

struct hm_pm_pipe_stats {
    uint64_t spool_files, spool_bytes;
    uint64_t files_ingested, bytes_ingested, meas_ingested, files_quarantined;
    uint64_t uploads_dup, uploads_rejected_full, uploads_failed;
};
/* A snapshot of the counters (relaxed atomics; any thread). */
void hm_pm_pipe_stats(struct hm_pm_pipe *p, struct hm_pm_pipe_stats *out);

#define HM_PM_NROUTES 2
/* Appends the upload route (CWMP listener) and the /api/v1/pm/ route (admin listener,
 * to be added before the generic /api/v1/ route). Returns the routes added. */
unsigned hm_pm_routes(struct hm_route *r, struct hm_pm_pipe *p);

/* Appends the pipeline's metrics (an hm_metrics_render_fn for hm_admin_add_metrics). */
void hm_pm_render_metrics(struct hm_buf *out, void *pipe);

#endif
