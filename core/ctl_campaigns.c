/* `hemsctl campaigns ...`; see core/ctl_campaigns.h. Control path only. */
#include "core/ctl_campaigns.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/ctl.h"

#define str hm_ctl_str

static long long num(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

#define when hm_ctl_time

static void print_list(json_t *j)
{
    printf("%-24s %-10s %6s %8s %8s %9s %7s %9s  %s\n", "NAME", "STATE", "WAVE", "DEVICES",
           "PENDING", "PROGRESS", "OK", "FAILED", "REASON");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "campaigns"), i, c)
    {
        json_t *t = json_object_get(c, "totals");
        char wave[16];
        snprintf(wave, sizeof(wave), "%lld/%lld", num(c, "wave"), num(c, "waves_total"));
        printf("%-24s %-10s %6s %8lld %8lld %9lld %7lld %9lld  %s\n", str(c, "name"),
               str(c, "state"), wave, num(t, "devices"), num(t, "pending"),
               num(t, "in_progress"), num(t, "succeeded"),
               num(t, "failed") + num(t, "timed_out"), str(c, "reason"));
    }
}

static void print_show(json_t *c)
{
    json_t *d = json_object_get(c, "definition");
    char a[32], b[32];
    when(num(c, "started_ms"), a, sizeof(a));
    when(num(c, "ended_ms"), b, sizeof(b));
    printf("campaign   %s\nstate      %s%s%s\nfile       %s (type %lld)%s%s\n", str(c, "name"),
           str(c, "state"), str(c, "reason")[0] ? ": " : "", str(c, "reason"), str(d, "file"),
           num(d, "file_type"), str(d, "target_version")[0] ? ", target version " : "",
           str(d, "target_version"));
    printf("wave       %lld of %lld\nthreshold  max_failure_ratio %g, timeout %llds, %lld/s, "
           "pause %llds\nstarted    %s\nended      %s\n\n", num(c, "wave"),
           num(c, "waves_total"), json_number_value(json_object_get(d, "max_failure_ratio")),
           num(d, "timeout_s"), num(d, "cr_per_s"), num(d, "pause_s"), a, b);
    printf("%-5s %8s %8s %11s %9s %7s %9s %9s\n", "WAVE", "SIZE", "PENDING", "IN_PROGRESS",
           "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(c, "waves"), i, w)
        printf("%-5lld %8lld %8lld %11lld %9lld %7lld %9lld %9lld\n", num(w, "wave"),
               num(w, "size"), num(w, "pending"), num(w, "in_progress"), num(w, "succeeded"),
               num(w, "failed"), num(w, "timed_out"), num(w, "cancelled"));
}

static void print_devices(json_t *j)
{
    printf("%-40s %4s %-11s %6s %-12s %s\n", "DEVICE", "WAVE", "STATE", "FAULT", "TASK", "ENDED");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(j, "devices"), i, d)
    {
        char e[32];
        when(num(d, "ended_ms"), e, sizeof(e));
        printf("%-40s %4lld %-11s %6lld %-12lld %s\n", str(d, "device"), num(d, "wave"),
               str(d, "state"), num(d, "fault_code"), num(d, "task"), e);
    }
    if (json_object_get(j, "next_offset"))
        printf("(%lld in all; next page: offset %lld)\n", num(j, "total"), num(j, "next_offset"));
}

/* A JSON array of strings from "a,b,c". */
static json_t *list(const char *v)
{
    json_t *a = json_array();
    char *dup = strdup(v), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(dup);
    return a;
}

