/*
 * hems-loadgen statistics: merging and the worker-to-parent JSON (jansson on the parent
 * side only; workers write with hm_buf, no allocation per field).
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "bench/loadgen.h"
#include "core/buf.h"

const char *const hm_lg_err_names[HM_LG_E__COUNT] = {
#define HM_LG_ERR_NAME(e, s) s,
    HM_LG_ERR_LIST(HM_LG_ERR_NAME)
#undef HM_LG_ERR_NAME
};

uint32_t hm_lg_fault_code(unsigned slot)
{
    return slot < 32 ? 8000 + slot : 9000 + (slot - 32);
}

int hm_lg_fault_slot(uint32_t code)
{
    if (code >= 8000 && code < 8032)
        return (int)(code - 8000);
    if (code >= 9000 && code < 9032)
        return (int)(code - 9000 + 32);
    return -1;
}

void hm_lg_stats_merge(struct hm_lg_stats *d, const struct hm_lg_stats *s)
{
    d->sessions_started += s->sessions_started;
    d->sessions_ok += s->sessions_ok;
    d->sessions_failed += s->sessions_failed;
    d->exchanges += s->exchanges;
    d->connects += s->connects;
    d->attempts_retried += s->attempts_retried;
    d->auth_challenges += s->auth_challenges;
    d->missed_slots += s->missed_slots;
    d->held_now += s->held_now;
    d->held_peak += s->held_peak; /* workers peak at about the same time: an upper bound */
    d->bytes_sent += s->bytes_sent;
    d->bytes_received += s->bytes_received;
    d->redirects += s->redirects;
    d->registered += s->registered;
    d->fallbacks += s->fallbacks;
    d->alarms_sent += s->alarms_sent;
    d->pm_files += s->pm_files;
    d->pm_bytes += s->pm_bytes;
    d->pm_duplicates += s->pm_duplicates;
    d->cr_received += s->cr_received;
    d->cr_challenges += s->cr_challenges;
    d->cr_refused += s->cr_refused;
    d->cr_bad += s->cr_bad;
    d->cr_sessions += s->cr_sessions;
    d->dl_started += s->dl_started;
    d->dl_fetched += s->dl_fetched;
    d->dl_injected += s->dl_injected;
    d->dl_errors += s->dl_errors;
    d->dl_tc_acked += s->dl_tc_acked;
    d->ipsec_changes += s->ipsec_changes;
    for (size_t i = 0; i < HM_LG_RETRY_SLOTS; i++)
        d->retry_hist[i] += s->retry_hist[i];
    if (s->retries_dev_max > d->retries_dev_max)
        d->retries_dev_max = s->retries_dev_max;
    if (s->max_rss_kb > d->max_rss_kb)
        d->max_rss_kb = s->max_rss_kb;
    for (unsigned i = 0; i < HM_LG_E__COUNT; i++)
        d->err[i] += s->err[i];
    for (unsigned i = 0; i < HM_ARRAY_SIZE(d->http_status); i++)
        d->http_status[i] += s->http_status[i];
    for (unsigned i = 0; i < HM_LG_FAULT_SLOTS; i++)
        d->faults[i] += s->faults[i];
    d->fault_other += s->fault_other;
    for (unsigned i = 0; i < HM_CWMP__COUNT; i++)
        d->acs_requests[i] += s->acs_requests[i];
    if (s->elapsed_s > d->elapsed_s)
        d->elapsed_s = s->elapsed_s;
    hm_lg_hist_merge(&d->session, &s->session);
    hm_lg_hist_merge(&d->exchange, &s->exchange);
    hm_lg_hist_merge(&d->connect, &s->connect);
    hm_lg_hist_merge(&d->admitted, &s->admitted);
    hm_lg_hist_merge(&d->served, &s->served);
}

static void kv(struct hm_buf *b, const char *k, unsigned long long v)
{
    hm_buf_printf(b, "\"%s\":%llu,", k, v);
}

