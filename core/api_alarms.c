/* Northbound alarm queries (core/api_alarms.h). */
#include "core/api_json.h"
#include "core/api_alarms.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alarms.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/util.h"
#include "storage/record.h"

#define MAX_LIMIT 1000

static json_t *jslice(struct hm_slice s)
{
    return json_stringn(s.ptr ? s.ptr : "", s.len);
}

void hm_alarm_key_hex(const char *key, char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[(unsigned char)key[i] >> 4];
        out[2 * i + 1] = hx[(unsigned char)key[i] & 15];
    }
    out[32] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hm_alarm_key_unhex(struct hm_slice hex, char key[16])
{
    if (hex.len != 32)
        return -EINVAL;
    for (int i = 0; i < 16; i++) {
        int a = hexval(hex.ptr[2 * i]), b = hexval(hex.ptr[2 * i + 1]);
        if (a < 0 || b < 0)
            return -EINVAL;
        key[i] = (char)(a << 4 | b);
    }
    return 0;
}

json_t *hm_alarm_json(struct hm_slice key, const struct hm_alarm_rec *a)
{
    char hx[33];
    hm_alarm_key_hex(key.ptr, hx);
    json_t *j = json_pack("{s:s,s:o,s:I,s:o,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o}", "key", hx, "device",
                     jslice(a->device), "event_time_ms", (json_int_t)a->event_time_ms,
                     "alarm_id", jslice(a->alarm_id), "notification",
                     hm_alarm_notif_name(a->notification), "severity",
                     hm_alarm_sev_name(a->severity), "managed_object", jslice(a->managed_object),
                     "event_type", jslice(a->event_type), "probable_cause",
                     jslice(a->probable_cause), "specific_problem", jslice(a->specific_problem),
                     "additional_text", jslice(a->additional_text), "additional_info",
                     jslice(a->additional_info));
    json_object_set_new(j, "ack",
                        a->ack_ms ? json_pack("{s:I,s:o}", "time_ms", (json_int_t)a->ack_ms,
                                              "by", jslice(a->ack_by))
                                  : json_null());
    return j;
}

/* Value of query parameter <name> (raw, not decoded); empty slice when absent. */
static struct hm_slice query_raw(struct hm_slice q, const char *name)
{
    size_t nl = strlen(name), i = 0;
    while (i < q.len) {
        const char *amp = memchr(q.ptr + i, '&', q.len - i);
        size_t end = amp ? (size_t)(amp - q.ptr) : q.len;
        if (end - i > nl && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=')
            return hm_slice(q.ptr + i + nl + 1, end - i - nl - 1);
        i = end + 1;
    }
    return hm_slice("", 0);
}

/* Percent-decodes <in> into <out>; length or -EINVAL. */
static int pct(struct hm_slice in, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            int a = i + 2 < in.len ? hexval(in.ptr[i + 1]) : -1;
            int b = a >= 0 ? hexval(in.ptr[i + 2]) : -1;
            if (b < 0 || (a | b) == 0)
                return -EINVAL;
            c = (char)(a << 4 | b);
            i += 2;
        }
        if (n >= cap)
            return -EINVAL;
        out[n++] = c;
    }
    return (int)n;
}

static bool parse_u64(struct hm_slice s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s.len || s.len > 19)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    *out = v;
    return true;
}

struct list_ctx {
    json_t *arr;
    struct hm_slice device, skip;
    size_t limit, n;
    char last[16];
};

static int list_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct list_ctx *l = arg;
    struct hm_alarm_rec a;
    if (key.len != HM_KEY_ALARM_LEN || (l->skip.len && hm_slice_eq(key, l->skip)))
        return 0;
    if (hm_rec_alarm_decode(val, &a) < 0)
        return 0;
    if (l->device.len && !hm_slice_eq(l->device, a.device))
        return 0;
    if (l->n == l->limit)
        return 1;
    json_array_append_new(l->arr, hm_alarm_json(key, &a));
    memcpy(l->last, key.ptr, HM_KEY_ALARM_LEN);
    l->n++;
    return 0;
}

