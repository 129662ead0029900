#ifndef HM_POOLS_H
#define HM_POOLS_H
/*
 * Parameter pools (docs/profiles.md): integer ranges lo..hi from which each device gets one
 * unique value (E-UTRAN Cell Identity, Physical Cell ID, TAC, ...), kept for the device's
 * whole life in this store, across re-registrations and restarts.
 *
 * A pool is an in-memory allocator: a bitmap of the values in use and a hash map device ->
 * value, under one mutex (the critical section is a hash probe, plus a bitmap scan when a
 * device is new). The durable copy is one HM_DB_META key per allocation, written by the
 * caller in the same store batch as the device's Inform; at start every allocation is fed
 * back with hm_pool_restore(). Uniqueness is the mutex's: two shards registering thousands
 * of devices at once never get the same value, whatever order their batches commit in.
 *
 * Thread safety: every function may be called from any thread, except hm_pool_destroy().
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/slice.h"

#define HM_POOL_MAX_SIZE (1u << 24) /* values per pool (bitmap of 2 MiB) */
#define HM_POOL_NAME_MAX 63

struct hm_pool;

struct hm_pool_stats {
    int64_t lo, hi;
    uint64_t size, used, exhausted; /* exhausted: allocations refused, since start */
    bool pci;                       /* a PCI pool (below) */
    uint32_t distance;              /* PCI pools: the reuse distance in TACs */
    uint64_t tacs;                  /* PCI pools: TACs with at least one allocation */
};

/*
 * A pool of the values lo..hi (0 <= lo <= hi, at most HM_POOL_MAX_SIZE of them). <name> is
 * copied. NULL with -EINVAL semantics when the range is invalid or the name empty / too long
 * (characters: letters, digits, '_', '-', '.'). Free with hm_pool_destroy().
 */
struct hm_pool *hm_pool_create(const char *name, int64_t lo, int64_t hi);
void hm_pool_destroy(struct hm_pool *p);

/* The pool's name (NUL-terminated, owned by the pool). */
const char *hm_pool_name(const struct hm_pool *p);

/*
 * The value of device <dev>, allocating the lowest free value at or after the last one
 * given (next fit) when it has none; *<fresh> tells a new allocation (the caller persists
 * it). Returns 0, or -ENOSPC when the pool is exhausted (counted in stats.exhausted).
 */
int hm_pool_get(struct hm_pool *p, struct hm_slice dev, int64_t *val, bool *fresh);

/* The value of <dev> without allocating: 0 or -ENOENT. */
int hm_pool_lookup(struct hm_pool *p, struct hm_slice dev, int64_t *val);

/*
 * Records an allocation read back from the store (start-up). 0; -ERANGE when <val> is
 * outside the pool; -EEXIST when <val> is held by another device or <dev> holds another
 * value (the store is inconsistent: the caller logs and skips it).
 */
int hm_pool_restore(struct hm_pool *p, struct hm_slice dev, int64_t val);

/* Frees <dev>'s value: 0 or -ENOENT. */
int hm_pool_release(struct hm_pool *p, struct hm_slice dev);

/* Changes the range to lo..hi: -EBUSY if an allocated value would fall outside, -EINVAL for
 * a bad range. */
int hm_pool_resize(struct hm_pool *p, int64_t lo, int64_t hi);

void hm_pool_stats(struct hm_pool *p, struct hm_pool_stats *out);

/* Whether <name> is a valid pool name. */
bool hm_pool_name_ok(const char *name);

/*
 * ---- PCI pools: Physical Cell IDs reused at a distance (docs/profiles.md) --------------
 *
 * A PCI pool hands each device a value of lo..hi (0..503 for LTE) *per TAC*: the value of a
 * device of TAC t is held by no other device whose TAC t' satisfies |t - t'| <= distance
 * (distance 0: unique within the TAC only). A device's entry is (value, TAC); one bitmap of
 * values per TAC in use. Allocation ORs the bitmaps of the TACs within the distance (2d+1
 * probes, or one pass over the TACs in use when fewer) and takes the next free value.
 * A device whose TAC changes keeps its value when it is free in the new neighbourhood.
 * TAC -1 stands for "no TAC known" and is a TAC like any other (its neighbours: -1 only).
 * The plain functions above work on PCI pools too (hm_pool_get() with TAC -1).
 */
#define HM_PCI_POOL_MAX_SIZE 4096u /* values per PCI pool (one 512-byte bitmap per TAC) */
#define HM_PCI_MAX_DISTANCE 65535u
#define HM_PCI_MAX_TAC 0xffffffffLL /* TACs: 0..2^32-1 (LTE 16 bits, NR 24); others: -1 */

/* A PCI pool: lo..hi (at most HM_PCI_POOL_MAX_SIZE values), reuse distance <distance>. */
struct hm_pool *hm_pool_create_pci(const char *name, int64_t lo, int64_t hi, uint32_t distance);
bool hm_pool_is_pci(const struct hm_pool *p);

/*
 * The value of <dev> whose TAC is now <tac> (>= -1): its current value when it has one and
 * it is still free for <tac>, else the next free value for <tac> (*<fresh>: the (value, TAC)
 * pair changed, the caller persists it). -ENOSPC: no value satisfies the distance (counted).
 * On a plain pool <tac> is ignored.
 */
int hm_pool_get_tac(struct hm_pool *p, struct hm_slice dev, int64_t tac, int64_t *val,
                    bool *fresh);

/* Restores (value, TAC) of <dev> (start-up). Errors as hm_pool_restore(); -EEXIST also when
 * <val> is taken within <tac> itself (a neighbour's use is accepted: the store is the truth,
 * the distance may have been lowered since). */
int hm_pool_restore_tac(struct hm_pool *p, struct hm_slice dev, int64_t tac, int64_t val);

/* The (value, TAC) of <dev>: 0 or -ENOENT (TAC -1 on plain pools). */
int hm_pool_lookup_tac(struct hm_pool *p, struct hm_slice dev, int64_t *val, int64_t *tac);

/* Changes the reuse distance: -EBUSY when two allocations would violate it, -EINVAL on a
 * plain pool or a distance over HM_PCI_MAX_DISTANCE. */
int hm_pool_set_distance(struct hm_pool *p, uint32_t distance);

/* Calls <fn> for every allocation, under the pool's mutex (<fn> must not call the pool). */
typedef void (*hm_pool_each_fn)(void *arg, struct hm_slice dev, int64_t val, int64_t tac);
void hm_pool_foreach(struct hm_pool *p, hm_pool_each_fn fn, void *arg);

#endif
