#ifndef HM_ADMISSION_H
#define HM_ADMISSION_H
/*
 * Admission control: decides, at the first request of a new CWMP session and before its SOAP
 * is parsed, whether this shard takes the session or sheds it (HTTP 503 + a jittered
 * Retry-After), so that under overload the shard spends its CPU on sessions it can finish in
 * bounded time instead of on sessions that would all be late (docs/admission.md).
 *
 * One state per shard, written only by that shard's thread (no lock, no shared cache line);
 * the metrics renderer reads it with relaxed atomic loads from the admin thread.
 *
 * Signals (all cheap, all local to the shard except the store's queue depth, a relaxed load):
 *   - EWMA of the shard's loop lag: the time between the writer posting a commit completion
 *     and the shard running it, i.e. how long ready work waits for the shard's CPU (the
 *     primary overload signal: it rises as soon as the shard cannot keep up);
 *   - EWMA of the accept-queue wait of new connections (TCP_INFO at accept: time since the
 *     client's last packet), the same kind of wait seen before the shard takes the work,
 *     sampled for every connection, shed or not; same target as the loop lag;
 *   - EWMA of the commit wait (batch submitted -> completion seen on the shard: includes the
 *     writer's queue, the fsync and the shard's own loop lag, so it rises when the shard or
 *     the disk is saturated, whatever else shares the machine);
 *   - optionally the EWMA of the session time (Inform received -> 204 sent; off by default:
 *     it includes the CPE's own think time and round trips, which are not our load);
 *   - sessions in flight on the shard (a hard memory bound, not a load signal: an in-flight
 *     session mostly waits for its CPE and costs memory, not CPU);
 *   - batches waiting in the store's writer ring.
 * Control: a token bucket of new sessions per second per shard. Every HM_ADM_ADJUST_US the
 * shard is "congested" when an EWMA is above its target (and stays so until all fall under
 * 3/4 of their targets: hysteresis). Completions and admissions are read over a short
 * (0.8 s) and a long (1.6 s) window of periods, one period's being too bursty. Congested,
 * the rate becomes 7/8 of min(rate, the higher window's completions per second, and at
 * least half the short window's admissions: in a flash crowd nothing has completed yet),
 * once per
 * episode: it holds while the pressure stays under its level at that cut (the queue
 * drains), and is cut again when the pressure is back there or after a second. Not
 * congested and the bucket was the binding constraint, it grows by 1/8 per period, never
 * above 5/4 of the short window's completions, and goes straight back to 7/8 of the long
 * window's completions when under them (a backlog completing shows the capacity). The cut
 * needs HM_ADM_MIN_EVIDENCE admissions or completions in the period (a slow sample at low
 * traffic is not overload). It never falls below min_rate,
 * so probes keep measuring the system.
 *
 * An admitted session is never shed later: the caller asks only at a session's first
 * request and tells the controller when the session ends (hm_admission_end()).
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

#define HM_ADM_ADJUST_US 100000u /* rate adjustment period */
#define HM_ADM_MIN_EVIDENCE 8     /* admissions in a period before congestion cuts the rate */
#define HM_ADM_SHORT_PERIODS 8    /* periods of the short window (completions, SYN shares) */

/* X(enum, label) */
#define HM_ADM_REASONS(X)                                                                    \
    X(RATE, "rate")                /* the adaptive new-session rate was used up */           \
    X(INFLIGHT, "inflight")        /* sessions in flight reached max_inflight */             \
    X(ACCEPT, "accept")            /* refused at accept while the shard was shedding */      \
    X(STORE_QUEUE, "store_queue")  /* too many batches waiting for the writer */              \
    X(STORE_FULL, "store_full")    /* the store ring refused the batch (-EAGAIN) */          \
    X(STORE_ERROR, "store_error")  /* the commit failed (disk full, I/O error) */

enum hm_adm_reason {
    HM_ADM_ADMIT = 0,
#define HM_ADM_ENUM(e, s) HM_ADM_##e,
    HM_ADM_REASONS(HM_ADM_ENUM)
#undef HM_ADM_ENUM
        HM_ADM__COUNT
};

