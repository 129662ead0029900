#ifndef HM_LOADGEN_TLS_H
#define HM_LOADGEN_TLS_H
/*
 * hems-loadgen over TLS (--tls): a BoringSSL client on the worker's non-blocking sockets.
 * Each simulated device may present its own client certificate (--tls-cert-dir DIR:
 * DIR/dev-<SerialNumber>.pem and .key, as ops/make-test-pki.sh names them) or a shared one
 * (--tls-cert/--tls-key), and may resume its previous session (--tls-resume).
 *
 * Ownership: hm_lg_tls_create() returns a context freed with hm_lg_tls_destroy(); a
 * connection (hm_lg_tls_open) belongs to one device and is freed with hm_lg_tls_close(),
 * which keeps its session in *<keep> when resumption is on.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct hm_lg_tls;
struct ssl_st;         /* BoringSSL's SSL */
struct ssl_session_st; /* BoringSSL's SSL_SESSION */

/* NULL with a message in <err> when a file cannot be loaded. */
struct hm_lg_tls *hm_lg_tls_create(const char *ca, const char *cert, const char *key,
                                   const char *cert_dir, const char *sni, char *err,
                                   size_t errlen);
void hm_lg_tls_destroy(struct hm_lg_tls *t);

/* Client state over connected-or-connecting <fd> for device <serial>, resuming <sess>
 * (may be NULL). NULL when the device's certificate cannot be loaded. */
struct ssl_st *hm_lg_tls_open(struct hm_lg_tls *t, int fd, const char *serial,
                              struct ssl_session_st *sess);
/* Frees <s>; with <keep> non-NULL, replaces *<keep> by the newest resumable session. */
void hm_lg_tls_close(struct ssl_st *s, struct ssl_session_st **keep);
void hm_lg_tls_session_free(struct ssl_session_st *sess);

/* Bytes written/read (> 0), 0 at EOF (read), -EAGAIN, or -EPROTO. The handshake runs
 * inside the first call. */
ssize_t hm_lg_tls_send(struct ssl_st *s, const void *p, size_t n);
ssize_t hm_lg_tls_recv(struct ssl_st *s, void *p, size_t n);
/* Whether the handshake of <s> is done, and whether it resumed a session. */
bool hm_lg_tls_resumed(struct ssl_st *s);

#endif
