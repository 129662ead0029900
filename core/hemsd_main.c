/*
 * hemsd: the HeNB Management System daemon.
 *
 * The main thread parses configuration, creates the shards (binding every listener before
 * any thread starts, so a busy port fails fast), then waits for signals with sigwaitinfo():
 * SIGTERM/SIGINT drain and exit 0, SIGHUP re-reads the configuration file and applies the
 * keys that are safe to change at run time. All signals are blocked in every thread.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/acs.h"
#include "core/admin.h"
#include "core/alarm_notify.h"
#include "core/alarm_stream.h"
#include "core/api.h"
#include "core/api_policy.h"
#include "core/ui_static.h"
#include "core/campaigns.h"
#include "core/connreq.h"
#include "core/bug.h"
#include "core/acs_task.h"
#include "core/config.h"
#include "core/datamodel.h"
#include "core/err.h"
#include "core/files.h"
#include "core/hems_proc.h"
#include "core/log.h"
#include "core/fleet.h"
#include "core/fleet_s1.h"
#include "core/pm_pipe.h"
#include "core/shard.h"
#include "core/store_metrics.h"
#include "core/version.h"


#ifdef HM_TSAN
/* Concurrency Kit's ck_ring (the store's submission ring) synchronises with inline assembly
 * that ThreadSanitizer cannot see; the store marks the hand-off itself (docs/storage.md). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:ck_ring\n";
}
#endif

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: hemsd [options]\n"
            "\n"
            "HeNB Management System daemon (TR-069 ACS, 3GPP TS 32.593 Type 1 interface).\n"
            "Runs on embedded defaults when started without options.\n"
            "\n"
            "  -c, --config FILE        read configuration FILE (INI; see ops/hemsd.conf)\n"
            "  -d, --data-dir DIR       data folder (LMDB, spool)          [server.data_dir]\n"
            "      --cwmp-listen A:P    CWMP/file-server listener          [server.cwmp_listen]\n"
            "      --admin-listen A:P   northbound API/metrics listener    [server.admin_listen]\n"
            "      --shards N           reactor threads (0: one per CPU)   [server.shards]\n"
            "      --log-level L        debug|info|warn|error|crit         [log.level]\n"
            "  -s, --set SEC.KEY=VALUE  set any configuration key (repeatable)\n"
            "      --check-config       validate the configuration and exit (0 = valid)\n"
            "      --print-config       print the effective configuration, documented, and exit\n"
            "  -h, --help               this text\n"
            "  -V, --version            print the version\n"
            "\n"
            "Command-line values override the file. Signals: SIGTERM/SIGINT drain and exit,\n"
            "SIGHUP reloads the file (keys marked 'reloaded on SIGHUP' in --print-config).\n");
}

struct opts {
    const char *config_file;
    char **sets; /* "section.key=value", applied after the file */
    size_t nsets;
    bool check, print;
};

static void add_set(struct opts *o, const char *key, const char *val)
{
    size_t n = strlen(key) + strlen(val) + 2;
    char *s = hm_xmalloc(n);
    snprintf(s, n, "%s=%s", key, val);
    o->sets = hm_xrealloc(o->sets, (o->nsets + 1) * sizeof(*o->sets));
    o->sets[o->nsets++] = s;
}

/* Defaults, then the file, then the command line. 0 or an error with <err>. */
static int build_config(struct hm_config *c, const struct opts *o, char *err, size_t errlen)
{
    hm_config_defaults(c);
    int r = 0;
    if (o->config_file)
        r = hm_config_load(c, o->config_file, err, errlen);
    for (size_t i = 0; r == 0 && i < o->nsets; i++)
        r = hm_config_set(c, o->sets[i], err, errlen);
    if (r == 0)
        r = hm_config_validate(c, err, errlen);
    if (r < 0)
        hm_config_free(c);
    return r;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
        return -errno;
    return 0;
}