/* Knobs (config keys admission.*); 0 in a field selects its auto default. */
struct hm_admission_cfg {
    bool enabled;               /* false: admit everything (signals still measured) */
    uint32_t max_inflight;      /* per shard hard cap of sessions in flight; auto 4096 */
    uint32_t min_rate;          /* per shard floor of the adaptive rate, sessions/s; auto 20 */
    uint32_t max_rate;          /* per shard static cap, sessions/s (from capacity planning);
                                   0: none, the adaptive rate alone */
    uint32_t target_lag_ms;     /* shard loop lag EWMA target; auto 50 */
    uint32_t target_commit_ms;  /* commit wait EWMA target; auto 500 (with group commit a
                                   slow fsync costs latency more than throughput) */
    uint32_t target_session_ms; /* session time EWMA target; 0: not a signal */
    uint32_t max_store_queue;   /* batches waiting in the writer ring; auto 2048 */
    uint32_t retry_after_s;     /* mean Retry-After; auto 10 (sent uniformly in [s/2, 3s/2]) */
    bool syn_shed;              /* compute a SYN drop share (hm_admission_syn_drop()) */
};

struct hm_admission;

/* Creates the controller for <nshards> shards with <cfg> (copied, auto values resolved).
 * Owned by the caller: hm_admission_destroy(). Aborts on OOM (boot path). */
struct hm_admission *hm_admission_create(const struct hm_admission_cfg *cfg, unsigned nshards);
void hm_admission_destroy(struct hm_admission *a);

/* The resolved configuration (auto defaults filled in). */
const struct hm_admission_cfg *hm_admission_config(const struct hm_admission *a);

/*
 * Decision for a new session on <shard> at <now_us> (CLOCK_MONOTONIC microseconds), with
 * <store_queue> batches waiting in the store; <paid>: the connection paid its rate token at
 * accept (hm_admission_gate() set *paid), so only the in-flight and store rules apply.
 * HM_ADM_ADMIT: the session counts as in flight
 * until hm_admission_end(); otherwise the reason it was shed (counted). Shard thread only.
 */
enum hm_adm_reason hm_admission_admit(struct hm_admission *a, unsigned shard, uint64_t now_us,
                                      uint32_t store_queue, bool paid);

/*
 * The accept-time check (core/admission_gate.h): true, counted as HM_ADM_ACCEPT, when the
 * connection is refused (no token left in the rate, or the in-flight cap). A connection let
 * through pays its rate token here and *paid (may be NULL) is set: its first request's
 * hm_admission_admit(..., paid = true) then checks only the in-flight and store rules. So a
 * burst of accepts cannot let more connections through than the rate, and the excess is
 * shed before a byte of it is read instead of after its whole Inform was received.
 */
bool hm_admission_gate(struct hm_admission *a, unsigned shard, uint64_t now_us, bool *paid);

/*
 * A connection the gate let through (and told *paid) holds a place under the in-flight cap
 * until its first request (then it is in flight as a session, or was something else) or its
 * close, when the shard calls this. Without it, in a flash crowd the gate let through connections up to the
 * cap in sessions *already admitted*, and the in-flight rule then shed thousands of them at
 * their first request, after their whole Inform had been read (11,531 in one 3x run).
 * hm_admission_pending() (tests, metrics): the places so held. Shard thread only.
 */
void hm_admission_gate_release(struct hm_admission *a, unsigned shard);
uint32_t hm_admission_pending(const struct hm_admission *a, unsigned shard);

/*
 * The share of new connections' SYNs, in thousandths (0..HM_ADM_SYN_DROP_MAX), that <shard>'s
 * listeners should drop in the kernel before accept (core/admission_gate.h): while the gate
 * refuses connections (the rate or the in-flight cap binds), enough that about 5/4 of what
 * it lets through still reaches it (so the controller keeps seeing the demand), from the
 * connections the gate saw over the short window and the shares dropped then; while the
 * shard's listeners are paced (hm_admission_accept_wait() called in the last two periods),
 * what keeps their queue between 1/4 and 3/4 full instead. 0 when the gate refuses nothing
 * (and nothing is paced), when admission or cfg.syn_shed is off. Runs the period's
 * adjustment first, so a shard polls it on its timer even when no connection arrives.
 * Shard thread only.
 */
unsigned hm_admission_syn_drop(struct hm_admission *a, unsigned shard, uint64_t now_us);
#define HM_ADM_SYN_DROP_MAX 950u

