/* Dashboard static files (core/ui_static.h). */
#include "core/ui_static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/util.h"

static const char *ctype_of(const char *name)
{
    static const struct {
        const char *ext, *ctype;
    } t[] = {{".html", "text/html; charset=utf-8"},
             {".js", "text/javascript; charset=utf-8"},
             {".css", "text/css; charset=utf-8"},
             {".svg", "image/svg+xml"},
             {".json", "application/json"},
             {".png", "image/png"},
             {".ico", "image/x-icon"},
             {".txt", "text/plain; charset=utf-8"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < HM_ARRAY_SIZE(t); i++)
        if (strcmp(dot, t[i].ext) == 0)
            return t[i].ctype;
    return "application/octet-stream";
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void default_dir(char *out, size_t cap)
{
    char exe[4096 - 32]; /* room for the suffixes in <out> (4096) */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    snprintf(out, cap, "%s/../share/hems/ui", exe);
    if (is_dir(out))
        return;
    snprintf(out, cap, "%s/../ops/ui", exe);
    if (!is_dir(out))
        out[0] = '\0';
}

static int load_file(struct hm_ui_file *f, const char *path, const char *name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)HM_UI_MAX_BYTES) {
        r = -EFBIG;
        goto out;
    }
    f->data = hm_xmalloc((size_t)st.st_size + 1);
    f->len = 0;
    while (f->len < (size_t)st.st_size) {
        ssize_t k = read(fd, f->data + f->len, (size_t)st.st_size - f->len);
        if (k <= 0) {
            r = k < 0 ? -errno : -EIO;
            free(f->data);
            f->data = NULL;
            goto out;
        }
        f->len += (size_t)k;
    }
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->ctype = ctype_of(name);
out:
    close(fd);
    return r;
}

int hm_ui_load(struct hm_ui *ui, const char *dir, char *err, size_t errlen)
{
    hm_ui_free(ui);
    if (dir && strcmp(dir, "off") == 0)
        return 0;
    if (dir && *dir)
        snprintf(ui->dir, sizeof(ui->dir), "%s", dir);
    else
        default_dir(ui->dir, sizeof(ui->dir));
    if (!ui->dir[0]) {
        hm_warn("dashboard not found next to the program: not served", "key=admin.ui_dir");
        return 0;
    }
    DIR *d = opendir(ui->dir);
    if (!d) {
        int e = errno;
        snprintf(err, errlen, "admin.ui_dir '%s': %s", ui->dir, strerror(e));
        return -e;
    }
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || nl >= sizeof(ui->f[0].name))
            continue;
        if (ui->n == HM_UI_MAX_FILES) {
            hm_warn("dashboard folder has too many files; extra ones not served", "dir=\"%s\"",
                    ui->dir);
            break;
        }
        char path[4096 + 256 + 2];
        snprintf(path, sizeof(path), "%s/%s", ui->dir, de->d_name);
        r = load_file(&ui->f[ui->n], path, de->d_name);
        if (r == -EFBIG) { /* subfolder or too big: skipped */
            r = 0;
            continue;
        }
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(-r));
            break;
        }
        ui->n++;
    }
    closedir(d);
    if (r < 0)
        return r;
    hm_info("dashboard loaded", "dir=\"%s\" files=%u", ui->dir, ui->n);
    return (int)ui->n;
}

void hm_ui_free(struct hm_ui *ui)
{
    for (unsigned i = 0; i < ui->n; i++)
        free(ui->f[i].data);
    ui->n = 0;
}

static int serve(struct hm_http_exchange *x, void *ctx)
{
    struct hm_ui *ui = ctx;
    enum hm_http_method m = x->req->method;
    struct hm_slice p = x->req->path;
    struct hm_slice name = hm_slice_eq_lit(p, "/") || hm_slice_eq_lit(p, "/ui/")
                               ? hm_slice_cstr("index.html")
                               : hm_slice(p.ptr + 4, p.len - 4);
    x->content_type = "text/plain";
    if (m != HM_HTTP_GET && m != HM_HTTP_HEAD) {
        hm_buf_append_lit(x->headers, "Allow: GET, HEAD\r\n");
        hm_buf_append_lit(x->out, "method not allowed\n");
        return 405;
    }
    for (unsigned i = 0; i < ui->n; i++) {
        const struct hm_ui_file *f = &ui->f[i];
        if (!hm_slice_eq(name, hm_slice_cstr(f->name)))
            continue;
        x->content_type = f->ctype;
        hm_buf_append_lit(x->headers, "Cache-Control: no-cache\r\n"
                                      "X-Content-Type-Options: nosniff\r\n"
                                      "Content-Security-Policy: default-src 'self'; "
                                      "connect-src 'self'; frame-ancestors 'none'\r\n");
        hm_buf_append(x->out, f->data, f->len);
        return 200;
    }
    hm_buf_append_lit(x->out, ui->n ? "not found\n" : "dashboard not installed (admin.ui_dir)\n");
    return 404;
}

unsigned hm_ui_routes(struct hm_route *r, struct hm_ui *ui)
{
    r[0] = (struct hm_route){HM_LISTENER_ADMIN, "/", true, serve, ui};
    r[1] = (struct hm_route){HM_LISTENER_ADMIN, "/ui/", false, serve, ui};
    return 2;
}
