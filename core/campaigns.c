/* Campaign runtime: control thread, persistence, API (see campaigns.h). */
#include "core/campaigns.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/acs_task.h"
#include "core/api_json.h"
#include "core/bug.h"
#include "core/campaign.h"
#include "core/connreq.h"
#include "core/files.h"
#include "core/log.h"
#include "core/profiles.h"
#include "core/shard.h"
#include "core/util.h"
#include "storage/record.h"

#define K_CAMP "camp/c/"
#define K_DEV "camp/d/"
#define K_TAGS "fleet/t/" /* core/fleet.c: a device's tags */
#define MAX_DISPATCH_PER_TICK 5000u
#define MAX_PAGE 1000

enum op { OP_CREATE, OP_CMD, OP_DELETE };

struct cmd {
    struct hm_shard_msg msg;
    struct hm_conn_ref ref;
    struct hm_shard *shard;
    struct cmd *next;
    enum op op;
    enum hm_camp_cmd camp_cmd;
    char name[HM_CAMP_NAME_MAX + 1];
    struct hm_camp_cfg cfg; /* OP_CREATE: parsed on the shard */
    json_t *body;           /* OP_CMD: resume options (may be NULL) */
    int http;
    json_t *answer;
};

struct rt {
    struct hm_camp *k;
    struct hm_buf args; /* the Download task's normalised JSON */
    uint8_t kind;
    bool args_ok;
};

struct hm_campaigns {
    struct hm_campaigns_opts o;
    struct hm_store_reader *rd;
    pthread_t thread;
    pthread_mutex_t mu; /* campaigns[] and their contents */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct cmd *q, **qtail;
    bool stop, started;
    struct rt *camps[HM_CAMP_MAX];
    unsigned n;
    struct hm_store_batch batch;
    /* counters (under mu) */
    uint64_t dispatched, halts, commit_failures, cr_sent, cr_retries, outcomes[HM_CD__N];
};

/* ---- store helpers (control thread) ---- */

static int key_camp(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, K_CAMP "%s", name);
    return n < 0 || (size_t)n >= cap ? -E2BIG : n;
}

static int key_dev(char *out, size_t cap, const char *name, uint32_t i)
{
    size_t nl = strlen(name);
    if (sizeof(K_DEV) - 1 + nl + 5 > cap)
        return -E2BIG;
    memcpy(out, K_DEV, sizeof(K_DEV) - 1);
    memcpy(out + sizeof(K_DEV) - 1, name, nl);
    char *p = out + sizeof(K_DEV) - 1 + nl;
    *p++ = '\0';
    p[0] = (char)(i >> 24);
    p[1] = (char)(i >> 16);
    p[2] = (char)(i >> 8);
    p[3] = (char)i;
    return (int)(sizeof(K_DEV) - 1 + nl + 5);
}

/* Submits c->batch, waits for its commit and empties it. Retries a full ring for up to 1 s. */
static int commit(struct hm_campaigns *c)
{
    if (c->batch.nops == 0)
        return 0;
    int r = hm_store_submit_wait(c->o.store, &c->batch, 1000);
    hm_store_batch_reset(&c->batch);
    return r;
}

/* Appends every dirty part of <k> to the batch. */
static int persist(struct hm_campaigns *c, struct hm_camp *k, bool all)
{
    char key[HM_CAMP_NAME_MAX + 16], val[HM_STORE_MAX_VAL];
    int r = 0;
    for (uint32_t i = 0; i < k->ndev && r == 0; i++) {
        struct hm_camp_dev *d = &k->dev[i];
        if (!d->dirty && !all)
            continue;
        int kl = key_dev(key, sizeof(key), k->c.name, i);
        int vl = hm_camp_dev_encode(d, val, sizeof(val));
        if (kl < 0 || vl < 0)
            return kl < 0 ? kl : vl;
        r = hm_store_batch_put(&c->batch, HM_DB_META, hm_slice(key, (size_t)kl),
                               hm_slice(val, (size_t)vl));
        d->dirty = 0;
    }
    if (r == 0 && (k->dirty || all)) {
        struct hm_buf b = {0};
        hm_camp_record(k, &b);
        int kl = key_camp(key, sizeof(key), k->c.name);
        r = kl < 0 ? kl : hm_store_batch_put(&c->batch, HM_DB_META, hm_slice(key, (size_t)kl),
                                             hm_slice(b.base, b.len));
        hm_buf_free(&b);
        k->dirty = false;
    }
    return r;
}

