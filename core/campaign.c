/* Campaign state machine (pure part of core/campaign.h). */
#include "core/campaign.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/err.h"
#include "core/profiles.h"

#define FAIL(...)                                                                            \
    do {                                                                                     \
        snprintf(err, errlen, __VA_ARGS__);                                                  \
        goto fail;                                                                           \
    } while (0)

static const char *const state_names[] = {"created", "running", "paused", "halted",
                                          "completed", "cancelled"};
static const char *const dstate_names[] = {"pending", "in_progress", "succeeded", "failed",
                                           "timed_out", "cancelled"};

const char *hm_camp_state_name(uint8_t s)
{
    return s < HM_CAMP__NSTATES ? state_names[s] : "?";
}

const char *hm_camp_dstate_name(uint8_t s)
{
    return s < HM_CD__N ? dstate_names[s] : "?";
}

static int state_of(const char *s)
{
    for (int i = 0; s && i < HM_CAMP__NSTATES; i++)
        if (!strcmp(s, state_names[i]))
            return i;
    return -1;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HM_CAMP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool version_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* <key> as an integer in [lo, hi], or <def> when absent. */
static int get_uint(json_t *in, const char *key, uint32_t lo, uint32_t hi, uint32_t def,
                    uint32_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(in, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi) {
        snprintf(err, errlen, "'%s' must be an integer in %u..%u", key, lo, hi);
        return -EINVAL;
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int parse_ratio(json_t *v, double *out, char *err, size_t errlen)
{
    if (!json_is_number(v) || !(json_number_value(v) >= 0.0) || json_number_value(v) > 1.0) {
        snprintf(err, errlen, "'max_failure_ratio' must be a number in 0..1");
        return -EINVAL;
    }
    *out = json_number_value(v);
    return 0;
}

int hm_camp_cfg_parse(json_t *in, struct hm_camp_cfg *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    struct hm_profile *sel = NULL;
    if (!json_is_object(in))
        FAIL("a campaign must be a JSON object with 'name', 'file', 'selector' and 'waves'");
    static const char *const known[] = {"name", "file", "file_type", "target_version",
                                        "selector", "waves", "pause_s", "max_failure_ratio",
                                        "timeout_s", "cr_per_s", "max_in_flight",
                                        "cr_retry_s"};
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        size_t i = 0;
        while (i < HM_ARRAY_SIZE(known) && strcmp(k, known[i]))
            i++;
        if (i == HM_ARRAY_SIZE(known))
            FAIL("unknown campaign field '%s'", k);
    }
    const char *name = json_string_value(json_object_get(in, "name"));
    if (!name || !name_ok(name))
        FAIL("'name' must be 1..%d characters of [A-Za-z0-9_.-]", HM_CAMP_NAME_MAX);
    memcpy(c->name, name, strlen(name) + 1);
    const char *file = json_string_value(json_object_get(in, "file"));
    if (!file || !*file || strlen(file) >= sizeof(c->file))
        FAIL("'file' must name an uploaded file (see GET /api/v1/files)");
    memcpy(c->file, file, strlen(file) + 1);
    json_t *ft = json_object_get(in, "file_type");
    if (ft) {
        const char *s = json_string_value(ft);
        if (json_is_integer(ft) && (json_integer_value(ft) == 1 || json_integer_value(ft) == 3))
            c->file_type = (uint8_t)json_integer_value(ft);
        else if (s && (!strcmp(s, "1") || !strcmp(s, "1 Firmware Upgrade Image")))
            c->file_type = 1;
        else if (s && (!strcmp(s, "3") || !strcmp(s, "3 Vendor Configuration File")))
            c->file_type = 3;
        else
            FAIL("'file_type' must be 1 (\"1 Firmware Upgrade Image\") or 3 (\"3 Vendor "
                 "Configuration File\")");
    }
    json_t *tv = json_object_get(in, "target_version");
    if (tv) {
        if (!json_is_string(tv) || !version_ok(json_string_value(tv)))
            FAIL("'target_version' must be a string of 1..64 printable characters");
        memcpy(c->target_version, json_string_value(tv), json_string_length(tv) + 1);
    }
    if (c->file_type == 1 && !c->target_version[0])
        FAIL("a firmware campaign (file_type 1) needs 'target_version': the SoftwareVersion "
             "devices report after the upgrade");
    json_t *s = json_object_get(in, "selector");
    if (!s)
        FAIL("'selector' is required ({} selects every device)");
    if (hm_selector_parse(s, &sel, err, errlen) < 0)
        goto fail;
    hm_profile_put(sel);
    sel = NULL;
    c->selector = json_deep_copy(s);
    json_t *w = json_object_get(in, "waves");
    if (!w) {
        c->nwaves = 1;
        c->waves[0] = (struct hm_camp_wave_spec){100, true};
    } else {
        if (!json_is_array(w) || json_array_size(w) == 0 || json_array_size(w) > HM_CAMP_MAX_WAVES)
            FAIL("'waves' must be an array of 1..%d wave sizes (a count, or \"N%%\")",
                 HM_CAMP_MAX_WAVES);
        size_t i;
        json_array_foreach(w, i, v)
        {
            struct hm_camp_wave_spec *ws = &c->waves[i];
            if (json_is_integer(v) && json_integer_value(v) >= 1 &&
                json_integer_value(v) <= HM_CAMP_MAX_DEVICES) {
                ws->n = (uint32_t)json_integer_value(v);
            } else if (json_is_string(v)) {
                const char *p = json_string_value(v);
                char *end;
                unsigned long pc = strtoul(p, &end, 10);
                if (end == p || *p < '0' || *p > '9' || strcmp(end, "%") || pc < 1 || pc > 100)
                    FAIL("waves[%zu] must be a device count >= 1 or a percentage \"1%%\"..\"100%%\"",
                         i);
                ws->n = (uint32_t)pc;
                ws->pct = true;
            } else {
                FAIL("waves[%zu] must be a device count >= 1 or a percentage \"1%%\"..\"100%%\"",
                     i);
            }
        }
        c->nwaves = (uint32_t)json_array_size(w);
    }
    c->max_failure_ratio = 0.05;
    if (json_object_get(in, "max_failure_ratio") &&
        parse_ratio(json_object_get(in, "max_failure_ratio"), &c->max_failure_ratio, err,
                    errlen) < 0)
        goto fail;
    if (get_uint(in, "pause_s", 0, 7 * 86400, 0, &c->pause_s, err, errlen) < 0 ||
        get_uint(in, "timeout_s", 1, 7 * 86400, 3600, &c->timeout_s, err, errlen) < 0 ||
        get_uint(in, "cr_per_s", 1, 100000, 10, &c->cr_per_s, err, errlen) < 0 ||
        get_uint(in, "max_in_flight", 0, HM_CAMP_MAX_DEVICES, 0, &c->max_in_flight, err,
                 errlen) < 0 ||
        get_uint(in, "cr_retry_s", 0, 86400, 30, &c->cr_retry_s, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    hm_profile_put(sel);
    json_decref(c->selector);
    c->selector = NULL;
    return -EINVAL;
}

json_t *hm_camp_cfg_json(const struct hm_camp_cfg *c)
{
    json_t *w = json_array();
    for (uint32_t i = 0; i < c->nwaves; i++)
        json_array_append_new(w, c->waves[i].pct ? json_sprintf("%u%%", c->waves[i].n)
                                                 : json_integer(c->waves[i].n));
    json_t *sel = c->selector ? json_deep_copy(c->selector) : json_object();
    json_t *j = json_pack("{s:s,s:s,s:i,s:o,s:o,s:I,s:f,s:I,s:I,s:I}", "name", c->name, "file",
                          c->file, "file_type", c->file_type, "selector", sel, "waves", w, "pause_s",
                          (json_int_t)c->pause_s, "max_failure_ratio", c->max_failure_ratio,
                          "timeout_s", (json_int_t)c->timeout_s, "cr_per_s",
                          (json_int_t)c->cr_per_s, "max_in_flight",
                          (json_int_t)c->max_in_flight);
    json_object_set_new(j, "cr_retry_s", json_integer(c->cr_retry_s));
    if (c->target_version[0])
        json_object_set_new(j, "target_version", json_string(c->target_version));
    return j;
}

/* ---- planning ---- */

struct order {
    uint64_t h;
    uint32_t i;
};

static int order_cmp(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : x->i < y->i ? -1 : x->i > y->i;
}

static void recount(struct hm_camp *k)
{
    memset(k->cnt, 0, sizeof(k->cnt));
    k->in_flight = 0;
    for (uint32_t i = 0; i < k->ndev; i++) {
        const struct hm_camp_dev *d = &k->dev[i];
        if (d->wave < HM_CAMP_MAX_WAVES && d->state < HM_CD__N)
            k->cnt[d->wave][d->state]++;
        k->in_flight += d->state == HM_CD_IN_PROGRESS;
    }
}

static void wave_bounds(struct hm_camp *k)
{
    uint32_t w = 0;
    k->nw = 0;
    for (uint32_t i = 0; i <= HM_CAMP_MAX_WAVES; i++)
        k->wave_start[i] = k->ndev;
    for (uint32_t i = 0; i < k->ndev; i++) {
        while (w <= k->dev[i].wave) {
            k->wave_start[w] = i;
            w++;
        }
    }
    k->nw = k->ndev ? (uint32_t)k->dev[k->ndev - 1].wave + 1 : 0;
}

struct hm_camp *hm_camp_new(struct hm_camp_cfg *c, char *const *ids, uint32_t n,
                            uint64_t now_ms)
{
    struct hm_camp *k = hm_xcalloc(1, sizeof(*k));
    k->c = *c;
    c->selector = NULL;
    k->state = HM_CAMP_CREATED;
    k->created_ms = k->updated_ms = now_ms;
    k->ndev = n;
    k->dev = hm_xcalloc(n ? n : 1, sizeof(*k->dev));
    struct order *o = hm_xcalloc(n ? n : 1, sizeof(*o));
    for (uint32_t i = 0; i < n; i++) {
        uint64_t h = hm_hash_bytes(HM_HASH_INIT, k->c.name, strlen(k->c.name));
        o[i] = (struct order){hm_hash_bytes(h ^ 0x2f, ids[i], strlen(ids[i])), i};
    }
    qsort(o, n, sizeof(*o), order_cmp);
    uint32_t at = 0;
    for (uint32_t w = 0; w < k->c.nwaves && at < n; w++) {
        uint64_t sz = k->c.waves[w].n;
        if (k->c.waves[w].pct)
            sz = ((uint64_t)n * k->c.waves[w].n + 99) / 100;
        if (sz < 1)
            sz = 1;
        if (w == k->c.nwaves - 1 || at + sz > n)
            sz = n - at;
        for (uint64_t j = 0; j < sz; j++, at++) {
            struct hm_camp_dev *d = &k->dev[at];
            d->id = hm_xstrndup(ids[o[at].i], strlen(ids[o[at].i]));
            d->wave = (uint16_t)w;
            d->state = HM_CD_PENDING;
            d->dirty = 1;
        }
    }
    free(o);
    wave_bounds(k);
    recount(k);
    k->dirty = true;
    return k;
}

void hm_camp_free(struct hm_camp *k)
{
    if (!k)
        return;
    for (uint32_t i = 0; i < k->ndev; i++)
        free(k->dev[i].id);
    free(k->dev);
    json_decref(k->c.selector);
    free(k);
}

/* ---- transitions ---- */

static uint32_t wave_size(const struct hm_camp *k, uint32_t w)
{
    return w < k->nw ? k->wave_start[w + 1] - k->wave_start[w] : 0;
}

static uint32_t wave_failures(const struct hm_camp *k, uint32_t w)
{
    return w < HM_CAMP_MAX_WAVES ? k->cnt[w][HM_CD_FAILED] + k->cnt[w][HM_CD_TIMED_OUT] : 0;
}

bool hm_camp_over_threshold(const struct hm_camp *k, uint32_t w)
{
    uint32_t size = wave_size(k, w);
    /* allowance: floor(ratio x size); a tiny epsilon so 0.1 x 100 is 10, not 9.99.. */
    uint32_t allowed = (uint32_t)floor(k->c.max_failure_ratio * size + 1e-9);
    return wave_failures(k, w) > allowed;
}

void hm_camp_set(struct hm_camp *k, uint32_t i, uint8_t state, uint32_t fault, uint64_t now_ms)
{
    struct hm_camp_dev *d = &k->dev[i];
    k->cnt[d->wave][d->state]--;
    k->in_flight -= d->state == HM_CD_IN_PROGRESS;
    if (state == HM_CD_IN_PROGRESS) {
        d->started_ms = now_ms;
        d->ended_ms = 0;
        d->fault = 0;
        if (k->tokens >= 1.0)
            k->tokens -= 1.0;
    } else if (state != HM_CD_PENDING) {
        d->ended_ms = now_ms;
        d->fault = fault;
    } else {
        d->started_ms = d->ended_ms = 0;
        d->fault = 0;
        d->task_seq = 0;
    }
    d->state = state;
    d->dirty = 1;
    k->cnt[d->wave][state]++;
    k->in_flight += state == HM_CD_IN_PROGRESS;
    k->updated_ms = now_ms;
    k->dirty = true;
}

static void set_state(struct hm_camp *k, uint8_t st, uint64_t now_ms, const char *reason)
{
    k->state = st;
    snprintf(k->reason, sizeof(k->reason), "%s", reason ? reason : "");
    if (st == HM_CAMP_COMPLETED || st == HM_CAMP_CANCELLED)
        k->ended_ms = now_ms;
    k->updated_ms = now_ms;
    k->dirty = true;
}

int hm_camp_command(struct hm_camp *k, enum hm_camp_cmd cmd, json_t *opts, uint64_t now_ms,
                    char *err, size_t errlen)
{
    const char *st = hm_camp_state_name(k->state);
    switch (cmd) {
    case HM_CAMP_CMD_START:
        if (k->state != HM_CAMP_CREATED)
            FAIL("campaign '%s' is %s; only a created campaign starts (resume a paused or "
                 "halted one)", k->c.name, st);
        k->started_ms = now_ms;
        k->wave = 0;
        k->next_wave_ms = 0;
        k->tokens = 1.0;
        k->tokens_ms = now_ms;
        set_state(k, HM_CAMP_RUNNING, now_ms, NULL);
        hm_camp_tick(k, now_ms); /* an empty campaign completes at once */
        return 0;
    case HM_CAMP_CMD_PAUSE:
        if (k->state != HM_CAMP_RUNNING)
            FAIL("campaign '%s' is %s; only a running campaign pauses", k->c.name, st);
        set_state(k, HM_CAMP_PAUSED, now_ms, "paused by the operator");
        return 0;
    case HM_CAMP_CMD_RESUME: {
        if (k->state != HM_CAMP_PAUSED && k->state != HM_CAMP_HALTED)
            FAIL("campaign '%s' is %s; only a paused or halted campaign resumes", k->c.name, st);
        if (opts && !json_is_object(opts)) {
            snprintf(err, errlen, "the resume body must be a JSON object");
            return -EINVAL;
        }
        const char *key;
        json_t *v;
        json_object_foreach(opts, key, v)
        {
            if (strcmp(key, "max_failure_ratio") && strcmp(key, "retry_failed")) {
                snprintf(err, errlen, "unknown resume field '%s' (max_failure_ratio, "
                                      "retry_failed)", key);
                return -EINVAL;
            }
        }
        double ratio = k->c.max_failure_ratio;
        json_t *r = json_object_get(opts, "max_failure_ratio");
        if (r && parse_ratio(r, &ratio, err, errlen) < 0)
            return -EINVAL;
        json_t *rf = json_object_get(opts, "retry_failed");
        if (rf && !json_is_boolean(rf)) {
            snprintf(err, errlen, "'retry_failed' must be a boolean");
            return -EINVAL;
        }
        double old = k->c.max_failure_ratio;
        k->c.max_failure_ratio = ratio;
        uint32_t w = k->wave;
        if (!json_is_true(rf) && k->state == HM_CAMP_HALTED && hm_camp_over_threshold(k, w)) {
            k->c.max_failure_ratio = old;
            FAIL("wave %u still has %u failures of %u devices, over max_failure_ratio %g: "
                 "resume with a higher \"max_failure_ratio\" or \"retry_failed\": true",
                 w + 1, wave_failures(k, w), wave_size(k, w), old);
        }
        if (json_is_true(rf))
            for (uint32_t i = k->wave_start[w]; i < k->wave_start[w + 1]; i++)
                if (k->dev[i].state == HM_CD_FAILED || k->dev[i].state == HM_CD_TIMED_OUT)
                    hm_camp_set(k, i, HM_CD_PENDING, 0, now_ms);
        k->tokens_ms = now_ms;
        set_state(k, HM_CAMP_RUNNING, now_ms, NULL);
        k->dirty = true;
        return 0;
    }
    case HM_CAMP_CMD_CANCEL:
        if (k->state == HM_CAMP_COMPLETED || k->state == HM_CAMP_CANCELLED)
            FAIL("campaign '%s' is already %s", k->c.name, st);
        for (uint32_t i = 0; i < k->ndev; i++)
            if (k->dev[i].state == HM_CD_PENDING)
                hm_camp_set(k, i, HM_CD_CANCELLED, 0, now_ms);
        set_state(k, HM_CAMP_CANCELLED, now_ms, "cancelled by the operator");
        return 0;
    }
    snprintf(err, errlen, "unknown command");
    return -EINVAL;
fail:
    return -EBUSY;
}

bool hm_camp_tick(struct hm_camp *k, uint64_t now_ms)
{
    bool changed = false;
    /* timeouts: every device in progress, whatever the campaign's state */
    if (k->in_flight) {
        uint64_t lim = (uint64_t)k->c.timeout_s * 1000;
        for (uint32_t i = 0; i < k->ndev; i++) {
            struct hm_camp_dev *d = &k->dev[i];
            if (d->state == HM_CD_IN_PROGRESS && now_ms >= d->started_ms + lim) {
                hm_camp_set(k, i, HM_CD_TIMED_OUT, 0, now_ms);
                changed = true;
            }
        }
    }
    if (k->state != HM_CAMP_RUNNING)
        return changed;
    for (;;) {
        uint32_t w = k->wave;
        if (w >= k->nw) {
            set_state(k, HM_CAMP_COMPLETED, now_ms, NULL);
            return true;
        }
        if (hm_camp_over_threshold(k, w)) {
            char why[200];
            snprintf(why, sizeof(why),
                     "wave %u: %u failed or timed out of %u devices, over max_failure_ratio %g",
                     w + 1, wave_failures(k, w), wave_size(k, w), k->c.max_failure_ratio);
            set_state(k, HM_CAMP_HALTED, now_ms, why);
            return true;
        }
        if (k->next_wave_ms && now_ms < k->next_wave_ms)
            return changed;
        if (k->next_wave_ms) {
            k->next_wave_ms = 0;
            k->tokens_ms = now_ms;
            k->dirty = changed = true;
        }
        if (k->cnt[w][HM_CD_PENDING] || k->cnt[w][HM_CD_IN_PROGRESS])
            return changed;
        /* wave ended within its allowance: next one (after the pause) */
        k->wave = w + 1;
        k->dirty = changed = true;
        k->updated_ms = now_ms;
        if (k->wave < k->nw && k->c.pause_s) {
            k->next_wave_ms = now_ms + (uint64_t)k->c.pause_s * 1000;
            return true;
        }
    }
}

int64_t hm_camp_next(struct hm_camp *k, uint64_t now_ms)
{
    if (k->state != HM_CAMP_RUNNING || k->wave >= k->nw || k->next_wave_ms)
        return -1;
    if (now_ms > k->tokens_ms) {
        k->tokens += (double)(now_ms - k->tokens_ms) * k->c.cr_per_s / 1000.0;
        k->tokens_ms = now_ms;
    }
    double cap = k->c.cr_per_s < 1 ? 1.0 : (double)k->c.cr_per_s;
    if (k->tokens > cap)
        k->tokens = cap;
    if (k->tokens < 1.0)
        return -1;
    if (k->c.max_in_flight && k->in_flight >= k->c.max_in_flight)
        return -1;
    if (!k->cnt[k->wave][HM_CD_PENDING])
        return -1;
    for (uint32_t i = k->wave_start[k->wave]; i < k->wave_start[k->wave + 1]; i++)
        if (k->dev[i].state == HM_CD_PENDING)
            return i;
    return -1;
}

/* ---- JSON views ---- */

json_t *hm_camp_json(const struct hm_camp *k)
{
    json_t *waves = json_array();
    uint32_t tot[HM_CD__N] = {0};
    for (uint32_t w = 0; w < k->nw; w++) {
        json_t *o = json_pack("{s:I,s:I}", "wave", (json_int_t)w + 1, "size",
                              (json_int_t)wave_size(k, w));
        for (int s = 0; s < HM_CD__N; s++) {
            json_object_set_new(o, dstate_names[s], json_integer(k->cnt[w][s]));
            tot[s] += k->cnt[w][s];
        }
        json_array_append_new(waves, o);
    }
    json_t *t = json_pack("{s:I}", "devices", (json_int_t)k->ndev);
    for (int s = 0; s < HM_CD__N; s++)
        json_object_set_new(t, dstate_names[s], json_integer(tot[s]));
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:I,s:I,s:I,s:I}", "name", k->c.name,
                          "state", hm_camp_state_name(k->state), "reason", k->reason,
                          "wave", (json_int_t)(k->wave < k->nw ? k->wave + 1 : k->nw), "waves_total",
                          (json_int_t)k->nw, "totals", t, "waves", waves, "created_ms",
                          (json_int_t)k->created_ms, "started_ms", (json_int_t)k->started_ms,
                          "ended_ms", (json_int_t)k->ended_ms, "next_wave_ms",
                          (json_int_t)k->next_wave_ms);
    json_object_set_new(j, "definition", hm_camp_cfg_json(&k->c));
    return j;
}

json_t *hm_camp_dev_json(const struct hm_camp *k, uint32_t i)
{
    const struct hm_camp_dev *d = &k->dev[i];
    json_t *j = json_pack("{s:s,s:I,s:s}", "device", d->id, "wave", (json_int_t)d->wave + 1,
                          "state", hm_camp_dstate_name(d->state));
    if (d->task_seq)
        json_object_set_new(j, "task", json_integer((json_int_t)d->task_seq));
    if (d->fault)
        json_object_set_new(j, "fault_code", json_integer(d->fault));
    if (d->started_ms)
        json_object_set_new(j, "started_ms", json_integer((json_int_t)d->started_ms));
    if (d->ended_ms)
        json_object_set_new(j, "ended_ms", json_integer((json_int_t)d->ended_ms));
    return j;
}

/* ---- durable form ---- */

void hm_camp_record(const struct hm_camp *k, struct hm_buf *out)
{
    json_t *j = json_pack("{s:i,s:o,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "v", 1, "definition",
                          hm_camp_cfg_json(&k->c), "state", hm_camp_state_name(k->state),
                          "reason", k->reason, "wave", (json_int_t)k->wave, "next_wave_ms",
                          (json_int_t)k->next_wave_ms, "created_ms", (json_int_t)k->created_ms,
                          "started_ms", (json_int_t)k->started_ms, "ended_ms",
                          (json_int_t)k->ended_ms, "updated_ms", (json_int_t)k->updated_ms,
                          "ndev", (json_int_t)k->ndev);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    hm_buf_reset(out);
    hm_buf_append_str(out, s);
    free(s);
    json_decref(j);
}

static uint64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : 0;
}

struct hm_camp *hm_camp_restore(struct hm_slice rec, struct hm_camp_dev *devs, uint32_t n,
                                char *err, size_t errlen)
{
    struct hm_camp_cfg c;
    json_error_t je;
    json_t *j = json_loadb(rec.ptr, rec.len, 0, &je);
    if (!j || jint(j, "v") != 1) {
        snprintf(err, errlen, "campaign record does not parse");
        json_decref(j);
        return NULL;
    }
    if (hm_camp_cfg_parse(json_object_get(j, "definition"), &c, err, errlen) < 0) {
        json_decref(j);
        return NULL;
    }
    int st = state_of(json_string_value(json_object_get(j, "state")));
    if (st < 0 || jint(j, "ndev") != n) {
        snprintf(err, errlen, "campaign '%s': bad state or %u of %llu devices found", c.name, n,
                 (unsigned long long)jint(j, "ndev"));
        json_decref(c.selector);
        json_decref(j);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (devs[i].wave >= HM_CAMP_MAX_WAVES || devs[i].state >= HM_CD__N ||
            (i && devs[i].wave < devs[i - 1].wave)) {
            snprintf(err, errlen, "campaign '%s': device record %u out of order", c.name, i);
            json_decref(c.selector);
            json_decref(j);
            return NULL;
        }
    }
    struct hm_camp *k = hm_xcalloc(1, sizeof(*k));
    k->c = c;
    k->state = (uint8_t)st;
    snprintf(k->reason, sizeof(k->reason), "%s",
             json_string_value(json_object_get(j, "reason")) ? json_string_value(json_object_get(j, "reason")) : "");
    k->wave = (uint32_t)jint(j, "wave");
    k->next_wave_ms = jint(j, "next_wave_ms");
    k->created_ms = jint(j, "created_ms");
    k->started_ms = jint(j, "started_ms");
    k->ended_ms = jint(j, "ended_ms");
    k->updated_ms = jint(j, "updated_ms");
    k->ndev = n;
    k->dev = devs;
    wave_bounds(k);
    recount(k);
    json_decref(j);
    return k;
}

static void put_le(char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint64_t get_le(const char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return v;
}

#define DEV_HDR 34 /* ver, state, wave(2), fault(4), seq(8), started(8), ended(8), idlen(2) */

int hm_camp_dev_encode(const struct hm_camp_dev *d, char *out, size_t cap)
{
    size_t il = strlen(d->id);
    if (il > 0xffff || DEV_HDR + il > cap)
        return -E2BIG;
    out[0] = 1;
    out[1] = (char)d->state;
    put_le(out + 2, d->wave, 2);
    put_le(out + 4, d->fault, 4);
    put_le(out + 8, d->task_seq, 8);
    put_le(out + 16, d->started_ms, 8);
    put_le(out + 24, d->ended_ms, 8);
    put_le(out + 32, il, 2);
    memcpy(out + DEV_HDR, d->id, il);
    return (int)(DEV_HDR + il);
}

int hm_camp_dev_decode(struct hm_slice in, struct hm_camp_dev *d)
{
    memset(d, 0, sizeof(*d));
    if (in.len < 1)
        return HM_ECORRUPT;
    if (in.ptr[0] != 1)
        return HM_EVERSION;
    if (in.len < DEV_HDR || get_le(in.ptr + 32, 2) != in.len - DEV_HDR ||
        (unsigned char)in.ptr[1] >= HM_CD__N)
        return HM_ECORRUPT;
    d->state = (uint8_t)in.ptr[1];
    d->wave = (uint16_t)get_le(in.ptr + 2, 2);
    d->fault = (uint32_t)get_le(in.ptr + 4, 4);
    d->task_seq = get_le(in.ptr + 8, 8);
    d->started_ms = get_le(in.ptr + 16, 8);
    d->ended_ms = get_le(in.ptr + 24, 8);
    d->id = hm_xstrndup(in.ptr + DEV_HDR, in.len - DEV_HDR);
    return 0;
}
