#ifndef HM_LOG_H
#define HM_LOG_H
/*
 * Structured logging in logfmt, one line per event, to stderr (journald adds its own
 * timestamp; our ts= keeps logs useful elsewhere):
 *   ts=2026-11-26T14:00:00.123Z level=warn shard=1 msg="header timeout" peer=127.0.0.1:4242
 * <fmt> continues the line after msg (use key=value pairs). Each line is formatted into a
 * stack buffer and written with one write(2), so lines from different threads never mix.
 * Lines are cut at 1 KiB. Never log secrets (passwords, HA1, tokens, nonces).
 *
 * hm_log_ratelimited() drops lines beyond <burst> per second per call site, counting what it
 * dropped; use it for anything a client can trigger.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

enum hm_log_level { HM_LOG_DEBUG = 0, HM_LOG_INFO, HM_LOG_WARN, HM_LOG_ERR, HM_LOG_CRIT };

extern _Atomic int hm_log_min_level;
extern _Thread_local int hm_log_shard; /* -1 outside shards */

/* Parses "debug|info|warn|error|crit"; returns the level or -EINVAL. */
int hm_log_level_parse(const char *s);
const char *hm_log_level_name(int level);

void hm_log_set_level(int level);

void hm_log_write(int level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct hm_log_limit {
    long window;      /* second of the current window */
    unsigned count;   /* lines written in it */
    unsigned dropped; /* lines dropped since the last written one */
};

/* Rate-limited variant; <lim> is per call site and per thread (see HM_LOG_RL). */
void hm_log_rl(struct hm_log_limit *lim, unsigned burst, int level, const char *msg,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define HM_LOG(level, msg, ...)                                                              \
    do {                                                                                     \
        if ((level) >= atomic_load_explicit(&hm_log_min_level, memory_order_relaxed))        \
            hm_log_write((level), (msg), __VA_ARGS__);                                       \
    } while (0)

#define hm_debug(msg, ...) HM_LOG(HM_LOG_DEBUG, msg, __VA_ARGS__)
#define hm_info(msg, ...) HM_LOG(HM_LOG_INFO, msg, __VA_ARGS__)
#define hm_warn(msg, ...) HM_LOG(HM_LOG_WARN, msg, __VA_ARGS__)
#define hm_err(msg, ...) HM_LOG(HM_LOG_ERR, msg, __VA_ARGS__)

/* At most 10 lines per second from this call site on this thread. */
#define HM_LOG_RL(level, msg, ...)                                                           \
    do {                                                                                     \
        static _Thread_local struct hm_log_limit hm_rl_;                                     \
        if ((level) >= atomic_load_explicit(&hm_log_min_level, memory_order_relaxed))        \
            hm_log_rl(&hm_rl_, 10, (level), (msg), __VA_ARGS__);                             \
    } while (0)

#endif
