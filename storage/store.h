#ifndef HM_STORE_H
#define HM_STORE_H
/*
 * hm_store: the durable device store, one LMDB environment with named databases
 * (storage/store-t.h lists them; docs/storage.md has the schema and the durability argument).
 *
 * Threads:
 * - Reads run on any thread through a per-thread struct hm_store_reader (MVCC snapshot, no
 *   lock, no syscall in the common case).
 * - Writes never run on the caller's thread: the caller fills a struct hm_store_batch and
 *   submits it over a lock-free MPSC ring to the single writer thread, which applies every
 *   pending batch in one write transaction, commits (one fsync for all of them), then calls
 *   each batch's completion on the writer thread. Nothing is acknowledged before commit.
 *
 * Errors (all functions): 0 or a count on success, else a negative value:
 *   -ENOENT (no such key), -EAGAIN (ring full: shed; or map resize in progress for
 *   hm_store_read_begin: retry later), -E2BIG (key or value too large), -ENOSPC (map at
 *   map_max), -ESHUTDOWN (store closing), -EINVAL (bad argument), HM_ECORRUPT (corrupt or
 *   foreign file or record), HM_EVERSION (unknown record or schema version, or LMDB format
 *   mismatch), HM_ESTORE (other LMDB failure), other -errno from the system.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h> /* before core/bug.h poisons names it declares */

#include "core/bug.h"
#include "core/err.h"
#include "core/slice.h"
#include "storage/store-t.h"

struct hm_store;
struct hm_store_reader;

/* ---- environment ----------------------------------------------------------------------- */

/*
 * Opens (creating if absent, mode 0700 directory / 0600 files) the environment in directory
 * <path> and starts the writer thread. <opts> may be NULL (defaults). A file that is not an
 * LMDB environment, an LMDB environment without our magic record, or a schema other than
 * HM_STORE_SCHEMA is refused (HM_ECORRUPT / HM_EVERSION) with a logfmt line on stderr naming
 * the path and the reason. On success *<out> is owned by the caller: hm_store_close().
 * <path> is not retained. Errors: HM_ECORRUPT, HM_EVERSION, -EINVAL (ring_size not a power
 * of two >= 4), -errno (directory, eventfd, thread creation), HM_ESTORE.
 */
HM_MUST_CHECK int hm_store_open(const char *path, const struct hm_store_opts *opts,
                                struct hm_store **out);

/*
 * Stops accepting batches (submit then returns -ESHUTDOWN), lets the writer commit every
 * batch already submitted (their completions fire), joins it and closes the environment.
 * All readers must have been closed. <s> is freed; NULL is a no-op.
 */
void hm_store_close(struct hm_store *s);

/*
 * Writes a compacted copy of the environment into directory <dir> (created if absent; must
 * not already hold a data.mdb). Consistent snapshot; runs on the caller's thread and may take
 * long: control path only. The copy opens with hm_store_open(). While it runs the map cannot
 * grow, so a writer that fills the map waits for it. Errors: -EEXIST (data.mdb present),
 * -errno, HM_ESTORE. Not from a thread that holds a read snapshot (it could deadlock with a
 * map resize).
 */
HM_MUST_CHECK int hm_store_backup(struct hm_store *s, const char *dir);

/*
 * Fills *<out> (control path: opens a short read transaction; same snapshot caveat as
 * hm_store_backup). Counters are monotonic since open. Errors: HM_ESTORE, HM_ECORRUPT.
 */
HM_MUST_CHECK int hm_store_stats(struct hm_store *s, struct hm_store_stats *out);

/*
 * A process-unique increasing 64-bit sequence for task and alarm keys; survives restarts
 * (a block of 2^32 is reserved in meta at open). Lock-free, any thread.
 */
uint64_t hm_store_next_seq(struct hm_store *s);

/* Message for an LMDB return code (positive errno or MDB_*), never NULL. */
const char *hm_store_mdb_strerror(int mdb_rc);

/* ---- reads ----------------------------------------------------------------------------- */

/*
 * Creates a reader for the calling thread (control path: at thread start). Owned by the
 * caller until hm_store_reader_close(), which must precede hm_store_close() and not be called
 * inside a snapshot. A reader is used by one thread at a time; it holds an LMDB reader slot
 * from its first hm_store_read_begin() (slots: opts.max_readers). Allocates (hm_xcalloc).
 * Not from a thread holding another reader's snapshot (the registry lock is also taken by a
 * map resize, which waits for snapshots to end).
 */
HM_MUST_CHECK int hm_store_reader_open(struct hm_store *s, struct hm_store_reader **out);
void hm_store_reader_close(struct hm_store_reader *r);

/*
 * Starts a read snapshot (mdb_txn_renew). -EAGAIN while the writer grows the map (rare,
 * milliseconds): retry on a later loop turn. Keep snapshots short: an open snapshot pins old
 * pages and delays map growth. Errors: -EAGAIN, -EMFILE (reader slots exhausted), HM_ESTORE.
 * On error no snapshot is open (do not call hm_store_read_end()).
 */
