/*
 * Northbound REST API (JSON) on the admin listener, /api/v1/. Reads run on the shard that
 * got the request, on its own store reader (an MVCC snapshot: no lock); writes go through
 * the group-commit writer and are answered only after their commit.
 *
 *   GET    /api/v1/status
 *   GET    /api/v1/devices?limit=N&after=ID[&registration=S&role=R&product_class=P
 *          &software_version=V&inform_age_gt=S&inform_age_lt=S&alarms=active|none]
 *   GET    /api/v1/devices/{id}
 *   GET    /api/v1/devices/{id}/parameters?prefix=P
 *   POST   /api/v1/devices/{id}/tasks            body: a task (core/acs_task.h)
 *   GET    /api/v1/devices/{id}/tasks
 *   GET    /api/v1/devices/{id}/tasks/{seq}
 *   DELETE /api/v1/devices/{id}/tasks/{seq}      only while queued
 *   GET    /api/v1/alarms?device=ID&since=MS&after=KEY&limit=N  (core/api_alarms.h)
 *   GET    /api/v1/devices/{id}/alarms           current alarms
 *   GET    /api/v1/alarms/active                 current alarms of all devices
 *   GET    /api/v1/alarms/stream                 live alarms, SSE (core/alarm_stream.h)
 *   POST   /api/v1/alarms/{key}/ack              acknowledge an alarm
 *   GET    /api/v1/policies[/{section}]          the HeMS policy (core/api_policy.c)
 *   PUT    /api/v1/policies/{section}            replace a section (persisted); DELETE reverts
 *   POST   /api/v1/backup                        {"path": DIR}: compacted online copy
 *   GET    /api/v1/files[?device=ID]              uploaded files / applied downloads
 *   GET|PUT|DELETE /api/v1/files/{name}           (core/files.h)
 *
 * Errors: {"error":{"code":"<machine code>","message":"<text>"}} with the HTTP status.
 * The full reference is docs/api.md.
 */
#include "core/api_json.h"
#include "core/api_policy.h"
#include "core/api.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/acs_task.h"
#include "core/alarm_stream.h"
#include "core/api_alarms.h"
#include "core/api_profiles.h"
#include "core/campaigns.h"
#include "core/connreq.h"
#include "core/datamodel.h"
#include "core/files.h"
#include "core/hems_pm.h"
#include "core/hems_proc.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/util.h"
#include "core/version.h"
#include "storage/record.h"

#define JSON_CTYPE "application/json"
#define MAX_LIMIT 1000

struct api_req {
    struct hm_shard_msg msg;
    struct hm_store_batch batch;
    struct hm_conn_ref ref;
    int status;
    uint64_t seq;
    struct hm_shard *shard;
    struct hm_api *api;
    bool is_delete, connreq;
    char dev[256];
    size_t dev_len;
    uint64_t wait_until_ms; /* POST with "wait_seconds": answer when the task ends or then */
    struct hm_timer wait_timer;
};

#define WAIT_POLL_MS 100
#define WAIT_MAX_SECONDS 300
#define WAIT_MAX_WAITERS 1024 /* per process; more get 429 */

static const char *reg_name(uint8_t r)
{
    static const char *const n[] = {"unknown", "discovered", "redirected", "registered",
                                    "blocked"};
    return r < HM_ARRAY_SIZE(n) ? n[r] : "unknown";
}

static const char *task_state_name(uint8_t s)
{
    static const char *const n[] = {"queued", "sent", "done", "failed"};
    return s < HM_ARRAY_SIZE(n) ? n[s] : "unknown";
}

static json_t *device_json(struct hm_slice key, const struct hm_dev_rec *d)
{
    json_t *ev = json_array();
    for (size_t i = 0; i < d->events.len;) {
        const char *nl = memchr(d->events.ptr + i, '\n', d->events.len - i);
        size_t e = nl ? (size_t)(nl - d->events.ptr) : d->events.len;
        json_array_append_new(ev, json_stringn(d->events.ptr + i, e - i));
        i = e + 1;
    }
    json_t *ip = json_array();
    for (unsigned i = 0; i < d->n_ipsec; i++)
        json_array_append_new(ip, json_pack("{s:o,s:I}", "address", hm_json_slice(d->ipsec[i].addr),
                                            "since_ms", (json_int_t)d->ipsec[i].since_ms));
    static const char *const roles[] = {"unknown", "initial", "serving"};
    json_t *j = json_pack("{s:o,s:o,s:o,s:o,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "id", hm_json_slice(key),
                     "oui", hm_json_slice(d->oui), "product_class", hm_json_slice(d->product_class), "serial",
                     hm_json_slice(d->serial), "registration", reg_name(d->reg_state),
                     "last_inform_ms", (json_int_t)d->last_inform_ms, "events", ev,
                     "source_address", hm_json_slice(d->source_addr), "connection_request_url",
                     hm_json_slice(d->cr_url), "software_version", hm_json_slice(d->sw_version),
                     "parameter_key", hm_json_slice(d->param_key), "ipsec_inner_addresses", ip);
    json_object_set_new(j, "role", json_string(d->role < 3 ? roles[d->role] : "unknown"));
    json_object_set_new(j, "serving_node", hm_json_slice(d->serving_node));
    json_object_set_new(j, "pm", hm_hems_pm_json(d)); /* never the password or its hash */
    return j;
}

