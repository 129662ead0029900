#include "core/admission.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/bug.h"
#include "core/util.h"

#define EWMA_SHIFT 3 /* alpha = 1/8 */
#define HIST 16 /* periods of history: the long window (1.6 s); the short one is
                   HM_ADM_SHORT_PERIODS */

/*
 * Per-shard state. Every field is written by the shard's thread only; the _Atomic ones are
 * also read (relaxed) by the metrics renderer, so they are stored with relaxed atomics too.
 */
struct adm_shard {
    _Atomic uint32_t inflight;
    _Atomic uint32_t pending; /* connections the gate let through, before their first request */
    _Atomic bool congested;
    _Atomic double rate; /* sessions/s; HM_ADM_UNLIMITED until the first congestion */
    _Atomic uint64_t commit_ewma_us, session_ewma_us, lag_ewma_us, accept_ewma_us;
    _Atomic uint64_t admitted;
    _Atomic uint64_t deferred; /* accept waits with connections queued (accept pacing) */
    uint64_t paced_at;          /* us; last accept pacing call (0: never) */
    uint32_t pace_looks, pace_fill; /* the period's queue samples; sum of thousandths full */
    uint32_t pace_keep;         /* thousandths of SYNs kept while paced (0: not paced) */
    _Atomic uint32_t syn_drop; /* thousandths of SYNs to drop (hm_admission_syn_drop) */
    _Atomic uint64_t shed[HM_ADM__COUNT];
    double tokens;        /* token bucket, at most burst() */
    uint64_t last_refill; /* us */
    uint64_t next_adjust; /* us; end of the current period */
    uint64_t period_start, period_admitted, period_done;
    uint64_t period_gated;  /* connections seen by the accept gate in the period */
    uint64_t period_passed; /* of which it let through */
    /* the last HIST periods (admitted, completed, length): rates over a short and a long
     * window instead of one 100 ms period, whose completions come in bursts (group commit,
     * CPU quota) and swung 0..8x the mean */
    struct {
        uint32_t admitted, done;
        uint32_t span_us;
        uint32_t gated;    /* connections the accept gate saw */
        uint32_t passed;   /* of which it let through */
        uint32_t syn_keep; /* thousandths of SYNs the filter let through then */
    } hist[HIST];
    unsigned hist_head;
    uint64_t last_cut;    /* us; when the rate was last cut */
    uint64_t cut_pressure; /* pressure() at that cut */
    bool period_limited; /* the bucket refused a session in this period */
    uint64_t rng;
} __attribute__((aligned(HM_CACHELINE)));

struct hm_admission {
    struct hm_admission_cfg cfg;
    unsigned n;
    struct adm_shard *sh;
};

static const char *const reason_names[HM_ADM__COUNT] = {
    "admit",
#define HM_ADM_NAME(e, s) s,
    HM_ADM_REASONS(HM_ADM_NAME)
#undef HM_ADM_NAME
};

#define LD(p) atomic_load_explicit((p), memory_order_relaxed)
#define ST(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

struct hm_admission *hm_admission_create(const struct hm_admission_cfg *cfg, unsigned nshards)
{
    struct hm_admission *a = hm_xcalloc(1, sizeof(*a));
    a->cfg = *cfg;
    struct hm_admission_cfg *c = &a->cfg;
    if (!c->max_inflight)
        c->max_inflight = 4096;
    if (!c->min_rate)
        c->min_rate = 20;
    if (c->max_rate && c->min_rate > c->max_rate)
        c->min_rate = c->max_rate;
    if (!c->target_commit_ms)
        c->target_commit_ms = 500;
    if (!c->target_lag_ms)
        c->target_lag_ms = 250;
    if (!c->max_store_queue)
        c->max_store_queue = 2048;
    if (!c->retry_after_s)
        c->retry_after_s = 10;
    a->n = nshards ? nshards : 1;
    a->sh = aligned_alloc(HM_CACHELINE, sizeof(*a->sh) * a->n);
    if (!a->sh)
        abort();
    memset(a->sh, 0, sizeof(*a->sh) * a->n);
    for (unsigned i = 0; i < a->n; i++) {
        struct adm_shard *s = &a->sh[i];
        ST(&s->rate, c->max_rate ? (double)c->max_rate : HM_ADM_UNLIMITED);
        if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || !s->rng)
            s->rng = 0x9e3779b97f4a7c15ull + i;
    }
    return a;
}