/* Resolves the campaign's file into a Download task (outside any snapshot of c->rd). */
static int resolve_task(struct hm_campaigns *c, struct rt *t, struct hm_camp_cfg *cfg,
                        char *err, size_t errlen)
{
    json_t *task = json_pack("{s:s,s:s}", "rpc", "Download", "file", cfg->file);
    int r = -EINVAL;
    if (!c->o.files) {
        snprintf(err, errlen, "no file server");
        goto out;
    }
    if (hm_files_task_resolve(c->o.files, c->rd, task, err, errlen) < 0)
        goto out;
    const char *ft = json_string_value(json_object_get(task, "file_type"));
    uint8_t type = ft && ft[0] >= '1' && ft[0] <= '9' && (ft[1] == ' ' || !ft[1]) ? (uint8_t)(ft[0] - '0') : 0;
    if (type != 1 && type != 3) {
        snprintf(err, errlen, "file '%s' has type '%s'; campaigns deliver \"1 Firmware Upgrade "
                              "Image\" or \"3 Vendor Configuration File\"", cfg->file, ft ? ft : "?");
        goto out;
    }
    if (cfg->file_type && cfg->file_type != type) {
        /* the campaign's type wins (the file may have been uploaded with another) */
        json_object_set_new(task, "file_type", json_string(hm_files_type_canon(cfg->file_type == 1 ? "1" : "3")));
        type = cfg->file_type;
    }
    if (type == 1 && !cfg->target_version[0]) {
        snprintf(err, errlen, "file '%s' is a firmware image: give 'target_version', the "
                              "SoftwareVersion devices report after the upgrade", cfg->file);
        goto out;
    }
    cfg->file_type = type;
    enum hm_task_kind kind;
    hm_buf_reset(&t->args);
    r = hm_task_validate(task, &kind, &t->args, err, errlen);
    if (r == 0) {
        t->kind = (uint8_t)kind;
        t->args_ok = true;
    }
out:
    json_decref(task);
    return r;
}

struct sel_ctx {
    struct hm_campaigns *c;
    struct hm_profile *sel;
    char **ids;
    uint32_t n, cap;
    int err;
};

static int sel_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct sel_ctx *s = arg;
    struct hm_dev_rec d;
    if (hm_rec_dev_decode(val, &d) < 0)
        return 0;
    if (d.reg_state == HM_REG_BLOCKED || d.reg_state == HM_REG_REDIRECTED)
        return 0;
    struct hm_slice tags = hm_slice("", 0);
    if (s->sel->ntags) {
        char tk[600];
        if (key.len + sizeof(K_TAGS) > sizeof(tk))
            return 0;
        memcpy(tk, K_TAGS, sizeof(K_TAGS) - 1);
        memcpy(tk + sizeof(K_TAGS) - 1, key.ptr, key.len);
        struct hm_slice tv;
        if (hm_store_get(s->c->rd, HM_DB_META, hm_slice(tk, sizeof(K_TAGS) - 1 + key.len), &tv) == 0)
            tags = tv;
    }
    if (!hm_profile_matches(s->sel, d.product_class, d.sw_version, tags, key))
        return 0;
    if (s->n == HM_CAMP_MAX_DEVICES) {
        s->err = -E2BIG;
        return 1;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ids = hm_xrealloc(s->ids, s->cap * sizeof(*s->ids));
    }
    s->ids[s->n++] = hm_xstrndup(key.ptr, key.len);
    return 0;
}

static struct rt *find(struct hm_campaigns *c, const char *name, unsigned *idx)
{
    for (unsigned i = 0; i < c->n; i++)
        if (!strcmp(c->camps[i]->k->c.name, name)) {
            if (idx)
                *idx = i;
            return c->camps[i];
        }
    return NULL;
}

static void rt_free(struct rt *t)
{
    if (!t)
        return;
    hm_camp_free(t->k);
    hm_buf_free(&t->args);
    free(t);
}

static json_t *err_json(const char *code, const char *msg)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

/* ---- commands (control thread) ---- */