static json_t *task_json(uint64_t seq, const struct hm_task_rec *t)
{
    json_t *args = json_loadb(t->args.ptr, t->args.len, 0, NULL);
    /* a PM upload password (core/hems_pm.c) is shown as "(hidden)" while queued; it is
     * blanked in the store once the CPE answered */
    json_t *pp;
    size_t pi;
    json_array_foreach(json_object_get(args, "params"), pi, pp)
    {
        const char *n = json_string_value(json_object_get(pp, "name"));
        size_t nl = n ? strlen(n) : 0;
        if (nl > 9 && !strcmp(n + nl - 9, ".Password") &&
            json_string_length(json_object_get(pp, "value")))
            json_object_set_new(pp, "value", json_string("(hidden)"));
    }
    json_t *res = t->result.len ? json_loadb(t->result.ptr, t->result.len, 0, NULL) : NULL;
    return json_pack("{s:I,s:s,s:s,s:o,s:o,s:i,s:I,s:I}", "id", (json_int_t)seq, "rpc",
                     hm_task_rpc_name((enum hm_task_kind)t->kind), "state",
                     task_state_name(t->state), "args", args ? args : json_null(), "result",
                     res ? res : json_null(), "fault_code", (int)t->fault_code, "created_ms",
                     (json_int_t)t->created_ms, "updated_ms", (json_int_t)t->updated_ms);
}

/* Device list filters (all optional; a device must match every one given). */
struct dev_filter {
    int reg, role;                        /* -1: any */
    char product_class[65], sw[129];      /* "": any */
    bool older, newer;                    /* filter by last Inform age: */
    uint64_t older_ms, newer_ms;          /* more than / less than this long ago */
    int alarms;                           /* -1 any, 1 with active alarms, 0 without */
    struct hm_store_reader *rd;           /* for the alarm check (same snapshot) */
    uint64_t now_ms;
};

struct list_ctx {
    json_t *arr;
    size_t limit, n, examined, max_examined;
    struct hm_slice last;
    char last_buf[HM_STORE_MAX_KEY];
    struct hm_slice skip; /* the "after" key itself */
    const struct dev_filter *f;
};

static int any_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    (void)arg, (void)key, (void)val;
    return 1;
}

static bool dev_matches(const struct dev_filter *f, struct hm_slice key,
                        const struct hm_dev_rec *d)
{
    if (f->reg >= 0 && d->reg_state != f->reg)
        return false;
    if (f->role >= 0 && d->role != f->role)
        return false;
    if (f->product_class[0] && !hm_slice_eq(d->product_class, hm_slice_cstr(f->product_class)))
        return false;
    if (f->sw[0] && !hm_slice_eq(d->sw_version, hm_slice_cstr(f->sw)))
        return false;
    uint64_t age = f->now_ms > d->last_inform_ms ? f->now_ms - d->last_inform_ms : 0;
    if (f->older && age <= f->older_ms)
        return false;
    if (f->newer && age >= f->newer_ms)
        return false;
    if (f->alarms >= 0) {
        /* current alarms are keyed device '\0' AlarmIdentifier (core/alarms.h) */
        char pfx[HM_STORE_MAX_KEY];
        if (key.len + 1 > sizeof(pfx))
            return false;
        memcpy(pfx, key.ptr, key.len);
        pfx[key.len] = '\0';
        int r = hm_store_scan(f->rd, HM_DB_ALARM_CUR, hm_slice(pfx, key.len + 1), hm_slice("", 0),
                              any_cb, NULL);
        if ((r > 0) != (f->alarms == 1))
            return false;
    }
    return true;
}

static int list_devices_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct list_ctx *l = arg;
    if (l->skip.len && hm_slice_eq(key, l->skip))
        return 0;
    if (l->n == l->limit || l->examined == l->max_examined)
        return 1; /* the page is full, or bounded work: "next" resumes after <last> */
    l->examined++;
    memcpy(l->last_buf, key.ptr, key.len);
    l->last = hm_slice(l->last_buf, key.len);
    struct hm_dev_rec d;
    if (hm_rec_dev_decode(val, &d) < 0 || (l->f && !dev_matches(l->f, key, &d)))
        return 0;
    json_array_append_new(l->arr, device_json(key, &d));
    l->n++;
    return 0;
}

