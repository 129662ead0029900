/*
 * bench-profiles: thread CPU time of the fleet Inform hook (hm_fleet_on_inform, core/fleet.h)
 * per periodic Inform of an in-sync device, with 0, 10 and 100 profiles defined, on a real
 * store. Thread CPU time (CLOCK_THREAD_CPUTIME_ID) is used so other load on the machine does
 * not count. The Inform carries 40 parameters, like hems-loadgen's periodic scenario; a tenth
 * of the profiles match the device, the rest select other product classes, software versions
 * or tags (so the device's tags are read). Compare with the server CPU per periodic session
 * that hems-loadgen reports (bench/profiles.sh, docs/benchmarks-profiles.md).
 *
 *   bench-profiles [-n devices] [-r rounds]
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fleet.h"
#include "core/profiles.h"
#include "storage/record.h"
#include "storage/store.h"

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void define(struct hm_fleet *f, struct hm_store *st, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned k = i % 10;
        char sel[64], body[512], name[16];
        if (k == 0)
            snprintf(sel, sizeof(sel), "{\"product_class\":\"HeNB\"}");
        else if (k <= 3)
            snprintf(sel, sizeof(sel), "{\"product_class\":\"Other%u\"}", i);
        else if (k <= 6)
            snprintf(sel, sizeof(sel), "{\"software_version\":\"9.%u.*\"}", i);
        else
            snprintf(sel, sizeof(sel), "{\"tags\":[\"t%u\"]}", i);
        snprintf(body, sizeof(body),
                 "{\"priority\":%u,\"selector\":%s,\"params\":["
                 "{\"name\":\"Device.Services.FAPService.1.X_BENCH_P%u\",\"value\":\"%u\"},"
                 "{\"name\":\"Device.Services.FAPService.1.X_BENCH_Common\",\"value\":\"%u\"}]}",
                 i, sel, i, i, i);
        snprintf(name, sizeof(name), "p%03u", i);
        json_t *j = json_loads(body, 0, NULL), *norm = NULL;
        struct hm_store_batch b;
        hm_store_batch_init(&b);
        char err[256];
        hm_fleet_lock(f);
        if (hm_fleet_profile_put(f, name, j, &b, &norm, err, sizeof(err)) < 0 ||
            hm_store_submit_wait(st, &b, 0) < 0) {
            fprintf(stderr, "bench-profiles: profile %s: %s\n", name, err);
            exit(1);
        }
        hm_fleet_profile_done(f);
        hm_fleet_unlock(f);
        json_decref(norm);
        json_decref(j);
        hm_store_batch_fini(&b);
    }
}

struct tscan {
    uint64_t seq[16];
    char args[16][4000];
    unsigned n;
};

static int scan(void *arg, struct hm_slice key, struct hm_slice val)
{
    struct tscan *s = arg;
    struct hm_task_rec t;
    struct hm_slice dev;
    if (s->n < 16 && hm_key_task_split(key, &dev, &s->seq[s->n]) == 0 &&
        hm_rec_task_decode(val, &t) == 0 && t.state == HM_TASK_QUEUED) {
        snprintf(s->args[s->n], sizeof(s->args[0]), "%.*s", (int)t.args.len, t.args.ptr);
        s->n++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned ndev = 2000, rounds = 5;
    int c;
    while ((c = getopt(argc, argv, "n:r:")) != -1) {
        if (c == 'n')
            ndev = (unsigned)atoi(optarg);
        else if (c == 'r')
            rounds = (unsigned)atoi(optarg);
        else {
            fprintf(stderr, "usage: bench-profiles [-n devices] [-r rounds]\n");
            return 2;
        }
    }
    static const unsigned counts[] = {0, 10, 100};
    /* 40 Inform parameters (names as hems-loadgen's periodic Inform) */
    struct hm_cwmp_param p[40];
    char names[40][96];
    for (unsigned i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "Device.Services.FAPService.1.Param%02u.Value", i);
        p[i] = (struct hm_cwmp_param){hm_slice_cstr(names[i]), HM_SLICE_LIT("12345"),
                                      HM_CWMP_T_STRING};
    }
    struct hm_cwmp_event ev = {HM_SLICE_LIT("2 PERIODIC"), {0}};
    printf("%-9s %16s %16s\n", "profiles", "hook ns/Inform", "(best of rounds)");
    for (size_t ci = 0; ci < 3; ci++) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/hems-bench-profiles-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir))
            return 1;
        struct hm_store_opts o = {.no_sync = 1};
        struct hm_store *st;
        struct hm_fleet *f;
        struct hm_store_reader *rd;
        char err[256];
        if (hm_store_open(dir, &o, &st) < 0 || hm_fleet_create(st, &f, err, sizeof(err)) < 0 ||
            hm_store_reader_open(st, &rd) < 0)
            return 1;
        define(f, st, counts[ci]);
        char devs[ndev][32];
        /* boot: reconcile, then answer the SPVs so every device is in sync */
        for (unsigned d = 0; d < ndev; d++) {
            snprintf(devs[d], sizeof(devs[d]), "00256D-HeNB-%010u", d);
            struct hm_slice dev = hm_slice_cstr(devs[d]);
            struct hm_cwmp_inform in = {.dev = {HM_SLICE_LIT("A"), HM_SLICE_LIT("00256D"),
                                                HM_SLICE_LIT("HeNB"), HM_SLICE_LIT("x")}};
            in.events.v = &ev;
            in.events.n = 1;
            in.params.v = p;
            in.params.n = 40;
            struct hm_dev_rec dr = {.product_class = HM_SLICE_LIT("HeNB"),
                                    .sw_version = HM_SLICE_LIT("4.2.17"),
                                    .reg_state = HM_REG_REGISTERED};
            struct hm_store_batch b;
            hm_store_batch_init(&b);
            if (hm_store_read_begin(rd) < 0 ||
                hm_fleet_on_inform(f, 0, rd, &b, dev, &in, &dr) < 0)
                return 1;
            hm_store_read_end(rd);
            if (hm_store_submit_wait(st, &b, 0) < 0)
                return 1;
            hm_store_batch_reset(&b);
            struct tscan ts = {0};
            char k[256];
            int kl = hm_key_dev_prefix(k, sizeof(k), dev);
            if (hm_store_read_begin(rd) < 0 ||
                hm_store_scan(rd, HM_DB_TASKS, hm_slice(k, (size_t)kl), hm_slice("", 0), scan,
                              &ts) < 0)
                return 1;
            struct hm_cwmp_msg ok = {.method = HM_CWMP_SET_PARAMETER_VALUES_RESPONSE};
            for (unsigned t = 0; t < ts.n; t++)
                if (hm_fleet_on_result(f, 0, rd, &b, dev, ts.seq[t], HM_TASK_SET_PARAM_VALUES,
                                       hm_slice_cstr(ts.args[t]), &ok) < 0)
                    return 1;
            hm_store_read_end(rd);
            if (hm_store_submit_wait(st, &b, 0) < 0)
                return 1;
            hm_store_batch_fini(&b);
        }
        /* measured: periodic Informs of in-sync devices (nothing queued) */
        uint64_t best = UINT64_MAX;
        struct hm_store_batch b;
        hm_store_batch_init(&b);
        for (unsigned r = 0; r < rounds; r++) {
            /* the same loop with and without the hook; the difference is the hook */
            uint64_t spent[2] = {0, 0};
            for (int with = 0; with < 2; with++) {
                uint64_t t0 = cpu_ns();
                for (unsigned d = 0; d < ndev; d++) {
                    struct hm_cwmp_inform in = {0};
                    in.events.v = &ev;
                    in.events.n = 1;
                    in.params.v = p;
                    in.params.n = 40;
                    struct hm_dev_rec dr = {.product_class = HM_SLICE_LIT("HeNB"),
                                            .sw_version = HM_SLICE_LIT("4.2.17"),
                                            .reg_state = HM_REG_REGISTERED};
                    hm_store_batch_reset(&b);
                    if (hm_store_read_begin(rd) < 0)
                        return 1;
                    int rr = with ? hm_fleet_on_inform(f, 0, rd, &b, hm_slice_cstr(devs[d]),
                                                       &in, &dr)
                                  : 0;
                    hm_store_read_end(rd);
                    if (rr < 0 || b.nops) {
                        fprintf(stderr, "bench-profiles: device %u not in sync (%u ops)\n", d,
                                b.nops);
                        return 1;
                    }
                }
                spent[with] = cpu_ns() - t0;
            }
            uint64_t total = spent[1] > spent[0] ? spent[1] - spent[0] : 0;
            if (total < best)
                best = total;
        }
        hm_store_batch_fini(&b);
        printf("%-9u %16.0f\n", counts[ci], (double)best / ndev);
        hm_store_reader_close(rd);
        hm_fleet_destroy(f);
        hm_store_close(st);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench-profiles: could not remove %s\n", dir);
    }
    return 0;
}