static void do_create(struct hm_campaigns *c, struct cmd *m)
{
    char err[300];
    struct rt *t = hm_xcalloc(1, sizeof(*t));
    struct sel_ctx s = {c, NULL, NULL, 0, 0, 0};
    pthread_mutex_lock(&c->mu);
    bool dup = find(c, m->cfg.name, NULL) != NULL, full = c->n >= HM_CAMP_MAX;
    pthread_mutex_unlock(&c->mu);
    if (dup || full) {
        m->http = dup ? 409 : 507;
        if (dup)
            snprintf(err, sizeof(err), "campaign '%s' exists", m->cfg.name);
        else
            snprintf(err, sizeof(err), "too many campaigns (%d): delete ended ones", HM_CAMP_MAX);
        m->answer = err_json(dup ? "conflict" : "too_many", err);
        goto out;
    }
    if (resolve_task(c, t, &m->cfg, err, sizeof(err)) < 0) {
        m->http = 422;
        m->answer = err_json("invalid_campaign", err);
        goto out;
    }
    if (hm_selector_parse(m->cfg.selector, &s.sel, err, sizeof(err)) < 0) {
        m->http = 422;
        m->answer = err_json("invalid_campaign", err);
        goto out;
    }
    int r = hm_store_read_begin(c->rd);
    if (r == 0) {
        r = hm_store_scan(c->rd, HM_DB_DEVICES, hm_slice("", 0), hm_slice("", 0), sel_cb, &s);
        hm_store_read_end(c->rd);
    }
    if (r < 0 || s.err) {
        m->http = s.err ? 422 : 503;
        if (s.err)
            snprintf(err, sizeof(err), "the selector matches over %u devices", HM_CAMP_MAX_DEVICES);
        else
            snprintf(err, sizeof(err), "store: %s", hm_strerror(r));
        m->answer = err_json(s.err ? "invalid_campaign" : "store_error", err);
        goto out;
    }
    if (s.n == 0) {
        m->http = 422;
        m->answer = err_json("invalid_campaign", "the selector matches no device");
        goto out;
    }
    t->k = hm_camp_new(&m->cfg, s.ids, s.n, hm_now_ms());
    r = persist(c, t->k, true);
    if (r == 0)
        r = commit(c);
    else
        hm_store_batch_reset(&c->batch);
    if (r < 0) {
        m->http = r == -E2BIG ? 413 : 503;
        snprintf(err, sizeof(err), "cannot store the campaign: %s", hm_strerror(r));
        m->answer = err_json(r == -E2BIG ? "too_large" : "store_error", err);
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    c->camps[c->n++] = t;
    m->answer = hm_camp_json(t->k);
    pthread_mutex_unlock(&c->mu);
    hm_info("campaign created", "name=%s devices=%u waves=%u file=%s", t->k->c.name, t->k->ndev,
            t->k->nw, t->k->c.file);
    m->http = 201;
    t = NULL;
out:
    for (uint32_t i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
    hm_profile_put(s.sel);
    json_decref(m->cfg.selector);
    m->cfg.selector = NULL;
    rt_free(t);
}


/* A campaign device's task record, read in the current snapshot of c->rd. */
struct task_ref {
    char key[600];
    int kl;
    struct hm_task_rec rec; /* points into the snapshot */
};

/* 0, -ENOENT (no such task: withdrawn), or another negative error (bad key, unreadable). */
static int dev_task(struct hm_campaigns *c, const struct hm_camp_dev *d, struct task_ref *t)
{
    t->kl = hm_key_task(t->key, sizeof(t->key), hm_slice_cstr(d->id), d->task_seq);
    if (t->kl <= 0)
        return -EINVAL;
    struct hm_slice v;
    int r = hm_store_get(c->rd, HM_DB_TASKS, hm_slice(t->key, (size_t)t->kl), &v);
    if (r < 0)
        return r;
    return hm_rec_task_decode(v, &t->rec) < 0 ? -EBADMSG : 0;
}

static void do_cmd(struct hm_campaigns *c, struct cmd *m)
{
    char err[300];
    pthread_mutex_lock(&c->mu);
    unsigned idx = 0;
    struct rt *t = find(c, m->name, &idx);
    if (!t) {
        pthread_mutex_unlock(&c->mu);
        m->http = 404;
        snprintf(err, sizeof(err), "no campaign '%s'", m->name);
        m->answer = err_json("not_found", err);
        return;
    }
    struct hm_camp *k = t->k;
    if (m->op == OP_DELETE) {
        if (k->state != HM_CAMP_CREATED && k->state != HM_CAMP_COMPLETED &&
            k->state != HM_CAMP_CANCELLED) {
            pthread_mutex_unlock(&c->mu);
            m->http = 409;
            snprintf(err, sizeof(err), "campaign '%s' is %s: cancel it first", m->name,
                     hm_camp_state_name(k->state));
            m->answer = err_json("conflict", err);
            return;
        }
        char key[HM_CAMP_NAME_MAX + 16];
        int kl = key_camp(key, sizeof(key), m->name);
        int r = hm_store_batch_del(&c->batch, HM_DB_META, hm_slice(key, (size_t)kl));
        kl = key_dev(key, sizeof(key), m->name, 0);
        if (r == 0)
            r = hm_store_batch_del_prefix(&c->batch, HM_DB_META, hm_slice(key, (size_t)kl - 4));
        if (r == 0)
            r = commit(c);
        hm_store_batch_reset(&c->batch);
        if (r < 0) {
            pthread_mutex_unlock(&c->mu);
            m->http = 503;
            m->answer = err_json("store_error", hm_strerror(r));
            return;
        }
        c->camps[idx] = c->camps[--c->n];
        pthread_mutex_unlock(&c->mu);
        hm_info("campaign deleted", "name=%s", m->name);
        rt_free(t);
        m->http = 204;
        return;
    }
    uint64_t now = hm_now_ms();
    uint8_t before = k->state;
    int r = hm_camp_command(k, m->camp_cmd, m->body, now, err, sizeof(err));
    if (r < 0) {
        pthread_mutex_unlock(&c->mu);
        m->http = r == -EBUSY ? 409 : 422;
        m->answer = err_json(r == -EBUSY ? "conflict" : "invalid_request", err);
        return;
    }
    /* cancel: queued tasks of devices in progress are withdrawn (their download has not
     * begun); sent ones run their course and are still recorded */
    if (m->camp_cmd == HM_CAMP_CMD_CANCEL && hm_store_read_begin(c->rd) == 0) {
        for (uint32_t i = 0; i < k->ndev; i++) {
            struct hm_camp_dev *d = &k->dev[i];
            if (d->state != HM_CD_IN_PROGRESS)
                continue;
            struct task_ref tref;
            if (dev_task(c, d, &tref) == 0 && tref.rec.state == HM_TASK_QUEUED &&
                hm_store_batch_del(&c->batch, HM_DB_TASKS,
                                   hm_slice(tref.key, (size_t)tref.kl)) == 0)
                hm_camp_set(k, i, HM_CD_CANCELLED, 0, now);
        }
        hm_store_read_end(c->rd);
    }
    r = persist(c, k, false);
    if (r == 0)
        r = commit(c);
    hm_store_batch_reset(&c->batch);
    if (r < 0) {
        c->commit_failures++;
        pthread_mutex_unlock(&c->mu);
        m->http = 503;
        m->answer = err_json("store_error", hm_strerror(r));
        return;
    }
    m->answer = hm_camp_json(k);
    pthread_mutex_unlock(&c->mu);
    hm_info("campaign command", "name=%s from=%s to=%s", m->name, hm_camp_state_name(before),
            hm_camp_state_name(k->state));
    m->http = 200;
}

/* ---- the control loop ---- */

struct crq {
    char *id;
};

/* Reads the outcome of every device of <t> in progress (inside a snapshot). A device whose
 * task is still queued cr_retry_s after its last connection request is added to <crq>
 * (room for <room>) for another one. Returns the devices added. */
static uint32_t poll(struct hm_campaigns *c, struct rt *t, uint64_t now, struct crq *crq,
                     uint32_t room)
{
    uint32_t ncr = 0;
    struct hm_camp *k = t->k;
    /* repeated requests are paced too: at most one tick's worth of cr_per_s */
    uint32_t cap = (uint32_t)((uint64_t)k->c.cr_per_s * c->o.tick_ms / 1000) + 1;
    if (room > cap)
        room = cap;
    for (uint32_t i = 0; i < k->ndev && k->in_flight; i++) {
        struct hm_camp_dev *d = &k->dev[i];
        if (d->state != HM_CD_IN_PROGRESS)
            continue;
        struct hm_slice id = hm_slice_cstr(d->id);
        struct task_ref tref;
        int r = dev_task(c, d, &tref);
        if (r == -ENOENT) { /* withdrawn by an operator */
            hm_camp_set(k, i, HM_CD_FAILED, 0, now);
            c->outcomes[HM_CD_FAILED]++;
            continue;
        }
        if (r < 0)
            continue;
        struct hm_task_rec tr = tref.rec;
        struct hm_slice v;
        if (tr.state == HM_TASK_QUEUED) {
            uint64_t last = d->cr_ms ? d->cr_ms : d->started_ms;
            if (k->c.cr_retry_s && k->state != HM_CAMP_CANCELLED && ncr < room &&
                (!d->cr_ms || now >= last + (uint64_t)k->c.cr_retry_s * 1000)) {
                /* not picked up: the request was lost (device busy, listener full) or
                 * hemsd restarted after the commit; ask again */
                d->cr_ms = now;
                crq[ncr++].id = hm_xstrndup(d->id, strlen(d->id));
                c->cr_retries++;
            }
            continue;
        }
        if (tr.state == HM_TASK_FAILED) {
            hm_camp_set(k, i, HM_CD_FAILED, tr.fault_code ? tr.fault_code : 1, now);
            c->outcomes[HM_CD_FAILED]++;
        } else if (tr.state == HM_TASK_DONE) {
            if (k->c.file_type == 1) {
                /* firmware: success once the device reports the target version */
                struct hm_dev_rec dr;
                if (hm_store_get(c->rd, HM_DB_DEVICES, id, &v) < 0 ||
                    hm_rec_dev_decode(v, &dr) < 0 ||
                    !hm_slice_eq(dr.sw_version, hm_slice_cstr(k->c.target_version)))
                    continue;
            }
            hm_camp_set(k, i, HM_CD_SUCCEEDED, 0, now);
            c->outcomes[HM_CD_SUCCEEDED]++;
        }
    }
    return ncr;
}

static uint32_t dispatch(struct hm_campaigns *c, struct rt *t, uint64_t now, struct crq *out,
                         uint32_t room)
{
    struct hm_camp *k = t->k;
    uint32_t n = 0;
    if (!t->args_ok)
        return 0;
    int64_t i;
    while (n < room && (i = hm_camp_next(k, now)) >= 0) {
        struct hm_camp_dev *d = &k->dev[i];
        uint64_t seq = hm_store_next_seq(c->o.store);
        struct hm_task_rec tr = {.kind = t->kind, .state = HM_TASK_QUEUED, .created_ms = now,
                                 .updated_ms = now,
                                 .args = hm_slice(t->args.base, t->args.len)};
        if (hm_task_put(&c->batch, hm_slice_cstr(d->id), seq, &tr) < 0) {
            hm_camp_set(k, (uint32_t)i, HM_CD_FAILED, 0, now); /* unencodable: never retried */
            continue;
        }
        hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, now);
        d->task_seq = seq;
        d->cr_ms = now;
        out[n++].id = hm_xstrndup(d->id, strlen(d->id));
    }
    c->dispatched += n;
    return n;
}

static void send_crs(struct hm_campaigns *c, struct crq *q, uint32_t n)
{
    if (!c->o.connreq || n == 0 || hm_store_read_begin(c->rd) < 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        struct hm_slice v;
        struct hm_dev_rec d;
        struct hm_slice id = hm_slice_cstr(q[i].id);
        if (hm_store_get(c->rd, HM_DB_DEVICES, id, &v) == 0 && hm_rec_dev_decode(v, &d) == 0 &&
            d.cr_url.len &&
            hm_connreq_request(c->o.connreq, id, d.cr_url, d.cr_user, d.cr_secret,
                               d.cr_secret_is_ha1) == 0)
            c->cr_sent++;
    }
    hm_store_read_end(c->rd);
}

static void step(struct hm_campaigns *c)
{
    static struct crq crq[MAX_DISPATCH_PER_TICK];
    uint32_t ncr = 0;
    uint64_t now = hm_now_ms();
    pthread_mutex_lock(&c->mu);
    bool snap = false;
    for (unsigned j = 0; j < c->n; j++) {
        struct rt *t = c->camps[j];
        struct hm_camp *k = t->k;
        /* cancelled ones too: downloads already sent run their course and are recorded */
        if (k->state == HM_CAMP_COMPLETED || k->state == HM_CAMP_CREATED)
            continue;
        if (k->in_flight) {
            if (!snap && hm_store_read_begin(c->rd) == 0)
                snap = true;
            if (snap)
                ncr += poll(c, t, now, crq + ncr, MAX_DISPATCH_PER_TICK - ncr);
        }
    }
    if (snap)
        hm_store_read_end(c->rd);
    for (unsigned j = 0; j < c->n; j++) {
        struct rt *t = c->camps[j];
        struct hm_camp *k = t->k;
        uint8_t before = k->state;
        hm_camp_tick(k, now);
        if (k->state == HM_CAMP_RUNNING && !t->args_ok) {
            /* the file could not be resolved at start-up (deleted since?): halt, visibly */
            k->state = HM_CAMP_HALTED;
            snprintf(k->reason, sizeof(k->reason), "file '%s' cannot be delivered (re-upload "
                     "it, then resume)", k->c.file);
            k->dirty = true;
        }
        if (k->state != before) {
            if (k->state == HM_CAMP_HALTED)
                c->halts++;
            hm_info("campaign state", "name=%s from=%s to=%s reason=\"%s\"", k->c.name,
                    hm_camp_state_name(before), hm_camp_state_name(k->state), k->reason);
        }
        ncr += dispatch(c, t, now, crq + ncr, MAX_DISPATCH_PER_TICK - ncr);
        if (persist(c, k, false) < 0)
            c->commit_failures++;
    }
    int r = commit(c);
    if (r < 0)
        c->commit_failures++;
    pthread_mutex_unlock(&c->mu);
    if (r < 0) {
        /* nothing of this tick is stored: the devices just marked in progress have no task
         * and time out; everything else is rewritten at the next change */
        HM_LOG_RL(HM_LOG_ERR, "campaign commit failed", "err=\"%s\"", hm_strerror(r));
    } else {
        send_crs(c, crq, ncr);
    }
    for (uint32_t i = 0; i < ncr; i++)
        free(crq[i].id);
}

static void answer_msg(struct hm_shard *s, struct hm_shard_msg *msg)
{
    struct cmd *m = HM_CONTAINER_OF(msg, struct cmd, msg);
    struct hm_buf *out, *hdrs;
    (void)s;
    if (hm_httpd_deferred_bufs(m->ref, &out, &hdrs)) {
        if (m->answer) {
            char *str = json_dumps(m->answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
            hm_buf_append_str(out, str);
            hm_buf_append_lit(out, "\n");
            free(str);
        }
        if (m->http == 201 && m->answer)
            hm_buf_printf(hdrs, "Location: /api/v1/campaigns/%s\r\n",
                          json_string_value(json_object_get(m->answer, "name")));
        hm_httpd_finish(m->ref, m->http, m->answer ? HM_API_JSON_CTYPE : NULL, false);
    }
    json_decref(m->answer);
    json_decref(m->body);
    json_decref(m->cfg.selector);
    free(m);
}

static void *control(void *arg)
{
    struct hm_campaigns *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->qmu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)c->o.tick_ms * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!c->q && !c->stop)
            if (pthread_cond_timedwait(&c->qcv, &c->qmu, &ts) == ETIMEDOUT)
                break;
        struct cmd *q = c->q;
        c->q = NULL;
        c->qtail = &c->q;
        bool stop = c->stop;
        pthread_mutex_unlock(&c->qmu);
        while (q) {
            struct cmd *m = q;
            q = q->next;
            if (stop) { /* the shards are gone: nobody to answer */
                json_decref(m->body);
                json_decref(m->cfg.selector);
                free(m);
                continue;
            }
            if (m->op == OP_CREATE)
                do_create(c, m);
            else
                do_cmd(c, m);
            hm_shard_post(m->shard, &m->msg);
        }
        if (stop)
            break;
        step(c);
    }
    return NULL;
}