static int list_devices(struct hm_http_exchange *x, struct hm_store_reader *rd)
{
    char lim[16], after[HM_STORE_MAX_KEY];
    size_t limit = 100;
    if (hm_api_query(x->req->query, "limit", lim, sizeof(lim)) > 0) {
        long v = strtol(lim, NULL, 10);
        if (v < 1 || v > MAX_LIMIT)
            return hm_api_error(x, 400, "bad_request", "limit must be in 1..%d", MAX_LIMIT);
        limit = (size_t)v;
    }
    int al = hm_api_query(x->req->query, "after", after, sizeof(after));
    struct dev_filter f = {.reg = -1, .role = -1, .alarms = -1, .rd = rd, .now_ms = hm_now_ms()};
    bool filtered = false;
    char v[32];
    if (hm_api_query(x->req->query, "registration", v, sizeof(v)) > 0) {
        static const char *const n[] = {"unknown", "discovered", "redirected", "registered",
                                        "blocked"};
        for (int i = 0; i < (int)HM_ARRAY_SIZE(n); i++)
            if (!strcmp(v, n[i]))
                f.reg = i;
        if (f.reg < 0)
            return hm_api_error(x, 400, "bad_request",
                         "registration must be unknown, discovered, redirected, registered or "
                         "blocked");
        filtered = true;
    }
    if (hm_api_query(x->req->query, "role", v, sizeof(v)) > 0) {
        static const char *const n[] = {"unknown", "initial", "serving"};
        for (int i = 0; i < (int)HM_ARRAY_SIZE(n); i++)
            if (!strcmp(v, n[i]))
                f.role = i;
        if (f.role < 0)
            return hm_api_error(x, 400, "bad_request", "role must be unknown, initial or serving");
        filtered = true;
    }
    if (hm_api_query(x->req->query, "product_class", f.product_class, sizeof(f.product_class)) > 0)
        filtered = true;
    if (hm_api_query(x->req->query, "software_version", f.sw, sizeof(f.sw)) > 0)
        filtered = true;
    static const char *const ages[] = {"inform_age_gt", "inform_age_lt"};
    for (int i = 0; i < 2; i++) {
        if (hm_api_query(x->req->query, ages[i], v, sizeof(v)) <= 0)
            continue;
        char *e;
        unsigned long long s = strtoull(v, &e, 10);
        if (*e || e == v || s > 100ull * 365 * 86400)
            return hm_api_error(x, 400, "bad_request", "%s must be a number of seconds", ages[i]);
        if (i) {
            f.newer = true;
            f.newer_ms = s * 1000;
        } else {
            f.older = true;
            f.older_ms = s * 1000;
        }
        filtered = true;
    }
    if (hm_api_query(x->req->query, "alarms", v, sizeof(v)) > 0) {
        if (strcmp(v, "active") && strcmp(v, "none"))
            return hm_api_error(x, 400, "bad_request", "alarms must be active or none");
        f.alarms = !strcmp(v, "active");
        filtered = true;
    }
    /* a filtered page examines at most 50,000 records: "next" resumes where it stopped */
    struct list_ctx l = {.arr = json_array(), .limit = limit, .f = filtered ? &f : NULL,
                         .max_examined = filtered ? 50000 : SIZE_MAX};
    if (al > 0)
        l.skip = hm_slice(after, (size_t)al);
    int r = hm_store_read_begin(rd);
    if (r < 0) {
        json_decref(l.arr);
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    }
    r = hm_store_scan(rd, HM_DB_DEVICES, hm_slice("", 0), l.skip, list_devices_cb, &l);
    json_t *next = r > 0 && l.last.len ? hm_json_slice(l.last) : json_null();
    hm_store_read_end(rd);
    return hm_api_send_json(x, 200, json_pack("{s:o,s:o}", "devices", l.arr, "next", next));
}

static int get_device(struct hm_http_exchange *x, struct hm_api *api, struct hm_store_reader *rd,
                      struct hm_slice id)
{
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    struct hm_slice v;
    struct hm_dev_rec d;
    int r = hm_store_get(rd, HM_DB_DEVICES, id, &v);
    if (r == 0)
        r = hm_rec_dev_decode(v, &d);
    int st;
    if (r == -ENOENT)
        st = hm_api_error(x, 404, "not_found", "no device '%.*s'", (int)id.len, id.ptr);
    else if (r < 0)
        st = hm_api_error(x, 500, "store_error", "device record unreadable: %s", hm_strerror(r));
    else {
        json_t *j = device_json(id, &d);
        const char *res;
        uint64_t at;
        if (api->connreq && hm_connreq_last(api->connreq, id, &res, &at))
            json_object_set_new(j, "connection_request",
                                json_pack("{s:s,s:I}", "last_result", res, "at_ms", (json_int_t)at));
        st = hm_api_send_json(x, 200, j);
    }
    hm_store_read_end(rd);
    return st;
}

struct param_ctx {
    json_t *arr;
    size_t skip_len, n;
};

static int params_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct param_ctx *p = arg;
    struct hm_param_rec r;
    if (hm_rec_param_decode(val, &r) < 0)
        return 0;
    if (++p->n > 10000)
        return 1;
    static const char *const tn[] = {"xsd:string",  "xsd:int",      "xsd:unsignedInt",
                                     "xsd:boolean", "xsd:dateTime", "xsd:base64",
                                     "xsd:long",    "xsd:unsignedLong", "xsd:hexBinary",
                                     "other"};
    json_array_append_new(
        p->arr, json_pack("{s:o,s:o,s:s,s:I}", "name",
                          json_stringn(key.ptr + p->skip_len, key.len - p->skip_len), "value",
                          hm_json_slice(r.value), "type", r.type < 10 ? tn[r.type] : "other",
                          "time_ms", (json_int_t)r.time_ms));
    return 0;
}

