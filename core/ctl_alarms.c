/* hemsctl alarm commands (core/ctl_alarms.h). */
#include "core/ctl_alarms.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"

bool hm_ctl_alarms_handles(const char *cmd)
{
    return !strcmp(cmd, "alarms") || !strcmp(cmd, "ack") || !strcmp(cmd, "tail");
}

/* Connects and sends one request; returns the socket or -errno. */
static int request(const struct hm_ctl *c, const char *method, const char *path, const char *extra,
                   const char *body)
{
    struct sockaddr_storage ss;
    int alen = hm_parse_hostport(c->addr, &ss);
    if (alen < 0)
        return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
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
        hm_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      strlen(body));
    hm_buf_append_lit(&req, "\r\n");
    if (body)
        hm_buf_append_str(&req, body);
    int r = fd;
    for (size_t off = 0; off < req.len;) {
        ssize_t w = send(fd, req.base + off, req.len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            r = -errno;
            close(fd);
            break;
        }
        off += (size_t)w;
    }
    hm_buf_free(&req);
    return r;
}

/* Reads until the end of the head; the status, and what followed the head in <rest>. */
static int read_head(int fd, int *status, struct hm_buf *rest)
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

static int fetch(const struct hm_ctl *c, const char *method, const char *path, const char *body,
                 int *status, struct hm_buf *resp)
{
    int fd = request(c, method, path, NULL, body);
    if (fd < 0)
        return fd;
    int r = read_head(fd, status, resp);
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

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void fmt_time(long long ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_alarm_line(json_t *a)
{
    char t[32];
    fmt_time((long long)json_integer_value(json_object_get(a, "event_time_ms")), t, sizeof(t));
    json_t *ack = json_object_get(a, "ack");
    printf("%s %-13s %-7s %s %s \"%s\" %s%s%s key=%s\n", t, str(a, "severity"),
           str(a, "notification"), str(a, "device"), str(a, "alarm_id"), str(a, "probable_cause"),
           str(a, "additional_text"), json_is_object(ack) ? " ack=" : "",
           json_is_object(ack) ? str(ack, "by") : "", str(a, "key"));
}

static int api_error(int status, json_t *j)
{
    json_t *e = json_object_get(j, "error");
    fprintf(stderr, "hemsctl: %d %s: %s\n", status, str(e, "code"), str(e, "message"));
    return 1;
}

static void pct_encode(const char *in, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *in && n + 4 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hx[ch >> 4];
            out[n++] = hx[ch & 15];
        }
    }
    out[n] = '\0';
}

static int simple(const struct hm_ctl *c, const char *method, const char *path, const char *body,
                  bool list)
{
    int status = 0;
    struct hm_buf resp = {0};
    int r = fetch(c, method, path, body, &status, &resp);
    if (r < 0) {
        fprintf(stderr, "hemsctl: cannot reach hemsd at %s: %s\n", c->addr, strerror(-r));
        hm_buf_free(&resp);
        return 3;
    }
    json_t *j = json_loads(resp.base, 0, NULL);
    int rc = 0;
    if (status >= 400) {
        rc = api_error(status, j);
    } else if (c->json) {
        fputs(resp.base, stdout);
    } else if (list) {
        printf("%-20s %-13s %-7s %s %s \"%s\" %s\n", "EVENT TIME", "SEVERITY", "NOTIF", "DEVICE",
               "ALARM", "PROBABLE CAUSE", "TEXT");
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(j, "alarms"), i, a) print_alarm_line(a);
        if (json_is_true(json_object_get(j, "truncated")))
            printf("(truncated: more alarms than one answer holds)\n");
    } else {
        print_alarm_line(j);
    }
    json_decref(j);
    hm_buf_free(&resp);
    return rc;
}

