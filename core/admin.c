#include "core/admin.h"

#include "core/bug.h"

static int method_not_allowed(struct hm_http_exchange *x, const char *allow)
{
    hm_buf_append_lit(x->headers, "Allow: ");
    hm_buf_append_str(x->headers, allow);
    hm_buf_append_lit(x->headers, "\r\n");
    hm_buf_append_lit(x->out, "method not allowed\n");
    x->content_type = "text/plain";
    return 405;
}

static int healthz(struct hm_http_exchange *x, void *arg)
{
    (void)arg;
    enum hm_http_method m = x->req->method;
    /* POST too: some load balancers' checks send a body, which is read and ignored. */
    if (m != HM_HTTP_GET && m != HM_HTTP_HEAD && m != HM_HTTP_POST)
        return method_not_allowed(x, "GET, HEAD, POST");
    hm_buf_append_lit(x->out, "ok\n");
    x->content_type = "text/plain";
    return 200;
}

static int readyz(struct hm_http_exchange *x, void *arg)
{
    struct hm_admin_ctx *ctx = arg;
    if (x->req->method != HM_HTTP_GET && x->req->method != HM_HTTP_HEAD)
        return method_not_allowed(x, "GET, HEAD");
    x->content_type = "text/plain";
    if (!ctx->shards || !hm_shards_ready(ctx->shards) || hm_shard_draining(x->shard)) {
        hm_buf_append_lit(x->out, "not ready\n");
        return 503;
    }
    hm_buf_append_lit(x->out, "ready\n");
    return 200;
}

static int metrics(struct hm_http_exchange *x, void *arg)
{
    struct hm_admin_ctx *ctx = arg;
    if (x->req->method != HM_HTTP_GET && x->req->method != HM_HTTP_HEAD)
        return method_not_allowed(x, "GET, HEAD");
    hm_shards_render_metrics(hm_shard_group(x->shard), x->out);
    for (unsigned i = 0; i < ctx->nrender; i++)
        ctx->render[i](x->out, ctx->render_arg[i]);
    x->content_type = "text/plain; version=0.0.4";
    return 200;
}

unsigned hm_admin_routes(struct hm_route *r, struct hm_admin_ctx *ctx)
{
    r[0] = (struct hm_route){HM_LISTENER_CWMP, "/healthz", true, healthz, ctx};
    r[1] = (struct hm_route){HM_LISTENER_ADMIN, "/healthz", true, healthz, ctx};
    r[2] = (struct hm_route){HM_LISTENER_ADMIN, "/readyz", true, readyz, ctx};
    r[3] = (struct hm_route){HM_LISTENER_ADMIN, "/metrics", true, metrics, ctx};
    return HM_ADMIN_NROUTES;
}

void hm_admin_add_metrics(struct hm_admin_ctx *ctx, hm_metrics_render_fn fn, void *arg)
{
    HM_BUG_ON(ctx->nrender >= HM_ADMIN_MAX_RENDER);
    ctx->render[ctx->nrender] = fn;
    ctx->render_arg[ctx->nrender++] = arg;
}