static int get_params(struct hm_http_exchange *x, struct hm_store_reader *rd, struct hm_slice id)
{
    char prefix[257] = "";
    if (hm_api_query(x->req->query, "prefix", prefix, sizeof(prefix)) == -EINVAL)
        return hm_api_error(x, 400, "bad_request", "prefix is not valid percent-encoding");
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_param(key, sizeof(key), id, hm_slice_cstr(prefix));
    if (kl < 0)
        return hm_api_error(x, 400, "bad_request", "device id or prefix too long");
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    struct param_ctx p = {.arr = json_array(), .skip_len = id.len + 1};
    int r = hm_store_scan(rd, HM_DB_PARAMS, hm_slice(key, (size_t)kl), hm_slice("", 0),
                          params_cb, &p);
    hm_store_read_end(rd);
    return hm_api_send_json(x, 200, json_pack("{s:o,s:b}", "parameters", p.arr, "truncated", r > 0));
}

struct task_ctx {
    json_t *arr;
};

static int tasks_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct task_ctx *t = arg;
    struct hm_slice dev;
    uint64_t seq;
    struct hm_task_rec rec;
    if (hm_key_task_split(key, &dev, &seq) < 0 || hm_rec_task_decode(val, &rec) < 0)
        return 0;
    json_array_append_new(t->arr, task_json(seq, &rec));
    return json_array_size(t->arr) >= MAX_LIMIT;
}

static int list_tasks(struct hm_http_exchange *x, struct hm_store_reader *rd, struct hm_slice id)
{
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_dev_prefix(key, sizeof(key), id);
    if (kl < 0)
        return hm_api_error(x, 400, "bad_request", "device id too long");
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    struct task_ctx t = {json_array()};
    int r = hm_store_scan(rd, HM_DB_TASKS, hm_slice(key, (size_t)kl), hm_slice("", 0),
                          tasks_cb, &t);
    (void)r;
    hm_store_read_end(rd);
    return hm_api_send_json(x, 200, json_pack("{s:o}", "tasks", t.arr));
}

static int get_task(struct hm_http_exchange *x, struct hm_store_reader *rd, struct hm_slice id,
                    uint64_t seq, struct hm_task_rec *out_state)
{
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_task(key, sizeof(key), id, seq);
    if (kl < 0)
        return hm_api_error(x, 400, "bad_request", "device id too long");
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    struct hm_slice v;
    struct hm_task_rec t;
    int r = hm_store_get(rd, HM_DB_TASKS, hm_slice(key, (size_t)kl), &v);
    if (r == 0)
        r = hm_rec_task_decode(v, &t);
    int st;
    if (r == -ENOENT)
        st = hm_api_error(x, 404, "not_found", "no task %llu for device '%.*s'",
                   (unsigned long long)seq, (int)id.len, id.ptr);
    else if (r < 0)
        st = hm_api_error(x, 500, "store_error", "task record unreadable: %s", hm_strerror(r));
    else if (out_state) {
        out_state->state = t.state;
        st = 0;
    } else
        st = hm_api_send_json(x, 200, task_json(seq, &t));
    hm_store_read_end(rd);
    return st;
}

/* After the task committed: a Connection Request to the device's stored URL (async). */
static void send_connreq(struct hm_shard *s, struct api_req *q)
{
    if (!q->api->connreq)
        return;
    struct hm_store_reader *rd = q->api->reader_of(s);
    if (hm_store_read_begin(rd) < 0)
        return;
    struct hm_slice v;
    struct hm_dev_rec d;
    struct hm_slice id = hm_slice(q->dev, q->dev_len);
    if (hm_store_get(rd, HM_DB_DEVICES, id, &v) == 0 && hm_rec_dev_decode(v, &d) == 0 &&
        d.cr_url.len) {
        int r = hm_connreq_request(q->api->connreq, id, d.cr_url, d.cr_user, d.cr_secret,
                                   d.cr_secret_is_ha1);
        if (r < 0)
            hm_warn("connection request not queued", "device=%.*s err=\"%s\"", (int)id.len,
                    id.ptr, hm_strerror(r));
    }
    hm_store_read_end(rd);
}

/* "Location: /api/v1/devices/<id, percent-encoded>/tasks/<seq>" */
static void task_location(struct hm_buf *hdrs, const struct api_req *q)
{
    hm_buf_append_lit(hdrs, "Location: /api/v1/devices/");
    hm_api_pct_encode(hdrs, hm_slice(q->dev, q->dev_len));
    hm_buf_printf(hdrs, "/tasks/%llu\r\n", (unsigned long long)q->seq);
}

static void wait_release(struct api_req *q)
{
    atomic_fetch_sub_explicit(&q->api->waiters, 1, memory_order_relaxed);
    free(q);
}

/*
 * A POST with "wait_seconds", after its commit: every WAIT_POLL_MS the task record is read
 * from this shard's snapshot; the answer is 200 with the task once it is done or failed, 202
 * with its current state when the wait ends first (or the node drains). A client that goes
 * away ends the wait. The task itself is unaffected either way.
 */
