/*
 * bench-pools: thread CPU time per operation of the parameter pools and S1 regions
 * (core/pools.h, core/regions.h), the work added to an Inform that needs them:
 *   - a new device's value from a plain pool and from a PCI pool (reuse distance 0, 2, 50),
 *     and the value of a device that already has one (every later Inform);
 *   - a device's S1 list from a region of 4 and of 16 servers, and picking its region among
 *     100 regions selecting by TAC range.
 * CLOCK_THREAD_CPUTIME_ID, so other load on the machine does not count. One thread: the
 * pool mutex is uncontended (contention is the shards', see docs/profiles.md).
 *
 *   bench-pools [-n devices]
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/pools.h"
#include "core/regions.h"

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static char (*ids)[32];

static void pool_run(const char *what, struct hm_pool *p, int n, int per_tac)
{
    int64_t v;
    bool fresh;
    unsigned full = 0;
    double t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        full += hm_pool_get_tac(p, hm_slice_cstr(ids[i]), i / per_tac, &v, &fresh) < 0;
    double t1 = cpu_ns();
    for (int i = 0; i < n; i++)
        hm_pool_get_tac(p, hm_slice_cstr(ids[i]), i / per_tac, &v, &fresh);
    double t2 = cpu_ns();
    printf("%-34s new %7.0f ns   known %5.0f ns   (%d devices, %u refused)\n", what,
           (t1 - t0) / n, (t2 - t1) / n, n, full);
    hm_pool_destroy(p);
}

static struct hm_region *region(const char *name, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    struct hm_region *r = NULL;
    char err[200];
    if (hm_region_parse(name, j, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench-pools: %s\n", err);
        exit(1);
    }
    json_decref(j);
    return r;
}

int main(int argc, char **argv)
{
    int n = 100000, ch;
    while ((ch = getopt(argc, argv, "n:")) != -1) {
        if (ch == 'n' && atoi(optarg) > 0) {
            n = atoi(optarg);
        } else {
            fprintf(stderr, "usage: bench-pools [-n devices]\n");
            return 2;
        }
    }
    ids = calloc((size_t)n, sizeof(*ids));
    for (int i = 0; i < n; i++)
        snprintf(ids[i], sizeof(ids[i]), "00256D-HeNB-%010d", i);
    pool_run("plain pool (2^24 values)", hm_pool_create("eci", 0, (1 << 24) - 1), n, n);
    pool_run("PCI, distance 0, 100 per TAC", hm_pool_create_pci("pci", 0, 503, 0), n, 100);
    pool_run("PCI, distance 2, 100 per TAC", hm_pool_create_pci("pci", 0, 503, 2), n, 100);
    pool_run("PCI, distance 50, 4 per TAC", hm_pool_create_pci("pci", 0, 503, 50), n, 4);

    char json[1024], list[HM_REGION_LIST_MAX + 1];
    struct hm_region *r4 = region("r4", "{\"servers\":\"10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4\"}");
    int k = snprintf(json, sizeof(json), "{\"servers\":[");
    for (int i = 0; i < 16; i++)
        k += snprintf(json + k, sizeof(json) - (size_t)k, "%s\"mme%02d.op.example\"", i ? "," : "", i);
    snprintf(json + k, sizeof(json) - (size_t)k, "]}");
    struct hm_region *r16 = region("r16", json);
    struct hm_region *many[100];
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "r%03d", i);
        snprintf(json, sizeof(json), "{\"servers\":\"10.%d.0.1,10.%d.0.2\",\"selector\":"
                 "{\"tac\":[[%d,%d]]}}", i, i, i * 100, i * 100 + 99);
        many[i] = region(name, json);
    }
    size_t sink = 0;
    double t0 = cpu_ns();
    for (int i = 0; i < n; i++)
        sink += (size_t)hm_region_list(r4, hm_slice_cstr(ids[i]), list, sizeof(list));
    double t1 = cpu_ns();
    for (int i = 0; i < n; i++)
        sink += (size_t)hm_region_list(r16, hm_slice_cstr(ids[i]), list, sizeof(list));
    double t2 = cpu_ns();
    for (int i = 0; i < n; i++)
        sink += hm_region_pick(many, 100, HM_SLICE_LIT(""), i % 10000, HM_SLICE_LIT("00256D"),
                               HM_SLICE_LIT("HeNB")) != NULL;
    double t3 = cpu_ns();
    printf("%-34s %7.0f ns\n%-34s %7.0f ns\n%-34s %7.0f ns   (%zu)\n",
           "S1 list, region of 4 servers", (t1 - t0) / n, "S1 list, region of 16 servers",
           (t2 - t1) / n, "region pick among 100 (TAC ranges)", (t3 - t2) / n, sink);
    hm_region_free(r4);
    hm_region_free(r16);
    for (int i = 0; i < 100; i++)
        hm_region_free(many[i]);
    free(ids);
    return 0;
}
