#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/bug.h"
#include "core/err.h"
#include "core/log.h"

enum ktype { K_STR, K_U64, K_BOOL, K_LEVEL };

struct key {
    const char *section, *name, *def, *doc;
    enum ktype type;
    size_t off;
    bool reload;
};

static const struct key keys[] = {
#define K(sec, key, type, field, def, reload, doc)                                           \
    {#sec, #key, def, doc, K_##type, offsetof(struct hm_config, field), reload},
    HM_CONFIG_KEYS(K)
#undef K
};

static int set_value(struct hm_config *c, const struct key *k, const char *v, char *err,
                     size_t errlen)
{
    void *p = (char *)c + k->off;
    switch (k->type) {
    case K_STR:
        free(*(char **)p);
        *(char **)p = hm_xstrndup(v, strlen(v));
        return 0;
    case K_U64: {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || *v == '-') {
            snprintf(err, errlen, "%s.%s: '%s' is not a non-negative integer", k->section,
                     k->name, v);
            return HM_EBADCONF;
        }
        *(uint64_t *)p = x;
        return 0;
    }
    case K_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
            *(bool *)p = true;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") ||
                 !strcmp(v, "0"))
            *(bool *)p = false;
        else {
            snprintf(err, errlen, "%s.%s: '%s' is not a boolean (true/false)", k->section,
                     k->name, v);
            return HM_EBADCONF;
        }
        return 0;
    case K_LEVEL: {
        int l = hm_log_level_parse(v);
        if (l < 0) {
            snprintf(err, errlen, "%s.%s: '%s' is not a log level (debug|info|warn|error|crit)",
                     k->section, k->name, v);
            return HM_EBADCONF;
        }
        *(int *)p = l;
        return 0;
    }
    }
    return HM_EBADCONF;
}

void hm_config_defaults(struct hm_config *c)
{
    char err[256];
    *c = (struct hm_config){0};
    for (size_t i = 0; i < HM_ARRAY_SIZE(keys); i++) {
        int r = set_value(c, &keys[i], keys[i].def, err, sizeof(err));
        HM_BUG_ON(r != 0);
    }
}

int hm_config_set_kv(struct hm_config *c, const char *section, const char *key,
                     const char *value, char *err, size_t errlen)
{
    const struct key *found = NULL;
    for (size_t i = 0; i < HM_ARRAY_SIZE(keys); i++) {
        if (strcmp(keys[i].name, key) != 0)
            continue;
        if (section && strcmp(keys[i].section, section) != 0)
            continue;
        if (found) {
            snprintf(err, errlen, "key '%s' is ambiguous: write section.key", key);
            return HM_EBADCONF;
        }
        found = &keys[i];
    }
    if (!found) {
        snprintf(err, errlen, "unknown configuration key '%s%s%s'", section ? section : "",
                 section ? "." : "", key);
        return HM_EBADCONF;
    }
    return set_value(c, found, value, err, errlen);
}

int hm_config_set(struct hm_config *c, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) {
        snprintf(err, errlen, "'%s': expected section.key=value", assignment);
        return HM_EBADCONF;
    }
    char name[128];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof(name)) {
        snprintf(err, errlen, "'%s': key too long", assignment);
        return HM_EBADCONF;
    }
    memcpy(name, assignment, n);
    name[n] = '\0';
    char *dot = strchr(name, '.');
    if (dot) {
        *dot = '\0';
        return hm_config_set_kv(c, name, dot + 1, eq + 1, err, errlen);
    }
    return hm_config_set_kv(c, NULL, name, eq + 1, err, errlen);
}

struct load_ctx {
    struct hm_config *c;
    char *err;
    size_t errlen;
    const char *path;
    int rc;
};