static void wait_poll(struct api_req *q)
{
    struct hm_buf *out, *hdrs;
    if (!hm_httpd_deferred_bufs(q->ref, &out, &hdrs)) {
        wait_release(q);
        return;
    }
    uint64_t now = hm_now_ms();
    bool over = now >= q->wait_until_ms || hm_shard_draining(q->shard);
    struct hm_store_reader *rd = q->api->reader_of(q->shard);
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_task(key, sizeof(key), hm_slice(q->dev, q->dev_len), q->seq);
    json_t *j = NULL;
    int status = 0;
    if (kl > 0 && hm_store_read_begin(rd) == 0) {
        struct hm_slice v;
        struct hm_task_rec t;
        int r = hm_store_get(rd, HM_DB_TASKS, hm_slice(key, (size_t)kl), &v);
        if (r == 0 && hm_rec_task_decode(v, &t) == 0) {
            bool ended = t.state == HM_TASK_DONE || t.state == HM_TASK_FAILED;
            if (ended || over) {
                j = task_json(q->seq, &t);
                status = ended ? 200 : 202;
                if (!ended)
                    json_object_set_new(j, "wait", json_string("timeout"));
            }
        } else if (r == -ENOENT) { /* cancelled (deleted) while we waited */
            status = 410;
            j = hm_api_error_json("gone", "the task was cancelled while waiting");
        }
        hm_store_read_end(rd);
    }
    if (!j && over) {
        status = 202;
        j = json_pack("{s:I,s:s}", "id", (json_int_t)q->seq, "wait", "timeout");
    }
    if (!j) {
        hm_shard_timer_arm(q->shard, &q->wait_timer, WAIT_POLL_MS);
        return;
    }
    task_location(hdrs, q);
    hm_api_finish_json(q->ref, status, j, false);
    wait_release(q);
}

static void on_wait_timer(struct hm_timer *t)
{
    wait_poll(HM_CONTAINER_OF(t, struct api_req, wait_timer));
}

static void on_write_msg(struct hm_shard *s, struct hm_shard_msg *m)
{
    struct api_req *q = HM_CONTAINER_OF(m, struct api_req, msg);
    struct hm_buf *out, *hdrs;
    bool wait = q->wait_until_ms && q->status >= 0 && !q->is_delete;
    if (!wait && hm_httpd_deferred_bufs(q->ref, &out, &hdrs)) {
        json_t *j = NULL;
        int status = 204;
        if (q->status < 0) {
            status = 503;
            j = hm_api_error_json("store_error", hm_strerror(q->status));
        } else if (!q->is_delete) {
            status = 201;
            j = json_pack("{s:I,s:s}", "id", (json_int_t)q->seq, "state", "queued");
            task_location(hdrs, q);
        }
        hm_api_finish_json(q->ref, status, j, false);
    }
    if (q->connreq && q->status >= 0)
        send_connreq(s, q);
    hm_store_batch_fini(&q->batch);
    if (wait) {
        hm_timer_init(&q->wait_timer, on_wait_timer);
        hm_shard_timer_arm(s, &q->wait_timer, WAIT_POLL_MS);
        return;
    }
    if (q->wait_until_ms)
        wait_release(q);
    else
        free(q);
}

static void on_write_done(void *arg, int status)
{
    struct api_req *q = arg;
    q->status = status;
    hm_shard_post(q->shard, &q->msg);
}

static int submit_req(struct hm_http_exchange *x, struct hm_api *api, struct api_req *q)
{
    q->msg.fn = on_write_msg;
    q->api = api;
    q->ref = x->ref;
    q->shard = x->shard;
    int r = hm_store_submit(api->store, &q->batch, on_write_done, q);
    if (r < 0) {
        hm_store_batch_fini(&q->batch);
        free(q);
        hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
        return hm_api_error(x, 503, "overloaded", "store queue full: %s", hm_strerror(r));
    }
    return HM_HTTP_DEFER;
}

/* The device's reported Device.RootDataModelVersion as hm_dm_version_parse() gives it; 0
 * when unknown (never reported, an IGD device, or the store busy). */
static uint16_t device_dm_version(struct hm_store_reader *rd, struct hm_slice id)
{
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_param(key, sizeof(key), id, HM_SLICE_LIT("Device.RootDataModelVersion"));
    uint16_t v = 0;
    if (kl <= 0 || hm_store_read_begin(rd) < 0)
        return 0;
    struct hm_slice val;
    struct hm_param_rec p;
    if (hm_store_get(rd, HM_DB_PARAMS, hm_slice(key, (size_t)kl), &val) == 0 &&
        hm_rec_param_decode(val, &p) == 0 && p.value.len < 32) {
        char b[32];
        memcpy(b, p.value.ptr, p.value.len);
        b[p.value.len] = '\0';
        v = hm_dm_version_parse(b);
    }
    hm_store_read_end(rd);
    return v;
}