void hm_admission_destroy(struct hm_admission *a)
{
    if (!a)
        return;
    free(a->sh);
    free(a);
}

const struct hm_admission_cfg *hm_admission_config(const struct hm_admission *a)
{
    return &a->cfg;
}

static struct adm_shard *shard_of(const struct hm_admission *a, unsigned shard)
{
    return &a->sh[shard < a->n ? shard : shard % a->n];
}

static uint64_t ewma(uint64_t old, uint64_t sample)
{
    /* old + (sample - old) / 8, in unsigned arithmetic; from 0, so one slow first sample
     * (a cold cache, the first fsync of a new file) weighs 1/8 like any other */
    return sample >= old ? old + ((sample - old) >> EWMA_SHIFT)
                         : old - ((old - sample) >> EWMA_SHIFT);
}

/* The congestion signal against its target, in thousandths (1000: at target). */
static uint64_t pressure(const struct hm_admission *a, const struct adm_shard *s)
{
    uint64_t p = LD(&s->commit_ewma_us) / a->cfg.target_commit_ms;
    p = HM_MAX(p, LD(&s->lag_ewma_us) / a->cfg.target_lag_ms);
    p = HM_MAX(p, LD(&s->accept_ewma_us) / a->cfg.target_lag_ms);
    if (a->cfg.target_session_ms)
        p = HM_MAX(p, LD(&s->session_ewma_us) / a->cfg.target_session_ms);
    return p;
}

/* Sums over the last <n> periods of the history. */
struct win {
    uint64_t admitted, done, gated, passed, span_us;
    double kept_us; /* sum of span x share of SYNs the filter let through */
};

static struct win window(const struct adm_shard *s, unsigned n)
{
    struct win w = {0};
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (s->hist_head + HIST - 1 - i) % HIST;
        w.admitted += s->hist[k].admitted;
        w.done += s->hist[k].done;
        w.gated += s->hist[k].gated;
        w.passed += s->hist[k].passed;
        w.span_us += s->hist[k].span_us;
        w.kept_us += (double)s->hist[k].span_us * s->hist[k].syn_keep / 1000.0;
    }
    return w;
}

static double per_s(uint64_t count, uint64_t span_us)
{
    return span_us ? (double)count * 1e6 / (double)span_us : 0;
}

/*
 * The share of SYNs to drop in the kernel (hm_admission_syn_drop()): while the gate refuses
 * connections (the rate, or the in-flight cap, whichever binds), let about 5/4 of what it
 * lets through reach it, so the controller keeps seeing the demand. What arrives is the
 * connections the gate saw over the short window <w>, each period's divided by the share
 * the filter let through then. A window, not one period: at a low rate a period holds too
 * few connections to measure.
 */
static unsigned syn_drop(const struct hm_admission *a, const struct win *w, double rate)
{
    if (!a->cfg.enabled || !a->cfg.syn_shed)
        return 0;
    if (w->gated < HM_ADM_MIN_EVIDENCE || w->passed >= w->gated || w->kept_us <= 0)
        return 0; /* nothing refused (or too few to tell) */
    double arriving = (double)w->gated * 1e6 / w->kept_us;
    /* what the gate let through, or the rate when it is finite and higher: accepts come in
     * bursts (the shard drains the accept queue after a stall) and the bucket, one period
     * deep, refuses part of a burst that the rate would allow over the window */
    double through = per_s(w->passed, w->span_us);
    if (rate < HM_ADM_UNLIMITED)
        through = HM_MAX(through, rate);
    double want = through * 5 / 4;
    if (arriving <= want)
        return 0;
    return (unsigned)HM_MIN(1000.0 * (1.0 - want / arriving), HM_ADM_SYN_DROP_MAX);
}

