#ifndef HM_ERR_H
#define HM_ERR_H
/*
 * Error convention for all of hems: functions return 0 or a count on success and a
 * negative value on failure: -errno for system errors, or one of the HM_E* codes below
 * (all <= -4000) for failures errno cannot name. Incremental parsers return bytes consumed
 * (> 0), -EAGAIN (need more input) or an error.
 *
 * OOM policy (stated once): malloc failure at boot or on a control path aborts via
 * hm_xmalloc(); an exhausted per-shard pool is -ENOBUFS and the caller sheds load.
 */
#include <errno.h>

/* X(name, value, text) */
#define HM_ERR_LIST(X)                                                                       \
    X(HM_EBADHTTP, -4000, "malformed HTTP message")                                          \
    X(HM_EURITOOLONG, -4001, "request line too long")                                        \
    X(HM_EHDRTOOLARGE, -4002, "request header fields too large")                             \
    X(HM_EBODYTOOLARGE, -4003, "request body too large")                                     \
    X(HM_ENOTIMPL, -4004, "not implemented")                                                 \
    X(HM_EHTTPVERSION, -4005, "HTTP version not supported")                                  \
    X(HM_EBADCHUNK, -4006, "malformed chunked body")                                         \
    X(HM_ESMUGGLE, -4007, "conflicting message framing (Content-Length/Transfer-Encoding)")  \
    X(HM_EBADXML, -4010, "malformed XML")                                                    \
    X(HM_EXMLLIMIT, -4011, "XML exceeds a size, depth or count limit")                       \
    X(HM_EXMLDTD, -4012, "XML DTD or entity declaration refused")                            \
    X(HM_EBADSOAP, -4013, "not a valid SOAP/CWMP envelope")                                  \
    X(HM_EBADCWMP, -4014, "invalid CWMP message")                                            \
    X(HM_ENOTCWMP, -4015, "unknown CWMP method")                                             \
    X(HM_EBADAUTH, -4020, "malformed Authorization header")                                  \
    X(HM_ESTALE_NONCE, -4021, "stale or replayed Digest nonce")                              \
    X(HM_EAUTHFAIL, -4022, "authentication failed")                                          \
    X(HM_EBADPROXY, -4025, "malformed PROXY protocol header")                                \
    X(HM_EBADCONF, -4030, "invalid configuration")                                           \
    X(HM_ECORRUPT, -4040, "corrupt or foreign record")                                       \
    X(HM_EVERSION, -4041, "unsupported record version")                                      \
    X(HM_ESTORE, -4042, "storage failure")                                                   \
    X(HM_EBADPM, -4050, "malformed PM file")                                                 \
    X(HM_EOVERLOAD, -4060, "overloaded: shed")

enum hm_err {
#define HM_ERR_ENUM(n, v, s) n = v,
    HM_ERR_LIST(HM_ERR_ENUM)
#undef HM_ERR_ENUM
};

/* Text for <err> (negative errno or HM_E*); never NULL, static storage. */
const char *hm_strerror(int err);

#endif
