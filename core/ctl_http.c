/* hemsctl's HTTP client; see core/ctl_http.h. */
#include "core/ctl_http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/config.h"

int hm_ctl_http(const char *addr, const char *token, const char *method, const char *path,
                const char *ctype, const char *body, size_t blen, int *status,
                struct hm_buf *resp)
{
    struct sockaddr_storage ss;
    int alen = hm_parse_hostport(addr, &ss);
    if (alen < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    struct timeval tv = {.tv_sec = 600};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct hm_buf req = {0}, raw = {0};
    int r = 0;
    if (connect(fd, (struct sockaddr *)&ss, (socklen_t)alen) == -1) {
        r = -errno;
        goto out;
    }
    hm_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
                  addr);
    if (token)
        hm_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    if (body)
        hm_buf_printf(&req, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, blen);
    else if (!strcmp(method, "POST") || !strcmp(method, "PUT"))
        hm_buf_append_lit(&req, "Content-Length: 0\r\n");
    hm_buf_append_lit(&req, "\r\n");
    if (body)
        hm_buf_append(&req, body, blen);
    for (size_t off = 0; off < req.len;) {
        ssize_t w = send(fd, req.base + off, req.len - off, MSG_NOSIGNAL);
        if (w == -1) {
            r = -errno;
            goto out;
        }
        off += (size_t)w;
    }
    for (;;) {
        hm_buf_reserve(&raw, 65536);
        ssize_t n = recv(fd, raw.base + raw.len, raw.cap - raw.len, 0);
        if (n == -1) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        raw.len += (size_t)n;
    }
    hm_buf_append_lit(&raw, "\0");
    char *sep = strstr(raw.base, "\r\n\r\n");
    if (!sep || sscanf(raw.base, "HTTP/1.%*d %d", status) != 1) {
        r = -EPROTO;
        goto out;
    }
    hm_buf_append_str(resp, sep + 4);
    hm_buf_append_lit(resp, "\0");
    resp->len--; /* NUL-terminated, not counted */
out:
    hm_buf_free(&req);
    hm_buf_free(&raw);
    close(fd);
    return r;
}