static int run(const struct opts *o)
{
    char err[512];
    struct hm_config cfg;
    if (build_config(&cfg, o, err, sizeof(err)) < 0) {
        fprintf(stderr, "hemsd: configuration error: %s\n", err);
        return 2;
    }
    if (o->print || o->check) {
        if (o->print)
            hm_config_dump(&cfg, stdout);
        else
            printf("hemsd: configuration OK%s%s\n",
                   cfg.config_file ? ": " : " (embedded defaults)",
                   cfg.config_file ? cfg.config_file : "");
        hm_config_free(&cfg);
        return 0;
    }
    hm_log_set_level(cfg.log_level);

    int r = mkdir_p(cfg.data_dir);
    if (r < 0) {
        hm_err("cannot create data folder", "path=\"%s\" err=\"%s\"", cfg.data_dir,
               hm_strerror(r));
        hm_config_free(&cfg);
        return 1;
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct hm_dm *dm = NULL;
    struct hm_store *store = NULL;
    struct hm_pm_pipe *pm = NULL;
    struct hm_files *files = NULL;
    struct hm_shards *shards = NULL;
    struct hm_acs *acs = NULL;
    struct hm_hems *hems = NULL;
    struct hm_fleet *fleet = NULL;
    static struct hm_api api;
    bool started = false;
    int exit_code = 1;
    if (*cfg.dm_files) {
        char *list = hm_xstrndup(cfg.dm_files, strlen(cfg.dm_files));
        const char *paths[32];
        size_t np = 0;
        for (char *save, *tok = strtok_r(list, ",", &save); tok && np < 32;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            if (*tok)
                paths[np++] = tok;
        }
        dm = hm_dm_load(paths, np, err, sizeof(err));
        free(list);
        if (!dm) {
            hm_err("cannot load the data model; refusing to start", "cause=\"%s\"", err);
            goto out;
        }
        hm_info("data model loaded", "files=%zu entries=%zu", np, hm_dm_count(dm));
        hm_task_set_datamodel(dm);
    } else {
        hm_warn("no data model configured: tasks get syntax checks only", "key=datamodel.files");
    }

    char store_dir[4200];
    snprintf(store_dir, sizeof(store_dir), "%s/store", cfg.data_dir);
    struct hm_store_opts sopts = {
        .map_size = cfg.store_map_mb << 20,
        .map_max = cfg.store_map_max_gb << 30,
        .no_sync = cfg.store_no_sync,
    };
    hems = hm_hems_create(&cfg, err, sizeof(err));
    if (!hems) {
        hm_err("cannot start: HeMS role or policy", "cause=\"%s\"", err);
        goto out;
    }
    r = hm_store_open(store_dir, &sopts, &store);
    if (r < 0) {
        hm_err("cannot open the device store; refusing to start", "path=\"%s\" err=\"%s\"",
               store_dir, hm_strerror(r));
        goto out;
    }

    r = hm_fleet_create(store, &fleet, err, sizeof(err));
    if (r < 0) {
        hm_err("cannot load profiles and pools; refusing to start", "cause=\"%s\"", err);
        goto out;
    }
    r = hm_api_policy_load(hems, store);
    if (r < 0) {
        hm_err("cannot read the policy sections stored through the API; refusing to start",
               "err=\"%s\"", hm_strerror(r));
        goto out;
    }

    static struct hm_admin_ctx admin;
    struct hm_route routes[32];
    unsigned nroutes = hm_admin_routes(routes, &admin);
    nroutes += hm_acs_routes(routes + nroutes, &cfg);
    api.store = store;
    api.reader_of = hm_acs_shard_reader;
    api.hems = hems;
    api.fleet = fleet;
    hm_api_set_tokens(&api, cfg.api_reader_sha256, cfg.api_operator_sha256);
    /* PM ingestion pipeline (core/pm_pipe.h): upload route + /api/v1/pm/ before /api/v1/ */
    struct hm_pm_pipe_opts pmo = {
        .data_dir = cfg.data_dir, .upload_path = cfg.pm_path,
        .spool_max_files = cfg.pm_spool_max_files, .spool_max_bytes = cfg.pm_spool_max_bytes,
        .max_file_bytes = cfg.pm_max_file_bytes, .threads = (unsigned)cfg.pm_pipeline_threads,
        .username = cfg.pm_node_credentials ? cfg.pm_username : "", .password = cfg.pm_password,
        .realm = cfg.cwmp_realm, .device_credentials = cfg.pm_device_credentials,
        .reader_of = hm_acs_shard_reader,
    };
    r = hm_pm_pipe_create(&pmo, store, &pm, err, sizeof(err));
    if (r < 0) {
        hm_err("cannot start the PM pipeline", "cause=\"%s\"", err);
        goto out;
    }
    nroutes += hm_pm_routes(routes + nroutes, pm);
    /* files: the file server (core/files.h), download route on the CWMP listener */
    struct hm_files_opts fo = {
        .data_dir = cfg.data_dir, .path = cfg.files_path, .base_url = cfg.files_base_url,
        .cwmp_listen = cfg.cwmp_listen, .realm = cfg.cwmp_realm,
        .max_bytes = cfg.files_max_bytes, .max_inflight_bytes = cfg.files_max_inflight_bytes,
        .reader_of = hm_acs_shard_reader,
    };
    r = hm_files_create(&fo, store, &files, err, sizeof(err));
    if (r < 0) {
        hm_err("cannot start the file server", "cause=\"%s\"", err);
        goto out;
    }
    nroutes += hm_files_routes(routes + nroutes, files);
    api.files = files;
    hm_task_set_password_fn(hm_files_password, files);
    struct hm_connreq_opts cro = {.timeout_ms = (uint32_t)cfg.cr_timeout_ms,
                                  .max_per_s = (uint32_t)cfg.cr_max_per_s,
                                  .username = cfg.cr_username, .password = cfg.cr_password};
    r = hm_connreq_start(&cro, &api.connreq);
    if (r < 0) {
        hm_err("cannot start the connection request thread", "err=\"%s\"", hm_strerror(r));
        goto out;
    }
    /* campaigns: the rollout control thread (core/campaigns.h) */
    struct hm_campaigns_opts cpo = {.store = store, .files = files, .connreq = api.connreq,
                                    .tick_ms = 0};
    r = hm_campaigns_create(&cpo, &api.campaigns, err, sizeof(err));
    if (r < 0) {
        hm_err("cannot start the campaign control thread", "cause=\"%s\"", err);
        goto out;
    }
    nroutes += hm_api_routes(routes + nroutes, &api);
    /* dashboard (core/ui_static.h): "/" and "/ui/" on the admin listener */
    static struct hm_ui ui;
    if (hm_ui_load(&ui, cfg.admin_ui_dir, err, sizeof(err)) < 0) {
        hm_err("cannot load the dashboard", "cause=\"%s\"", err);
        goto out;
    }
    nroutes += hm_ui_routes(routes + nroutes, &ui);
    HM_BUG_ON(nroutes > HM_ARRAY_SIZE(routes));

    shards = hm_shards_create(&cfg, routes, nroutes, err, sizeof(err));
    if (shards)
        acs = hm_acs_create(&cfg, store, shards, err, sizeof(err));
    if (!shards || !acs) {
        hm_err("cannot start", "cause=\"%s\"", err);
        goto out;
    }
    admin.shards = shards;
    /* live alarm streams (core/alarm_stream.h), served by each shard's timer */
    struct hm_alarm_stream_opts aso = {
        .heartbeat_ms = cfg.alarm_stream_heartbeat_ms, .max_buffer = cfg.alarm_stream_max_buffer,
        .late_window_ms = cfg.alarm_stream_late_ms, .poll_ms = cfg.alarm_stream_poll_ms,
        .reader_of = hm_acs_shard_reader};
    api.alarm_streams = hm_alarm_streams_create(&aso, hm_shards_count(shards));
    /* alarm commits wake the streams at once (core/alarm_notify.h); cleared after the join */
    hm_alarm_notify_set(hm_alarm_streams_notify, api.alarm_streams);
    hm_admin_add_metrics(&admin, hm_alarm_streams_render_metrics, api.alarm_streams);
    hm_acs_set_hems(acs, hems);
    hm_acs_set_fleet(acs, fleet);
    hm_hems_set_s1_source(hems, hm_fleet_s1_source, fleet); /* S1 regions (core/fleet_s1.h) */
    hm_admin_add_metrics(&admin, hm_fleet_render_metrics, fleet);
    hm_admin_add_metrics(&admin, hm_hems_render_metrics, hems);
    hm_admin_add_metrics(&admin, hm_acs_render_metrics, acs);
    hm_admin_add_metrics(&admin, hm_store_render_metrics, store);
    hm_admin_add_metrics(&admin, hm_pm_render_metrics, pm);
    hm_admin_add_metrics(&admin, hm_files_render_metrics, files);
    hm_admin_add_metrics(&admin, hm_connreq_render_metrics, api.connreq);
    hm_admin_add_metrics(&admin, hm_campaigns_render_metrics, api.campaigns);
    started = true;
    r = hm_shards_start(shards);
    if (r < 0) {
        hm_err("cannot start shards", "err=\"%s\"", hm_strerror(r));
        goto out;
    }
    hm_info("hemsd ready", "version=%s cwmp=http://%s/cwmp admin=http://%s/ data_dir=\"%s\" "
            "config=\"%s\"", HM_VERSION, cfg.cwmp_listen, cfg.admin_listen, cfg.data_dir,
            cfg.config_file ? cfg.config_file : "(embedded defaults)");

    exit_code = 0;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&sigs, &si);
        if (sig == -1) {
            if (errno == EINTR)
                continue;
            hm_err("sigwaitinfo failed", "err=\"%s\"", strerror(errno));
            exit_code = 1;
            break;
        }
        if (sig == SIGPIPE)
            continue;
        if (sig == SIGHUP) {
            struct hm_config nc;
            if (build_config(&nc, o, err, sizeof(err)) < 0) {
                hm_err("reload refused: configuration error; keeping the running one",
                       "cause=\"%s\"", err);
                continue;
            }
            hm_config_log_restart_only_changes(&cfg, &nc);
            hm_log_set_level(nc.log_level);
            hm_shards_reload(shards, &nc);
            if (hm_hems_reload(hems, err, sizeof(err)) < 0)
                hm_err("policy reload refused; keeping the running policy", "cause=\"%s\"",
                       err);
            hm_info("configuration reloaded", "config=\"%s\"",
                    nc.config_file ? nc.config_file : "(embedded defaults)");
            hm_config_free(&nc);
            continue;
        }
        hm_info("shutting down", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
out:
    if (started) {
        hm_shards_stop(shards);
        hm_shards_join(shards);
    }
    hm_alarm_notify_set(NULL, NULL); /* the inbox drain below must not post stream wakes */
    /* campaigns: joins the control thread (commits through the store, uses connreq) */
    hm_campaigns_destroy(api.campaigns);
    api.campaigns = NULL;
    /* Task completions drained below must not start connection requests (no store then). */
    struct hm_connreq *cr = api.connreq;
    api.connreq = NULL;
    hm_connreq_stop(cr);
    /* joins the spool thread (the last poster of shard messages) and the pipeline threads,
     * whose commits complete before it returns, while the store is still open */
    hm_pm_pipe_destroy(pm);
    /* files: joins the I/O thread (posts to shards, commits through the store) */
    hm_files_destroy(files);
    hm_task_set_password_fn(NULL, NULL);
    /* Commits every batch already submitted; their completions land in the shards' inboxes,
     * which are drained here, on this thread, before anything they point to is freed. */
    hm_acs_close_readers(acs);
    hm_store_close(store);
    if (shards)
        hm_shards_drain_inboxes(shards);
    hm_acs_destroy(acs);
    hm_shards_destroy(shards);
    hm_alarm_streams_destroy(api.alarm_streams);
    api.alarm_streams = NULL;
    hm_ui_free(&ui);
    hm_hems_destroy(hems);
    hm_fleet_destroy(fleet);
    hm_task_set_datamodel(NULL);
    hm_dm_destroy(dm);
    hm_config_free(&cfg);
    hm_info("hemsd stopped", "exit=%d", exit_code);
    return exit_code;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"cwmp-listen", required_argument, NULL, 1},
        {"admin-listen", required_argument, NULL, 2},
        {"shards", required_argument, NULL, 3},
        {"log-level", required_argument, NULL, 4},
        {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 5},
        {"print-config", no_argument, NULL, 6},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {0};
    int ch, rc;
    while ((ch = getopt_long(argc, argv, "c:d:s:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.config_file = optarg;
            break;
        case 'd':
            add_set(&o, "server.data_dir", optarg);
            break;
        case 1:
            add_set(&o, "server.cwmp_listen", optarg);
            break;
        case 2:
            add_set(&o, "server.admin_listen", optarg);
            break;
        case 3:
            add_set(&o, "server.shards", optarg);
            break;
        case 4:
            add_set(&o, "log.level", optarg);
            break;
        case 's': {
            o.sets = hm_xrealloc(o.sets, (o.nsets + 1) * sizeof(*o.sets));
            o.sets[o.nsets++] = hm_xstrndup(optarg, strlen(optarg));
            break;
        }
        case 5:
            o.check = true;
            break;
        case 6:
            o.print = true;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        case 'V':
            printf("hemsd %s\n", HM_VERSION);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hemsd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        rc = 2;
        goto out;
    }

    rc = run(&o);
out:
    for (size_t i = 0; i < o.nsets; i++)
        free(o.sets[i]);
    free(o.sets);
    return rc;
}
