#ifndef HM_CTL_ALARMS_H
#define HM_CTL_ALARMS_H
/*
 * hemsctl's alarm commands (core/hemsctl_main.c dispatches here):
 *   alarms [--device ID]          current (raised) alarms: table, or the API's JSON
 *   ack KEY [BY]                  acknowledge an alarm
 *   tail alarms [--device ID] [SINCE_MS | CURSOR]
 *                                 follow GET /api/v1/alarms/stream, one line per alarm (one
 *                                 JSON object per line with --json); reconnects with
 *                                 Last-Event-ID after a disconnect, so nothing is missed
 * Exit codes as hemsctl: 0 ok, 1 API error, 2 usage, 3 hemsd unreachable (not for tail,
 * which retries until interrupted).
 */
#include <stdbool.h>

#include "core/ctl.h"

/* True when <cmd> is one of the commands above. */
bool hm_ctl_alarms_handles(const char *cmd);
int hm_ctl_alarms_main(const struct hm_ctl *c, const char *cmd, int nargs, char **args);

#endif
