#ifndef HM_SESSREG_H
#define HM_SESSREG_H
/*
 * Registry of devices with an active CWMP session, shared by all shards, so that a second
 * concurrent session of the same device (on any shard) is refused.
 *
 * Keys are 64-bit hashes of the device id (never 0). The table is an array of cache-line
 * buckets of 7 keys, each guarded by a one-byte spinlock held for a few instructions; no
 * sleeping lock, no allocation after creation. A full bucket refuses (-ENOSPC): the
 * caller sheds the session as if busy. Size the table at 4x the expected concurrent
 * sessions; two different devices whose hashes collide (probability 2^-64) would exclude
 * each other, nothing worse.
 */
#include <stddef.h>
#include <stdint.h>

struct hm_sessreg;

/* Creates a registry with room for about <capacity> sessions. Aborts on OOM. */
struct hm_sessreg *hm_sessreg_create(uint64_t capacity);
void hm_sessreg_destroy(struct hm_sessreg *r);

/* Marks <key> active: 0, -EBUSY when it already is, -ENOSPC when its bucket is full. */
int hm_sessreg_acquire(struct hm_sessreg *r, uint64_t key);

/* Clears <key> (no-op when absent). */
void hm_sessreg_release(struct hm_sessreg *r, uint64_t key);

/* Sessions registered now (approximate while others change it). */
uint64_t hm_sessreg_count(struct hm_sessreg *r);

/* 64-bit FNV-1a of <p>[<n>], never 0. */
uint64_t hm_sessreg_hash(const void *p, size_t n);

#endif