/* The create body from NAME FILE key=value...; NULL with a message on a bad argument. */
static json_t *create_body(int argc, char **argv)
{
    json_t *o = json_pack("{s:s,s:s,s:{}}", "name", argv[0], "file", argv[1], "selector");
    json_t *sel = json_object_get(o, "selector");
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "hemsctl: expected key=value, got '%s'\n", argv[i]);
            json_decref(o);
            return NULL;
        }
        *eq = '\0';
        const char *k = argv[i], *v = eq + 1;
        char *end;
        if (!strcmp(k, "type") || !strcmp(k, "pause") || !strcmp(k, "timeout") ||
            !strcmp(k, "rate") || !strcmp(k, "in_flight") || !strcmp(k, "cr_retry")) {
            long long n = strtoll(v, &end, 10);
            if (*end || end == v) {
                fprintf(stderr, "hemsctl: %s must be a number\n", k);
                json_decref(o);
                return NULL;
            }
            const char *key = !strcmp(k, "type")      ? "file_type"
                              : !strcmp(k, "pause")   ? "pause_s"
                              : !strcmp(k, "timeout") ? "timeout_s"
                              : !strcmp(k, "rate")    ? "cr_per_s"
                              : !strcmp(k, "cr_retry") ? "cr_retry_s"
                                                      : "max_in_flight";
            json_object_set_new(o, key, json_integer(n));
        } else if (!strcmp(k, "ratio")) {
            double r = strtod(v, &end);
            if (*end || end == v) {
                fprintf(stderr, "hemsctl: ratio must be a number\n");
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, "max_failure_ratio", json_real(r));
        } else if (!strcmp(k, "version")) {
            json_object_set_new(o, "target_version", json_string(v));
        } else if (!strcmp(k, "waves")) {
            json_t *w = list(v), *e;
            size_t j;
            json_array_foreach(w, j, e)
            {
                const char *s = json_string_value(e);
                long long n = strtoll(s, &end, 10);
                if (!*end && end != s)
                    json_array_set_new(w, j, json_integer(n));
            }
            json_object_set_new(o, "waves", w);
        } else if (!strcmp(k, "product_class") || !strcmp(k, "software_version")) {
            json_object_set_new(sel, k, json_string(v));
        } else if (!strcmp(k, "tags") || !strcmp(k, "devices")) {
            json_object_set_new(sel, k, list(v));
        } else {
            fprintf(stderr, "hemsctl: unknown campaign option '%s'\n", k);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* <s> percent-encoded into <out> (cut to <cap>; campaign names are short and plain). */
static void pct(char *out, size_t cap, const char *s)
{
    struct hm_buf b = {0};
    hm_ctl_pct(&b, s);
    snprintf(out, cap, "%.*s", (int)b.len, b.base ? b.base : "");
    hm_buf_free(&b);
}

enum kind { LIST, SHOW, DEVICES, OTHER };

static void print(json_t *j, void *arg)
{
    enum kind k = *(enum kind *)arg;
    if (k == LIST)
        print_list(j);
    else if (k == DEVICES)
        print_devices(j);
    else
        print_show(j);
}

int hm_ctl_campaigns(const struct hm_ctl *c, int argc, char **argv)
{
    const char *sub = argc ? argv[0] : "list";
    char path[1024], name[200] = "";
    const char *method = "GET";
    json_t *body = NULL;
    enum kind kind = OTHER;
    if (argc >= 2)
        pct(name, sizeof(name), argv[1]);
    if (!strcmp(sub, "list") && argc <= 1) {
        snprintf(path, sizeof(path), "/api/v1/campaigns");
        kind = LIST;
    } else if (!strcmp(sub, "show") && argc == 2) {
        snprintf(path, sizeof(path), "/api/v1/campaigns/%s", name);
        kind = SHOW;
    } else if (!strcmp(sub, "devices") && argc >= 2 && argc <= 4) {
        snprintf(path, sizeof(path), "/api/v1/campaigns/%s/devices?limit=100%s%s&offset=%s",
                 name, argc >= 3 && strcmp(argv[2], "all") ? "&state=" : "",
                 argc >= 3 && strcmp(argv[2], "all") ? argv[2] : "", argc == 4 ? argv[3] : "0");
        kind = DEVICES;
    } else if (!strcmp(sub, "create") && argc == 2) {
        json_error_t je;
        body = json_loads(argv[1], JSON_REJECT_DUPLICATES, &je);
        if (!body) {
            fprintf(stderr, "hemsctl: campaign JSON: %s\n", je.text);
            return 2;
        }
        snprintf(path, sizeof(path), "/api/v1/campaigns");
        method = "POST";
        kind = SHOW;
    } else if (!strcmp(sub, "create") && argc >= 3) {
        body = create_body(argc - 1, argv + 1);
        if (!body)
            return 2;
        snprintf(path, sizeof(path), "/api/v1/campaigns");
        method = "POST";
        kind = SHOW;
    } else if ((!strcmp(sub, "start") || !strcmp(sub, "pause") || !strcmp(sub, "cancel")) &&
               argc == 2) {
        snprintf(path, sizeof(path), "/api/v1/campaigns/%s/%s", name, sub);
        method = "POST";
        kind = SHOW;
    } else if (!strcmp(sub, "resume") && argc >= 2) {
        body = json_object();
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "retry_failed")) {
                json_object_set_new(body, "retry_failed", json_true());
            } else if (!strncmp(argv[i], "ratio=", 6)) {
                char *end;
                double r = strtod(argv[i] + 6, &end);
                if (*end || end == argv[i] + 6) {
                    json_decref(body);
                    fprintf(stderr, "hemsctl: ratio must be a number\n");
                    return 2;
                }
                json_object_set_new(body, "max_failure_ratio", json_real(r));
            } else {
                json_decref(body);
                return 2;
            }
        }
        snprintf(path, sizeof(path), "/api/v1/campaigns/%s/resume", name);
        method = "POST";
        kind = SHOW;
    } else if (!strcmp(sub, "delete") && argc == 2) {
        snprintf(path, sizeof(path), "/api/v1/campaigns/%s", name);
        method = "DELETE";
    } else {
        return 2;
    }
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int rc = hm_ctl_call(c, method, path, "application/json", b, b ? strlen(b) : 0, print,
                         &kind, NULL, NULL);
    free(b);
    return rc;
}
