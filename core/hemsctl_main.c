/*
 * hemsctl: the operator CLI over hemsd's northbound API (admin listener).
 *
 *   hemsctl [--admin ADDR:PORT] [--json] COMMAND [ARGS]
 *
 * Human tables by default, the API's JSON with --json. Exit codes: 0 ok, 1 the API answered
 * an error (its code and message are printed), 2 usage, 3 hemsd unreachable.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/ctl_campaigns.h"
#include "core/ctl_files.h"
#include "core/ctl_alarms.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: hemsctl [--admin ADDR:PORT] [--json] COMMAND [ARGS]\n"
            "\n"
            "  status                      node status (version, shards, devices, store)\n"
            "  devices [LIMIT]             list devices\n"
            "  device ID                   one device record\n"
            "  params ID [PREFIX]          stored parameters of a device\n"
            "  tasks ID                    tasks of a device\n"
            "  task ID JSON                queue a task, e.g. '{\"rpc\":\"Reboot\"}'\n"
            "  cancel ID TASK              cancel a queued task\n"
            "  backup DIR                  consistent compacted copy of the store into DIR\n"
            /* files: core/ctl_files.h */
            "  files list | show NAME | delete NAME | applied DEVICE\n"
            "  files upload PATH [NAME] [type=1..5] [username=U]\n"
            "                              configuration files / firmware for Download\n"
            /* campaigns: core/ctl_campaigns.h */
            "  campaigns [list] | show NAME | devices NAME [STATE] [OFFSET]\n"
            "  campaigns create JSON | create NAME FILE [type=1|3] [version=V]\n"
            "            [waves=2%%,10%%,100%%] [ratio=R] [pause=S] [timeout=S] [rate=N]\n"
            "            [in_flight=N] [cr_retry=S] [product_class=PC] [software_version=SW]\n"
            "            [tags=a,b] [devices=ID,..]\n"
            "  campaigns start|pause|cancel|delete NAME | resume NAME [ratio=R] [retry_failed]\n"
            "                              firmware / configuration rollouts in waves\n"
            "  alarms [--device ID]        current alarms (all devices, or one)\n"
            "  ack KEY [BY]                acknowledge an alarm (operator)\n"
            "  tail alarms [--device ID] [SINCE_MS|KEY]\n"
            "                              follow the live alarm stream (reconnects, resumes)\n"
            "\n"
            "  --admin ADDR:PORT   hemsd admin listener (default $HEMS_ADMIN or 127.0.0.1:7557)\n"
            "  --token T           bearer token (default $HEMS_TOKEN)\n"
            "  --json              print the API's JSON instead of a table\n");
}

/* One HTTP/1.1 request on a fresh connection; fills <status> and <body>. 0 or -errno. */
static const char *token;

static int http(const char *addr, const char *method, const char *path, const char *body,
                int *status, struct hm_buf *resp)
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
    if (connect(fd, (struct sockaddr *)&ss, (socklen_t)alen) == -1) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct hm_buf req = {0};
    size_t bl = body ? strlen(body) : 0;
    hm_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path,
                  addr);
    if (token)
        hm_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    if (body)
        hm_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", bl);
    hm_buf_append_lit(&req, "\r\n");
    if (body)
        hm_buf_append(&req, body, bl);
    size_t off = 0;
    while (off < req.len) {
        ssize_t w = send(fd, req.base + off, req.len - off, MSG_NOSIGNAL);
        if (w == -1) {
            int e = errno;
            hm_buf_free(&req);
            close(fd);
            return -e;
        }
        off += (size_t)w;
    }
    hm_buf_free(&req);
    struct hm_buf raw = {0};
    for (;;) {
        hm_buf_reserve(&raw, 65536);
        ssize_t n = recv(fd, raw.base + raw.len, raw.cap - raw.len, 0);
        if (n == -1) {
            int e = errno;
            close(fd);
            hm_buf_free(&raw);
            return -e;
        }
        if (n == 0)
            break;
        raw.len += (size_t)n;
    }
    close(fd);
    hm_buf_append_lit(&raw, "\0");
    char *sep = strstr(raw.base, "\r\n\r\n");
    if (!sep || sscanf(raw.base, "HTTP/1.%*d %d", status) != 1) {
        hm_buf_free(&raw);
        return -EPROTO;
    }
    hm_buf_append_str(resp, sep + 4);
    hm_buf_free(&raw);
    return 0;
}