/* The SYN drop share while the shard's listeners are paced: follows the queue's fill over
 * the period (hm_admission_accept_wait()). */
static unsigned paced_syn_drop(const struct hm_admission *a, struct adm_shard *s)
{
    uint32_t keep = s->pace_keep ? s->pace_keep : 1000;
    if (s->pace_looks) {
        uint32_t fill = s->pace_fill / s->pace_looks;
        if (fill > 750)
            keep = keep * 3 / 4;
        else if (fill < 250)
            keep = HM_MIN(keep * 9 / 8 + 10, 1000u);
    }
    s->pace_looks = s->pace_fill = 0;
    s->pace_keep = HM_MAX(keep, 1000 - HM_ADM_SYN_DROP_MAX);
    return a->cfg.enabled && a->cfg.syn_shed ? 1000 - s->pace_keep : 0;
}

/* End of a period: congestion state (with hysteresis) and the step of the rate. */
static void adjust(struct hm_admission *a, struct adm_shard *s, uint64_t now_us)
{
    if (now_us < s->next_adjust)
        return;
    /* the first period starts at the first call (period_start 0 is no time) */
    uint64_t span = s->period_start ? now_us - s->period_start : 0;
    s->hist[s->hist_head].admitted = (uint32_t)HM_MIN(s->period_admitted, UINT32_MAX);
    s->hist[s->hist_head].done = (uint32_t)HM_MIN(s->period_done, UINT32_MAX);
    s->hist[s->hist_head].span_us = (uint32_t)HM_MIN(span, UINT32_MAX);
    s->hist[s->hist_head].gated = (uint32_t)HM_MIN(s->period_gated, UINT32_MAX);
    s->hist[s->hist_head].passed = (uint32_t)HM_MIN(s->period_passed, UINT32_MAX);
    s->hist[s->hist_head].syn_keep = 1000 - LD(&s->syn_drop);
    s->hist_head = (s->hist_head + 1) % HIST;
    struct win ws = window(s, HM_ADM_SHORT_PERIODS), wl = window(s, HIST);
    double adm_s = per_s(ws.admitted, ws.span_us), done_s = per_s(ws.done, ws.span_us);
    double done_l = per_s(wl.done, wl.span_us);
    uint64_t p = pressure(a, s);
    bool cong = LD(&s->congested);
    if (cong && p < 750)
        cong = false;
    else if (!cong && p > 1000)
        cong = true;
    double rate = LD(&s->rate), floor = a->cfg.min_rate;
    bool first = rate >= HM_ADM_UNLIMITED;
    if (cong && (s->period_admitted >= HM_ADM_MIN_EVIDENCE ||
                 s->period_done >= HM_ADM_MIN_EVIDENCE)) {
        /* Only with evidence of load (a slow sample at low traffic is no overload). The cut
         * goes to 7/8 of what the shard completes (over the short or the long window,
         * whichever is higher: a congested shard completes at its capacity, and one bursty
         * window must not pass for it), not of what it admitted: under overload a throttled
         * shard's admissions fall with every cut. Nor under half of what the shard
         * admitted in the short window: on the first cut from "unlimited" completions may
         * not have started yet (a flash crowd of TLS handshakes).
         * One cut per episode: while the pressure falls from where it was at the last cut,
         * the queue is draining and the rate holds (cutting on every period of a lagging
         * signal compounded 7/8 per period, down to 2/3 of the capacity); it is cut again
         * when the pressure is back at or above that level, or after a second. */
        if (first || p >= s->cut_pressure || now_us - s->last_cut >= 10 * HM_ADM_ADJUST_US) {
            double cap = HM_MAX(HM_MAX(done_s, done_l), adm_s / 2);
            rate = HM_MIN(rate, cap) * 7 / 8;
            s->last_cut = now_us;
            s->cut_pressure = p;
        }
    } else if (s->period_limited && !first &&
               !(a->cfg.max_rate && rate >= a->cfg.max_rate)) {
        /* growth while the bucket binds: 1/8 per period, never above 5/4 of the
         * completions of the short window; straight back to 7/8 of the long window's
         * completions when the rate is under them (after a cut on a flash crowd, the
         * backlog it let in completes at the shard's capacity: that is the evidence) */
        double up = HM_MAX(rate + HM_MAX(rate / 8, floor / 4), done_l * 7 / 8);
        rate = HM_MIN(up, HM_MAX(HM_MAX(done_s * 5 / 4, done_l * 7 / 8), rate));
    }
    rate = HM_MAX(rate, floor);
    rate = HM_MIN(rate, a->cfg.max_rate ? (double)a->cfg.max_rate : HM_ADM_UNLIMITED);
    if (s->paced_at && now_us - s->paced_at < 2 * HM_ADM_ADJUST_US) {
        ST(&s->syn_drop, paced_syn_drop(a, s));
    } else {
        s->pace_keep = 0;
        ST(&s->syn_drop, syn_drop(a, &ws, rate));
    }
    ST(&s->congested, cong);
    ST(&s->rate, rate);
    s->next_adjust = now_us + HM_ADM_ADJUST_US;
    s->period_start = now_us;
    s->period_admitted = 0;
    s->period_done = 0;
    s->period_gated = 0;
    s->period_passed = 0;
    s->period_limited = false;
}

