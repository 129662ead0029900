/*
 * File server; see core/files.h and docs/files.md.
 *
 *   shard (GET /files/x, API PUT/DELETE)  --mpsc+eventfd-->  I/O thread
 *        ^  answer via hm_shard_post  <---------------------'   | pread / write+fsync+rename
 *                                                               | hm_store_submit, wait commit
 *
 * Metadata: HM_DB_FILES "cfg/<name>" = version byte 1 + compact JSON
 *   {"name","type","size","sha256","created_ms"[,"username","realm","ha1","cred_id"]}
 * (the PM pipeline keeps its own markers under "pm/" in the same database).
 */
#include "core/api_json.h"
#include "core/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/mpsc.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/http_range.h"

#define JSON_CTYPE "application/json"
#define NAME_MAX_ 128
#define DIR_MAX 4096
#define KEY_PREFIX "cfg/"
#define APPLIED_PREFIX "applied/"

enum job_kind { J_PUT, J_DEL, J_READ };

struct job {
    struct hm_shard_msg msg;
    struct hm_mpsc_node node;
    struct hm_conn_ref ref;
    enum job_kind kind;
    int status;           /* HTTP status of the answer */
    char name[NAME_MAX_ + 1];
    char sha[65];         /* J_READ: the blob */
    char type[64];        /* J_PUT */
    char user[65];        /* J_PUT: "" = no credentials */
    uint64_t off, len;    /* J_READ: the range */
    char *data;           /* J_PUT: the body; J_READ: the bytes read (owned) */
    size_t dlen;
    json_t *answer;       /* J_PUT / J_DEL: the JSON answer (owned) */
    char hdrs[256];       /* J_READ: extra header lines */
    bool close;           /* the request asked for Connection: close */
    struct hm_files *f;
};

struct hm_files {
    struct hm_files_opts o;
    char dir[DIR_MAX];
    char base_url[1024];
    uint8_t secret[32];
    struct hm_auth_nonce_key nonce_key;
    struct hm_store *store;
    struct hm_store_reader *rd; /* the I/O thread's */
    pthread_t th;
    bool started;
    struct hm_mpsc q;
    int efd;
    atomic_bool stop;
    atomic_uint_fast64_t served, bytes_served, uploads, deletes, auth_failures, errors;
    atomic_uint_fast64_t inflight_bytes, shed;
};

/* ---- pure helpers ---------------------------------------------------------------------- */