static int post_task(struct hm_http_exchange *x, struct hm_api *api, struct hm_slice id)
{
    json_error_t je;
    json_t *in = json_loadb(x->body ? x->body : "", x->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!in)
        return hm_api_error(x, 400, "bad_json", "line %d column %d: %s", je.line, je.column, je.text);
    enum hm_task_kind kind;
    struct hm_buf args = {0};
    char err[256];
    /* files: a Download naming an uploaded "file" gets its URL, size, type, credentials */
    if (api->files &&
        hm_files_task_resolve(api->files, api->reader_of(x->shard), in, err, sizeof(err)) < 0) {
        json_decref(in);
        return hm_api_error(x, 422, "invalid_task", "%s", err);
    }
    bool cr = false;
    json_t *crv = json_is_object(in) ? json_object_get(in, "connection_request") : NULL;
    if (crv) {
        if (!json_is_boolean(crv)) {
            json_decref(in);
            return hm_api_error(x, 422, "invalid_task", "connection_request must be a boolean");
        }
        cr = json_is_true(crv);
        json_object_del(in, "connection_request");
    }
    json_int_t wait_s = 0;
    json_t *wv = json_is_object(in) ? json_object_get(in, "wait_seconds") : NULL;
    if (wv) {
        if (!json_is_integer(wv) || json_integer_value(wv) < 0 ||
            json_integer_value(wv) > WAIT_MAX_SECONDS) {
            json_decref(in);
            return hm_api_error(x, 422, "invalid_task",
                                "wait_seconds must be an integer from 0 to %d", WAIT_MAX_SECONDS);
        }
        wait_s = json_integer_value(wv);
        json_object_del(in, "wait_seconds");
    }
    int r = hm_task_validate(in, &kind, &args, err, sizeof(err));
    if (r == 0)
        r = hm_task_check_version(in, device_dm_version(api->reader_of(x->shard), id), err,
                                  sizeof(err));
    json_decref(in);
    if (r < 0) {
        hm_buf_free(&args);
        return hm_api_error(x, 422, "invalid_task", "%s", err);
    }
    struct api_req *q = hm_xcalloc(1, sizeof(*q));
    hm_store_batch_init(&q->batch);
    q->seq = hm_store_next_seq(api->store);
    if (id.len <= sizeof(q->dev)) {
        q->connreq = cr;
        memcpy(q->dev, id.ptr, id.len);
        q->dev_len = id.len;
    }
    if (wait_s > 0) {
        if (atomic_fetch_add_explicit(&api->waiters, 1, memory_order_relaxed) >=
            WAIT_MAX_WAITERS) {
            atomic_fetch_sub_explicit(&api->waiters, 1, memory_order_relaxed);
            hm_buf_free(&args);
            hm_store_batch_fini(&q->batch);
            free(q);
            hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
            return hm_api_error(x, 429, "too_many_waiters",
                                "%d requests already wait for a task result; retry without "
                                "wait_seconds or later", WAIT_MAX_WAITERS);
        }
        q->wait_until_ms = hm_now_ms() + (uint64_t)wait_s * 1000u;
    }
    if (hm_task_put_new(&q->batch, id, q->seq, kind, hm_buf_slice(&args)) < 0) {
        hm_buf_free(&args);
        hm_store_batch_fini(&q->batch);
        free(q);
        return hm_api_error(x, 413, "too_large", "task arguments exceed one record (%u bytes)",
                     HM_STORE_MAX_VAL);
    }
    hm_buf_free(&args);
    return submit_req(x, api, q);
}

static int delete_task(struct hm_http_exchange *x, struct hm_api *api, struct hm_store_reader *rd,
                       struct hm_slice id, uint64_t seq)
{
    struct hm_task_rec st = {0};
    int r = get_task(x, rd, id, seq, &st);
    if (r != 0)
        return r;
    if (st.state != HM_TASK_QUEUED)
        return hm_api_error(x, 409, "conflict", "task %llu is %s; only queued tasks can be cancelled",
                     (unsigned long long)seq, task_state_name(st.state));
    struct api_req *q = hm_xcalloc(1, sizeof(*q));
    hm_store_batch_init(&q->batch);
    q->is_delete = true;
    char key[HM_STORE_MAX_KEY];
    int kl = hm_key_task(key, sizeof(key), id, seq);
    if (hm_store_batch_del(&q->batch, HM_DB_TASKS, hm_slice(key, (size_t)kl)) < 0) {
        hm_store_batch_fini(&q->batch);
        free(q);
        return hm_api_error(x, 400, "bad_request", "bad task key");
    }
    return submit_req(x, api, q);
}

static int status(struct hm_http_exchange *x, struct hm_api *api)
{
    struct hm_store_stats st;
    json_t *j = json_pack("{s:s,s:i}", "version", HM_VERSION, "shards",
                          (int)hm_shards_count(hm_shard_group(x->shard)));
    if (hm_store_stats(api->store, &st) == 0) {
        json_object_set_new(j, "devices", json_integer((json_int_t)st.db[HM_DB_DEVICES].entries));
        json_object_set_new(j, "tasks", json_integer((json_int_t)st.db[HM_DB_TASKS].entries));
        json_object_set_new(j, "store_commits", json_integer((json_int_t)st.commits));
        json_object_set_new(j, "store_map_bytes", json_integer((json_int_t)st.map_size));
    }
    return hm_api_send_json(x, 200, j);
}

struct backup_job {
    struct hm_shard_msg msg;
    struct hm_conn_ref ref;
    struct hm_shard *shard;
    struct hm_store *store;
    char path[4096];
    int status;
    uint64_t ms;
};

