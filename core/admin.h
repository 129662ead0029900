#ifndef HM_ADMIN_H
#define HM_ADMIN_H
/*
 * Built-in HTTP endpoints: /healthz (both listeners, so load balancers can check the CWMP
 * port), /readyz and /metrics (admin listener). hm_admin_routes() appends them to <r> (room
 * for HM_ADMIN_NROUTES entries) and returns how many it added. <ctx> must outlive the shards.
 */
#include "core/shard.h"

#define HM_ADMIN_NROUTES 4

struct hm_admin_ctx {
    struct hm_shards *shards; /* set once the shards exist */
    /* Extra metrics from other subsystems (store, PM, ...); may be NULL. */
    void (*render_extra)(struct hm_buf *out, void *arg);
    void *render_arg;
};

unsigned hm_admin_routes(struct hm_route *r, struct hm_admin_ctx *ctx);

#endif