/* Feeds SSE bytes; prints complete events, remembers the last id. */
static void sse_feed(const struct hm_ctl *c, struct hm_buf *in, char last_id[64])
{
    while (in->len) {
        char *end = memmem(in->base, in->len, "\n\n", 2);
        if (!end)
            return;
        *end = '\0';
        const char *data = NULL;
        for (char *save, *ln = strtok_r(in->base, "\n", &save); ln;
             ln = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(ln, "id: ", 4))
                snprintf(last_id, 64, "%s", ln + 4);
            else if (!strncmp(ln, "data: ", 6))
                data = ln + 6;
        }
        if (data) {
            if (c->json) {
                printf("%s\n", data);
            } else {
                json_t *a = json_loads(data, 0, NULL);
                if (a)
                    print_alarm_line(a);
                json_decref(a);
            }
            fflush(stdout);
        }
        size_t used = (size_t)(end + 2 - in->base);
        memmove(in->base, in->base + used, in->len - used);
        in->len -= used;
    }
}

static int tail(const struct hm_ctl *c, const char *start)
{
    char last_id[64] = "", path[1024], dev[800] = "", extra[128];
    bool since = start && strlen(start) != 32;
    if (start && !since)
        snprintf(last_id, sizeof(last_id), "%s", start);
    if (c->device) {
        char enc[760];
        pct_encode(c->device, enc, sizeof(enc));
        snprintf(dev, sizeof(dev), "device=%s", enc);
    }
    unsigned backoff = 1;
    for (;;) {
        snprintf(path, sizeof(path), "/api/v1/alarms/stream?%s%s%s", dev,
                 since && !last_id[0] ? (dev[0] ? "&since=" : "since=") : "",
                 since && !last_id[0] ? start : "");
        snprintf(extra, sizeof(extra), "Accept: text/event-stream\r\n%s%s%s",
                 last_id[0] ? "Last-Event-ID: " : "", last_id, last_id[0] ? "\r\n" : "");
        int fd = request(c, "GET", path, extra, NULL);
        int status = 0;
        struct hm_buf in = {0};
        int r = fd < 0 ? fd : read_head(fd, &status, &in);
        if (r == 0 && status >= 400) {
            json_t *j = json_loadb(in.base ? in.base : "", in.len, 0, NULL);
            close(fd);
            hm_buf_free(&in);
            return api_error(status, j);
        }
        if (r == 0) {
            backoff = 1;
            sse_feed(c, &in, last_id);
            for (;;) {
                hm_buf_reserve(&in, 65536);
                ssize_t n = recv(fd, in.base + in.len, in.cap - in.len, 0);
                if (n <= 0)
                    break;
                in.len += (size_t)n;
                sse_feed(c, &in, last_id);
            }
            fprintf(stderr, "hemsctl: alarm stream closed; reconnecting%s%s\n",
                    last_id[0] ? " after " : "", last_id);
        } else {
            fprintf(stderr, "hemsctl: cannot reach hemsd at %s: %s; retrying\n", c->addr,
                    strerror(-r));
        }
        if (fd >= 0)
            close(fd);
        hm_buf_free(&in);
        sleep(backoff);
        if (backoff < 8)
            backoff *= 2;
    }
}

int hm_ctl_alarms_main(const struct hm_ctl *c, const char *cmd, int nargs, char **a)
{
    char path[1024], enc[760], body[512];
    if (!strcmp(cmd, "alarms") && nargs == 0) {
        if (c->device) {
            pct_encode(c->device, enc, sizeof(enc));
            snprintf(path, sizeof(path), "/api/v1/devices/%s/alarms", enc);
        } else {
            snprintf(path, sizeof(path), "/api/v1/alarms/active");
        }
        return simple(c, "GET", path, NULL, true);
    }
    if (!strcmp(cmd, "ack") && (nargs == 1 || nargs == 2) && strlen(a[0]) == 32) {
        snprintf(path, sizeof(path), "/api/v1/alarms/%s/ack", a[0]);
        const char *b = NULL;
        if (nargs == 2) {
            json_t *o = json_pack("{s:s}", "by", a[1]);
            char *t = json_dumps(o, JSON_COMPACT);
            snprintf(body, sizeof(body), "%s", t);
            free(t);
            json_decref(o);
            b = body;
        }
        return simple(c, "POST", path, b, false);
    }
    if (!strcmp(cmd, "tail") && (nargs == 1 || nargs == 2) && !strcmp(a[0], "alarms")) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        return tail(c, nargs == 2 ? a[1] : NULL);
    }
    return 2;
}