/* Debian's inih is built without INI_HANDLER_LINENO: the first failing line number comes
 * back from ini_parse_file() instead, and the first message is kept here. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *l = user;
    char msg[200];
    int r;
    if (!section || !*section) {
        snprintf(msg, sizeof(msg), "key '%s' outside a [section]", name);
        r = HM_EBADCONF;
    } else {
        r = hm_config_set_kv(l->c, section, name, value, msg, sizeof(msg));
    }
    if (r < 0 && l->rc == 0) {
        snprintf(l->err, l->errlen, "%s", msg);
        l->rc = r;
    }
    return r == 0;
}

int hm_config_load(struct hm_config *c, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct load_ctx l = {c, err, errlen, path, 0};
    int r = ini_parse_file(fp, on_ini, &l);
    fclose(fp);
    if (l.rc < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", err);
        snprintf(err, errlen, "%s:%d: %s", path, r, msg);
        return l.rc;
    }
    if (r != 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path,
                 r);
        return HM_EBADCONF;
    }
    free(c->config_file);
    c->config_file = hm_xstrndup(path, strlen(path));
    return 0;
}

int hm_parse_hostport(const char *s, void *out)
{
    struct sockaddr_storage *ss = out;
    char host[64];
    const char *colon;
    memset(ss, 0, sizeof(*ss));
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
            return HM_EBADCONF;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host))
            return HM_EBADCONF;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port > 65535)
        return HM_EBADCONF;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return sizeof(*v4);
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return sizeof(*v6);
    }
    return HM_EBADCONF;
}

int hm_config_validate(const struct hm_config *c, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (hm_parse_hostport(c->cwmp_listen, &ss) < 0) {
        snprintf(err, errlen, "server.cwmp_listen: '%s' is not address:port", c->cwmp_listen);
        return HM_EBADCONF;
    }
    if (hm_parse_hostport(c->admin_listen, &ss) < 0) {
        snprintf(err, errlen, "server.admin_listen: '%s' is not address:port",
                 c->admin_listen);
        return HM_EBADCONF;
    }
    if (!*c->data_dir) {
        snprintf(err, errlen, "server.data_dir must not be empty");
        return HM_EBADCONF;
    }
    if (c->shards > 1024) {
        snprintf(err, errlen, "server.shards: %llu is more than 1024",
                 (unsigned long long)c->shards);
        return HM_EBADCONF;
    }
    if (c->recv_buffers < 8 || c->recv_buffers > 32768 ||
        (c->recv_buffers & (c->recv_buffers - 1))) {
        snprintf(err, errlen, "server.recv_buffers must be a power of two in 8..32768");
        return HM_EBADCONF;
    }
    if (c->recv_buffer_size < 1024 || c->recv_buffer_size > (1u << 20)) {
        snprintf(err, errlen, "server.recv_buffer_size must be in 1024..1048576");
        return HM_EBADCONF;
    }
    if (c->max_headers < 1 || c->max_headers > 64) {
        snprintf(err, errlen, "http.max_headers must be in 1..64");
        return HM_EBADCONF;
    }
    if (c->max_request_line < 16 || c->max_request_line > c->max_head_bytes) {
        snprintf(err, errlen, "http.max_request_line must be in 16..http.max_head_bytes");
        return HM_EBADCONF;
    }
    if (c->max_head_bytes > (1u << 20)) {
        snprintf(err, errlen, "http.max_head_bytes must be at most 1048576");
        return HM_EBADCONF;
    }
    if (c->max_body_bytes > (1ull << 32)) {
        snprintf(err, errlen, "http.max_body_bytes must be at most 4 GiB");
        return HM_EBADCONF;
    }
    if (strcmp(c->cwmp_auth, "none") != 0 && strcmp(c->cwmp_auth, "digest") != 0) {
        snprintf(err, errlen, "cwmp.auth must be none or digest (got '%s')", c->cwmp_auth);
        return HM_EBADCONF;
    }
    if (!strcmp(c->cwmp_auth, "digest") && (!*c->cwmp_username || !*c->cwmp_password)) {
        snprintf(err, errlen, "cwmp.auth = digest needs cwmp.username and cwmp.password");
        return HM_EBADCONF;
    }
    if (c->cwmp_path[0] != '/') {
        snprintf(err, errlen, "cwmp.path must start with '/'");
        return HM_EBADCONF;
    }
    for (int i = 0; i < 2; i++) {
        const char *t = i ? c->api_operator_sha256 : c->api_reader_sha256;
        size_t n = strlen(t);
        if (n && (n != 64 || strspn(t, "0123456789abcdefABCDEF") != 64)) {
            snprintf(err, errlen, "api.%s_token_sha256 must be 64 hex digits (sha256sum of the "
                     "token)", i ? "operator" : "reader");
            return HM_EBADCONF;
        }
    }
    if (!*c->api_reader_sha256 && !*c->api_operator_sha256) {
        struct sockaddr_storage a;
        hm_parse_hostport(c->admin_listen, &a);
        bool loop = a.ss_family == AF_INET
                        ? (ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr) >> 24) == 127
                        : IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a)->sin6_addr);
        if (!loop) {
            snprintf(err, errlen, "server.admin_listen %s is not a loopback address: configure "
                     "api.operator_token_sha256 (and api.reader_token_sha256) first",
                     c->admin_listen);
            return HM_EBADCONF;
        }
    }
    if (*c->cwmps_listen) {
        if (hm_parse_hostport(c->cwmps_listen, &ss) < 0) {
            snprintf(err, errlen, "server.cwmps_listen: '%s' is not address:port",
                     c->cwmps_listen);
            return HM_EBADCONF;
        }
        if (!*c->tls_cert || !*c->tls_key) {
            snprintf(err, errlen, "server.cwmps_listen needs tls.cert and tls.key");
            return HM_EBADCONF;
        }
        if (strcmp(c->tls_client_auth, "none") != 0 && !*c->tls_ca) {
            snprintf(err, errlen, "tls.client_auth = %s needs tls.ca (the HeNB CA certificates)",
                     c->tls_client_auth);
            return HM_EBADCONF;
        }
    }
    if (strcmp(c->tls_client_auth, "required") != 0 && strcmp(c->tls_client_auth, "optional") != 0 &&
        strcmp(c->tls_client_auth, "none") != 0) {
        snprintf(err, errlen, "tls.client_auth must be required, optional or none (got '%s')",
                 c->tls_client_auth);
        return HM_EBADCONF;
    }
    if (strcmp(c->tls_min_version, "1.2") != 0 && strcmp(c->tls_min_version, "1.3") != 0) {
        snprintf(err, errlen, "tls.min_version must be 1.2 or 1.3 (got '%s')", c->tls_min_version);
        return HM_EBADCONF;
    }
    if (c->tls_ticket_key_rotate_s < 60 || c->tls_ticket_key_rotate_s > 7 * 86400) {
        snprintf(err, errlen, "tls.ticket_key_rotate_s must be in 60..604800");
        return HM_EBADCONF;
    }
    if (c->cwmp_max_params < 1 || c->cwmp_max_params > 65536) {
        snprintf(err, errlen, "cwmp.max_parameters must be in 1..65536");
        return HM_EBADCONF;
    }
    if (!c->header_timeout_ms || !c->body_timeout_ms || !c->idle_timeout_ms) {
        snprintf(err, errlen, "http timeouts must be positive");
        return HM_EBADCONF;
    }
    return 0;
}

void hm_config_copy(struct hm_config *dst, const struct hm_config *src)
{
    *dst = *src;
    for (size_t i = 0; i < HM_ARRAY_SIZE(keys); i++) {
        if (keys[i].type != K_STR)
            continue;
        char **p = (char **)((char *)dst + keys[i].off);
        *p = hm_xstrndup(*p, strlen(*p));
    }
    if (src->config_file)
        dst->config_file = hm_xstrndup(src->config_file, strlen(src->config_file));
}

void hm_config_free(struct hm_config *c)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(keys); i++) {
        if (keys[i].type != K_STR)
            continue;
        char **p = (char **)((char *)c + keys[i].off);
        free(*p);
        *p = NULL;
    }
    free(c->config_file);
    c->config_file = NULL;
}

static void format_value(const struct hm_config *c, const struct key *k, char *out, size_t n)
{
    const void *p = (const char *)c + k->off;
    switch (k->type) {
    case K_STR:
        /* Secrets never leave the process through --print-config or logs. */
        if (strstr(k->name, "password") && **(char *const *)p)
            snprintf(out, n, "(set)");
        else
            snprintf(out, n, "%s", *(char *const *)p);
        break;
    case K_U64:
        snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case K_BOOL:
        snprintf(out, n, "%s", *(const bool *)p ? "true" : "false");
        break;
    case K_LEVEL:
        snprintf(out, n, "%s", hm_log_level_name(*(const int *)p));
        break;
    }
}

void hm_config_dump(const struct hm_config *c, void *fpv)
{
    FILE *fp = fpv;
    const char *section = "";
    for (size_t i = 0; i < HM_ARRAY_SIZE(keys); i++) {
        char v[512];
        if (strcmp(section, keys[i].section) != 0) {
            section = keys[i].section;
            fprintf(fp, "%s[%s]\n", i ? "\n" : "", section);
        }
        format_value(c, &keys[i], v, sizeof(v));
        fprintf(fp, "# %s%s\n%s = %s\n", keys[i].doc,
                keys[i].reload ? " (reloaded on SIGHUP)" : "", keys[i].name, v);
    }
}

void hm_config_log_restart_only_changes(const struct hm_config *old, const struct hm_config *nw)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(keys); i++) {
        if (keys[i].reload)
            continue;
        char a[512], b[512];
        format_value(old, &keys[i], a, sizeof(a));
        format_value(nw, &keys[i], b, sizeof(b));
        if (strcmp(a, b) != 0)
            hm_warn("configuration change needs a restart; keeping the running value",
                    "key=%s.%s running=\"%s\" new=\"%s\"", keys[i].section, keys[i].name, a, b);
    }
}