int hm_api_alarms_list(struct hm_http_exchange *x, struct hm_store_reader *rd)
{
    struct hm_slice q = x->req->query;
    char dev[256], from[HM_KEY_ALARM_LEN], after[HM_KEY_ALARM_LEN];
    struct list_ctx l = {.limit = 100};
    struct hm_slice s = query_raw(q, "device");
    if (s.len) {
        int dl = pct(s, dev, sizeof(dev));
        if (dl <= 0)
            return hm_api_error(x, 400, "bad_request", "invalid device");
        l.device = hm_slice(dev, (size_t)dl);
    }
    uint64_t v = 0;
    s = query_raw(q, "limit");
    if (s.len) {
        if (!parse_u64(s, &v) || v < 1 || v > MAX_LIMIT)
            return hm_api_error(x, 400, "bad_request", "limit must be in 1..1000");
        l.limit = (size_t)v;
    }
    struct hm_slice start = hm_slice("", 0);
    s = query_raw(q, "since");
    if (s.len) {
        if (!parse_u64(s, &v))
            return hm_api_error(x, 400, "bad_request", "since must be milliseconds since the epoch");
        if (hm_key_alarm(from, sizeof(from), v, 0) != HM_KEY_ALARM_LEN)
            return hm_api_error(x, 500, "internal", "alarm key");
        start = hm_slice(from, sizeof(from));
    }
    s = query_raw(q, "after");
    if (s.len) {
        if (hm_alarm_key_unhex(s, after) < 0)
            return hm_api_error(x, 400, "bad_request", "after must be an alarm key (32 hex digits)");
        l.skip = hm_slice(after, sizeof(after));
        if (!start.len || memcmp(after, from, sizeof(from)) > 0)
            start = l.skip;
    }
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    l.arr = json_array();
    int r = hm_store_scan(rd, HM_DB_ALARMS, hm_slice("", 0), start, list_cb, &l);
    hm_store_read_end(rd);
    json_t *next = json_null();
    if (r > 0 && l.n) {
        char hx[33];
        hm_alarm_key_hex(l.last, hx);
        next = json_string(hx);
    }
    return hm_api_send_json(x, 200, json_pack("{s:o,s:o}", "alarms", l.arr, "next", next));
}

struct cur_ctx {
    json_t *arr;
    struct hm_store_reader *rd;
};

static int cur_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    (void)key;
    struct cur_ctx *c = arg;
    struct hm_alarm_cur_rec cur;
    struct hm_alarm_rec a;
    char ak[HM_KEY_ALARM_LEN];
    struct hm_slice v;
    if (hm_rec_alarm_cur_decode(val, &cur) < 0 ||
        hm_key_alarm(ak, sizeof(ak), cur.time_ms, cur.seq) < 0 ||
        hm_store_get(c->rd, HM_DB_ALARMS, hm_slice(ak, sizeof(ak)), &v) < 0 ||
        hm_rec_alarm_decode(v, &a) < 0)
        return 0;
    json_array_append_new(c->arr, hm_alarm_json(hm_slice(ak, sizeof(ak)), &a));
    return json_array_size(c->arr) >= MAX_LIMIT;
}

int hm_api_alarms_current(struct hm_http_exchange *x, struct hm_store_reader *rd,
                          struct hm_slice dev)
{
    char pfx[HM_STORE_MAX_KEY];
    int pl = dev.len ? hm_key_dev_prefix(pfx, sizeof(pfx), dev) : 0; /* empty: every device */
    if (pl < 0)
        return hm_api_error(x, 400, "bad_request", "device id too long");
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    struct cur_ctx c = {json_array(), rd};
    int r = hm_store_scan(rd, HM_DB_ALARM_CUR, hm_slice(pfx, (size_t)pl), hm_slice("", 0),
                          cur_cb, &c);
    hm_store_read_end(rd);
    return hm_api_send_json(x, 200, json_pack("{s:o,s:b}", "alarms", c.arr, "truncated", r > 0));
}

/* ---- acknowledgement ---------------------------------------------------------------- */

struct ack_req {
    struct hm_shard_msg msg;
    struct hm_store_batch batch;
    struct hm_conn_ref ref;
    struct hm_shard *shard;
    int status;
    json_t *answer; /* the acknowledged alarm, answered once committed */
};

