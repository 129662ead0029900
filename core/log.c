#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/err.h"

_Atomic int hm_log_min_level = HM_LOG_INFO;
_Thread_local int hm_log_shard = -1;

static const char *const names[] = {"debug", "info", "warn", "error", "crit"};

int hm_log_level_parse(const char *s)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return (int)i;
    if (strcasecmp(s, "warning") == 0)
        return HM_LOG_WARN;
    if (strcasecmp(s, "err") == 0)
        return HM_LOG_ERR;
    return -EINVAL;
}

const char *hm_log_level_name(int level)
{
    return level >= 0 && level < (int)HM_ARRAY_SIZE(names) ? names[level] : "?";
}

void hm_log_set_level(int level)
{
    atomic_store(&hm_log_min_level, level);
}

static void vlog(int level, const char *msg, const char *extra, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, hm_log_level_name(level));
    if (hm_log_shard >= 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " shard=%d", hm_log_shard);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " msg=\"%s\"", msg);
    if (n < (int)sizeof(line) - 2 && fmt && *fmt) {
        line[n++] = ' ';
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    }
    if (n < (int)sizeof(line) - 2 && extra)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s", extra);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void hm_log_write(int level, const char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, msg, NULL, fmt, ap);
    va_end(ap);
}

void hm_log_rl(struct hm_log_limit *lim, unsigned burst, int level, const char *msg,
               const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    if (ts.tv_sec != lim->window) {
        lim->window = ts.tv_sec;
        lim->count = 0;
    }
    if (lim->count >= burst) {
        lim->dropped++;
        return;
    }
    lim->count++;
    char extra[48] = "";
    if (lim->dropped) {
        snprintf(extra, sizeof(extra), " suppressed=%u", lim->dropped);
        lim->dropped = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(level, msg, extra, fmt, ap);
    va_end(ap);
}
