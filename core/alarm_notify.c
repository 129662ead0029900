/* See alarm_notify.h. */
#include "core/alarm_notify.h"

#include <stddef.h>

/* Written only while no shard runs (hm_alarm_notify_set), read by the shard threads: the
 * thread start / join provide the ordering. */
static hm_alarm_notify_fn notify_fn;
static void *notify_arg;

void hm_alarm_notify_set(hm_alarm_notify_fn fn, void *arg)
{
    notify_fn = fn;
    notify_arg = arg;
}

void hm_alarm_notify(void)
{
    if (notify_fn)
        notify_fn(notify_arg);
}