/* A bucket of one period's worth of sessions (at least 4): smooth, small bursts. */
static double burst(double rate)
{
    return HM_MAX(rate * HM_ADM_ADJUST_US / 1e6, 4.0);
}

static void refill(struct adm_shard *s, uint64_t now_us)
{
    double rate = LD(&s->rate);
    if (now_us > s->last_refill) {
        s->tokens += rate * (double)(now_us - s->last_refill) / 1e6;
        s->last_refill = now_us;
    }
    s->tokens = HM_MIN(s->tokens, burst(rate));
}

static void count_shed(struct adm_shard *s, enum hm_adm_reason why)
{
    ST(&s->shed[why], LD(&s->shed[why]) + 1);
}

/* The in-flight cap is reached: sessions in flight plus the places the gate let through. */
static bool inflight_full(const struct hm_admission *a, const struct adm_shard *s)
{
    return LD(&s->inflight) + LD(&s->pending) >= a->cfg.max_inflight;
}

/* The decision without its side effects on in-flight (shared by admit and gate). */
static enum hm_adm_reason decide(struct hm_admission *a, struct adm_shard *s, uint64_t now_us,
                                 uint32_t store_queue, bool paid)
{
    adjust(a, s, now_us);
    refill(s, now_us);
    if (!a->cfg.enabled)
        return HM_ADM_ADMIT;
    if (inflight_full(a, s))
        return HM_ADM_INFLIGHT;
    if (store_queue > a->cfg.max_store_queue)
        return HM_ADM_STORE_QUEUE;
    if (!paid && s->tokens < 1.0) {
        s->period_limited = true;
        return HM_ADM_RATE;
    }
    return HM_ADM_ADMIT;
}

enum hm_adm_reason hm_admission_admit(struct hm_admission *a, unsigned shard, uint64_t now_us,
                                      uint32_t store_queue, bool paid)
{
    struct adm_shard *s = shard_of(a, shard);
    enum hm_adm_reason why = decide(a, s, now_us, store_queue, paid);
    if (why != HM_ADM_ADMIT) {
        count_shed(s, why);
        return why;
    }
    if (!paid && s->tokens >= 1.0)
        s->tokens -= 1.0;
    s->period_admitted++;
    ST(&s->inflight, LD(&s->inflight) + 1);
    ST(&s->admitted, LD(&s->admitted) + 1);
    return HM_ADM_ADMIT;
}