/* ---- load ---- */

struct load_ctx {
    char **names;
    char **recs;
    size_t *lens;
    unsigned n;
};

static int load_camp_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct load_ctx *l = arg;
    if (l->n == HM_CAMP_MAX)
        return 1;
    l->names[l->n] = hm_xstrndup(key.ptr + sizeof(K_CAMP) - 1, key.len - (sizeof(K_CAMP) - 1));
    l->recs[l->n] = hm_xstrndup(val.ptr, val.len);
    l->lens[l->n] = val.len;
    l->n++;
    return 0;
}

struct devs_ctx {
    struct hm_camp_dev *d;
    uint32_t n, cap;
    int err;
};

static int load_dev_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct devs_ctx *s = arg;
    (void)key;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->d = hm_xrealloc(s->d, s->cap * sizeof(*s->d));
    }
    int r = hm_camp_dev_decode(val, &s->d[s->n]);
    if (r < 0) {
        s->err = r;
        return 1;
    }
    s->n++;
    return 0;
}

static int load(struct hm_campaigns *c, char *err, size_t errlen)
{
    char *names[HM_CAMP_MAX], *recs[HM_CAMP_MAX];
    size_t lens[HM_CAMP_MAX];
    struct load_ctx l = {names, recs, lens, 0};
    int r = hm_store_read_begin(c->rd);
    if (r < 0) {
        snprintf(err, errlen, "store: %s", hm_strerror(r));
        return r;
    }
    r = hm_store_scan(c->rd, HM_DB_META, hm_slice_cstr(K_CAMP), hm_slice("", 0), load_camp_cb, &l);
    hm_store_read_end(c->rd);
    for (unsigned i = 0; i < l.n && r >= 0; i++) {
        struct devs_ctx s = {0};
        char key[HM_CAMP_NAME_MAX + 16];
        int kl = key_dev(key, sizeof(key), names[i], 0);
        r = kl < 0 ? kl : hm_store_read_begin(c->rd);
        if (r == 0) {
            r = hm_store_scan(c->rd, HM_DB_META, hm_slice(key, (size_t)kl - 4), hm_slice("", 0),
                              load_dev_cb, &s);
            hm_store_read_end(c->rd);
        }
        char why[300] = "";
        struct hm_camp *k = NULL;
        if (r >= 0 && s.err == 0)
            k = hm_camp_restore(hm_slice(recs[i], lens[i]), s.d, s.n, why, sizeof(why));
        if (!k) {
            hm_err("campaign not loaded (left in the store)", "name=%s cause=\"%s\"", names[i],
                   s.err ? hm_strerror(s.err) : r < 0 ? hm_strerror(r) : why);
            for (uint32_t j = 0; j < s.n; j++)
                free(s.d[j].id);
            free(s.d);
            r = 0;
            continue;
        }
        struct rt *t = hm_xcalloc(1, sizeof(*t));
        t->k = k;
        if (k->state != HM_CAMP_COMPLETED && k->state != HM_CAMP_CANCELLED &&
            resolve_task(c, t, &k->c, why, sizeof(why)) < 0)
            hm_warn("campaign file cannot be resolved", "name=%s cause=\"%s\"", k->c.name, why);
        k->tokens_ms = hm_now_ms();
        c->camps[c->n++] = t;
        hm_info("campaign loaded", "name=%s state=%s wave=%u devices=%u in_progress=%u",
                k->c.name, hm_camp_state_name(k->state), k->wave + 1, k->ndev, k->in_flight);
    }
    for (unsigned i = 0; i < l.n; i++) {
        free(names[i]);
        free(recs[i]);
    }
    if (r < 0)
        snprintf(err, errlen, "loading campaigns: %s", hm_strerror(r));
    return r < 0 ? r : 0;
}

