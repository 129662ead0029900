/* `hemsctl files ...`; see core/ctl_files.h. Control path only: blocking sockets, malloc. */
#include "core/ctl_files.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"

/* One request with a binary body on a fresh connection. 0 or -errno. */
static int request(const char *addr, const char *token, const char *method, const char *path,
                   const char *body, size_t blen, int *status, struct hm_buf *resp)
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
        hm_buf_printf(&req, "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n",
                      blen);
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
out:
    hm_buf_free(&req);
    hm_buf_free(&raw);
    close(fd);
    return r;
}

/* Appends <s> percent-encoded (RFC 3986 unreserved kept). */
static void pct(struct hm_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            hm_buf_append(b, s, 1);
        else
            hm_buf_printf(b, "%%%02X", c);
    }
}

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void when(json_t *o, const char *k)
{
    long long ms = (long long)json_integer_value(json_object_get(o, k));
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char b[32] = "-";
    if (ms > 0) {
        gmtime_r(&t, &tm);
        strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    printf("%-20s", b);
}

static void print_table(const char *sub, json_t *j)
{
    size_t i;
    json_t *f;
    if (!strcmp(sub, "list")) {
        printf("%-32s %-28s %10s %-12s %-8s %s\n", "NAME", "TYPE", "SIZE", "SHA256", "USER",
               "CREATED");
        json_array_foreach(json_object_get(j, "files"), i, f)
        {
            printf("%-32s %-28s %10lld %-12.12s %-8s ", str(f, "name"), str(f, "type"),
                   (long long)json_integer_value(json_object_get(f, "size")), str(f, "sha256"),
                   str(f, "username")[0] ? str(f, "username") : "-");
            when(f, "created_ms");
            printf("\n");
        }
    } else if (!strcmp(sub, "applied")) {
        printf("%-32s %-28s %-10s %-12s %s\n", "FILE", "TYPE", "TASK", "SHA256", "APPLIED");
        json_array_foreach(json_object_get(j, "applied"), i, f)
        {
            printf("%-32s %-28s %-10lld %-12.12s ", str(f, "file"), str(f, "file_type"),
                   (long long)json_integer_value(json_object_get(f, "task")), str(f, "sha256"));
            when(f, "applied_ms");
            printf("\n");
        }
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            char *txt = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%-12s %s\n", k, txt ? txt : json_string_value(v));
            free(txt);
        }
    }
}

/* Reads <path> whole into *<out> (malloc'd). 0 or -errno. */
static int slurp(const char *path, char **out, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) == -1) {
        r = -errno;
        goto out;
    }
    *out = hm_xmalloc((size_t)st.st_size + 1);
    *n = 0;
    while (*n < (size_t)st.st_size) {
        ssize_t k = read(fd, *out + *n, (size_t)st.st_size - *n);
        if (k <= 0) {
            r = k == 0 ? -EIO : -errno;
            free(*out);
            *out = NULL;
            goto out;
        }
        *n += (size_t)k;
    }
out:
    close(fd);
    return r;
}

int hm_ctl_files(const char *addr, const char *token, bool as_json, int argc, char **argv)
{
    if (argc < 1)
        return 2;
    const char *sub = argv[0];
    struct hm_buf path = {0}, resp = {0};
    const char *method = "GET";
    char *data = NULL;
    size_t dlen = 0;
    int rc = 2;
    hm_buf_append_lit(&path, "/api/v1/files");
    if (!strcmp(sub, "list") && argc == 1) {
    } else if (!strcmp(sub, "show") && argc == 2) {
        hm_buf_append_lit(&path, "/");
        pct(&path, argv[1]);
    } else if (!strcmp(sub, "delete") && argc == 2) {
        hm_buf_append_lit(&path, "/");
        pct(&path, argv[1]);
        method = "DELETE";
    } else if (!strcmp(sub, "applied") && argc == 2) {
        hm_buf_append_lit(&path, "?device=");
        pct(&path, argv[1]);
    } else if (!strcmp(sub, "upload") && argc >= 2) {
        const char *file = argv[1], *name = NULL, *type = "3", *user = NULL;
        for (int i = 2; i < argc; i++) {
            if (!strncmp(argv[i], "type=", 5))
                type = argv[i] + 5;
            else if (!strncmp(argv[i], "username=", 9))
                user = argv[i] + 9;
            else if (!name && !strchr(argv[i], '='))
                name = argv[i];
            else
                goto out;
        }
        if (!name) {
            const char *sl = strrchr(file, '/');
            name = sl ? sl + 1 : file;
        }
        int r = slurp(file, &data, &dlen);
        if (r < 0) {
            fprintf(stderr, "hemsctl: cannot read %s: %s\n", file, strerror(-r));
            rc = 3;
            goto out;
        }
        hm_buf_append_lit(&path, "/");
        pct(&path, name);
        hm_buf_append_lit(&path, "?type=");
        pct(&path, type);
        if (user) {
            hm_buf_append_lit(&path, "&username=");
            pct(&path, user);
        }
        method = "PUT";
    } else {
        goto out;
    }
    hm_buf_append_lit(&path, "\0");
    int status = 0;
    int r = request(addr, token, method, path.base, data ? data : (!strcmp(method, "PUT") ? "" : NULL),
                    dlen, &status, &resp);
    if (r < 0) {
        fprintf(stderr, "hemsctl: cannot reach hemsd at %s: %s\n", addr, strerror(-r));
        rc = 3;
        goto out;
    }
    hm_buf_append_lit(&resp, "\0");
    json_t *j = resp.len > 1 ? json_loads(resp.base, 0, NULL) : NULL;
    rc = 0;
    if (status >= 400) {
        json_t *e = json_object_get(j, "error");
        fprintf(stderr, "hemsctl: %d %s: %s\n", status, str(e, "code"), str(e, "message"));
        rc = 1;
    } else if (as_json) {
        fputs(resp.base, stdout);
    } else if (j) {
        print_table(sub, j);
    } else {
        printf("ok (%d)\n", status);
    }
    json_decref(j);
out:
    free(data);
    hm_buf_free(&path);
    hm_buf_free(&resp);
    return rc;
}