static void on_ack_msg(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)s;
    struct ack_req *q = HM_CONTAINER_OF(m, struct ack_req, msg);
    if (q->status < 0) {
        json_decref(q->answer);
        q->answer = hm_api_error_json("store_error", hm_strerror(q->status));
    }
    hm_api_finish_json(q->ref, q->status < 0 ? 503 : 200, q->answer, false);
    hm_store_batch_fini(&q->batch);
    free(q);
}

static void on_ack_done(void *arg, int status)
{
    struct ack_req *q = arg;
    q->status = status;
    hm_shard_post(q->shard, &q->msg);
}

int hm_api_alarm_ack(struct hm_http_exchange *x, struct hm_store_reader *rd,
                     struct hm_store *st, struct hm_slice hexkey)
{
    char key[HM_KEY_ALARM_LEN], by[128];
    if (hm_alarm_key_unhex(hexkey, key) < 0)
        return hm_api_error(x, 404, "not_found", "no such alarm (a key is 32 hex digits)");
    json_t *in = NULL;
    if (x->body_len) {
        json_error_t je;
        in = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(in)) {
            json_decref(in);
            return hm_api_error(x, 400, "bad_json", "body must be a JSON object");
        }
    }
    const char *who = in ? json_string_value(json_object_get(in, "by")) : NULL;
    if (in && json_object_get(in, "by") && (!who || !*who || strlen(who) >= sizeof(by))) {
        json_decref(in);
        return hm_api_error(x, 422, "invalid_request", "'by' must be a non-empty string (< 128 bytes)");
    }
    if (who) {
        snprintf(by, sizeof(by), "%s", who);
    } else {
        char peer[64];
        hm_sockaddr_str(x->peer, peer, sizeof(peer));
        snprintf(by, sizeof(by), "operator@%s", peer);
    }
    json_decref(in);
    if (hm_store_read_begin(rd) < 0)
        return hm_api_error(x, 503, "store_busy", "store temporarily unavailable, retry");
    struct hm_slice v;
    struct hm_alarm_rec a;
    int r = hm_store_get(rd, HM_DB_ALARMS, hm_slice(key, sizeof(key)), &v);
    if (r == 0)
        r = hm_rec_alarm_decode(v, &a);
    if (r < 0) {
        hm_store_read_end(rd);
        return r == -ENOENT ? hm_api_error(x, 404, "not_found", "no such alarm")
                            : hm_api_error(x, 500, "store_error", "alarm record unreadable");
    }
    if (a.ack_ms) { /* acknowledged already: the first acknowledgement stands */
        int stt = hm_api_send_json(x, 200, hm_alarm_json(hm_slice(key, sizeof(key)), &a));
        hm_store_read_end(rd);
        return stt;
    }
    a.ack_ms = hm_now_ms();
    a.ack_by = hm_slice_cstr(by);
    struct ack_req *q = hm_xcalloc(1, sizeof(*q));
    hm_store_batch_init(&q->batch);
    size_t n = hm_rec_alarm_size(&a);
    char *p = hm_store_batch_put_reserve(&q->batch, HM_DB_ALARMS, hm_slice(key, sizeof(key)), n);
    r = p ? hm_rec_alarm_encode(&a, p, n) : -E2BIG;
    q->answer = hm_alarm_json(hm_slice(key, sizeof(key)), &a);
    hm_store_read_end(rd);
    if (r < 0) {
        hm_store_batch_fini(&q->batch);
        json_decref(q->answer);
        free(q);
        return hm_api_error(x, 413, "too_large", "acknowledged record exceeds one record");
    }
    q->msg.fn = on_ack_msg;
    q->ref = x->ref;
    q->shard = x->shard;
    r = hm_store_submit(st, &q->batch, on_ack_done, q);
    if (r < 0) {
        hm_store_batch_fini(&q->batch);
        json_decref(q->answer);
        free(q);
        hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
        return hm_api_error(x, 503, "overloaded", "store queue full");
    }
    hm_info("alarm acknowledged", "key=%.*s by=\"%s\"", 32, hexkey.ptr, by);
    return HM_HTTP_DEFER;
}