int hm_campaigns_create(const struct hm_campaigns_opts *o, struct hm_campaigns **out, char *err,
                        size_t errlen)
{
    struct hm_campaigns *c = hm_xcalloc(1, sizeof(*c));
    c->o = *o;
    if (!c->o.tick_ms)
        c->o.tick_ms = 200;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->qmu, NULL);
    pthread_cond_init(&c->qcv, NULL);
    c->qtail = &c->q;
    hm_store_batch_init(&c->batch);
    int r = hm_store_reader_open(o->store, &c->rd);
    if (r < 0) {
        snprintf(err, errlen, "store reader: %s", hm_strerror(r));
        goto fail;
    }
    r = load(c, err, errlen);
    if (r < 0)
        goto fail;
    r = pthread_create(&c->thread, NULL, control, c);
    if (r != 0) {
        r = -r;
        snprintf(err, errlen, "thread: %s", hm_strerror(r));
        goto fail;
    }
    c->started = true;
    *out = c;
    return 0;
fail:
    hm_campaigns_destroy(c);
    *out = NULL;
    return r;
}

void hm_campaigns_destroy(struct hm_campaigns *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->qmu);
        c->stop = true;
        pthread_cond_signal(&c->qcv);
        pthread_mutex_unlock(&c->qmu);
        pthread_join(c->thread, NULL);
    }
    for (unsigned i = 0; i < c->n; i++)
        rt_free(c->camps[i]);
    if (c->rd)
        hm_store_reader_close(c->rd);
    hm_store_batch_fini(&c->batch);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->qmu);
    pthread_cond_destroy(&c->qcv);
    free(c);
}