static void hist_json(struct hm_buf *b, const char *name, const struct hm_lg_hist *h)
{
    hm_buf_printf(b, "\"%s\":{\"count\":%llu,\"min\":%llu,\"max\":%llu,\"sum\":%llu,\"b\":[", name,
                  (unsigned long long)h->count, (unsigned long long)h->min,
                  (unsigned long long)h->max, (unsigned long long)h->sum);
    bool first = true;
    for (unsigned i = 0; i < HM_LG_HIST_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        hm_buf_printf(b, "%s%u,%llu", first ? "" : ",", i, (unsigned long long)h->b[i]);
        first = false;
    }
    hm_buf_append_lit(b, "]},");
}

static void sparse(struct hm_buf *b, const char *name, const uint64_t *v, size_t n)
{
    hm_buf_printf(b, "\"%s\":[", name);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!v[i])
            continue;
        hm_buf_printf(b, "%s%zu,%llu", first ? "" : ",", i, (unsigned long long)v[i]);
        first = false;
    }
    hm_buf_append_lit(b, "],");
}

void hm_lg_stats_to_json(const struct hm_lg_stats *st, struct hm_buf *b)
{
    hm_buf_append_lit(b, "{");
    kv(b, "sessions_started", st->sessions_started);
    kv(b, "sessions_ok", st->sessions_ok);
    kv(b, "sessions_failed", st->sessions_failed);
    kv(b, "exchanges", st->exchanges);
    kv(b, "connects", st->connects);
    kv(b, "attempts_retried", st->attempts_retried);
    kv(b, "auth_challenges", st->auth_challenges);
    kv(b, "missed_slots", st->missed_slots);
    kv(b, "held_now", st->held_now);
    kv(b, "held_peak", st->held_peak);
    kv(b, "bytes_sent", st->bytes_sent);
    kv(b, "bytes_received", st->bytes_received);
    kv(b, "redirects", st->redirects);
    kv(b, "registered", st->registered);
    kv(b, "fallbacks", st->fallbacks);
    kv(b, "alarms_sent", st->alarms_sent);
    kv(b, "pm_files", st->pm_files);
    kv(b, "pm_bytes", st->pm_bytes);
    kv(b, "pm_duplicates", st->pm_duplicates);
    kv(b, "cr_received", st->cr_received);
    kv(b, "cr_challenges", st->cr_challenges);
    kv(b, "cr_refused", st->cr_refused);
    kv(b, "cr_bad", st->cr_bad);
    kv(b, "cr_sessions", st->cr_sessions);
    kv(b, "dl_started", st->dl_started);
    kv(b, "dl_fetched", st->dl_fetched);
    kv(b, "dl_injected", st->dl_injected);
    kv(b, "dl_errors", st->dl_errors);
    kv(b, "dl_tc_acked", st->dl_tc_acked);
    kv(b, "ipsec_changes", st->ipsec_changes);
    kv(b, "max_rss_kb", st->max_rss_kb);
    kv(b, "retries_dev_max", st->retries_dev_max);
    sparse(b, "retry_hist", st->retry_hist, HM_LG_RETRY_SLOTS);
    kv(b, "fault_other", st->fault_other);
    sparse(b, "err", st->err, HM_LG_E__COUNT);
    sparse(b, "http_status", st->http_status, HM_ARRAY_SIZE(st->http_status));
    sparse(b, "faults", st->faults, HM_LG_FAULT_SLOTS);
    sparse(b, "acs_requests", st->acs_requests, HM_CWMP__COUNT);
    hist_json(b, "session", &st->session);
    hist_json(b, "exchange", &st->exchange);
    hist_json(b, "connect", &st->connect);
    hist_json(b, "admitted", &st->admitted);
    hist_json(b, "served", &st->served);
    hm_buf_printf(b, "\"elapsed_s\":%.6f}", st->elapsed_s);
}

