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
#include "core/ctl.h"

static void when(json_t *o, const char *k)
{
    char b[32];
    hm_ctl_time((long long)json_integer_value(json_object_get(o, k)), b, sizeof(b));
    printf("%-20s", b);
}

#define str hm_ctl_str

static void print_table(json_t *j, void *arg)
{
    const char *sub = arg;
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
        hm_ctl_table_generic(j, NULL);
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

int hm_ctl_files(const struct hm_ctl *c, int argc, char **argv)
{
    if (argc < 1)
        return 2;
    const char *sub = argv[0];
    struct hm_buf path = {0};
    const char *method = "GET";
    char *data = NULL;
    size_t dlen = 0;
    int rc = 2;
    hm_buf_append_lit(&path, "/api/v1/files");
    if (!strcmp(sub, "list") && argc == 1) {
    } else if (!strcmp(sub, "show") && argc == 2) {
        hm_buf_append_lit(&path, "/");
        hm_ctl_pct(&path, argv[1]);
    } else if (!strcmp(sub, "delete") && argc == 2) {
        hm_buf_append_lit(&path, "/");
        hm_ctl_pct(&path, argv[1]);
        method = "DELETE";
    } else if (!strcmp(sub, "applied") && argc == 2) {
        hm_buf_append_lit(&path, "?device=");
        hm_ctl_pct(&path, argv[1]);
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
        hm_ctl_pct(&path, name);
        hm_buf_append_lit(&path, "?type=");
        hm_ctl_pct(&path, type);
        if (user) {
            hm_buf_append_lit(&path, "&username=");
            hm_ctl_pct(&path, user);
        }
        method = "PUT";
    } else {
        goto out;
    }
    hm_buf_append_lit(&path, "\0");
    rc = hm_ctl_call(c, method, path.base, "application/octet-stream",
                     data ? data : (!strcmp(method, "PUT") ? "" : NULL), dlen, print_table,
                     (void *)sub, NULL, NULL);
out:
    free(data);
    hm_buf_free(&path);
    return rc;
}