/* ---- API (shard thread) ---- */

static int enqueue(struct hm_http_exchange *x, struct hm_campaigns *c, struct cmd *m)
{
    m->msg.fn = answer_msg;
    m->ref = x->ref;
    m->shard = x->shard;
    pthread_mutex_lock(&c->qmu);
    *c->qtail = m;
    c->qtail = &m->next;
    pthread_cond_signal(&c->qcv);
    pthread_mutex_unlock(&c->qmu);
    return HM_HTTP_DEFER;
}

static json_t *parse_body(struct hm_http_exchange *x, bool optional, int *st)
{
    if (optional && x->body_len == 0)
        return NULL;
    json_error_t je;
    json_t *in = json_loadb(x->body ? x->body : "", x->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!in)
        *st = hm_api_error(x, 400, "bad_json", "line %d column %d: %s", je.line, je.column,
                           je.text);
    return in;
}

static int list(struct hm_http_exchange *x, struct hm_campaigns *c)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&c->mu);
    for (unsigned i = 0; i < c->n; i++) {
        json_t *j = hm_camp_json(c->camps[i]->k);
        json_object_del(j, "waves");
        json_array_append_new(arr, j);
    }
    pthread_mutex_unlock(&c->mu);
    return hm_api_send_json(x, 200, json_pack("{s:o}", "campaigns", arr));
}

