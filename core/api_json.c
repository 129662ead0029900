/* JSON answers of the northbound API (core/api_json.h). */
#include "core/api_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

int hm_api_send_json(struct hm_http_exchange *x, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (s)
        hm_buf_append_str(x->out, s);
    hm_buf_append_lit(x->out, "\n");
    free(s);
    json_decref(j);
    x->content_type = HM_API_JSON_CTYPE;
    return status;
}

json_t *hm_api_error_json(const char *code, const char *msg)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

void hm_api_finish_json(struct hm_conn_ref ref, int status, json_t *j, bool close)
{
    struct hm_buf *out, *hdrs;
    if (hm_httpd_deferred_bufs(ref, &out, &hdrs)) {
        if (j) {
            char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (s)
                hm_buf_append_str(out, s);
            hm_buf_append_lit(out, "\n");
            free(s);
        }
        hm_httpd_finish(ref, status, j ? HM_API_JSON_CTYPE : NULL, close);
    }
    json_decref(j);
}

int hm_api_error(struct hm_http_exchange *x, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return hm_api_send_json(x, status, hm_api_error_json(code, msg));
}

static int pct_decode(struct hm_slice in, char *out, size_t cap, bool plus_is_space)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        if (c == '%') {
            if (i + 2 >= in.len)
                return -EINVAL;
            char h[3] = {in.ptr[i + 1], in.ptr[i + 2], 0};
            char *end;
            long v = strtol(h, &end, 16);
            if (*end || v <= 0)
                return -EINVAL;
            c = (char)v;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (n >= cap)
            return -EINVAL;
        out[n++] = c;
    }
    return (int)n;
}

int hm_api_pct_decode(struct hm_slice in, char *out, size_t cap)
{
    return pct_decode(in, out, cap, true);
}

int hm_api_path_segment(struct hm_slice in, char *out, size_t cap)
{
    int n = cap ? pct_decode(in, out, cap - 1, false) : -EINVAL;
    if (n <= 0) {
        if (cap)
            out[0] = '\0';
        return -EINVAL;
    }
    out[n] = '\0';
    return n;
}

void hm_api_pct_encode(struct hm_buf *out, struct hm_slice in)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            hm_buf_append(out, &in.ptr[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            hm_buf_append(out, e, 3);
        }
    }
}

int hm_api_query(struct hm_slice q, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i < q.len) {
        const char *amp = memchr(q.ptr + i, '&', q.len - i);
        size_t end = amp ? (size_t)(amp - q.ptr) : q.len;
        if (end - i > nl && memcmp(q.ptr + i, name, nl) == 0 && q.ptr[i + nl] == '=') {
            int r = cap ? hm_api_pct_decode(hm_slice(q.ptr + i + nl + 1, end - i - nl - 1), out,
                                     cap - 1)
                        : -EINVAL;
            if (r < 0) {
                if (cap)
                    out[0] = '\0';
                return r;
            }
            out[r] = '\0';
            return r;
        }
        i = end + 1;
    }
    return -ENOENT;
}
