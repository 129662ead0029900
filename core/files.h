#ifndef HM_FILES_H
#define HM_FILES_H
/*
 * File server for configuration by file Download (3GPP TS 32.593 5.2.2) and firmware images
 * (docs/files.md).
 *
 * - Operators upload, list and delete files through /api/v1/files (admin listener; the API's
 *   bearer roles apply: core/api.c dispatches "files..." here after authorising).
 * - CPEs fetch them from <path><name> on the CWMP listener (GET/HEAD, one byte Range, per-file
 *   Basic or Digest credentials checked against the stored HA1).
 * - A Download task may name an uploaded "file": hm_files_task_resolve() fills URL, FileType,
 *   FileSize and username; the password is never stored: it is derived when the RPC is written
 *   (HMAC-SHA256 of the file's credential id under a secret kept in <data_dir>/files/.secret).
 *
 * Threads: shards only parse, authenticate and look metadata up (read snapshots); every disk
 * read, write, fsync and metadata commit runs on one I/O thread, which answers through
 * hm_shard_post(). File bytes are content-addressed blobs <data_dir>/files/<sha256 hex>
 * (temp name, fsync, rename, fsync of the folder); metadata lives in HM_DB_FILES under
 * "cfg/<name>" and successful downloads under "applied/<device>\0<file type digit>".
 *
 * Ownership: hm_files_create() returns an object owned by the caller; hm_files_destroy()
 * joins the I/O thread (after hm_shards_join(), before hm_store_close()).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/shard.h"
#include "storage/store.h"

struct hm_files;

struct hm_files_opts {
    const char *data_dir; /* blobs in <data_dir>/files/ */
    const char *path;     /* URL path prefix on the CWMP listener, e.g. "/files/" */
    const char *base_url; /* URL prefix written in Download RPCs ("" : http://<cwmp_listen><path>) */
    const char *cwmp_listen;
    const char *realm;  /* realm of new per-file credentials */
    uint64_t max_bytes; /* larger uploads: 413 */
    uint64_t max_inflight_bytes; /* download bytes buffered at once; beyond: 503 (0: no cap) */
    /* The store reader owned by shard <s>. */
    struct hm_store_reader *(*reader_of)(struct hm_shard *s);
};

/* Creates the folder and the secret, starts the I/O thread (which first removes temp files
 * and unreferenced blobs). 0 or -errno / HM_E* with a message in <err>. */
int hm_files_create(const struct hm_files_opts *o, struct hm_store *store, struct hm_files **out,
                    char *err, size_t errlen);
/* Stops and joins the I/O thread, frees <f>. NULL is a no-op. */
void hm_files_destroy(struct hm_files *f);

#define HM_FILES_NROUTES 1
/* Appends the download route (CWMP listener). Returns the routes added. */
unsigned hm_files_routes(struct hm_route *r, struct hm_files *f);

/*
 * The northbound API part, called by core/api.c once the request is authorised. <sub> is the
 * path after "/api/v1/": "files" or "files/<name>". <rd> is the shard's store reader.
 * Returns an HTTP status or HM_HTTP_DEFER, like a route handler.
 */
int hm_files_api(struct hm_http_exchange *x, struct hm_files *f, struct hm_store_reader *rd,
                 struct hm_slice sub);

/*
 * For a Download task <task> (a JSON object from the API) with a "file" member: checks that
 * the file exists and sets "url", "file_type" (unless given), "file_size", "sha256" and, when
 * the file has credentials, "username" and "cred_id". No-op (0) for other tasks. Returns 0
 * or -EINVAL with a message in <err>. Shard thread (reads a snapshot of <rd>).
 */
int hm_files_task_resolve(struct hm_files *f, struct hm_store_reader *rd, json_t *task,
                          char *err, size_t errlen);

/*
 * Writes the password of credential id <cred_id> (hex) to <out> (at least 32 bytes), NUL
 * ended. Returns its length or -EINVAL. Any thread. Matches the hm_task password hook.
 */
int hm_files_password(void *f, struct hm_slice cred_id, char *out, size_t cap);

/*
 * Appends to <b> the "applied" record of a Download task of device <dev> that completed with
 * success, when its JSON <args> name an uploaded "file" (else appends nothing). Returns 0 or
 * a store batch error. Any thread; no state.
 */
int hm_files_record_applied(struct hm_store_batch *b, struct hm_slice dev, struct hm_slice args,
                            uint64_t seq, uint64_t now_ms);

/* ---- pure helpers (unit-tested) ---- */

/* True for 1..128 bytes of [A-Za-z0-9._-] not starting with '.': never a path. */
bool hm_files_name_ok(struct hm_slice name);

/* The canonical TR-069 FileType string for "1".."5" or the full string ("3 Vendor
 * Configuration File"); NULL when unknown. */
const char *hm_files_type_canon(const char *s);

/* Appends the file server's metrics (an hm_metrics_render_fn). */
void hm_files_render_metrics(struct hm_buf *out, void *f);

#endif
