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

struct hm_shard;

/* Returns 0 to accept the connection <fd> (just accepted, nothing read), else the
 * Retry-After (seconds) of the refusal. Sets *paid when the connection paid its admission
 * at accept (its first request is told so: hm_http_exchange.gate_paid). Runs on the shard's
 * thread. */
typedef unsigned (*hm_accept_gate_fn)(struct hm_shard *s, int fd, bool *paid);

/* Installs <fn> for every shard (NULL: none). Once, at boot, before the shards start.
 * Implemented in core/shard.c. */
void hm_shard_set_accept_gate(hm_accept_gate_fn fn);

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

#endif
