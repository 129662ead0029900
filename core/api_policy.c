/*
 * HeMS policy through the northbound API (docs/api.md "Policies"):
 *
 *   GET    /api/v1/policies                 the effective policy and which sections the API set
 *   GET    /api/v1/policies/{section}       one section (whitelist, serving_nodes, segws, ...)
 *   PUT    /api/v1/policies/{section}       replace it: validated with the rest, committed to
 *                                           the store, then applied; 200 with the section
 *   DELETE /api/v1/policies/{section}       drop the API's version: the policy file's applies
 *
 * An override is stored as HM_DB_META "hems/policy/<section>" (its JSON) so it survives
 * restarts and SIGHUP reloads of the policy file; hm_api_policy_load() feeds the stored
 * overrides back at start. The answer comes after the commit (nothing acknowledged before it
 * is durable); the in-memory policy changes on the shard when the commit is reported.
 */
#include "core/api_policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/api_json.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/util.h"

#define K_POLICY "hems/policy/"
#define SECTION_MAX 32

struct policy_req {
    struct hm_shard_msg msg;
    struct hm_store_batch batch;
    struct hm_conn_ref ref;
    struct hm_shard *shard;
    struct hm_hems *hems;
    json_t *val; /* NULL: delete */
    char section[SECTION_MAX + 1];
    int status;
};

static void on_commit_msg(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)s;
    struct policy_req *q = HM_CONTAINER_OF(m, struct policy_req, msg);
    char err[256] = "";
    int r = q->status;
    if (r >= 0) {
        /* validated before the commit; a concurrent change of another section may make the
         * combination invalid now: the stored value stays and the error is reported */
        r = hm_hems_policy_set(q->hems, q->section, q->val, true, err, sizeof(err));
        if (r == 0)
            hm_info("HeMS policy section changed through the API", "section=%s action=%s",
                    q->section, q->val ? "replace" : "revert_to_file");
        else
            hm_warn("HeMS policy section stored but not applied", "section=%s cause=\"%s\"",
                    q->section, err);
    }
    json_t *j;
    int status = 200;
    if (q->status < 0) {
        status = 503;
        j = hm_api_error_json("store_error", hm_strerror(q->status));
    } else if (r < 0) {
        status = 409;
        j = hm_api_error_json("conflict", err);
    } else {
        bool ov = false;
        json_t *v = hm_hems_policy_get(q->hems, q->section, &ov);
        j = json_pack("{s:s,s:o,s:b}", "section", q->section, "value", v, "overridden", ov);
    }
    hm_api_finish_json(q->ref, status, j, false);
    hm_store_batch_fini(&q->batch);
    json_decref(q->val);
    free(q);
}

static void on_commit(void *arg, int status)
{
    struct policy_req *q = arg;
    q->status = status;
    hm_shard_post(q->shard, &q->msg);
}

static int change(struct hm_http_exchange *x, struct hm_hems *hems, struct hm_store *store,
                  const char *section, json_t *val /* consumed; NULL: delete */)
{
    char err[256];
    int r = hm_hems_policy_set(hems, section, val, false, err, sizeof(err));
    if (r < 0) {
        json_decref(val);
        return hm_api_error(x, 422, "invalid_policy", "%s", err);
    }
    struct policy_req *q = hm_xcalloc(1, sizeof(*q));
    hm_store_batch_init(&q->batch);
    snprintf(q->section, sizeof(q->section), "%s", section);
    q->val = val;
    char key[64];
    int kl = snprintf(key, sizeof(key), K_POLICY "%s", section);
    if (val) {
        char *txt = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        r = txt ? hm_store_batch_put(&q->batch, HM_DB_META, hm_slice(key, (size_t)kl),
                                     hm_slice_cstr(txt))
                : -ENOMEM;
        free(txt);
    } else {
        r = hm_store_batch_del(&q->batch, HM_DB_META, hm_slice(key, (size_t)kl));
    }
    if (r < 0) {
        hm_store_batch_fini(&q->batch);
        json_decref(q->val);
        free(q);
        return hm_api_error(x, 413, "too_large", "policy section does not fit one record: %s",
                            hm_strerror(r));
    }
    q->msg.fn = on_commit_msg;
    q->ref = x->ref;
    q->shard = x->shard;
    q->hems = hems;
    r = hm_store_submit(store, &q->batch, on_commit, q);
    if (r < 0) {
        hm_store_batch_fini(&q->batch);
        json_decref(q->val);
        free(q);
        hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
        return hm_api_error(x, 503, "overloaded", "store queue full: %s", hm_strerror(r));
    }
    return HM_HTTP_DEFER;
}