static uint64_t get_u64(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static int get_sparse(json_t *o, const char *k, uint64_t *v, size_t n)
{
    json_t *a = json_object_get(o, k);
    if (!json_is_array(a) || json_array_size(a) % 2)
        return -EINVAL;
    for (size_t i = 0; i + 1 < json_array_size(a); i += 2) {
        json_int_t idx = json_integer_value(json_array_get(a, i));
        if (idx < 0 || (size_t)idx >= n)
            return -EINVAL;
        v[idx] = (uint64_t)json_integer_value(json_array_get(a, i + 1));
    }
    return 0;
}

static int get_hist(json_t *o, const char *k, struct hm_lg_hist *h)
{
    json_t *j = json_object_get(o, k);
    if (!json_is_object(j))
        return -EINVAL;
    hm_lg_hist_reset(h);
    uint64_t b[HM_LG_HIST_BUCKETS] = {0};
    if (get_sparse(j, "b", b, HM_LG_HIST_BUCKETS))
        return -EINVAL;
    for (unsigned i = 0; i < HM_LG_HIST_BUCKETS; i++)
        if (b[i])
            hm_lg_hist_add_bucket(h, i, b[i]);
    if (h->count != get_u64(j, "count"))
        return -EINVAL;
    h->min = get_u64(j, "min");
    h->max = get_u64(j, "max");
    h->sum = get_u64(j, "sum");
    return 0;
}

int hm_lg_stats_from_json(const char *s, size_t len, struct hm_lg_stats *st)
{
    memset(st, 0, sizeof(*st));
    json_error_t jerr;
    json_t *o = json_loadb(s, len, 0, &jerr);
    int rc = -EINVAL;
    if (!json_is_object(o))
        goto out;
    st->sessions_started = get_u64(o, "sessions_started");
    st->sessions_ok = get_u64(o, "sessions_ok");
    st->sessions_failed = get_u64(o, "sessions_failed");
    st->exchanges = get_u64(o, "exchanges");
    st->connects = get_u64(o, "connects");
    st->attempts_retried = get_u64(o, "attempts_retried");
    st->auth_challenges = get_u64(o, "auth_challenges");
    st->missed_slots = get_u64(o, "missed_slots");
    st->held_now = get_u64(o, "held_now");
    st->held_peak = get_u64(o, "held_peak");
    st->bytes_sent = get_u64(o, "bytes_sent");
    st->bytes_received = get_u64(o, "bytes_received");
    st->redirects = get_u64(o, "redirects");
    st->registered = get_u64(o, "registered");
    st->fallbacks = get_u64(o, "fallbacks");
    st->alarms_sent = get_u64(o, "alarms_sent");
    st->pm_files = get_u64(o, "pm_files");
    st->pm_bytes = get_u64(o, "pm_bytes");
    st->pm_duplicates = get_u64(o, "pm_duplicates");
    st->cr_received = get_u64(o, "cr_received");
    st->cr_challenges = get_u64(o, "cr_challenges");
    st->cr_refused = get_u64(o, "cr_refused");
    st->cr_bad = get_u64(o, "cr_bad");
    st->cr_sessions = get_u64(o, "cr_sessions");
    st->dl_started = get_u64(o, "dl_started");
    st->dl_fetched = get_u64(o, "dl_fetched");
    st->dl_injected = get_u64(o, "dl_injected");
    st->dl_errors = get_u64(o, "dl_errors");
    st->dl_tc_acked = get_u64(o, "dl_tc_acked");
    st->ipsec_changes = get_u64(o, "ipsec_changes");
    st->max_rss_kb = get_u64(o, "max_rss_kb");
    st->retries_dev_max = get_u64(o, "retries_dev_max");
    st->fault_other = get_u64(o, "fault_other");
    st->elapsed_s = json_number_value(json_object_get(o, "elapsed_s"));
    if (get_sparse(o, "err", st->err, HM_LG_E__COUNT) ||
        get_sparse(o, "retry_hist", st->retry_hist, HM_LG_RETRY_SLOTS) ||
        get_sparse(o, "http_status", st->http_status, HM_ARRAY_SIZE(st->http_status)) ||
        get_sparse(o, "faults", st->faults, HM_LG_FAULT_SLOTS) ||
        get_sparse(o, "acs_requests", st->acs_requests, HM_CWMP__COUNT) ||
        get_hist(o, "session", &st->session) || get_hist(o, "exchange", &st->exchange) ||
        get_hist(o, "connect", &st->connect) || get_hist(o, "admitted", &st->admitted) ||
        get_hist(o, "served", &st->served))
        goto out;
    rc = 0;
out:
    json_decref(o);
    return rc;
}
