/* hemsctl's HTTP client and answer printer (core/ctl.h). */
#include "core/ctl.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/api_json.h"
#include "core/config.h"

int hm_ctl_send(const struct hm_ctl *c, const char *method, const char *path, const char *extra,
                const char *ctype, const void *body, size_t blen)
{
    struct sockaddr_storage ss;
    int alen = hm_parse_hostport(c->addr, &ss);
    if (alen < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    struct timeval tv = {.tv_sec = 600}; /* task --wait may take up to 300 s */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, (socklen_t)alen) == -1) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct hm_buf req = {0};
    hm_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
                  c->addr);
    if (c->token)
        hm_buf_printf(&req, "Authorization: Bearer %s\r\n", c->token);
    if (extra)
        hm_buf_append_str(&req, extra);
    if (body)
        hm_buf_printf(&req, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, blen);
    hm_buf_append_lit(&req, "\r\n");
    if (body)
        hm_buf_append(&req, body, blen);
    int r = fd;
    for (size_t off = 0; off < req.len;) {
        ssize_t w = send(fd, req.base + off, req.len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            r = w < 0 ? -errno : -EPIPE;
            close(fd);
            break;
        }
        off += (size_t)w;
    }
    hm_buf_free(&req);
    return r;
}

int hm_ctl_read_head(int fd, int *status, struct hm_buf *rest)
{
    struct hm_buf raw = {0};
    int r = -EPROTO;
    for (;;) {
        hm_buf_reserve(&raw, 4096);
        ssize_t n = recv(fd, raw.base + raw.len, raw.cap - raw.len - 1, 0);
        if (n <= 0) {
            r = n < 0 ? -errno : -EPROTO;
            break;
        }
        raw.len += (size_t)n;
        raw.base[raw.len] = '\0';
        char *sep = strstr(raw.base, "\r\n\r\n");
        if (!sep)
            continue;
        if (sscanf(raw.base, "HTTP/1.%*d %d", status) == 1) {
            size_t off = (size_t)(sep + 4 - raw.base);
            hm_buf_append(rest, raw.base + off, raw.len - off);
            r = 0;
        }
        break;
    }
    hm_buf_free(&raw);
    return r;
}

int hm_ctl_fetch(const struct hm_ctl *c, const char *method, const char *path,
                 const char *ctype, const void *body, size_t blen, int *status,
                 struct hm_buf *resp)
{
    int fd = hm_ctl_send(c, method, path, NULL, ctype, body, blen);
    if (fd < 0)
        return fd;
    int r = hm_ctl_read_head(fd, status, resp);
    while (r == 0) {
        hm_buf_reserve(resp, 65536);
        ssize_t n = recv(fd, resp->base + resp->len, resp->cap - resp->len, 0);
        if (n < 0)
            r = -errno;
        if (n <= 0)
            break;
        resp->len += (size_t)n;
    }
    close(fd);
    hm_buf_append_lit(resp, "\0");
    return r;
}

const char *hm_ctl_str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

int hm_ctl_api_error(int status, json_t *j)
{
    json_t *e = json_object_get(j, "error");
    fprintf(stderr, "hemsctl: %d %s: %s\n", status, hm_ctl_str(e, "code"),
            hm_ctl_str(e, "message"));
    return 1;
}

void hm_ctl_table_generic(json_t *j, void *arg)
{
    (void)arg;
    const char *k;
    size_t i;
    json_t *v;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%s\n", txt ? txt : "");
            free(txt);
        }
        return;
    }
    json_object_foreach(j, k, v)
    {
        char *txt = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%-24s %s\n", k, txt ? txt : json_string_value(v));
        free(txt);
    }
}

int hm_ctl_call(const struct hm_ctl *c, const char *method, const char *path,
                const char *ctype, const void *body, size_t blen, hm_ctl_table_fn table,
                void *arg, int *status, json_t **jout)
{
    int st = 0;
    struct hm_buf resp = {0};
    int r = hm_ctl_fetch(c, method, path, ctype, body, blen, &st, &resp);
    if (status)
        *status = st;
    if (jout)
        *jout = NULL;
    if (r < 0) {
        fprintf(stderr, "hemsctl: cannot reach hemsd at %s: %s\n", c->addr, strerror(-r));
        hm_buf_free(&resp);
        return 3;
    }
    json_t *j = resp.len > 1 ? json_loads(resp.base, JSON_DECODE_ANY, NULL) : NULL;
    int rc = 0;
    if (st >= 400)
        rc = hm_ctl_api_error(st, j);
    else if (c->json)
        fputs(resp.base, stdout);
    else if (j)
        (table ? table : hm_ctl_table_generic)(j, arg);
    else
        printf("ok (%d)\n", st);
    if (jout)
        *jout = j;
    else
        json_decref(j);
    hm_buf_free(&resp);
    return rc;
}

void hm_ctl_time(long long ms, char *out, size_t cap)
{
    if (ms <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void hm_ctl_pct(struct hm_buf *b, const char *s)
{
    hm_api_pct_encode(b, hm_slice_cstr(s));
}
