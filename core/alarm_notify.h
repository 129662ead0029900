#ifndef HM_ALARM_NOTIFY_H
#define HM_ALARM_NOTIFY_H
/*
 * "Alarms were committed" notification, from the commit path to the live alarm streams
 * (core/alarm_stream.h), so a stream does not wait for its poll timer.
 *
 * One process-wide hook: hemsd sets it once before the shards start and clears it after they
 * are joined; hm_alarm_notify() is called on a shard thread once a batch holding new alarms
 * is durable (core/acs.c). The hook itself must be cheap and thread-safe (it posts messages).
 */
typedef void (*hm_alarm_notify_fn)(void *arg);

/* Main thread, while no shard runs. NULL: none. */
void hm_alarm_notify_set(hm_alarm_notify_fn fn, void *arg);

/* Any thread; a no-op without a hook. */
void hm_alarm_notify(void);

#endif