HM_MUST_CHECK int hm_store_read_begin(struct hm_store_reader *r);

/* Ends the snapshot (mdb_txn_reset). Every slice obtained in it becomes invalid. */
void hm_store_read_end(struct hm_store_reader *r);

/*
 * Looks <key> up in <db>. On 0, *<val> points into the map: valid until hm_store_read_end(),
 * read-only (LMDB maps it read-only: writing through it faults). -ENOENT if absent, -EINVAL
 * for a bad <db> or an empty or over-long key. Only inside a snapshot.
 */
HM_MUST_CHECK int hm_store_get(struct hm_store_reader *r, enum hm_store_db db, struct hm_slice key,
                               struct hm_slice *val);

/*
 * Calls <cb> for each entry of <db> whose key starts with <prefix> (all entries if empty),
 * in key order, starting at the first key >= <from> if <from> is non-empty (<from> must then
 * start with <prefix>, else -EINVAL: resume a scan from its last key). Slices passed to
 * <cb> are valid until hm_store_read_end(). <cb> returns 0 to go on, > 0 to stop (scan
 * returns that value), < 0 to fail (scan returns it). Returns 0 when the range is exhausted.
 */
typedef int (*hm_store_scan_fn)(void *arg, struct hm_slice key, struct hm_slice val);
HM_MUST_CHECK int hm_store_scan(struct hm_store_reader *r, enum hm_store_db db,
                                struct hm_slice prefix, struct hm_slice from, hm_store_scan_fn cb,
                                void *arg);

/* ---- writes ---------------------------------------------------------------------------- */

/* Prepares <b> (equivalent to zeroing it). */
void hm_store_batch_init(struct hm_store_batch *b);

/* Empties <b>, keeping its memory. Not while submitted. */
void hm_store_batch_reset(struct hm_store_batch *b);

/* Releases <b>'s memory. Not while submitted. */
void hm_store_batch_fini(struct hm_store_batch *b);

/*
 * Appends a put of <key> -> <val> in <db>; both are copied into the batch. -E2BIG if the key
 * is empty or over HM_STORE_MAX_KEY, or the value over HM_STORE_MAX_VAL; -EINVAL for a bad
 * <db>. The batch is unchanged on error.
 */
HM_MUST_CHECK int hm_store_batch_put(struct hm_store_batch *b, enum hm_store_db db,
                                     struct hm_slice key, struct hm_slice val);

/*
 * Appends a put of <key> with a <vlen>-byte value the caller writes in place (zero-copy
 * encoding); returns the value's bytes in the batch or NULL (-E2BIG / -EINVAL conditions).
 * The pointer is valid until the next append, reset or submit.
 *
 * Appends copy into the batch's buffer, which grows (hm_xrealloc: aborts on OOM) until it
 * reaches its high-water mark; reuse batches so the data path stops allocating.
 */
char *hm_store_batch_put_reserve(struct hm_store_batch *b, enum hm_store_db db, struct hm_slice key,
                                 size_t vlen);

/* Appends a delete of <key> (absent keys are not an error). Errors as hm_store_batch_put. */
HM_MUST_CHECK int hm_store_batch_del(struct hm_store_batch *b, enum hm_store_db db,
                                     struct hm_slice key);

/* Appends a delete of every key that starts with <prefix> (non-empty). */
HM_MUST_CHECK int hm_store_batch_del_prefix(struct hm_store_batch *b, enum hm_store_db db,
                                            struct hm_slice prefix);

/*
 * Hands <b> to the writer. From 0 until <done>(<arg>, status) has returned, the batch
 * belongs to the store: do not touch it. <done> runs exactly once, on the writer thread,
 * after the transaction containing the batch committed (0) or failed (< 0, none of the
 * batch applied). The batch's ops are applied in order; batches are applied in submission
 * order per producer. An empty batch is a durability barrier.
 * Returns 0, -EAGAIN (ring full: <done> will not run; shed or retry), -ESHUTDOWN.
 * Never blocks (one eventfd write when the writer sleeps).
 */
HM_MUST_CHECK int hm_store_submit(struct hm_store *s, struct hm_store_batch *b,
                                  hm_store_done_fn done, void *arg);

/*
 * Blocking form for threads that may wait (start-up, background threads, tools; never a
 * shard or the writer itself): submits <b>, retrying every millisecond while the ring is full
 * (-EAGAIN) for at most <give_up_ms> (0: until it is taken), then waits for the commit.
 * Returns the commit status (0 or < 0), -EAGAIN when it gave up, -ESHUTDOWN. The batch is
 * the caller's again on return (not reset).
 */
HM_MUST_CHECK int hm_store_submit_wait(struct hm_store *s, struct hm_store_batch *b,
                                       unsigned give_up_ms);

#endif
