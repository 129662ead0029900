#ifndef HM_ADMISSION_GATE_H
#define HM_ADMISSION_GATE_H
/*
 * The accept-time hook of admission control (docs/admission.md): the cheapest shed there is.
 * While a shard's controller is shedding, a new connection on the CWMP listener is answered
 * with a canned "503 + Retry-After" and closed right after accept, before a byte of it is
 * read (no receive buffer, no HTTP parse, no connection slot); one on the CWMP TLS listener
 * is reset before its handshake (it could not read a plaintext answer).
 */
#include <stdbool.h>
#include <stdint.h>

struct hm_shard;

/* Returns 0 to accept the connection <fd> (just accepted, nothing read; <paced>: on a paced
 * listener, hm_accept_pace_fn below), else the
 * Retry-After (seconds) of the refusal. Sets *paid when the connection paid its admission
 * at accept (its first request is told so: hm_http_exchange.gate_paid). Runs on the shard's
 * thread. */
typedef unsigned (*hm_accept_gate_fn)(struct hm_shard *s, int fd, bool paced, bool *paid);

/* Installs <fn> for every shard (NULL: none). Once, at boot, before the shards start.
 * Implemented in core/shard.c. */
void hm_shard_set_accept_gate(hm_accept_gate_fn fn);

/* A connection that paid at accept (*paid set) reached its first request, or closed before
 * one: its place under the in-flight cap is given back (hm_admission_gate_release()). Called
 * before the first request's handler runs. Installed with the gate. */
typedef void (*hm_gate_release_fn)(struct hm_shard *s);
void hm_shard_set_gate_release(hm_gate_release_fn fn);

/*
 * The cheapest shed of all, before accept: the share of new connections' SYNs, in
 * thousandths, that the shard's CWMP listeners should drop in the kernel (0: none). Polled
 * on the shard's thread every tick (100 ms); the shard installs a classic BPF socket filter
 * on its listeners that drops that share of pure SYNs at random (hm_listen_syn_drop() in
 * core/shard.c) and removes it at 0. A dropped SYN costs the node nothing (not even the
 * accept, the refusal's send and close, which on plain TCP cost about a third of a whole
 * session); the CPE's TCP sends it again after 1 s, 3 s, ... without failing its session.
 */
typedef unsigned (*hm_syn_shed_fn)(struct hm_shard *s);

/* Installs <fn> for every shard (NULL: none). Once, at boot, before the shards start. */
void hm_shard_set_syn_shed(hm_syn_shed_fn fn);

/*
 * Accept pacing, instead of refusing at accept what the rate does not allow: once the gate
 * refuses a connection on a listener, the shard stops its multishot accept there and takes
 * queued connections only while <fn> returns 0; otherwise it waits the microseconds <fn>
 * returns (until some of the rate's tokens are in) and asks again. Meanwhile new connections wait
 * in the kernel's accept queue, whose length the shard sets to *backlog (one period of the
 * rate, so a connection waits there ~100 ms at most; at most <max_backlog>, the listener's
 * normal one); when it is full the kernel drops further SYNs, which costs the node nothing
 * and the CPE's TCP sends again after 1 s, 3 s, ... A refusal at accept (accept, a 503 or a
 * reset, close) costs about half a plain-TCP session; under 3x overload the refusals had
 * taken a third of the node. <queued>: connections in the listener's queue (the demand is
 * above the rate when there are any). <backlog> NULL: a wait only; else, on entry, the
 * queue's current size when <queued> is a sample of its fill (0: not set yet), on return
 * the size it should have; the SYN filter (hm_syn_shed_fn) keeps the queue from
 * overflowing. The listener goes back to multishot accept and its
 * normal queue once it found nothing waiting for a second. Polled on the shard's thread.
 */
typedef uint64_t (*hm_accept_pace_fn)(struct hm_shard *s, unsigned queued, unsigned max_backlog,
                                      unsigned *backlog);

/* Installs <fn> for every shard (NULL: never paced). Once, at boot, before the shards start. */
void hm_shard_set_accept_pace(hm_accept_pace_fn fn);

#endif