int hm_api_policy(struct hm_http_exchange *x, struct hm_hems *hems, struct hm_store *store,
                  struct hm_slice p)
{
    static const char pre[] = "policies";
    if (p.len < sizeof(pre) - 1 || memcmp(p.ptr, pre, sizeof(pre) - 1) ||
        (p.len > sizeof(pre) - 1 && p.ptr[sizeof(pre) - 1] != '/'))
        return -ENOENT;
    if (!hems)
        return hm_api_error(x, 404, "not_found", "no HeMS policy on this node");
    enum hm_http_method m = x->req->method;
    if (p.len <= sizeof(pre)) { /* "policies" or "policies/" */
        if (m != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        return hm_api_send_json(x, 200,
                                json_pack("{s:o,s:o}", "policy", hm_hems_policy_get(hems, NULL, NULL),
                                          "overridden", hm_hems_policy_overridden(hems)));
    }
    struct hm_slice sec = hm_slice(p.ptr + sizeof(pre), p.len - sizeof(pre));
    char section[SECTION_MAX + 1];
    if (sec.len > SECTION_MAX || memchr(sec.ptr, '\0', sec.len))
        return hm_api_error(x, 404, "not_found", "unknown policy section");
    memcpy(section, sec.ptr, sec.len);
    section[sec.len] = '\0';
    if (!hm_hems_policy_section_ok(section))
        return hm_api_error(x, 404, "not_found", "unknown policy section '%s'", section);
    bool whitelist = !strcmp(section, "whitelist");
    if (m == HM_HTTP_GET) {
        bool ov = false;
        json_t *v = hm_hems_policy_get(hems, section, &ov);
        if (whitelist) { /* the whitelist answers with the bare array (API v1 since 0.1) */
            json_decref(v);
            return hm_api_send_json(x, 200, hm_hems_whitelist_get(hems));
        }
        return hm_api_send_json(x, 200, json_pack("{s:s,s:o,s:b}", "section", section, "value",
                                                  v, "overridden", ov));
    }
    if (m == HM_HTTP_DELETE)
        return change(x, hems, store, section, NULL);
    if (m != HM_HTTP_PUT)
        return hm_api_error(x, 405, "method_not_allowed", "use GET, PUT or DELETE");
    json_error_t je;
    json_t *in = json_loadb(x->body ? x->body : "", x->body_len,
                            JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!in)
        return hm_api_error(x, 400, "bad_json", "line %d column %d: %s", je.line, je.column,
                            je.text);
    return change(x, hems, store, section, in);
}

struct load_ctx {
    struct hm_hems *h;
    size_t applied, skipped;
};

static int load_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct load_ctx *c = arg;
    char section[SECTION_MAX + 1];
    size_t n = key.len - (sizeof(K_POLICY) - 1);
    if (n > SECTION_MAX) {
        c->skipped++;
        return 0;
    }
    memcpy(section, key.ptr + sizeof(K_POLICY) - 1, n);
    section[n] = '\0';
    json_error_t je;
    json_t *v = json_loadb(val.ptr, val.len, JSON_DECODE_ANY, &je);
    char err[256] = "unreadable JSON";
    if (!v || hm_hems_policy_set(c->h, section, v, true, err, sizeof(err)) < 0) {
        hm_err("stored HeMS policy section not applied; the policy file's applies",
               "section=%s cause=\"%s\"", section, err);
        c->skipped++;
    } else {
        c->applied++;
    }
    json_decref(v);
    return 0;
}

int hm_api_policy_load(struct hm_hems *h, struct hm_store *st)
{
    if (!h)
        return 0;
    struct hm_store_reader *rd = NULL;
    int r = hm_store_reader_open(st, &rd);
    if (r == 0)
        r = hm_store_read_begin(rd);
    if (r < 0) {
        hm_store_reader_close(rd);
        return r;
    }
    struct load_ctx c = {h, 0, 0};
    r = hm_store_scan(rd, HM_DB_META, HM_SLICE_LIT(K_POLICY), hm_slice("", 0), load_cb, &c);
    hm_store_read_end(rd);
    hm_store_reader_close(rd);
    if (r >= 0 && (c.applied || c.skipped))
        hm_info("HeMS policy sections set through the API loaded", "applied=%zu skipped=%zu",
                c.applied, c.skipped);
    return r < 0 ? r : 0;
}