bool hm_admission_gate(struct hm_admission *a, unsigned shard, uint64_t now_us, bool *paid)
{
    struct adm_shard *s = shard_of(a, shard);
    enum hm_adm_reason why = decide(a, s, now_us, 0, false);
    s->period_gated++;
    if (why == HM_ADM_ADMIT) {
        s->period_passed++;
        /* The connection pays its token now: a burst of accepts can then pass no more
         * connections than the rate allows, and the rest is shed here, before a byte is
         * read, instead of at its first request after the whole Inform was received. */
        if (a->cfg.enabled && s->tokens >= 1.0) {
            s->tokens -= 1.0;
            if (paid) { /* and holds a place under the in-flight cap until it is released */
                *paid = true;
                ST(&s->pending, LD(&s->pending) + 1);
            }
        }
        return false;
    }
    count_shed(s, HM_ADM_ACCEPT);
    return true;
}

void hm_admission_gate_release(struct hm_admission *a, unsigned shard)
{
    struct adm_shard *s = shard_of(a, shard);
    uint32_t p = LD(&s->pending);
    if (p)
        ST(&s->pending, p - 1);
}

uint32_t hm_admission_pending(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->pending);
}

unsigned hm_admission_syn_drop(struct hm_admission *a, unsigned shard, uint64_t now_us)
{
    struct adm_shard *s = shard_of(a, shard);
    adjust(a, s, now_us);
    return LD(&s->syn_drop);
}

uint64_t hm_admission_accept_wait(struct hm_admission *a, unsigned shard, uint64_t now_us,
                                  unsigned queued, unsigned backlog)
{
    struct adm_shard *s = shard_of(a, shard);
    adjust(a, s, now_us);
    refill(s, now_us);
    if (!a->cfg.enabled)
        return 0;
    s->paced_at = now_us;
    if (backlog) {
        s->pace_looks++;
        s->pace_fill += (uint32_t)HM_MIN(1000ull * queued / backlog, 1000);
    }
    bool waiting = queued > 0;
    uint64_t wait;
    if (inflight_full(a, s))
        wait = HM_ADM_PACE_INFLIGHT_US;
    else if (s->tokens >= 1.0)
        return 0;
    else { /* until a quantum of tokens is in (each wait is a wakeup of the shard's loop) */
        double rate = LD(&s->rate);
        double quantum = HM_MIN(HM_MAX(rate * HM_ADM_PACE_QUANTUM_US / 1e6, 1.0), burst(rate));
        wait = (uint64_t)((quantum - s->tokens) * 1e6 / rate) + 1;
    }
    if (waiting) {
        s->period_limited = true;
        ST(&s->deferred, LD(&s->deferred) + 1);
    }
    return wait;
}

unsigned hm_admission_pace_backlog(const struct hm_admission *a, unsigned shard, unsigned max)
{
    /* the rate, or what the shard completes when that is less (the in-flight cap binds, or
     * the rate is still unlimited): the queue drains no faster than that */
    const struct adm_shard *s = shard_of(a, shard);
    struct win wl = window(s, HIST);
    double q = HM_MIN(LD(&s->rate), per_s(wl.done, wl.span_us)) * HM_ADM_ADJUST_US / 1e6;
    return (unsigned)HM_MAX(HM_MIN(q, (double)max), (double)HM_ADM_BACKLOG_MIN);
}

uint64_t hm_admission_deferred_count(const struct hm_admission *a)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < a->n; i++)
        sum += LD(&a->sh[i].deferred);
    return sum;
}

void hm_admission_end(struct hm_admission *a, unsigned shard, uint64_t now_us,
                      uint64_t session_us)
{
    struct adm_shard *s = shard_of(a, shard);
    uint32_t in = LD(&s->inflight);
    HM_BUG_ON(in == 0);
    ST(&s->inflight, in - 1);
    if (session_us) {
        s->period_done++;
        ST(&s->session_ewma_us, ewma(LD(&s->session_ewma_us), session_us));
    }
    adjust(a, s, now_us);
}

