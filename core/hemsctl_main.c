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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/ctl.h"
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
            "  task ID JSON [--cr] [--wait S]\n"
            "                              queue a task, e.g. '{\"rpc\":\"Reboot\"}'; --cr: send a\n"
            "                              connection request; --wait: wait up to S seconds for\n"
            "                              the result (exit 1 if the task failed, 4 if still pending)\n"
            "  cancel ID TASK              cancel a queued task\n"
            "  backup DIR                  consistent compacted copy of the store into DIR\n"
            "  policy [SECTION]            the HeMS policy, or one section (whitelist, serving_nodes,\n"
            "                              segws, static, s1, ...)\n"
            "  policy set SECTION JSON     replace a section (stored; survives restarts)\n"
            "  policy revert SECTION       back to the policy file's section\n"
            "  profiles | profile NAME     configuration profiles (docs/profiles.md)\n"
            "  profile set NAME JSON | profile delete NAME\n"
            "  pools | pool NAME | pool set NAME LO HI\n"
            "  regions | region NAME | region set NAME JSON | region delete NAME\n"
            "                              S1 far-end regions (docs/profiles.md)\n"
            "  tags ID [set TAG...]        a device's tags (set with none clears them)\n"
            "  desired ID                  a device's merged desired state\n"
            "  pm files | pm aggregates    PM files ingested and counter aggregates\n"
            "  pm series OBJECT COUNTER [FROM_S [TO_S]]\n"
            "                              one counter's values (unix seconds)\n"
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

#define s hm_ctl_str

static void print_time(long long ms)
{
    char b[32];
    hm_ctl_time(ms, b, sizeof(b));
    printf("%-20s", b);
}

static void table(json_t *j, void *arg)
{
    const char *cmd = arg;
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
        hm_ctl_table_generic(j, NULL);
    }
}

/* "/api/v1/" + <prefix> + <id> percent-encoded + <suffix> into <path> (reset first). */
static void api_path(struct hm_buf *path, const char *prefix, const char *id, const char *suffix)
{
    hm_buf_reset(path);
    hm_buf_append_lit(path, "/api/v1/");
    hm_buf_append_str(path, prefix);
    if (id)
        hm_ctl_pct(path, id);
    if (suffix)
        hm_buf_append_str(path, suffix);
}

/* The task JSON of `task` with --wait / --cr merged in (malloc'd), or NULL (message printed). */
static char *task_body(const char *in, long wait_s, bool cr)
{
    json_error_t je;
    json_t *o = json_loads(in, 0, &je);
    if (!json_is_object(o)) {
        fprintf(stderr, "hemsctl: task JSON: %s\n", o ? "not an object" : je.text);
        json_decref(o);
        return NULL;
    }
    if (wait_s >= 0)
        json_object_set_new(o, "wait_seconds", json_integer(wait_s));
    if (cr)
        json_object_set_new(o, "connection_request", json_true());
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t;
}