static int devices(struct hm_http_exchange *x, struct hm_campaigns *c, const char *name)
{
    char buf[32];
    int state = -1;
    long wave = 0, offset = 0, limit = 100;
    int r = hm_api_query(x->req->query, "state", buf, sizeof(buf));
    if (r == -EINVAL)
        return hm_api_error(x, 400, "bad_request", "bad 'state' parameter");
    if (r >= 0) {
        for (int s = 0; s < HM_CD__N; s++)
            if (!strcmp(buf, hm_camp_dstate_name((uint8_t)s)))
                state = s;
        if (state < 0)
            return hm_api_error(x, 400, "bad_request",
                                "'state' must be pending, in_progress, succeeded, failed, "
                                "timed_out or cancelled");
    }
    static const char *const nums[] = {"wave", "offset", "limit"};
    long *vals[] = {&wave, &offset, &limit};
    for (int i = 0; i < 3; i++) {
        r = hm_api_query(x->req->query, nums[i], buf, sizeof(buf));
        if (r == -ENOENT)
            continue;
        char *end;
        long v = r > 0 ? strtol(buf, &end, 10) : -1;
        if (r <= 0 || *end || v < 0 || v > 100000000 || (i == 2 && (v < 1 || v > MAX_PAGE)))
            return hm_api_error(x, 400, "bad_request", "'%s' must be a number%s", nums[i],
                                i == 2 ? " in 1..1000" : " >= 0");
        *vals[i] = v;
    }
    pthread_mutex_lock(&c->mu);
    struct rt *t = find(c, name, NULL);
    if (!t) {
        pthread_mutex_unlock(&c->mu);
        return hm_api_error(x, 404, "not_found", "no campaign '%s'", name);
    }
    struct hm_camp *k = t->k;
    json_t *arr = json_array();
    long total = 0;
    for (uint32_t i = 0; i < k->ndev; i++) {
        const struct hm_camp_dev *d = &k->dev[i];
        if ((state >= 0 && d->state != state) || (wave && d->wave + 1 != wave))
            continue;
        if (total >= offset && total < offset + limit)
            json_array_append_new(arr, hm_camp_dev_json(k, i));
        total++;
    }
    pthread_mutex_unlock(&c->mu);
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:o}", "campaign", name, "total", (json_int_t)total,
                          "offset", (json_int_t)offset, "limit", (json_int_t)limit, "devices",
                          arr);
    if (offset + limit < total)
        json_object_set_new(j, "next_offset", json_integer(offset + limit));
    return hm_api_send_json(x, 200, j);
}

int hm_campaigns_api(struct hm_http_exchange *x, struct hm_campaigns *c, struct hm_slice sub)
{
    enum hm_http_method m = x->req->method;
    int st = 0;
    if (hm_slice_eq_lit(sub, "campaigns")) {
        if (m == HM_HTTP_GET)
            return list(x, c);
        if (m != HM_HTTP_POST)
            return hm_api_error(x, 405, "method_not_allowed", "use GET or POST");
        json_t *in = parse_body(x, false, &st);
        if (!in)
            return st;
        struct cmd *q = hm_xcalloc(1, sizeof(*q));
        char err[300];
        int r = hm_camp_cfg_parse(in, &q->cfg, err, sizeof(err));
        json_decref(in);
        if (r < 0) {
            free(q);
            return hm_api_error(x, 422, "invalid_campaign", "%s", err);
        }
        q->op = OP_CREATE;
        return enqueue(x, c, q);
    }
    /* campaigns/{name}[/verb] */
    if (sub.len <= 10)
        return hm_api_error(x, 404, "not_found", "no such campaign");
    struct hm_slice rest = hm_slice(sub.ptr + 10, sub.len - 10);
    const char *slash = memchr(rest.ptr, '/', rest.len);
    size_t nl = slash ? (size_t)(slash - rest.ptr) : rest.len;
    char name[HM_CAMP_NAME_MAX + 1];
    int dl = nl && nl < 3 * sizeof(name) ? hm_api_pct_decode(hm_slice(rest.ptr, nl), name, sizeof(name) - 1) : -EINVAL;
    if (dl <= 0)
        return hm_api_error(x, 404, "not_found", "no such campaign");
    name[dl] = '\0';
    struct hm_slice verb = slash ? hm_slice(slash + 1, rest.len - nl - 1) : hm_slice("", 0);
    if (!slash) {
        if (m == HM_HTTP_GET) {
            pthread_mutex_lock(&c->mu);
            struct rt *t = find(c, name, NULL);
            json_t *j = t ? hm_camp_json(t->k) : NULL;
            pthread_mutex_unlock(&c->mu);
            if (!j)
                return hm_api_error(x, 404, "not_found", "no campaign '%s'", name);
            return hm_api_send_json(x, 200, j);
        }
        if (m != HM_HTTP_DELETE)
            return hm_api_error(x, 405, "method_not_allowed", "use GET or DELETE");
        struct cmd *q = hm_xcalloc(1, sizeof(*q));
        q->op = OP_DELETE;
        memcpy(q->name, name, (size_t)dl + 1);
        return enqueue(x, c, q);
    }
    if (hm_slice_eq_lit(verb, "devices")) {
        if (m != HM_HTTP_GET)
            return hm_api_error(x, 405, "method_not_allowed", "use GET");
        return devices(x, c, name);
    }
    static const struct {
        const char *verb;
        enum hm_camp_cmd cmd;
    } verbs[] = {{"start", HM_CAMP_CMD_START},
                 {"pause", HM_CAMP_CMD_PAUSE},
                 {"resume", HM_CAMP_CMD_RESUME},
                 {"cancel", HM_CAMP_CMD_CANCEL}};
    for (size_t i = 0; i < HM_ARRAY_SIZE(verbs); i++) {
        if (!hm_slice_eq(verb, hm_slice_cstr(verbs[i].verb)))
            continue;
        if (m != HM_HTTP_POST)
            return hm_api_error(x, 405, "method_not_allowed", "use POST");
        json_t *body = parse_body(x, true, &st);
        if (!body && st)
            return st;
        if (body && verbs[i].cmd != HM_CAMP_CMD_RESUME && !(json_is_object(body) && json_object_size(body) == 0)) {
            json_decref(body);
            return hm_api_error(x, 422, "invalid_request", "%s takes no body", verbs[i].verb);
        }
        struct cmd *q = hm_xcalloc(1, sizeof(*q));
        q->op = OP_CMD;
        q->camp_cmd = verbs[i].cmd;
        q->body = body;
        memcpy(q->name, name, (size_t)dl + 1);
        return enqueue(x, c, q);
    }
    return hm_api_error(x, 404, "not_found", "no campaign resource '%.*s' (devices, start, "
                                             "pause, resume, cancel)", (int)HM_MIN(verb.len, 64), verb.ptr);
}

