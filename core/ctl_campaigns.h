#ifndef HM_CTL_CAMPAIGNS_H
#define HM_CTL_CAMPAIGNS_H
/*
 * `hemsctl campaigns ...` (docs/campaigns.md):
 *
 *   campaigns [list]                              all campaigns, one line each
 *   campaigns show NAME                           state, reason and per-wave counts
 *   campaigns devices NAME [STATE] [OFFSET]       per-device outcomes, 100 per page
 *   campaigns create JSON                         the API's body as given, or:
 *   campaigns create NAME FILE [type=1|3] [version=V] [waves=2%,10%,100%] [ratio=R]
 *             [pause=S] [timeout=S] [rate=N] [in_flight=N] [cr_retry=S]
 *             [product_class=PC] [software_version=SW] [tags=a,b] [devices=ID,ID]
 *   campaigns start|pause|cancel|delete NAME
 *   campaigns resume NAME [ratio=R] [retry_failed]
 *
 * Prints tables, or the API's JSON with --json. Exit codes as hemsctl (core/ctl.h).
 */
#include "core/ctl.h"

int hm_ctl_campaigns(const struct hm_ctl *c, int argc, char **argv);

#endif