bool hm_files_name_ok(struct hm_slice n)
{
    if (n.len == 0 || n.len > NAME_MAX_ || n.ptr[0] == '.')
        return false;
    for (size_t i = 0; i < n.len; i++) {
        char c = n.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static const char *const file_types[] = {
    NULL,
    "1 Firmware Upgrade Image",
    "2 Web Content",
    "3 Vendor Configuration File",
    "4 Tone File",
    "5 Ringer File",
};

const char *hm_files_type_canon(const char *s)
{
    if (!s)
        return NULL;
    for (size_t i = 1; i < HM_ARRAY_SIZE(file_types); i++)
        if ((s[0] == (char)('0' + i) && s[1] == '\0') || strcmp(s, file_types[i]) == 0)
            return file_types[i];
    return NULL;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int hm_files_password(void *arg, struct hm_slice cred_id, char *out, size_t cap)
{
    struct hm_files *f = arg;
    if (!f || cred_id.len == 0 || cred_id.len > 64 || cap < 33)
        return -EINVAL;
    uint8_t mac[32];
    unsigned ml = 0;
    HMAC(EVP_sha256(), f->secret, sizeof(f->secret), (const uint8_t *)cred_id.ptr, cred_id.len,
         mac, &ml);
    hex(mac, 16, out); /* 128 bits: plenty for a per-file download credential */
    return 32;
}

/* ---- metadata -------------------------------------------------------------------------- */

static int meta_key(char *k, size_t cap, const char *name)
{
    int n = snprintf(k, cap, KEY_PREFIX "%s", name);
    return n > 0 && (size_t)n < cap ? n : -ENAMETOOLONG;
}

/* The metadata of <name> as a new JSON object, or NULL (absent or unreadable); *<rc> gets
 * 0, -ENOENT or the store error. Opens and ends its own snapshot. */
static json_t *meta_get(struct hm_store_reader *rd, const char *name, int *rc)
{
    char key[NAME_MAX_ + 8];
    int kl = meta_key(key, sizeof(key), name);
    if (kl < 0) {
        *rc = kl;
        return NULL;
    }
    int r = hm_store_read_begin(rd);
    if (r < 0) {
        *rc = r;
        return NULL;
    }
    struct hm_slice v;
    json_t *j = NULL;
    r = hm_store_get(rd, HM_DB_FILES, hm_slice(key, (size_t)kl), &v);
    if (r == 0) {
        j = v.len > 1 && v.ptr[0] == 1 ? json_loadb(v.ptr + 1, v.len - 1, 0, NULL) : NULL;
        if (!j)
            r = HM_ECORRUPT;
    }
    hm_store_read_end(rd);
    *rc = r;
    return j;
}

static int put_json(struct hm_store_batch *b, struct hm_slice key, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    char *v = hm_store_batch_put_reserve(b, HM_DB_FILES, key, n + 1);
    if (v) {
        v[0] = 1;
        memcpy(v + 1, s, n);
    }
    free(s);
    return v ? 0 : -E2BIG;
}

/* What the API shows: no HA1, no credential id. */
static json_t *meta_public(json_t *m)
{
    json_t *p = json_deep_copy(m);
    json_object_del(p, "ha1");
    json_object_del(p, "cred_id");
    json_object_del(p, "realm");
    return p;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* ---- I/O thread ------------------------------------------------------------------------ */

static void wake(int efd)
{
    uint64_t one = 1;
    ssize_t n = write(efd, &one, sizeof(one));
    (void)n;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int write_all(int fd, const char *d, size_t n)
{
    while (n) {
        ssize_t k = write(fd, d, n);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        d += k;
        n -= (size_t)k;
    }
    return 0;
}

struct ref_ctx {
    const char *sha;
    bool found;
};

static int ref_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    (void)key;
    struct ref_ctx *c = arg;
    char pat[80];
    int n = snprintf(pat, sizeof(pat), "\"sha256\":\"%s\"", c->sha);
    if (memmem(val.ptr, val.len, pat, (size_t)n)) {
        c->found = true;
        return 1;
    }
    return 0;
}

/* 1 when some metadata refers to blob <sha>, 0 if none, < 0 on error. */
static int blob_referenced(struct hm_files *f, const char *sha)
{
    int r = hm_store_read_begin(f->rd);
    if (r < 0)
        return r;
    struct ref_ctx c = {sha, false};
    r = hm_store_scan(f->rd, HM_DB_FILES, HM_SLICE_LIT(KEY_PREFIX), hm_slice(NULL, 0), ref_cb, &c);
    hm_store_read_end(f->rd);
    return r < 0 ? r : c.found;
}

static void blob_gc(struct hm_files *f, const char *sha)
{
    if (!sha[0] || blob_referenced(f, sha) != 0)
        return;
    char path[DIR_MAX + 80];
    snprintf(path, sizeof(path), "%s/%s", f->dir, sha);
    if (unlink(path) == 0)
        hm_debug("file blob removed", "sha256=%s", sha);
}

/* At start: temp files of interrupted uploads and blobs no metadata refers to. */
static void sweep(struct hm_files *f)
{
    DIR *d = opendir(f->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[DIR_MAX + 300];
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
            unlink(path);
        } else if (strlen(e->d_name) == 64 && e->d_name[0] != '.') {
            blob_gc(f, e->d_name);
        }
    }
    closedir(d);
}

static json_t *jerr(const char *code, const char *msg)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

static void do_put(struct hm_files *f, struct job *j)
{
    uint8_t dg[32];
    char sha[65], path[DIR_MAX + 80], tmp[DIR_MAX + 80];
    SHA256((const uint8_t *)j->data, j->dlen, dg);
    hex(dg, 32, sha);
    snprintf(path, sizeof(path), "%s/%s", f->dir, sha);
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", f->dir, sha);
    int r = 0;
    if (access(path, F_OK) != 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        r = fd == -1 ? -errno : write_all(fd, j->data, j->dlen);
        if (r == 0 && fsync(fd) == -1)
            r = -errno;
        if (fd >= 0)
            close(fd);
        if (r == 0 && rename(tmp, path) == -1)
            r = -errno;
        if (r < 0) {
            unlink(tmp);
            goto fail;
        }
        fsync_dir(f->dir);
    }
    int gr;
    json_t *old = meta_get(f->rd, j->name, &gr);
    char old_sha[65] = "", old_cred[65] = "";
    if (old) {
        snprintf(old_sha, sizeof(old_sha), "%s", jstr(old, "sha256"));
        /* same user and realm: keep the password, so tasks already queued still fetch it */
        if (j->user[0] && !strcmp(jstr(old, "username"), j->user) &&
            !strcmp(jstr(old, "realm"), f->o.realm) && strlen(jstr(old, "cred_id")) == 32)
            snprintf(old_cred, sizeof(old_cred), "%s", jstr(old, "cred_id"));
    }
    json_decref(old);
    if (gr < 0 && gr != -ENOENT) {
        r = gr;
        goto fail;
    }
    json_t *m = json_pack("{s:s,s:s,s:I,s:s,s:I}", "name", j->name, "type", j->type, "size",
                          (json_int_t)j->dlen, "sha256", sha, "created_ms",
                          (json_int_t)hm_now_ms());
    char pw[40] = "";
    if (j->user[0]) {
        uint8_t id[16];
        char idh[33], ha1[HM_AUTH_HEX_LEN + 1];
        if (old_cred[0]) {
            memcpy(idh, old_cred, sizeof(idh));
        } else {
            RAND_bytes(id, sizeof(id));
            hex(id, sizeof(id), idh);
        }
        hm_files_password(f, hm_slice(idh, 32), pw, sizeof(pw));
        hm_auth_ha1(hm_slice_cstr(j->user), hm_slice_cstr(f->o.realm), hm_slice_cstr(pw), ha1);
        json_object_set_new(m, "username", json_string(j->user));
        json_object_set_new(m, "realm", json_string(f->o.realm));
        json_object_set_new(m, "ha1", json_string(ha1));
        json_object_set_new(m, "cred_id", json_string(idh));
    }
    char key[NAME_MAX_ + 8];
    int kl = meta_key(key, sizeof(key), j->name);
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    r = put_json(&b, hm_slice(key, (size_t)kl), m);
    if (r == 0)
        /* uploads are rare: this thread may wait for the commit */
        r = hm_store_submit_wait(f->store, &b, 0);
    hm_store_batch_fini(&b);
    if (r < 0) {
        json_decref(m);
        blob_gc(f, sha);
        goto fail;
    }
    if (old_sha[0] && strcmp(old_sha, sha) != 0)
        blob_gc(f, old_sha);
    atomic_fetch_add(&f->uploads, 1);
    hm_info("file uploaded", "name=\"%s\" size=%zu sha256=%s type=\"%s\" credentials=%s",
            j->name, j->dlen, sha, j->type, j->user[0] ? "yes" : "no");
    j->answer = meta_public(m);
    if (pw[0])
        json_object_set_new(j->answer, "password", json_string(pw));
    json_decref(m);
    j->status = old_sha[0] ? 200 : 201;
    return;
fail:
    atomic_fetch_add(&f->errors, 1);
    hm_err("file upload failed", "name=\"%s\" err=\"%s\"", j->name, hm_strerror(r));
    j->answer = jerr(r == -ENOSPC ? "no_space" : "store_error", hm_strerror(r));
    j->status = r == -ENOSPC ? 507 : 503;
}

static void do_del(struct hm_files *f, struct job *j)
{
    int r;
    json_t *old = meta_get(f->rd, j->name, &r);
    if (!old) {
        j->status = r == -ENOENT ? 404 : 503;
        j->answer = jerr(r == -ENOENT ? "not_found" : "store_error",
                         r == -ENOENT ? "no such file" : hm_strerror(r));
        return;
    }
    char sha[65];
    snprintf(sha, sizeof(sha), "%s", jstr(old, "sha256"));
    json_decref(old);
    char key[NAME_MAX_ + 8];
    int kl = meta_key(key, sizeof(key), j->name);
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    r = hm_store_batch_del(&b, HM_DB_FILES, hm_slice(key, (size_t)kl));
    if (r == 0)
        r = hm_store_submit_wait(f->store, &b, 0);
    hm_store_batch_fini(&b);
    if (r < 0) {
        atomic_fetch_add(&f->errors, 1);
        j->status = 503;
        j->answer = jerr("store_error", hm_strerror(r));
        return;
    }
    blob_gc(f, sha);
    atomic_fetch_add(&f->deletes, 1);
    hm_info("file deleted", "name=\"%s\"", j->name);
    j->status = 204;
}

static void do_read(struct hm_files *f, struct job *j)
{
    char path[DIR_MAX + 80];
    snprintf(path, sizeof(path), "%s/%s", f->dir, j->sha);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        atomic_fetch_add(&f->errors, 1);
        hm_err("file blob missing", "name=\"%s\" path=\"%s\" err=\"%s\"", j->name, path,
               strerror(errno));
        j->status = errno == ENOENT ? 404 : 500;
        return;
    }
    j->data = hm_xmalloc(j->len ? j->len : 1);
    size_t got = 0;
    while (got < j->len) {
        ssize_t n = pread(fd, j->data + got, j->len - got, (off_t)(j->off + got));
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != j->len) {
        atomic_fetch_add(&f->errors, 1);
        hm_err("file blob shorter than its metadata", "name=\"%s\" path=\"%s\"", j->name, path);
        j->status = 500;
        return;
    }
    j->dlen = got;
}

static void reply(struct hm_shard *s, struct hm_shard_msg *m)
{
    (void)s;
    struct job *j = HM_CONTAINER_OF(m, struct job, msg);
    struct hm_buf *out, *hdr;
    if (j->kind == J_READ)
        atomic_fetch_sub(&j->f->inflight_bytes, j->len);
    if (hm_httpd_deferred_bufs(j->ref, &out, &hdr)) {
        const char *ct = NULL;
        if (j->kind == J_READ && (j->status == 200 || j->status == 206)) {
            hm_buf_append(out, j->data, j->dlen);
            hm_buf_append_str(hdr, j->hdrs);
            ct = "application/octet-stream";
        } else if (j->answer) {
            char *str = json_dumps(j->answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
            hm_buf_append_str(out, str);
            hm_buf_append_lit(out, "\n");
            free(str);
            ct = JSON_CTYPE;
        }
        /* hm_httpd_finish() does not look at the request's Connection header: pass it on */
        hm_httpd_finish(j->ref, j->status, ct, j->close);
    }
    json_decref(j->answer);
    free(j->data);
    free(j);
}

static void *io_main(void *arg)
{
    struct hm_files *f = arg;
    sweep(f);
    for (;;) {
        struct hm_mpsc_node *n = hm_mpsc_pop_all(&f->q);
        if (!n) {
            if (atomic_load(&f->stop))
                break;
            uint64_t v;
            ssize_t k = read(f->efd, &v, sizeof(v));
            (void)k;
            continue;
        }
        while (n) {
            struct hm_mpsc_node *next = n->next;
            struct job *j = HM_CONTAINER_OF(n, struct job, node);
            if (j->kind == J_PUT) {
                do_put(f, j);
                free(j->data);
                j->data = NULL;
            } else if (j->kind == J_DEL) {
                do_del(f, j);
            } else {
                do_read(f, j);
            }
            j->msg.fn = reply;
            hm_shard_post(j->ref.shard, &j->msg);
            n = next;
        }
    }
    return NULL;
}

static void enqueue(struct hm_files *f, struct job *j, struct hm_http_exchange *x)
{
    j->ref = x->ref;
    j->close = !x->req->keep_alive;
    if (hm_mpsc_push(&f->q, &j->node))
        wake(f->efd);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static int load_secret(struct hm_files *f, char *err, size_t errlen)
{
    char path[DIR_MAX + 16];
    snprintf(path, sizeof(path), "%s/.secret", f->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, f->secret, sizeof(f->secret));
        close(fd);
        if (n == (ssize_t)sizeof(f->secret))
            return 0;
        snprintf(err, errlen, "%s: truncated secret (remove it: per-file passwords change)", path);
        return HM_ECORRUPT;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (RAND_bytes(f->secret, sizeof(f->secret)) != 1) {
        snprintf(err, errlen, "no randomness for the file credential secret");
        return -EIO;
    }
    char tmp[DIR_MAX + 24];
    snprintf(tmp, sizeof(tmp), "%s/.tmp-secret", f->dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = fd == -1 ? -errno : write_all(fd, (const char *)f->secret, sizeof(f->secret));
    if (r == 0 && fsync(fd) == -1)
        r = -errno;
    if (fd >= 0)
        close(fd);
    if (r == 0 && rename(tmp, path) == -1)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        snprintf(err, errlen, "%s: %s", path, hm_strerror(r));
        return r;
    }
    fsync_dir(f->dir);
    return 0;
}

int hm_files_create(const struct hm_files_opts *o, struct hm_store *store, struct hm_files **out,
                    char *err, size_t errlen)
{
    struct hm_files *f = hm_xcalloc(1, sizeof(*f));
    int r;
    f->o = *o;
    f->store = store;
    f->efd = -1;
    if (snprintf(f->dir, sizeof(f->dir), "%s/files", o->data_dir) >= (int)sizeof(f->dir)) {
        snprintf(err, errlen, "data_dir too long");
        r = -ENAMETOOLONG;
        goto fail;
    }
    if (o->base_url && o->base_url[0])
        snprintf(f->base_url, sizeof(f->base_url), "%s", o->base_url);
    else
        snprintf(f->base_url, sizeof(f->base_url), "http://%s%s", o->cwmp_listen, o->path);
    if (mkdir(f->dir, 0700) == -1 && errno != EEXIST) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", f->dir, strerror(errno));
        goto fail;
    }
    r = load_secret(f, err, errlen);
    if (r < 0)
        goto fail;
    r = hm_auth_nonce_key_init(&f->nonce_key, NULL, 300);
    if (r < 0) {
        snprintf(err, errlen, "no randomness for Digest nonces");
        goto fail;
    }
    f->efd = eventfd(0, EFD_CLOEXEC);
    if (f->efd == -1) {
        r = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    r = hm_store_reader_open(store, &f->rd);
    if (r < 0) {
        snprintf(err, errlen, "store reader: %s", hm_strerror(r));
        goto fail;
    }
    r = -pthread_create(&f->th, NULL, io_main, f);
    if (r < 0) {
        snprintf(err, errlen, "thread: %s", strerror(-r));
        goto fail;
    }
    f->started = true;
    *out = f;
    return 0;
fail:
    hm_files_destroy(f);
    return r;
}

void hm_files_destroy(struct hm_files *f)
{
    if (!f)
        return;
    if (f->started) {
        atomic_store(&f->stop, true);
        wake(f->efd);
        pthread_join(f->th, NULL);
        /* jobs left in the queue belong to connections already closed by the shard stop */
        for (struct hm_mpsc_node *n = hm_mpsc_pop_all(&f->q); n;) {
            struct hm_mpsc_node *next = n->next;
            struct job *j = HM_CONTAINER_OF(n, struct job, node);
            json_decref(j->answer);
            free(j->data);
            free(j);
            n = next;
        }
    }
    if (f->rd)
        hm_store_reader_close(f->rd);
    if (f->efd >= 0)
        close(f->efd);
    free(f);
}

/* ---- download route (CWMP listener, shard) --------------------------------------------- */

/* 0, or -EACCES / HM_ESTALE_NONCE. Digest nonces are stateless and not bound to the
 * connection (the CWMP listener's conn_data slot belongs to the ACS): a replay within the
 * nonce lifetime can only fetch the same file again. */
static int auth_check(struct hm_files *f, struct hm_http_exchange *x, json_t *m)
{
    const char *user = jstr(m, "username"), *ha1 = jstr(m, "ha1");
    if (!user[0])
        return 0;
    if (strlen(ha1) != HM_AUTH_HEX_LEN)
        return -EACCES;
    struct hm_slice a = x->req->authorization;
    enum hm_auth_scheme sc = hm_auth_scheme_of(a);
    if (sc == HM_AUTH_BASIC) {
        char buf[512];
        struct hm_slice u, pw;
        if (hm_auth_basic_parse(a, buf, sizeof(buf), &u, &pw) < 0)
            return -EACCES;
        char h[HM_AUTH_HEX_LEN + 1];
        hm_auth_ha1(u, hm_slice_cstr(jstr(m, "realm")), pw, h);
        unsigned d = !hm_slice_eq(u, hm_slice_cstr(user));
        for (int i = 0; i < HM_AUTH_HEX_LEN; i++)
            d |= (unsigned)(h[i] ^ ha1[i]);
        return d == 0 ? 0 : -EACCES;
    }
    if (sc == HM_AUTH_DIGEST) {
        struct hm_auth_digest d;
        if (hm_auth_digest_parse(a, &d) < 0 || !hm_slice_eq(d.f[HM_AUTH_F_USERNAME],
                                                            hm_slice_cstr(user)))
            return -EACCES;
        struct hm_auth_nonce_state st = {0};
        int r = hm_auth_digest_verify(&d, ha1, x->req->method_str, x->req->target, &f->nonce_key,
                                      0, hm_now_ms() / 1000, &st);
        return r == HM_ESTALE_NONCE ? r : r < 0 ? -EACCES : 0;
    }
    return -EACCES;
}

static void challenge(struct hm_files *f, struct hm_http_exchange *x, json_t *m, bool stale)
{
    const char *realm = jstr(m, "realm");
    hm_buf_printf(x->headers, "WWW-Authenticate: Basic realm=\"%s\"\r\n", realm);
    char nonce[HM_AUTH_NONCE_LEN + 1], v[512];
    hm_auth_nonce_make(&f->nonce_key, 0, hm_now_ms() / 1000, nonce);
    if (hm_auth_challenge(v, sizeof(v), hm_slice_cstr(realm), hm_slice_cstr(nonce),
                          hm_slice(NULL, 0), stale) > 0)
        hm_buf_printf(x->headers, "WWW-Authenticate: %s\r\n", v);
}

static int text(struct hm_http_exchange *x, int status, const char *msg)
{
    hm_buf_append_str(x->out, msg);
    x->content_type = "text/plain";
    return status;
}

static int serve(struct hm_http_exchange *x, void *ctx)
{
    struct hm_files *f = ctx;
    enum hm_http_method meth = x->req->method;
    if (meth != HM_HTTP_GET && meth != HM_HTTP_HEAD) {
        hm_buf_append_lit(x->headers, "Allow: GET, HEAD\r\n");
        return text(x, 405, "method not allowed\n");
    }
    size_t pl = strlen(f->o.path);
    struct hm_slice name = hm_slice(x->req->path.ptr + pl, x->req->path.len - pl);
    /* never a path: '/', '%', ".." and leading dots are refused before any lookup */
    if (!hm_files_name_ok(name))
        return text(x, 404, "not found\n");
    char nm[NAME_MAX_ + 1];
    memcpy(nm, name.ptr, name.len);
    nm[name.len] = '\0';
    struct hm_store_reader *rd = f->o.reader_of ? f->o.reader_of(x->shard) : NULL;
    if (!rd)
        return text(x, 503, "unavailable\n");
    int r;
    json_t *m = meta_get(rd, nm, &r);
    if (!m) {
        if (r == -EAGAIN) {
            hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
            return text(x, 503, "busy, retry\n");
        }
        return text(x, 404, "not found\n");
    }
    int st;
    int ar = auth_check(f, x, m);
    if (ar < 0) {
        atomic_fetch_add(&f->auth_failures, 1);
        if (x->req->authorization.len)
            HM_LOG_RL(HM_LOG_WARN, "file download refused: wrong credentials", "name=\"%s\"", nm);
        challenge(f, x, m, ar == HM_ESTALE_NONCE);
        st = text(x, 401, "unauthorized\n");
        goto out;
    }
    uint64_t size = (uint64_t)json_integer_value(json_object_get(m, "size"));
    const char *sha = jstr(m, "sha256");
    uint64_t a = 0, b = size ? size - 1 : 0;
    char etag[70];
    snprintf(etag, sizeof(etag), "\"%.64s\"", sha);
    struct hm_slice inm = hm_http_header_get(x->req, "If-None-Match");
    if (inm.len && (hm_slice_eq(inm, hm_slice_cstr(etag)) || hm_slice_eq_lit(inm, "*"))) {
        hm_buf_printf(x->headers, "ETag: %s\r\n", etag);
        st = 304;
        goto out;
    }
    /* A resumed download of a file replaced meanwhile must start over: If-Range that is not
     * our ETag means the whole file (RFC 9110 13.1.5; dates are not validators here). */
    struct hm_slice ir = hm_http_header_get(x->req, "If-Range");
    int rr = ir.len && !hm_slice_eq(ir, hm_slice_cstr(etag))
                 ? 0
                 : hm_http_range_parse(hm_http_header_get(x->req, "Range"), size, &a, &b);
    if (rr == -ERANGE) {
        hm_buf_printf(x->headers, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
        st = text(x, 416, "range not satisfiable\n");
        goto out;
    }
    uint64_t len = size ? b - a + 1 : 0;
    struct job *j = hm_xcalloc(1, sizeof(*j));
    j->kind = J_READ;
    j->ref = x->ref;
    j->off = a;
    j->len = len;
    j->status = rr == 1 ? 206 : 200;
    snprintf(j->name, sizeof(j->name), "%s", nm);
    snprintf(j->sha, sizeof(j->sha), "%s", sha);
    int hl = snprintf(j->hdrs, sizeof(j->hdrs), "Accept-Ranges: bytes\r\nETag: \"%.64s\"\r\n", sha);
    if (rr == 1)
        snprintf(j->hdrs + hl, sizeof(j->hdrs) - (size_t)hl, "Content-Range: bytes %llu-%llu/%llu\r\n",
                 (unsigned long long)a, (unsigned long long)b, (unsigned long long)size);
    atomic_fetch_add(&f->served, 1);
    if (meth == HM_HTTP_HEAD) {
        /* Content-Length comes from the body length; HEAD sends none of it: no read. */
        hm_buf_reserve(x->out, len);
        x->out->len = len;
        hm_buf_append_str(x->headers, j->hdrs);
        x->content_type = "application/octet-stream";
        st = j->status;
        free(j);
        goto out;
    }
    /* Every download buffers its range until sent: cap the sum, shed beyond it. */
    uint64_t before = atomic_fetch_add(&f->inflight_bytes, len);
    if (f->o.max_inflight_bytes && before && before + len > f->o.max_inflight_bytes) {
        atomic_fetch_sub(&f->inflight_bytes, len);
        atomic_fetch_add(&f->shed, 1);
        free(j);
        hm_buf_append_lit(x->headers, "Retry-After: 5\r\n");
        st = text(x, 503, "busy, retry\n");
        goto out;
    }
    j->f = f;
    atomic_fetch_add(&f->bytes_served, len);
    enqueue(f, j, x);
    st = HM_HTTP_DEFER;
out:
    json_decref(m);
    return st;
}

unsigned hm_files_routes(struct hm_route *r, struct hm_files *f)
{
    r[0] = (struct hm_route){HM_LISTENER_CWMP, f->o.path, false, serve, f};
    return HM_FILES_NROUTES;
}

/* ---- northbound API (admin listener, shard) -------------------------------------------- */

static int list_cb(void *arg, struct hm_slice key, struct hm_slice val)
{
    (void)key;
    json_t *arr = arg;
    if (val.len < 2 || val.ptr[0] != 1)
        return 0;
    json_t *j = json_loadb(val.ptr + 1, val.len - 1, 0, NULL);
    if (j) {
        json_array_append_new(arr, meta_public(j));
        json_decref(j);
    }
    return json_array_size(arr) >= 10000 ? 1 : 0;
}

static int api_list(struct hm_http_exchange *x, struct hm_store_reader *rd)
{
    char dev[256], prefix[300];
    int qr = hm_api_query(x->req->query, "device", dev, sizeof(dev));
    bool applied = qr != -ENOENT;
    if ((qr < 0 && applied) || (applied && !dev[0]))
        return hm_api_error(x, 400, "bad_request", "device must be 1..255 bytes");
    /* '\0' ends the device id in the key: no id is a prefix of another's records */
    int pl = applied ? snprintf(prefix, sizeof(prefix), APPLIED_PREFIX "%s", dev) + 1
                     : snprintf(prefix, sizeof(prefix), KEY_PREFIX);
    json_t *arr = json_array();
    int r = hm_store_read_begin(rd);
    if (r == 0) {
        r = hm_store_scan(rd, HM_DB_FILES, hm_slice(prefix, (size_t)pl), hm_slice(NULL, 0),
                          list_cb, arr);
        hm_store_read_end(rd);
    }
    if (r < 0) {
        json_decref(arr);
        hm_buf_append_lit(x->headers, "Retry-After: 1\r\n");
        return hm_api_error(x, 503, "store_busy", "%s", hm_strerror(r));
    }
    if (applied)
        return hm_api_send_json(x, 200, json_pack("{s:s,s:o}", "device", dev, "applied", arr));
    return hm_api_send_json(x, 200, json_pack("{s:o}", "files", arr));
}

static int api_put(struct hm_http_exchange *x, struct hm_files *f, const char *name)
{
    char tbuf[64] = "3", user[65] = "";
    int tr = hm_api_query(x->req->query, "type", tbuf, sizeof(tbuf));
    const char *type = tr < 0 && tr != -ENOENT ? NULL : hm_files_type_canon(tr < 0 ? "3" : tbuf);
    if (!type)
        return hm_api_error(x, 422, "invalid_file", "type must be 1..5 or a TR-069 FileType string");
    int ur = hm_api_query(x->req->query, "username", user, sizeof(user));
    if (ur < 0 && ur != -ENOENT)
        return hm_api_error(x, 422, "invalid_file", "username is at most 64 bytes");
    if (ur >= 0) {
        for (const char *c = user; *c; c++)
            if (*c <= ' ' || *c == ':' || *c == '"' || *c == '\\' || *c == 0x7f)
                return hm_api_error(x, 422, "invalid_file",
                                 "username must be printable, without ':', '\"', '\\' or spaces");
        if (!user[0])
            return hm_api_error(x, 422, "invalid_file", "username must not be empty");
    }
    if (x->body_len > f->o.max_bytes) {
        char m[128];
        snprintf(m, sizeof(m), "file larger than files.max_bytes (%llu)",
                 (unsigned long long)f->o.max_bytes);
        return hm_api_error(x, 413, "too_large", "%s", m);
    }
    if (x->body_len == 0)
        return hm_api_error(x, 422, "invalid_file", "empty file");
    struct job *j = hm_xcalloc(1, sizeof(*j));
    j->kind = J_PUT;
    j->ref = x->ref;
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->type, sizeof(j->type), "%s", type);
    snprintf(j->user, sizeof(j->user), "%s", user);
    j->data = hm_xmalloc(x->body_len);
    memcpy(j->data, x->body, x->body_len);
    j->dlen = x->body_len;
    enqueue(f, j, x);
    return HM_HTTP_DEFER;
}

int hm_files_api(struct hm_http_exchange *x, struct hm_files *f, struct hm_store_reader *rd,
                 struct hm_slice sub)
{
    enum hm_http_method m = x->req->method;
    if (hm_slice_eq_lit(sub, "files"))
        return m == HM_HTTP_GET ? api_list(x, rd)
                                : hm_api_error(x, 405, "method_not_allowed", "use GET");
    struct hm_slice name = hm_slice(sub.ptr + 6, sub.len - 6);
    if (!hm_files_name_ok(name))
        return hm_api_error(x, 400, "bad_name",
                         "file names are 1..128 characters of A-Z a-z 0-9 . _ - and do not "
                         "start with '.'");
    char nm[NAME_MAX_ + 1];
    memcpy(nm, name.ptr, name.len);
    nm[name.len] = '\0';
    if (m == HM_HTTP_PUT)
        return api_put(x, f, nm);
    if (m == HM_HTTP_DELETE) {
        struct job *j = hm_xcalloc(1, sizeof(*j));
        j->kind = J_DEL;
        j->ref = x->ref;
        snprintf(j->name, sizeof(j->name), "%s", nm);
        enqueue(f, j, x);
        return HM_HTTP_DEFER;
    }
    if (m != HM_HTTP_GET)
        return hm_api_error(x, 405, "method_not_allowed", "use GET, PUT or DELETE");
    int r;
    json_t *meta = meta_get(rd, nm, &r);
    if (!meta)
        return r == -ENOENT ? hm_api_error(x, 404, "not_found", "no such file")
                            : hm_api_error(x, 503, "store_busy", "%s", hm_strerror(r));
    json_t *p = meta_public(meta);
    json_object_set_new(p, "url", json_sprintf("%s%s", f->base_url, nm));
    json_decref(meta);
    return hm_api_send_json(x, 200, p);
}

/* ---- tasks ----------------------------------------------------------------------------- */

int hm_files_task_resolve(struct hm_files *f, struct hm_store_reader *rd, json_t *task,
                          char *err, size_t errlen)
{
    json_t *fv = json_is_object(task) ? json_object_get(task, "file") : NULL;
    if (!fv)
        return 0;
    if (strcmp(jstr(task, "rpc"), "Download") != 0) {
        snprintf(err, errlen, "'file' applies to Download tasks only");
        return -EINVAL;
    }
    const char *name = json_string_value(fv);
    if (!name || !hm_files_name_ok(hm_slice_cstr(name))) {
        snprintf(err, errlen, "'file' must name an uploaded file");
        return -EINVAL;
    }
    if (json_object_get(task, "url") || json_object_get(task, "username") ||
        json_object_get(task, "password") || json_object_get(task, "file_size") ||
        json_object_get(task, "cred_id") || json_object_get(task, "sha256")) {
        snprintf(err, errlen, "with 'file', url, credentials and size come from the file: "
                              "leave them out");
        return -EINVAL;
    }
    int r;
    json_t *m = meta_get(rd, name, &r);
    if (!m) {
        if (r == -ENOENT)
            snprintf(err, errlen, "no uploaded file '%s' (see GET /api/v1/files)", name);
        else
            snprintf(err, errlen, "file metadata unavailable: %s", hm_strerror(r));
        return -EINVAL;
    }
    const char *mt = jstr(m, "type");
    json_t *ft = json_object_get(task, "file_type");
    if (ft) {
        const char *c = hm_files_type_canon(json_string_value(ft));
        if (c)
            json_object_set_new(task, "file_type", json_string(c));
        else if (!json_is_string(ft)) {
            json_decref(m);
            snprintf(err, errlen, "'file_type' must be a string");
            return -EINVAL;
        }
    } else {
        json_object_set_new(task, "file_type", json_string(mt));
    }
    json_object_set_new(task, "url", json_sprintf("%s%s", f->base_url, name));
    json_object_set(task, "file_size", json_object_get(m, "size"));
    json_object_set_new(task, "sha256", json_string(jstr(m, "sha256")));
    if (jstr(m, "username")[0]) {
        json_object_set_new(task, "username", json_string(jstr(m, "username")));
        json_object_set_new(task, "cred_id", json_string(jstr(m, "cred_id")));
    }
    json_decref(m);
    return 0;
}

int hm_files_record_applied(struct hm_store_batch *b, struct hm_slice dev, struct hm_slice args,
                            uint64_t seq, uint64_t now_ms)
{
    json_t *a = json_loadb(args.ptr, args.len, 0, NULL);
    const char *file = jstr(a, "file");
    int r = 0;
    if (file[0]) {
        const char *ft = jstr(a, "file_type");
        char key[HM_STORE_MAX_KEY];
        int kl = snprintf(key, sizeof(key), APPLIED_PREFIX "%.*s%c%c", (int)dev.len, dev.ptr,
                          '\0', ft[0] ? ft[0] : '?');
        json_t *v = json_pack("{s:s#,s:s,s:s,s:s,s:I,s:I}", "device", dev.ptr, (int)dev.len,
                              "file", file, "file_type", ft, "sha256", jstr(a, "sha256"), "task",
                              (json_int_t)seq, "applied_ms", (json_int_t)now_ms);
        r = kl > 0 && (size_t)kl < sizeof(key) ? put_json(b, hm_slice(key, (size_t)kl), v)
                                               : -E2BIG;
        json_decref(v);
    }
    json_decref(a);
    return r;
}

/* ---- metrics --------------------------------------------------------------------------- */

void hm_files_render_metrics(struct hm_buf *out, void *arg)
{
    struct hm_files *f = arg;
    hm_buf_printf(out,
                  "# TYPE hems_files_served_total counter\nhems_files_served_total %llu\n"
                  "# TYPE hems_files_bytes_served_total counter\nhems_files_bytes_served_total %llu\n"
                  "# TYPE hems_files_uploads_total counter\nhems_files_uploads_total %llu\n"
                  "# TYPE hems_files_deletes_total counter\nhems_files_deletes_total %llu\n"
                  "# TYPE hems_files_auth_failures_total counter\n"
                  "hems_files_auth_failures_total %llu\n"
                  "# TYPE hems_files_errors_total counter\nhems_files_errors_total %llu\n"
                  "# TYPE hems_files_shed_total counter\nhems_files_shed_total %llu\n"
                  "# TYPE hems_files_inflight_bytes gauge\nhems_files_inflight_bytes %llu\n",
                  (unsigned long long)atomic_load(&f->served),
                  (unsigned long long)atomic_load(&f->bytes_served),
                  (unsigned long long)atomic_load(&f->uploads),
                  (unsigned long long)atomic_load(&f->deletes),
                  (unsigned long long)atomic_load(&f->auth_failures),
                  (unsigned long long)atomic_load(&f->errors),
                  (unsigned long long)atomic_load(&f->shed),
                  (unsigned long long)atomic_load(&f->inflight_bytes));
}
