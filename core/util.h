#ifndef HM_UTIL_H
#define HM_UTIL_H
/* Small helpers shared by core/ modules. */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/slice.h"

/* Wall-clock milliseconds since the epoch (record timestamps, not timeouts). */
uint64_t hm_now_ms(void);

/* Writes "a.b.c.d:port", "[v6]:port" or "?" for <sa> into <out> (<n> bytes, NUL-terminated). */
void hm_sockaddr_str(const struct sockaddr *sa, char *out, size_t n);

#endif