/* ---- metrics ---- */

void hm_campaigns_render_metrics(struct hm_buf *o, void *arg)
{
    struct hm_campaigns *c = arg;
    unsigned by_state[HM_CAMP__NSTATES] = {0};
    pthread_mutex_lock(&c->mu);
    hm_buf_append_lit(o, "# HELP hems_campaign_devices Devices of each campaign by outcome.\n"
                         "# TYPE hems_campaign_devices gauge\n");
    for (unsigned i = 0; i < c->n; i++) {
        const struct hm_camp *k = c->camps[i]->k;
        by_state[k->state < HM_CAMP__NSTATES ? k->state : 0]++;
        for (int s = 0; s < HM_CD__N; s++) {
            uint64_t n = 0;
            for (uint32_t w = 0; w < k->nw; w++)
                n += k->cnt[w][s];
            hm_buf_printf(o, "hems_campaign_devices{campaign=\"%s\",state=\"%s\"} %llu\n",
                          k->c.name, hm_camp_dstate_name((uint8_t)s), (unsigned long long)n);
        }
    }
    hm_buf_append_lit(o, "# HELP hems_campaign_wave Current wave (1-based) of each campaign.\n"
                         "# TYPE hems_campaign_wave gauge\n");
    for (unsigned i = 0; i < c->n; i++) {
        const struct hm_camp *k = c->camps[i]->k;
        hm_buf_printf(o, "hems_campaign_wave{campaign=\"%s\"} %u\n", k->c.name,
                      k->wave < k->nw ? k->wave + 1 : k->nw);
    }
    hm_buf_append_lit(o, "# HELP hems_campaigns Campaigns by state.\n# TYPE hems_campaigns gauge\n");
    for (int s = 0; s < HM_CAMP__NSTATES; s++)
        hm_buf_printf(o, "hems_campaigns{state=\"%s\"} %u\n", hm_camp_state_name((uint8_t)s),
                      by_state[s]);
    hm_buf_printf(o,
                  "# HELP hems_campaign_dispatched_total Download tasks queued by campaigns.\n"
                  "# TYPE hems_campaign_dispatched_total counter\n"
                  "hems_campaign_dispatched_total %llu\n"
                  "# HELP hems_campaign_connreq_total Connection requests sent by campaigns.\n"
                  "# TYPE hems_campaign_connreq_total counter\n"
                  "hems_campaign_connreq_total %llu\n"
                  "# HELP hems_campaign_connreq_retries_total Connection requests repeated for "
                  "tasks still queued after cr_retry_s.\n"
                  "# TYPE hems_campaign_connreq_retries_total counter\n"
                  "hems_campaign_connreq_retries_total %llu\n"
                  "# HELP hems_campaign_halts_total Automatic halts on the failure threshold.\n"
                  "# TYPE hems_campaign_halts_total counter\n"
                  "hems_campaign_halts_total %llu\n"
                  "# HELP hems_campaign_commit_failures_total Campaign store commits that failed.\n"
                  "# TYPE hems_campaign_commit_failures_total counter\n"
                  "hems_campaign_commit_failures_total %llu\n",
                  (unsigned long long)c->dispatched, (unsigned long long)c->cr_sent,
                  (unsigned long long)c->cr_retries, (unsigned long long)c->halts, (unsigned long long)c->commit_failures);
    pthread_mutex_unlock(&c->mu);
}