static void on_backup_done(struct hm_shard *s, struct hm_shard_msg *m)
{
    struct backup_job *j = HM_CONTAINER_OF(m, struct backup_job, msg);
    (void)s;
    json_t *r = j->status < 0 ? hm_api_error_json("backup_failed", hm_strerror(j->status))
                              : json_pack("{s:s,s:I}", "path", j->path, "ms", (json_int_t)j->ms);
    hm_api_finish_json(j->ref, j->status < 0 ? 500 : 200, r, false);
    free(j);
}

/* mdb_env_copy2 reads the whole map and writes a file: never on a shard. */
static void *backup_thread(void *arg)
{
    struct backup_job *j = arg;
    uint64_t t0 = hm_now_ms();
    j->status = hm_store_backup(j->store, j->path);
    j->ms = hm_now_ms() - t0;
    if (j->status < 0)
        hm_err("backup failed", "path=\"%s\" err=\"%s\"", j->path, hm_strerror(j->status));
    else
        hm_info("backup written", "path=\"%s\" ms=%llu", j->path, (unsigned long long)j->ms);
    hm_shard_post(j->shard, &j->msg);
    return NULL;
}

static int post_backup(struct hm_http_exchange *x, struct hm_api *api)
{
    json_error_t je;
    json_t *in = json_loadb(x->body ? x->body : "", x->body_len, 0, &je);
    if (!in)
        return hm_api_error(x, 400, "bad_json", "line %d column %d: %s", je.line, je.column, je.text);
    const char *path = json_string_value(json_object_get(in, "path"));
    if (!path || path[0] != '/' || strlen(path) >= 4096) {
        json_decref(in);
        return hm_api_error(x, 422, "invalid_request", "'path' must be an absolute folder path");
    }
    struct backup_job *j = hm_xcalloc(1, sizeof(*j));
    snprintf(j->path, sizeof(j->path), "%s", path);
    json_decref(in);
    j->msg.fn = on_backup_done;
    j->ref = x->ref;
    j->shard = x->shard;
    j->store = api->store;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &at, backup_thread, j);
    pthread_attr_destroy(&at);
    if (r != 0) {
        free(j);
        return hm_api_error(x, 503, "overloaded", "cannot start the backup thread: %s", strerror(r));
    }
    return HM_HTTP_DEFER;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

static void unhex(const char *h, unsigned char out[32])
{
    memset(out, 0, 32);
    if (strlen(h) != 64)
        return;
    for (int i = 0; i < 32; i++)
        out[i] = (unsigned char)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
}

void hm_api_set_tokens(struct hm_api *api, const char *reader_hex, const char *operator_hex)
{
    static const unsigned char zero[32];
    unhex(reader_hex, api->reader_sha);
    unhex(operator_hex, api->operator_sha);
    api->auth = memcmp(api->reader_sha, zero, 32) || memcmp(api->operator_sha, zero, 32);
}

/* 0 when the request may proceed, else the status of the refusal (written). Tokens are
 * compared by their SHA-256 in constant time; only the hashes are kept. */
static int authorize(struct hm_http_exchange *x, struct hm_api *api)
{
    static const unsigned char zero[32];
    if (!api->auth)
        return 0;
    struct hm_slice az = x->req->authorization;
    if (az.len < 8 || strncasecmp(az.ptr, "Bearer ", 7) != 0) {
        hm_buf_append_lit(x->headers, "WWW-Authenticate: Bearer realm=\"hems\"\r\n");
        return hm_api_error(x, 401, "unauthorized", "a bearer token is required");
    }
    unsigned char h[32];
    SHA256((const uint8_t *)az.ptr + 7, az.len - 7, h);
    bool is_op = memcmp(api->operator_sha, zero, 32) && CRYPTO_memcmp(h, api->operator_sha, 32) == 0;
    bool is_rd = memcmp(api->reader_sha, zero, 32) && CRYPTO_memcmp(h, api->reader_sha, 32) == 0;
    if (!is_op && !is_rd) {
        HM_LOG_RL(HM_LOG_WARN, "API request with an unknown token refused", "path=\"%.*s\"",
                  (int)HM_MIN(x->req->path.len, 128), x->req->path.ptr);
        hm_buf_append_lit(x->headers, "WWW-Authenticate: Bearer realm=\"hems\", error=\"invalid_token\"\r\n");
        return hm_api_error(x, 401, "unauthorized", "unknown token");
    }
    enum hm_http_method m = x->req->method;
    if (!is_op && m != HM_HTTP_GET && m != HM_HTTP_HEAD)
        return hm_api_error(x, 403, "forbidden", "the read-only role cannot change anything");
    return 0;
}

