#ifndef HM_TLS_H
#define HM_TLS_H
/*
 * TLS for the CWMP listener (HTTPS, TS 33.320 device authentication), with BoringSSL driven
 * from the shard reactor: the SSL object never touches the socket. Its BIO reads ciphertext
 * straight from the receive buffer the kernel lent (hm_tls_conn_input) and writes records
 * into the connection's output queue, which the shard sends with io_uring. Handshakes and
 * records run on the shard that owns the connection; nothing blocks.
 *
 * One struct hm_tls per process holds the server contexts (one per certificate, picked by
 * SNI), the trusted CAs and CRLs, the session-ticket keys (rotated, shared by every shard,
 * or read from tls.ticket_key_file to be shared by several nodes)
 * and the TLS counters. Its contexts are swapped on reload (hm_tls_reload) under a mutex;
 * connections keep the context set they started with (reference-counted), so a reload
 * drops nothing.
 *
 * Ownership: hm_tls_create() returns an object freed by hm_tls_destroy() after every
 * connection is freed. A struct hm_tls_conn belongs to one shard thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/slice.h"

struct hm_tls;
struct hm_tls_conn;

/* Largest plaintext one hm_tls_conn_read() returns (one TLS record). */
#define HM_TLS_PLAIN_MAX 16384

/* Reasons a handshake fails, for metrics and logs. */
#define HM_TLS_FAIL_REASONS(X)                                                               \
    X(BAD_CHAIN, "bad_chain")           /* unknown issuer, bad signature, too deep */         \
    X(EXPIRED, "expired")               /* client certificate expired or not yet valid */     \
    X(REVOKED, "revoked")               /* on the CRL */                                      \
    X(NO_CLIENT_CERT, "no_client_cert") /* mTLS required, none sent */                        \
    X(VERSION, "version")               /* no common protocol version */                      \
    X(CIPHER, "no_shared_cipher")       /* no common cipher suite or group */                 \
    X(PROTOCOL, "protocol")             /* any other TLS error (garbage, bad record) */        \
    X(CLOSED, "closed")                 /* peer closed or timed out mid-handshake */

enum hm_tls_fail {
#define HM_TLS_FAIL_ENUM(e, s) HM_TLS_FAIL_##e,
    HM_TLS_FAIL_REASONS(HM_TLS_FAIL_ENUM)
#undef HM_TLS_FAIL_ENUM
        HM_TLS_FAIL_MAX
};

/*
 * Loads certificates and keys (tls.cert / tls.key, comma-separated, the first is the
 * default), the CA file, the CRL file, and applies tls.client_auth and tls.min_version.
 * Returns NULL with a message naming the file and the problem in <err> (unreadable file,
 * key that does not match its certificate, bad PEM, ...).
 */
struct hm_tls *hm_tls_create(const struct hm_config *cfg, char *err, size_t errlen);

/*
 * Main thread (SIGHUP): rebuilds the contexts from <cfg>'s files. On success new
 * handshakes use them; open connections keep theirs. On failure returns HM_EBADCONF with
 * <err> and keeps the running contexts. Ticket keys survive reloads; with
 * tls.ticket_key_file set, the file is reread (keys shared by several nodes, rotated by the
 * operator: the first line seals, the second still opens).
 */
int hm_tls_reload(struct hm_tls *t, const struct hm_config *cfg, char *err, size_t errlen);

void hm_tls_destroy(struct hm_tls *t);

/* Appends the TLS counters (handshakes full/resumed, failures by reason, versions,
 * identity mismatches, reloads) in Prometheus text. Any thread. */
void hm_tls_render_metrics(struct hm_tls *t, struct hm_buf *out);

/* ---- connections (shard thread) ---- */

/* A server-side connection state, or NULL when BoringSSL cannot allocate one. */
struct hm_tls_conn *hm_tls_conn_new(struct hm_tls *t);
void hm_tls_conn_free(struct hm_tls_conn *c);

/*
 * Lends received ciphertext [p, p+n) to the connection until the next call of
 * hm_tls_conn_input(): hm_tls_conn_handshake() and hm_tls_conn_read() consume it. Call
 * hm_tls_conn_input(c, NULL, 0) once done with the buffer (bytes left are dropped).
 */
void hm_tls_conn_input(struct hm_tls_conn *c, const char *p, size_t n);

/*
 * Advances the handshake. 0: established (the identity is set); -EAGAIN: needs more input;
 * -EPROTO: failed (counted, logged by the caller with hm_tls_conn_fail_reason(); an alert
 * may be queued for sending).
 */
int hm_tls_conn_handshake(struct hm_tls_conn *c);
bool hm_tls_conn_established(const struct hm_tls_conn *c);

/*
 * Decrypts into [buf, buf+cap). Returns bytes (> 0), -EAGAIN (needs more input), 0 when the
 * peer sent close_notify, or -EPROTO.
 */
ssize_t hm_tls_conn_read(struct hm_tls_conn *c, char *buf, size_t cap);

/* Encrypts [p, p+n) into the output queue. 0, or -EPROTO (TLS error) or -ENOBUFS (output queue over its limit). */
int hm_tls_conn_write(struct hm_tls_conn *c, const void *p, size_t n);

/* Queues a close_notify alert. */
void hm_tls_conn_shutdown(struct hm_tls_conn *c);

/*
 * The output queue. hm_tls_conn_out_next() returns the bytes to hand to the kernel next
 * (NULL when none): they stay valid and unchanged until hm_tls_conn_out_advance() reports
 * them sent, even if more records are queued meanwhile. Buffers are freed when the queue
 * drains, so an idle connection holds no I/O buffer.
 */
const char *hm_tls_conn_out_next(struct hm_tls_conn *c, size_t *len);
void hm_tls_conn_out_advance(struct hm_tls_conn *c, size_t n);

/* Counts a handshake that ended because the peer closed or timed out. */
void hm_tls_conn_count_closed(struct hm_tls_conn *c);

/* After a failed handshake: why, as a short token, and BoringSSL's detail (static text). */
enum hm_tls_fail hm_tls_conn_fail_reason(const struct hm_tls_conn *c);
const char *hm_tls_fail_name(enum hm_tls_fail f);
const char *hm_tls_conn_fail_detail(const struct hm_tls_conn *c);

/*
 * The verified client identity (SubjectAltName dNSName, else subject CN), NUL-terminated,
 * valid until hm_tls_conn_free(); NULL when the client sent no certificate or before the
 * handshake completes.
 */
const char *hm_tls_conn_identity(const struct hm_tls_conn *c);
/* "TLSv1.2" / "TLSv1.3" (static), and whether the session was resumed. */
const char *hm_tls_conn_version(const struct hm_tls_conn *c);
bool hm_tls_conn_resumed(const struct hm_tls_conn *c);

/*
 * TS 33.320 identity binding (docs/tls.md): true when the certificate identity <id> names
 * the device of the Inform's DeviceId. <id> or, for an FQDN, its first label must equal
 * (ASCII case-insensitive) "OUI-ProductClass-SerialNumber", "OUI-SerialNumber" or
 * "SerialNumber". A false result is counted (hems_tls_identity_mismatch_total).
 */
bool hm_tls_identity_check(const char *id, struct hm_slice oui, struct hm_slice product_class,
                           struct hm_slice serial);

#endif