static const char *s(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void print_time(long long ms)
{
    if (ms <= 0) {
        printf("%-20s", "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char b[32];
    gmtime_r(&t, &tm);
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-20s", b);
}

static void table(const char *cmd, json_t *j)
{
    if (!strcmp(cmd, "devices")) {
        printf("%-40s %-11s %-20s %-14s %s\n", "DEVICE", "STATE", "LAST INFORM", "SOFTWARE",
               "SOURCE");
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(j, "devices"), i, d)
        {
            printf("%-40s %-11s ", s(d, "id"), s(d, "registration"));
            print_time((long long)json_integer_value(json_object_get(d, "last_inform_ms")));
            printf(" %-14s %s\n", s(d, "software_version"), s(d, "source_address"));
        }
        if (json_is_string(json_object_get(j, "next")))
            printf("(more: hemsctl devices after %s)\n", s(j, "next"));
    } else if (!strcmp(cmd, "params")) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(j, "parameters"), i, p)
            printf("%-70s %-16s %s\n", s(p, "name"), s(p, "type"), s(p, "value"));
    } else if (!strcmp(cmd, "tasks")) {
        printf("%-8s %-24s %-8s %-6s %s\n", "ID", "RPC", "STATE", "FAULT", "UPDATED");
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(j, "tasks"), i, t)
        {
            printf("%-8lld %-24s %-8s %-6lld ", (long long)json_integer_value(json_object_get(t, "id")),
                   s(t, "rpc"), s(t, "state"),
                   (long long)json_integer_value(json_object_get(t, "fault_code")));
            print_time((long long)json_integer_value(json_object_get(t, "updated_ms")));
            printf("\n");
        }
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            char *txt = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-24s %s\n", k, txt ? txt : json_string_value(v));
            free(txt);
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"admin", required_argument, NULL, 'a'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"token", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"device", required_argument, NULL, 'd'},
                                       {NULL, 0, NULL, 0}};
    const char *addr = getenv("HEMS_ADMIN") ? getenv("HEMS_ADMIN") : "127.0.0.1:7557";
    bool as_json = false;
    int ch;
    token = getenv("HEMS_TOKEN");
    const char *device = NULL;
    while ((ch = getopt_long(argc, argv, "a:jt:hd:", lo, NULL)) != -1) {
        if (ch == 'd')
            device = optarg;
        else if (ch == 't')
            token = optarg;
        else if (ch == 'a')
            addr = optarg;
        else if (ch == 'j')
            as_json = true;
        else if (ch == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **a = argv + optind + 1;
    if (!strcmp(cmd, "campaigns")) { /* campaigns: core/ctl_campaigns.h */
        int crc = hm_ctl_campaigns(addr, token, as_json, nargs, a);
        if (crc == 2)
            usage(stderr);
        return crc;
    }
    if (!strcmp(cmd, "files")) { /* files: core/ctl_files.h */
        int frc = hm_ctl_files(addr, token, as_json, nargs, a);
        if (frc == 2)
            usage(stderr);
        return frc;
    }
    if (hm_ctl_alarms_handles(cmd)) { /* core/ctl_alarms.h */
        struct hm_ctl c = {addr, token, device, as_json};
        int rc = hm_ctl_alarms_main(&c, cmd, nargs, a);
        if (rc == 2)
            usage(stderr);
        return rc;
    }
    char path[2048], body[4200];
    const char *method = "GET", *b = NULL;
    if (!strcmp(cmd, "status") && nargs == 0)
        snprintf(path, sizeof(path), "/api/v1/status");
    else if (!strcmp(cmd, "devices") && nargs <= 1)
        snprintf(path, sizeof(path), "/api/v1/devices?limit=%s", nargs ? a[0] : "100");
    else if (!strcmp(cmd, "device") && nargs == 1)
        snprintf(path, sizeof(path), "/api/v1/devices/%s", a[0]);
    else if (!strcmp(cmd, "params") && (nargs == 1 || nargs == 2))
        snprintf(path, sizeof(path), "/api/v1/devices/%s/parameters?prefix=%s", a[0],
                 nargs == 2 ? a[1] : "");
    else if (!strcmp(cmd, "tasks") && nargs == 1)
        snprintf(path, sizeof(path), "/api/v1/devices/%s/tasks", a[0]);
    else if (!strcmp(cmd, "task") && nargs == 2) {
        snprintf(path, sizeof(path), "/api/v1/devices/%s/tasks", a[0]);
        method = "POST";
        b = a[1];
    } else if (!strcmp(cmd, "cancel") && nargs == 2) {
        snprintf(path, sizeof(path), "/api/v1/devices/%s/tasks/%s", a[0], a[1]);
        method = "DELETE";
    } else if (!strcmp(cmd, "backup") && nargs == 1) {
        json_t *o = json_pack("{s:s}", "path", a[0]);
        char *t = json_dumps(o, JSON_COMPACT);
        snprintf(body, sizeof(body), "%s", t);
        free(t);
        json_decref(o);
        snprintf(path, sizeof(path), "/api/v1/backup");
        method = "POST";
        b = body;
    } else {
        usage(stderr);
        return 2;
    }
    int status = 0;
    struct hm_buf resp = {0};
    int r = http(addr, method, path, b, &status, &resp);
    if (r < 0) {
        fprintf(stderr, "hemsctl: cannot reach hemsd at %s: %s\n", addr, strerror(-r));
        hm_buf_free(&resp);
        return 3;
    }
    hm_buf_append_lit(&resp, "\0");
    json_t *j = resp.len > 1 ? json_loads(resp.base, 0, NULL) : NULL;
    int rc = 0;
    if (status >= 400) {
        json_t *e = json_object_get(j, "error");
        fprintf(stderr, "hemsctl: %d %s: %s\n", status, s(e, "code"), s(e, "message"));
        rc = 1;
    } else if (as_json) {
        fputs(resp.base, stdout);
    } else if (j) {
        table(cmd, j);
    } else {
        printf("ok (%d)\n", status);
    }
    json_decref(j);
    hm_buf_free(&resp);
    return rc;
}
