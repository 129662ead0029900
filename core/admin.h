#ifndef HM_ADMIN_H
#define HM_ADMIN_H
/*
 * Built-in HTTP endpoints: /healthz (both listeners, so load balancers can check the CWMP
 * port), /readyz and /metrics (admin listener). hm_admin_routes() appends them to <r> (room
 * for HM_ADMIN_NROUTES entries) and returns how many it added. <ctx> must outlive the shards.
 */
#include "core/shard.h"

#define HM_ADMIN_NROUTES 4

#define HM_ADMIN_MAX_RENDER 16

typedef void (*hm_metrics_render_fn)(struct hm_buf *out, void *arg);

struct hm_admin_ctx {
    struct hm_shards *shards; /* set once the shards exist */
    /* Metrics of other subsystems (ACS, store, PM, ...), rendered in order. */
    hm_metrics_render_fn render[HM_ADMIN_MAX_RENDER];
    void *render_arg[HM_ADMIN_MAX_RENDER];
    unsigned nrender;
};

/* Adds a metrics renderer (before the shards start). */
void hm_admin_add_metrics(struct hm_admin_ctx *ctx, hm_metrics_render_fn fn, void *arg);

unsigned hm_admin_routes(struct hm_route *r, struct hm_admin_ctx *ctx);

#endif
