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
#include "core/ctl.h"

bool hm_ctl_alarms_handles(const char *cmd)
{
    return !strcmp(cmd, "alarms") || !strcmp(cmd, "ack") || !strcmp(cmd, "tail");
}

#define str hm_ctl_str

static void print_alarm_line(json_t *a)
{
    char t[32];
    hm_ctl_time((long long)json_integer_value(json_object_get(a, "event_time_ms")), t, sizeof(t));
    json_t *ack = json_object_get(a, "ack");
    printf("%s %-13s %-7s %s %s \"%s\" %s%s%s key=%s\n", t, str(a, "severity"),
           str(a, "notification"), str(a, "device"), str(a, "alarm_id"), str(a, "probable_cause"),
           str(a, "additional_text"), json_is_object(ack) ? " ack=" : "",
           json_is_object(ack) ? str(ack, "by") : "", str(a, "key"));
}

static void alarm_table(json_t *j, void *arg)
{
    if (!arg) { /* one alarm (ack) */
        print_alarm_line(j);
        return;
    }
    printf("%-20s %-13s %-7s %s %s \"%s\" %s\n", "EVENT TIME", "SEVERITY", "NOTIF", "DEVICE",
           "ALARM", "PROBABLE CAUSE", "TEXT");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "alarms"), i, a) print_alarm_line(a);
    if (json_is_true(json_object_get(j, "truncated")))
        printf("(truncated: more alarms than one answer holds)\n");
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
    char last_id[64] = "", extra[128];
    bool since = start && strlen(start) != 32;
    if (start && !since)
        snprintf(last_id, sizeof(last_id), "%s", start);
    struct hm_buf path = {0};
    unsigned backoff = 1;
    for (;;) {
        hm_buf_reset(&path);
        hm_buf_append_lit(&path, "/api/v1/alarms/stream?");
        if (c->device) {
            hm_buf_append_lit(&path, "device=");
            hm_ctl_pct(&path, c->device);
        }
        if (since && !last_id[0]) {
            hm_buf_append_str(&path, c->device ? "&since=" : "since=");
            hm_ctl_pct(&path, start);
        }
        hm_buf_append_lit(&path, "\0");
        snprintf(extra, sizeof(extra), "Accept: text/event-stream\r\n%s%s%s",
                 last_id[0] ? "Last-Event-ID: " : "", last_id, last_id[0] ? "\r\n" : "");
        int fd = hm_ctl_send(c, "GET", path.base, extra, NULL, NULL, 0);
        int status = 0;
        struct hm_buf in = {0};
        int r = fd < 0 ? fd : hm_ctl_read_head(fd, &status, &in);
        if (r == 0 && status >= 400) {
            json_t *j = json_loadb(in.base ? in.base : "", in.len, 0, NULL);
            close(fd);
            hm_buf_free(&in);
            hm_buf_free(&path);
            r = hm_ctl_api_error(status, j);
            json_decref(j);
            return r;
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
    struct hm_buf path = {0};
    int rc = 2;
    if (!strcmp(cmd, "alarms") && nargs == 0) {
        if (c->device) {
            hm_buf_append_lit(&path, "/api/v1/devices/");
            hm_ctl_pct(&path, c->device);
            hm_buf_append_lit(&path, "/alarms");
        } else {
            hm_buf_append_lit(&path, "/api/v1/alarms/active");
        }
        hm_buf_append_lit(&path, "\0");
        rc = hm_ctl_call(c, "GET", path.base, NULL, NULL, 0, alarm_table, "list", NULL, NULL);
    } else if (!strcmp(cmd, "ack") && (nargs == 1 || nargs == 2) && strlen(a[0]) == 32) {
        hm_buf_printf(&path, "/api/v1/alarms/%s/ack", a[0]);
        char *b = NULL;
        if (nargs == 2) {
            json_t *o = json_pack("{s:s}", "by", a[1]);
            b = json_dumps(o, JSON_COMPACT);
            json_decref(o);
        }
        hm_buf_append_lit(&path, "\0");
        rc = hm_ctl_call(c, "POST", path.base, "application/json", b, b ? strlen(b) : 0,
                         alarm_table, NULL, NULL, NULL);
        free(b);
    } else if (!strcmp(cmd, "tail") && (nargs == 1 || nargs == 2) && !strcmp(a[0], "alarms")) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        rc = tail(c, nargs == 2 ? a[1] : NULL);
    }
    hm_buf_free(&path);
    return rc;
}