/*
 * Accept pacing (core/admission_gate.h): how long <shard> should leave new connections in
 * the kernel's accept queue before it accepts the next one. 0 when the gate would let one
 * through now (a token in the bucket, room under the in-flight cap), else the wait in
 * microseconds until HM_ADM_PACE_QUANTUM_US of the rate's tokens are in (one wakeup of the
 * shard per batch of accepts, not per token). <queued>: connections in the listener's
 * queue; with any, a wait is demand above the rate: it counts as the rate's growth evidence
 * (as a refusal at the gate would) and as a deferral (hm_admission_deferred_count()).
 * <backlog>: the queue's size when <queued> is a sample of its fill, else 0: while paced,
 * the SYN drop share (hm_admission_syn_drop()) follows these samples instead of the gate's
 * refusals (there are none): more SYNs dropped (keep 3/4 of the share kept) after a period
 * whose samples averaged over 3/4 full, fewer (keep 9/8) under 1/4. A queue left to
 * overflow drops handshake ACKs too, not only SYNs: the kernel takes a burst of SYNs while
 * the queue has one free place and keeps one of their ACKs; the others' clients hold an open
 * connection whose request waits for the SYN-ACK's retransmission (1 s, 2 s, 4 s). Shard
 * thread only.
 */
uint64_t hm_admission_accept_wait(struct hm_admission *a, unsigned shard, uint64_t now_us,
                                  unsigned queued, unsigned backlog);
/* The accept queue a paced listener of <shard> should hold: one adjustment period of its
 * rate or of its completions over the long window, whichever is less (so a connection waits
 * there at most ~100 ms), within [HM_ADM_BACKLOG_MIN, max]. */
unsigned hm_admission_pace_backlog(const struct hm_admission *a, unsigned shard, unsigned max);
#define HM_ADM_BACKLOG_MIN 16u
#define HM_ADM_PACE_INFLIGHT_US 10000u /* wait re-checked while the in-flight cap binds */
#define HM_ADM_PACE_QUANTUM_US 10000u  /* a wait lasts until this much of the rate is in */
uint64_t hm_admission_deferred_count(const struct hm_admission *a);

/* An admitted session of <shard> ended; <session_us> is its duration when it completed
 * normally (sampled into the session EWMA), 0 when it ended otherwise. Shard thread only. */
void hm_admission_end(struct hm_admission *a, unsigned shard, uint64_t now_us,
                      uint64_t session_us);

/* A commit wait of <us> was observed on <shard>, of which <lag_us> passed between the
 * writer posting the completion and the shard running it (the shard's loop lag: how long
 * ready work waits for the shard's CPU). Shard thread only. */
void hm_admission_observe_commit(struct hm_admission *a, unsigned shard, uint64_t us,
                                 uint64_t lag_us);

/* A new connection on <shard> waited <us> in the kernel's accept queue (TCP_INFO: time since
 * the client's last packet). Shard thread only. */
void hm_admission_observe_accept(struct hm_admission *a, unsigned shard, uint64_t us);

/* Counts a shed decided elsewhere (e.g. HM_ADM_STORE_FULL after a refused submit). */
void hm_admission_count(struct hm_admission *a, unsigned shard, enum hm_adm_reason why);

/* A Retry-After value in seconds for <shard>: uniform in [s/2, 3s/2], at least 1. */
uint32_t hm_admission_retry_after(struct hm_admission *a, unsigned shard);

/* Introspection (tests, metrics): current rate (sessions/s; HM_ADM_UNLIMITED when not yet
 * limited), congestion state, in-flight, EWMAs (us), shed count over all shards. */
#define HM_ADM_UNLIMITED 1e9
double hm_admission_rate(const struct hm_admission *a, unsigned shard);
bool hm_admission_congested(const struct hm_admission *a, unsigned shard);
uint32_t hm_admission_inflight(const struct hm_admission *a, unsigned shard);
uint64_t hm_admission_commit_ewma_us(const struct hm_admission *a, unsigned shard);
uint64_t hm_admission_lag_ewma_us(const struct hm_admission *a, unsigned shard);
uint64_t hm_admission_accept_ewma_us(const struct hm_admission *a, unsigned shard);
uint64_t hm_admission_session_ewma_us(const struct hm_admission *a, unsigned shard);
uint64_t hm_admission_shed_count(const struct hm_admission *a, enum hm_adm_reason why);

/* Label of <why> ("inflight", ...). */
const char *hm_admission_reason_name(enum hm_adm_reason why);

/* Appends hems_admission_* metrics (Prometheus text) to <out>. Any thread. */
void hm_admission_render_metrics(struct hm_buf *out, const struct hm_admission *a);

#endif
