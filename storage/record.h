#ifndef HM_RECORD_H
#define HM_RECORD_H
/*
 * Record codecs and key builders for the store's databases (formats in store-t.h and
 * docs/storage.md). Pure functions, no allocation, any thread.
 *
 * For each record type T in {dev, param, task, alarm, alarm_cur, file, pm}:
 *   size_t hm_rec_T_size(const struct hm_T_rec *r)
 *       bytes hm_rec_T_encode() will write.
 *   int hm_rec_T_encode(const struct hm_T_rec *r, char *out, size_t cap)
 *       writes the version-1 encoding; returns its length, -ENOSPC if <cap> is too small,
 *       -E2BIG if a string exceeds 65535 bytes or the record HM_STORE_MAX_VAL.
 *   int hm_rec_T_decode(struct hm_slice in, struct hm_T_rec *out)
 *       0, HM_ECORRUPT (empty, truncated or trailing bytes, bad enum), HM_EVERSION (unknown
 *       version byte). On 0 the slices in *<out> point into <in>: valid as long as <in>'s
 *       bytes (for a value from hm_store_get: until hm_store_read_end()). On error *<out>
 *       is unspecified.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "storage/store-t.h"

#define HM_REC_DECLARE(T)                                                                          \
    size_t hm_rec_##T##_size(const struct hm_##T##_rec *r);                                        \
    int hm_rec_##T##_encode(const struct hm_##T##_rec *r, char *out, size_t cap);                  \
    int hm_rec_##T##_decode(struct hm_slice in, struct hm_##T##_rec *out);

HM_REC_DECLARE(dev)
HM_REC_DECLARE(param)
HM_REC_DECLARE(task)
HM_REC_DECLARE(alarm)
HM_REC_DECLARE(alarm_cur)
HM_REC_DECLARE(file)
HM_REC_DECLARE(pm)
#undef HM_REC_DECLARE

/*
 * Key builders: write the key into <out> (<cap> bytes) and return its length, or -E2BIG
 * if it would exceed <cap> or HM_STORE_MAX_KEY. No NUL terminator is written.
 */
#define HM_KEY_ALARM_LEN 16
int hm_key_dev(char *out, size_t cap, struct hm_slice oui, struct hm_slice product_class,
               struct hm_slice serial);
int hm_key_param(char *out, size_t cap, struct hm_slice dev, struct hm_slice path);
int hm_key_task(char *out, size_t cap, struct hm_slice dev, uint64_t seq);
int hm_key_alarm(char *out, size_t cap, uint64_t time_ms, uint64_t seq);
int hm_key_alarm_cur(char *out, size_t cap, struct hm_slice dev, struct hm_slice alarm_id);
int hm_key_pm(char *out, size_t cap, struct hm_slice object, struct hm_slice counter,
              uint64_t period_start_ms);

/* Prefix of every param/task/alarm_cur key of device <dev>: dev '\0'. Same returns. */
int hm_key_dev_prefix(char *out, size_t cap, struct hm_slice dev);

/* Splits a task key into device and sequence; HM_ECORRUPT if malformed. */
int hm_key_task_split(struct hm_slice key, struct hm_slice *dev, uint64_t *seq);
/* Splits an alarm key; HM_ECORRUPT if not HM_KEY_ALARM_LEN bytes. */
int hm_key_alarm_split(struct hm_slice key, uint64_t *time_ms, uint64_t *seq);

/* Big-endian helpers for keys. */
static inline void hm_be64_put(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static inline uint64_t hm_be64_get(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

#endif
