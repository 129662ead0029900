#ifndef HM_PROXY_H
#define HM_PROXY_H
/*
 * PROXY protocol v1 (text) and v2 (binary) header parser (haproxy doc/proxy-protocol.txt),
 * for hems behind a TCP load balancer. Pure: no I/O, no allocation.
 *
 * hm_proxy_parse() looks at the first bytes of a connection. It returns the header length
 * (the caller drops that many bytes; what follows is the TLS or HTTP stream), -EAGAIN when
 * <buf> holds a correct but incomplete header (call again with more bytes), or HM_EBADPROXY
 * when the bytes are not a PROXY header or are malformed: a wrong signature is detected from
 * the first byte that differs, so a client that does not speak PROXY fails at once.
 *
 * Bounds: a v1 line is at most HM_PROXY_V1_MAX bytes with its CRLF (the spec's 107); a v2
 * header at most <max_len> bytes (16-byte fixed part + addresses + TLVs; 0 selects
 * HM_PROXY_V2_DEFAULT_MAX). TLVs are walked to check that they tile the rest exactly and
 * are otherwise skipped.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/err.h"

#define HM_PROXY_V1_MAX 107
#define HM_PROXY_V2_DEFAULT_MAX 1024

struct hm_proxy_hdr {
    int version;  /* 1 or 2 */
    bool local;   /* v2 LOCAL: health check from the balancer itself; use the socket's peer */
    bool unknown; /* v1 UNKNOWN, or v2 UNSPEC/UNIX/DGRAM: addresses not given; use the peer */
    struct sockaddr_storage src, dst; /* AF_INET/AF_INET6 when !local && !unknown, else zero */
};

ssize_t hm_proxy_parse(const char *buf, size_t len, struct hm_proxy_hdr *h, size_t max_len);

#endif
