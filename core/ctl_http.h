#ifndef HM_CTL_HTTP_H
#define HM_CTL_HTTP_H
/*
 * hemsctl's HTTP/1.1 client for the admin API (control path: a blocking socket per request,
 * "Connection: close", malloc). Used by core/ctl_campaigns.c; the older commands keep their
 * own copies (hemsctl_main.c, ctl_files.c, ctl_alarms.c) until they move here.
 */
#include <stddef.h>

#include "core/buf.h"

/*
 * Sends <method> <path> to <addr> ("host:port") with the bearer <token> (NULL: none) and,
 * when <body> is not NULL, <blen> bytes of <ctype>. Appends the response body to <resp>
 * (NUL-terminated) and sets *<status>. 0, -EINVAL (bad address), -EPROTO (no HTTP answer)
 * or -errno.
 */
int hm_ctl_http(const char *addr, const char *token, const char *method, const char *path,
                const char *ctype, const char *body, size_t blen, int *status,
                struct hm_buf *resp);

#endif