void hm_admission_observe_commit(struct hm_admission *a, unsigned shard, uint64_t us,
                                 uint64_t lag_us)
{
    struct adm_shard *s = shard_of(a, shard);
    ST(&s->commit_ewma_us, ewma(LD(&s->commit_ewma_us), us));
    ST(&s->lag_ewma_us, ewma(LD(&s->lag_ewma_us), lag_us));
}

void hm_admission_observe_accept(struct hm_admission *a, unsigned shard, uint64_t us)
{
    struct adm_shard *s = shard_of(a, shard);
    ST(&s->accept_ewma_us, ewma(LD(&s->accept_ewma_us), us));
}

void hm_admission_count(struct hm_admission *a, unsigned shard, enum hm_adm_reason why)
{
    struct adm_shard *s = shard_of(a, shard);
    if (why > HM_ADM_ADMIT && why < HM_ADM__COUNT)
        ST(&s->shed[why], LD(&s->shed[why]) + 1);
}

uint32_t hm_admission_retry_after(struct hm_admission *a, unsigned shard)
{
    struct adm_shard *s = shard_of(a, shard);
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    uint32_t base = a->cfg.retry_after_s;
    uint32_t lo = base / 2 ? base / 2 : 1;
    uint32_t span = base + 1; /* [base/2, base/2 + base] */
    return lo + (uint32_t)(x % span);
}

double hm_admission_rate(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->rate);
}

bool hm_admission_congested(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->congested);
}

uint32_t hm_admission_inflight(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->inflight);
}

uint64_t hm_admission_commit_ewma_us(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->commit_ewma_us);
}

uint64_t hm_admission_lag_ewma_us(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->lag_ewma_us);
}

uint64_t hm_admission_accept_ewma_us(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->accept_ewma_us);
}

uint64_t hm_admission_session_ewma_us(const struct hm_admission *a, unsigned shard)
{
    return LD(&shard_of(a, shard)->session_ewma_us);
}

uint64_t hm_admission_shed_count(const struct hm_admission *a, enum hm_adm_reason why)
{
    uint64_t sum = 0;
    if (why <= HM_ADM_ADMIT || why >= HM_ADM__COUNT)
        return 0;
    for (unsigned i = 0; i < a->n; i++)
        sum += LD(&a->sh[i].shed[why]);
    return sum;
}

const char *hm_admission_reason_name(enum hm_adm_reason why)
{
    return why < HM_ADM__COUNT ? reason_names[why] : "unknown";
}

