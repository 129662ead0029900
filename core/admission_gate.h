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

#endif