static int api_handler(struct hm_http_exchange *x, void *ctx)
{
    struct hm_api *api = ctx;
    int denied = authorize(x, api);
    if (denied)
        return denied;
    struct hm_store_reader *rd = api->reader_of(x->shard);
    struct hm_slice p = x->req->path;
    enum hm_http_method m = x->req->method;
    static const char base[] = "/api/v1/";
    p.ptr += sizeof(base) - 1;
    p.len -= sizeof(base) - 1;

    /* profiles, pools, devices/{id}/tags|desired (core/api_profiles.c) */
    int fr = hm_api_profiles(x, api->fleet, rd, p);
    if (fr != -ENOENT)
        return fr;
    if (hm_slice_eq_lit(p, "status"))
        return m == HM_HTTP_GET ? status(x, api)
                                : hm_api_error(x, 405, "method_not_allowed", "use GET");
    if (hm_slice_eq_lit(p, "backup"))
        return m == HM_HTTP_POST ? post_backup(x, api)
                                 : hm_api_error(x, 405, "method_not_allowed", "use POST");
    /* policies: core/api_policy.h */
    int pr = hm_api_policy(x, api->hems, api->store, p);
    if (pr != -ENOENT)
        return pr;
    /* campaigns: core/campaigns.h */
    if (api->campaigns && (hm_slice_eq_lit(p, "campaigns") ||
                           (p.len > 10 && memcmp(p.ptr, "campaigns/", 10) == 0)))
        return hm_campaigns_api(x, api->campaigns, p);
    /* files: core/files.h */
    if (api->files &&
        (hm_slice_eq_lit(p, "files") || (p.len > 6 && memcmp(p.ptr, "files/", 6) == 0)))
        return hm_files_api(x, api->files, rd, p);
    if (hm_slice_eq_lit(p, "devices")) {
        if (m != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        return list_devices(x, rd);
    }
    if (hm_slice_eq_lit(p, "alarms"))
        return m == HM_HTTP_GET ? hm_api_alarms_list(x, rd)
                                : hm_api_error(x, 405, "method_not_allowed", "use GET");
    if (p.len > 7 && memcmp(p.ptr, "alarms/", 7) == 0) { /* stream, acks: core/alarm_stream.h */
        struct hm_slice sub = hm_slice(p.ptr + 7, p.len - 7);
        if (hm_slice_eq_lit(sub, "active"))
            return m == HM_HTTP_GET ? hm_api_alarms_current(x, rd, hm_slice("", 0))
                                    : hm_api_error(x, 405, "method_not_allowed", "use GET");
        if (hm_slice_eq_lit(sub, "stream") && api->alarm_streams)
            return hm_alarm_stream_open(api->alarm_streams, x);
        if (sub.len == 36 && memcmp(sub.ptr + 32, "/ack", 4) == 0)
            return m == HM_HTTP_POST ? hm_api_alarm_ack(x, rd, api->store, hm_slice(sub.ptr, 32))
                                     : hm_api_error(x, 405, "method_not_allowed", "use POST");
    }
    if (p.len > 8 && memcmp(p.ptr, "devices/", 8) == 0) {
        struct hm_slice rest = hm_slice(p.ptr + 8, p.len - 8);
        const char *slash = memchr(rest.ptr, '/', rest.len);
        struct hm_slice raw_id = hm_slice(rest.ptr, slash ? (size_t)(slash - rest.ptr) : rest.len);
        char idb[257];
        int il = hm_api_path_segment(raw_id, idb, sizeof(idb));
        if (il <= 0)
            return hm_api_error(x, 400, "bad_request", "invalid device id");
        struct hm_slice id = hm_slice(idb, (size_t)il);
        struct hm_slice sub = slash ? hm_slice(slash + 1, rest.len - raw_id.len - 1)
                                    : hm_slice("", 0);
        if (!slash)
            return m == HM_HTTP_GET ? get_device(x, api, rd, id)
                                    : hm_api_error(x, 405, "method_not_allowed", "use GET");
        if (hm_slice_eq_lit(sub, "parameters"))
            return m == HM_HTTP_GET ? get_params(x, rd, id)
                                    : hm_api_error(x, 405, "method_not_allowed", "use GET");
        if (hm_slice_eq_lit(sub, "alarms"))
            return m == HM_HTTP_GET ? hm_api_alarms_current(x, rd, id)
                                    : hm_api_error(x, 405, "method_not_allowed", "use GET");
        if (hm_slice_eq_lit(sub, "tasks")) {
            if (m == HM_HTTP_GET)
                return list_tasks(x, rd, id);
            if (m == HM_HTTP_POST)
                return post_task(x, api, id);
            return hm_api_error(x, 405, "method_not_allowed", "use GET or POST");
        }
        if (sub.len > 6 && memcmp(sub.ptr, "tasks/", 6) == 0) {
            uint64_t seq = 0;
            for (size_t i = 6; i < sub.len; i++) {
                if (sub.ptr[i] < '0' || sub.ptr[i] > '9' || i > 25)
                    return hm_api_error(x, 400, "bad_request", "task id must be a number");
                seq = seq * 10 + (uint64_t)(sub.ptr[i] - '0');
            }
            if (m == HM_HTTP_GET)
                return get_task(x, rd, id, seq, NULL);
            if (m == HM_HTTP_DELETE)
                return delete_task(x, api, rd, id, seq);
            return hm_api_error(x, 405, "method_not_allowed", "use GET or DELETE");
        }
    }
    return hm_api_error(x, 404, "not_found", "no API resource '%.*s'", (int)x->req->path.len,
                 x->req->path.ptr);
}

unsigned hm_api_routes(struct hm_route *r, struct hm_api *api)
{
    r[0] = (struct hm_route){HM_LISTENER_ADMIN, "/api/v1/", false, api_handler, api};
    return 1;
}