void hm_admission_render_metrics(struct hm_buf *out, const struct hm_admission *a)
{
    hm_buf_append_lit(out, "# HELP hems_admission_shed_total new CWMP sessions refused by "
                           "admission control or a saturated/failing store, by reason\n"
                           "# TYPE hems_admission_shed_total counter\n");
    for (int r = HM_ADM_ADMIT + 1; r < HM_ADM__COUNT; r++)
        hm_buf_printf(out, "hems_admission_shed_total{reason=\"%s\"} %llu\n", reason_names[r],
                      (unsigned long long)hm_admission_shed_count(a, (enum hm_adm_reason)r));
    uint64_t admitted = 0;
    for (unsigned i = 0; i < a->n; i++)
        admitted += LD(&a->sh[i].admitted);
    hm_buf_printf(out,
                  "# HELP hems_admission_admitted_total new CWMP sessions admitted\n"
                  "# TYPE hems_admission_admitted_total counter\n"
                  "hems_admission_admitted_total %llu\n"
                  "# HELP hems_admission_deferred_total times a paced listener left queued "
                  "connections in the kernel's accept queue until the rate had room\n"
                  "# TYPE hems_admission_deferred_total counter\n"
                  "hems_admission_deferred_total %llu\n",
                  (unsigned long long)admitted,
                  (unsigned long long)hm_admission_deferred_count(a));
    static const struct {
        const char *name, *help;
    } g[] = {
        {"hems_admission_rate_limit",
         "current adaptive new-session rate per shard, sessions/s (+Inf: not limited)"},
        {"hems_admission_inflight", "admitted CWMP sessions in flight, per shard"},
        {"hems_admission_commit_wait_ewma_seconds",
         "EWMA of the commit wait (submit to completion on the shard), per shard"},
        {"hems_admission_session_ewma_seconds", "EWMA of the CWMP session time, per shard"},
        {"hems_admission_shard_lag_ewma_seconds",
         "EWMA of the shard's loop lag (completion posted to completion run), per shard"},
        {"hems_admission_accept_wait_ewma_seconds",
         "EWMA of new connections' wait in the accept queue (TCP_INFO at accept), per shard"},
        {"hems_admission_syn_drop_ratio",
         "share of new connections' SYNs the shard's listeners drop in the kernel, per shard"},
        {"hems_admission_gate_pending",
         "connections let through the accept gate, before their first request, per shard "
         "(they count against the in-flight cap)"},
    };
    for (size_t k = 0; k < HM_ARRAY_SIZE(g); k++) {
        hm_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n", g[k].name, g[k].help, g[k].name);
        for (unsigned i = 0; i < a->n; i++) {
            const struct adm_shard *s = &a->sh[i];
            switch (k) {
            case 0: {
                double r = LD(&s->rate);
                if (r >= HM_ADM_UNLIMITED)
                    hm_buf_printf(out, "%s{shard=\"%u\"} +Inf\n", g[k].name, i);
                else
                    hm_buf_printf(out, "%s{shard=\"%u\"} %.1f\n", g[k].name, i, r);
                break;
            }
            case 1:
                hm_buf_printf(out, "%s{shard=\"%u\"} %u\n", g[k].name, i, LD(&s->inflight));
                break;
            case 2:
                hm_buf_printf(out, "%s{shard=\"%u\"} %g\n", g[k].name, i,
                              (double)LD(&s->commit_ewma_us) / 1e6);
                break;
            case 3:
                hm_buf_printf(out, "%s{shard=\"%u\"} %g\n", g[k].name, i,
                              (double)LD(&s->session_ewma_us) / 1e6);
                break;
            case 4:
                hm_buf_printf(out, "%s{shard=\"%u\"} %g\n", g[k].name, i,
                              (double)LD(&s->lag_ewma_us) / 1e6);
                break;
            case 5:
                hm_buf_printf(out, "%s{shard=\"%u\"} %g\n", g[k].name, i,
                              (double)LD(&s->accept_ewma_us) / 1e6);
                break;
            case 6:
                hm_buf_printf(out, "%s{shard=\"%u\"} %g\n", g[k].name, i,
                              (double)LD(&s->syn_drop) / 1000.0);
                break;
            default:
                hm_buf_printf(out, "%s{shard=\"%u\"} %u\n", g[k].name, i, LD(&s->pending));
                break;
            }
        }
    }
    hm_buf_append_lit(out, "# HELP hems_admission_congested 1 while the shard's commit wait "
                           "is over target (hysteresis: until under 3/4 of it)\n"
                           "# TYPE hems_admission_congested gauge\n");
    for (unsigned i = 0; i < a->n; i++)
        hm_buf_printf(out, "hems_admission_congested{shard=\"%u\"} %d\n", i,
                      LD(&a->sh[i].congested) ? 1 : 0);
    hm_buf_printf(out,
                  "# HELP hems_admission_enabled 1 when admission control sheds, 0 when it "
                  "only measures\n# TYPE hems_admission_enabled gauge\nhems_admission_enabled "
                  "%d\n",
                  a->cfg.enabled ? 1 : 0);
}