/* The commands that are one API call each. */
static int generic(const struct hm_ctl *c, const char *cmd, int nargs, char **a, long wait_s,
                   bool cr)
{
    struct hm_buf path = {0};
    const char *method = "GET";
    char *body = NULL; /* malloc'd JSON */
    int rc = 2;
    if (!strcmp(cmd, "status") && nargs == 0) {
        api_path(&path, "status", NULL, NULL);
    } else if (!strcmp(cmd, "devices") && nargs <= 1) {
        api_path(&path, "devices?limit=", nargs ? a[0] : "100", NULL);
    } else if (!strcmp(cmd, "device") && nargs == 1) {
        api_path(&path, "devices/", a[0], NULL);
    } else if (!strcmp(cmd, "params") && (nargs == 1 || nargs == 2)) {
        api_path(&path, "devices/", a[0], "/parameters?prefix=");
        hm_ctl_pct(&path, nargs == 2 ? a[1] : "");
    } else if (!strcmp(cmd, "tasks") && nargs == 1) {
        api_path(&path, "devices/", a[0], "/tasks");
    } else if (!strcmp(cmd, "task") && nargs == 2) {
        api_path(&path, "devices/", a[0], "/tasks");
        method = "POST";
        body = wait_s >= 0 || cr ? task_body(a[1], wait_s, cr) : strdup(a[1]);
        if (!body)
            goto out;
    } else if (!strcmp(cmd, "cancel") && nargs == 2) {
        api_path(&path, "devices/", a[0], "/tasks/");
        hm_ctl_pct(&path, a[1]);
        method = "DELETE";
    } else if (!strcmp(cmd, "desired") && nargs == 1) {
        api_path(&path, "devices/", a[0], "/desired");
    } else if (!strcmp(cmd, "tags") && nargs >= 1) {
        api_path(&path, "devices/", a[0], "/tags");
        if (nargs >= 2) {
            if (strcmp(a[1], "set"))
                goto out;
            json_t *arr = json_array();
            for (int i = 2; i < nargs; i++)
                json_array_append_new(arr, json_string(a[i]));
            body = json_dumps(arr, JSON_COMPACT);
            json_decref(arr);
            method = "PUT";
        }
    } else if ((!strcmp(cmd, "policy") || !strcmp(cmd, "profile") || !strcmp(cmd, "pool") ||
                !strcmp(cmd, "region")) &&
               nargs >= 1) {
        const char *res = !strcmp(cmd, "policy")    ? "policies/"
                          : !strcmp(cmd, "profile") ? "profiles/"
                          : !strcmp(cmd, "region")  ? "regions/"
                                                    : "pools/";
        if (nargs == 1) {
            api_path(&path, res, a[0], NULL);
        } else if (!strcmp(a[0], "set") && nargs == 3 && strcmp(cmd, "pool")) {
            api_path(&path, res, a[1], NULL);
            method = "PUT";
            body = strdup(a[2]);
        } else if (!strcmp(a[0], "set") && nargs == 4 && !strcmp(cmd, "pool")) {
            char *e1, *e2;
            long long lo = strtoll(a[2], &e1, 10), hi = strtoll(a[3], &e2, 10);
            if (*e1 || *e2 || !a[2][0] || !a[3][0])
                goto out;
            json_t *o = json_pack("{s:I,s:I}", "lo", (json_int_t)lo, "hi", (json_int_t)hi);
            body = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            api_path(&path, res, a[1], NULL);
            method = "PUT";
        } else if ((!strcmp(a[0], "revert") || !strcmp(a[0], "delete")) && nargs == 2) {
            api_path(&path, res, a[1], NULL);
            method = "DELETE";
        } else {
            goto out;
        }
    } else if ((!strcmp(cmd, "policy") || !strcmp(cmd, "profiles") || !strcmp(cmd, "pools") ||
                !strcmp(cmd, "regions")) &&
               nargs == 0) {
        api_path(&path, !strcmp(cmd, "policy") ? "policies" : cmd, NULL, NULL);
    } else if (!strcmp(cmd, "pm") && nargs == 1 &&
               (!strcmp(a[0], "files") || !strcmp(a[0], "aggregates"))) {
        api_path(&path, "pm/", NULL, a[0]);
    } else if (!strcmp(cmd, "pm") && nargs >= 3 && nargs <= 5 && !strcmp(a[0], "series")) {
        api_path(&path, "pm/series?object=", a[1], "&counter=");
        hm_ctl_pct(&path, a[2]);
        if (nargs >= 4) {
            hm_buf_append_lit(&path, "&from=");
            hm_ctl_pct(&path, a[3]);
        }
        if (nargs == 5) {
            hm_buf_append_lit(&path, "&to=");
            hm_ctl_pct(&path, a[4]);
        }
    } else if (!strcmp(cmd, "backup") && nargs == 1) {
        json_t *o = json_pack("{s:s}", "path", a[0]);
        body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        api_path(&path, "backup", NULL, NULL);
        method = "POST";
    } else {
        goto out;
    }
    hm_buf_append_lit(&path, "\0");
    int status = 0;
    json_t *j = NULL;
    rc = hm_ctl_call(c, method, path.base, "application/json", body, body ? strlen(body) : 0,
                     table, (void *)cmd, &status, &j);
    /* task --wait: the exit status tells the outcome */
    if (rc == 0 && !strcmp(cmd, "task") && wait_s > 0)
        rc = status == 202 ? 4 : !strcmp(s(j, "state"), "failed") ? 1 : 0;
    json_decref(j);
out:
    free(body);
    hm_buf_free(&path);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"admin", required_argument, NULL, 'a'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"token", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"device", required_argument, NULL, 'd'},
                                       {"wait", required_argument, NULL, 'w'},
                                       {"cr", no_argument, NULL, 'c'},
                                       {NULL, 0, NULL, 0}};
    struct hm_ctl c = {getenv("HEMS_ADMIN") ? getenv("HEMS_ADMIN") : "127.0.0.1:7557",
                       getenv("HEMS_TOKEN"), NULL, false};
    int ch;
    long wait_s = -1;
    bool cr = false;
    while ((ch = getopt_long(argc, argv, "a:jt:hd:", lo, NULL)) != -1) {
        if (ch == 'd')
            c.device = optarg;
        else if (ch == 'w') {
            char *end;
            wait_s = strtol(optarg, &end, 10);
            if (*end || wait_s < 0 || wait_s > 300) {
                fprintf(stderr, "hemsctl: --wait takes 0 to 300 seconds\n");
                return 2;
            }
        } else if (ch == 'c')
            cr = true;
        else if (ch == 't')
            c.token = optarg;
        else if (ch == 'a')
            c.addr = optarg;
        else if (ch == 'j')
            c.json = true;
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
    int rc;
    if (!strcmp(cmd, "campaigns")) /* campaigns: core/ctl_campaigns.h */
        rc = hm_ctl_campaigns(&c, nargs, a);
    else if (!strcmp(cmd, "files")) /* files: core/ctl_files.h */
        rc = hm_ctl_files(&c, nargs, a);
    else if (hm_ctl_alarms_handles(cmd)) /* core/ctl_alarms.h */
        rc = hm_ctl_alarms_main(&c, cmd, nargs, a);
    else
        rc = generic(&c, cmd, nargs, a, wait_s, cr);
    if (rc == 2)
        usage(stderr);
    return rc;
}
