/* Campaign state machine (core/campaign.h): parsing, planning, pacing, halt, resume,
 * timeouts, waves, durable records. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/campaign.h"
#include "core/err.h"
#include "hm_check.h"

static struct hm_camp *mk(const char *json, uint32_t n)
{
    char err[300] = "";
    json_error_t je;
    json_t *in = json_loads(json, 0, &je);
    ck_assert_ptr_nonnull(in);
    struct hm_camp_cfg c;
    int r = hm_camp_cfg_parse(in, &c, err, sizeof(err));
    json_decref(in);
    ck_assert_msg(r == 0, "%s", err);
    if (!c.file_type)
        c.file_type = 3;
    char **ids = calloc(n ? n : 1, sizeof(*ids));
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = malloc(40);
        snprintf(ids[i], 40, "00005A-HeNB-SN%06u", i);
    }
    struct hm_camp *k = hm_camp_new(&c, ids, n, 1000);
    for (uint32_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return k;
}

static int parse_err(const char *json, char *err, size_t errlen)
{
    json_t *in = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(in);
    struct hm_camp_cfg c;
    int r = hm_camp_cfg_parse(in, &c, err, errlen);
    json_decref(in);
    if (r == 0)
        json_decref(c.selector);
    return r;
}

START_TEST(parse_rejects_bad_definitions)
{
    char err[300];
    ck_assert_int_eq(parse_err("[]", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"bogus\":1}", err,
                               sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "bogus"));
    ck_assert_int_eq(parse_err("{\"name\":\"a/b\",\"file\":\"f\",\"selector\":{}}", err, sizeof(err)),
                     -EINVAL);
    ck_assert(strstr(err, "name"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\"}", err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "selector"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{\"color\":\"x\"}}", err,
                               sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "color"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"waves\":[0]}", err,
                               sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "waves[0]"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"waves\":[\"101%\"]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"waves\":[\"5 %\"]}",
                               err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},"
                               "\"max_failure_ratio\":1.5}", err, sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "max_failure_ratio"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"file_type\":1}", err,
                               sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "target_version"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"file_type\":2}", err,
                               sizeof(err)), -EINVAL);
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"cr_per_s\":0}", err,
                               sizeof(err)), -EINVAL);
    ck_assert(strstr(err, "cr_per_s"));
    ck_assert_int_eq(parse_err("{\"name\":\"a\",\"file\":\"f\",\"selector\":{},\"file_type\":"
                               "\"1 Firmware Upgrade Image\",\"target_version\":\"4.3\","
                               "\"waves\":[1,\"10%\"],\"timeout_s\":60}", err, sizeof(err)), 0);
}
END_TEST

START_TEST(plan_assigns_waves_by_size_and_percentage)
{
    struct hm_camp *k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},"
                           "\"waves\":[10,\"10%\",\"100%\"]}", 1000);
    ck_assert_uint_eq(k->nw, 3);
    ck_assert_uint_eq(k->wave_start[1] - k->wave_start[0], 10);
    ck_assert_uint_eq(k->wave_start[2] - k->wave_start[1], 100);
    ck_assert_uint_eq(k->wave_start[3] - k->wave_start[2], 890);
    ck_assert_uint_eq(k->cnt[2][HM_CD_PENDING], 890);
    /* the order is a stable hash of (name, id): the same for the same input */
    struct hm_camp *k2 = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},"
                            "\"waves\":[10,\"10%\",\"100%\"]}", 1000);
    for (uint32_t i = 0; i < 1000; i++)
        ck_assert_str_eq(k->dev[i].id, k2->dev[i].id);
    /* and not the input order */
    ck_assert(strcmp(k->dev[0].id, "00005A-HeNB-SN000000") || strcmp(k->dev[1].id, "00005A-HeNB-SN000001"));
    hm_camp_free(k2);
    hm_camp_free(k);
    /* fewer devices than the first waves ask for: later waves are empty, not planned */
    k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},\"waves\":[3,5,10]}", 4);
    ck_assert_uint_eq(k->nw, 2);
    ck_assert_uint_eq(k->wave_start[2] - k->wave_start[1], 1);
    hm_camp_free(k);
}
END_TEST

START_TEST(dispatch_is_paced_and_capped)
{
    char err[200];
    struct hm_camp *k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},\"cr_per_s\":5,"
                           "\"max_in_flight\":8}", 100);
    ck_assert_int_eq(hm_camp_next(k, 1000), -1); /* created: nothing */
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_START, NULL, 1000, err, sizeof(err)), 0);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_START, NULL, 1000, err, sizeof(err)), -EBUSY);
    int n = 0;
    int64_t i;
    while ((i = hm_camp_next(k, 1000)) >= 0) {
        hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, 1000);
        n++;
    }
    ck_assert_int_eq(n, 1); /* one token at start */
    n = 0;
    while ((i = hm_camp_next(k, 2000)) >= 0) {
        hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, 2000);
        n++;
    }
    ck_assert_int_eq(n, 5); /* 5 per second */
    n = 0;
    while ((i = hm_camp_next(k, 60000)) >= 0) {
        hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, 60000);
        n++;
    }
    ck_assert_int_eq(n, 2); /* bucket holds 5, but max_in_flight 8 */
    ck_assert_uint_eq(k->in_flight, 8);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_PAUSE, NULL, 60000, err, sizeof(err)), 0);
    hm_camp_set(k, 0, HM_CD_SUCCEEDED, 0, 61000);
    ck_assert_int_eq(hm_camp_next(k, 70000), -1); /* paused */
    hm_camp_free(k);
}
END_TEST

/* Finishes every pending device of the current wave with <fail> failures first. */
static void run_wave(struct hm_camp *k, uint32_t fail, uint64_t *now)
{
    int64_t i;
    uint32_t done = 0;
    for (int guard = 0; guard < 100000 && k->state == HM_CAMP_RUNNING; guard++) {
        *now += 1000;
        while ((i = hm_camp_next(k, *now)) >= 0)
            hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, *now);
        for (uint32_t j = 0; j < k->ndev; j++)
            if (k->dev[j].state == HM_CD_IN_PROGRESS) {
                hm_camp_set(k, j, done < fail ? HM_CD_FAILED : HM_CD_SUCCEEDED,
                            done < fail ? 9010 : 0, *now);
                done++;
            }
        uint32_t w = k->wave;
        hm_camp_tick(k, *now);
        if (k->wave != w || k->next_wave_ms)
            return;
    }
}

START_TEST(halts_over_threshold_and_resumes)
{
    char err[300];
    uint64_t now = 1000;
    struct hm_camp *k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},\"waves\":[10,20],"
                           "\"max_failure_ratio\":0.2,\"cr_per_s\":100}", 30);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_START, NULL, now, err, sizeof(err)), 0);
    run_wave(k, 2, &now); /* 2 of 10 = 0.2: allowed */
    ck_assert_int_eq(k->state, HM_CAMP_RUNNING);
    ck_assert_uint_eq(k->wave, 1);
    ck_assert_uint_eq(k->cnt[0][HM_CD_FAILED], 2);
    run_wave(k, 5, &now); /* 5 of 20 > 4 allowed: halt at the 5th */
    ck_assert_int_eq(k->state, HM_CAMP_HALTED);
    ck_assert(strstr(k->reason, "wave 2"));
    ck_assert_int_eq(hm_camp_next(k, now + 10000), -1);
    /* resume refused while still over the threshold */
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_RESUME, NULL, now, err, sizeof(err)), -EBUSY);
    ck_assert(strstr(err, "max_failure_ratio"));
    json_t *bad = json_pack("{s:f}", "max_failure_ratio", 2.0);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_RESUME, bad, now, err, sizeof(err)), -EINVAL);
    json_decref(bad);
    json_t *o = json_pack("{s:f}", "max_failure_ratio", 0.5);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_RESUME, o, now, err, sizeof(err)), 0);
    json_decref(o);
    ck_assert_int_eq(k->state, HM_CAMP_RUNNING);
    run_wave(k, 0, &now);
    hm_camp_tick(k, now);
    ck_assert_int_eq(k->state, HM_CAMP_COMPLETED);
    ck_assert_uint_eq(k->cnt[1][HM_CD_FAILED], 5);
    ck_assert_uint_eq(k->cnt[1][HM_CD_SUCCEEDED], 15);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_CANCEL, NULL, now, err, sizeof(err)), -EBUSY);
    hm_camp_free(k);
}
END_TEST

START_TEST(retry_failed_requeues_the_wave)
{
    char err[300];
    uint64_t now = 1000;
    struct hm_camp *k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},\"waves\":[10],"
                           "\"max_failure_ratio\":0,\"cr_per_s\":100}", 10);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_START, NULL, now, err, sizeof(err)), 0);
    run_wave(k, 1, &now);
    ck_assert_int_eq(k->state, HM_CAMP_HALTED);
    json_t *o = json_pack("{s:b}", "retry_failed", 1);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_RESUME, o, now, err, sizeof(err)), 0);
    json_decref(o);
    ck_assert_uint_eq(k->cnt[0][HM_CD_FAILED], 0);
    ck_assert_uint_eq(k->cnt[0][HM_CD_PENDING], 1);
    run_wave(k, 0, &now);
    hm_camp_tick(k, now);
    ck_assert_int_eq(k->state, HM_CAMP_COMPLETED);
    ck_assert_uint_eq(k->cnt[0][HM_CD_SUCCEEDED], 10);
    hm_camp_free(k);
}
END_TEST

START_TEST(timeouts_count_as_failures_and_pause_between_waves)
{
    char err[300];
    struct hm_camp *k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{},\"waves\":[2,2],"
                           "\"max_failure_ratio\":0.5,\"timeout_s\":30,\"pause_s\":60,"
                           "\"cr_per_s\":100}", 4);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_START, NULL, 1000, err, sizeof(err)), 0);
    int64_t i;
    while ((i = hm_camp_next(k, 2000)) >= 0)
        hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, 2000);
    ck_assert_uint_eq(k->in_flight, 2);
    hm_camp_set(k, k->wave_start[0], HM_CD_SUCCEEDED, 0, 3000);
    ck_assert(!hm_camp_tick(k, 31000)); /* 29 s: not yet */
    ck_assert(hm_camp_tick(k, 32000));
    ck_assert_uint_eq(k->cnt[0][HM_CD_TIMED_OUT], 1);
    ck_assert_int_eq(k->state, HM_CAMP_RUNNING); /* 1 of 2 allowed at 0.5 */
    ck_assert_uint_eq(k->wave, 1);
    ck_assert_uint_eq(k->next_wave_ms, 92000);
    ck_assert_int_eq(hm_camp_next(k, 50000), -1); /* pausing */
    hm_camp_tick(k, 92000);
    ck_assert_uint_eq(k->next_wave_ms, 0);
    ck_assert_int_ge(hm_camp_next(k, 92000), 0);
    /* cancel: pending devices are cancelled, the campaign ends */
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_CANCEL, NULL, 93000, err, sizeof(err)), 0);
    ck_assert_uint_eq(k->cnt[1][HM_CD_CANCELLED], 2);
    ck_assert_int_eq(k->state, HM_CAMP_CANCELLED);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_RESUME, NULL, 93000, err, sizeof(err)), -EBUSY);
    hm_camp_free(k);
}
END_TEST

START_TEST(records_round_trip)
{
    char err[300];
    struct hm_camp *k = mk("{\"name\":\"c\",\"file\":\"f\",\"selector\":{\"tags\":[\"north\"]},"
                           "\"waves\":[3,\"100%\"],\"max_failure_ratio\":0.1,\"cr_per_s\":100}",
                           20);
    ck_assert_int_eq(hm_camp_command(k, HM_CAMP_CMD_START, NULL, 1000, err, sizeof(err)), 0);
    uint64_t now = 1000;
    run_wave(k, 1, &now); /* 1 of 3 > 0: halted */
    ck_assert_int_eq(k->state, HM_CAMP_HALTED);
    k->dev[5].task_seq = 77;
    struct hm_buf rec = {0};
    hm_camp_record(k, &rec);
    struct hm_camp_dev *devs = calloc(k->ndev, sizeof(*devs));
    for (uint32_t i = 0; i < k->ndev; i++) {
        char b[200];
        int n = hm_camp_dev_encode(&k->dev[i], b, sizeof(b));
        ck_assert_int_gt(n, 34);
        ck_assert_int_eq(hm_camp_dev_decode(hm_slice(b, (size_t)n), &devs[i]), 0);
        if (i == 0) {
            struct hm_camp_dev bad;
            ck_assert_int_eq(hm_camp_dev_decode(hm_slice(b, (size_t)n - 1), &bad), HM_ECORRUPT);
            b[0] = 9;
            ck_assert_int_eq(hm_camp_dev_decode(hm_slice(b, (size_t)n), &bad), HM_EVERSION);
        }
    }
    struct hm_camp *r = hm_camp_restore(hm_slice(rec.base, rec.len), devs, k->ndev, err,
                                        sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_int_eq(r->state, HM_CAMP_HALTED);
    ck_assert_str_eq(r->reason, k->reason);
    ck_assert_uint_eq(r->wave, k->wave);
    ck_assert_uint_eq(r->nw, 2);
    ck_assert_mem_eq(r->cnt, k->cnt, sizeof(k->cnt));
    ck_assert_uint_eq(r->dev[5].task_seq, 77);
    ck_assert_str_eq(r->dev[19].id, k->dev[19].id);
    ck_assert(r->c.max_failure_ratio == 0.1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r->c.selector, "tags"), 0)),
                     "north");
    /* a record with a different device count is refused */
    struct hm_camp_dev one[1];
    ck_assert_int_eq(hm_camp_dev_decode(hm_slice("\1\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0"
                                                 "\0\0\0\0\0\0\0\0" "\0\0\0\0\0\0\0\0\1\0x", 35),
                                        &one[0]), 0);
    ck_assert_ptr_null(hm_camp_restore(hm_slice(rec.base, rec.len), one, 1, err, sizeof(err)));
    free(one[0].id);
    hm_buf_free(&rec);
    hm_camp_free(r);
    hm_camp_free(k);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("campaign");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_rejects_bad_definitions);
    tcase_add_test(tc, plan_assigns_waves_by_size_and_percentage);
    tcase_add_test(tc, dispatch_is_paced_and_capped);
    tcase_add_test(tc, halts_over_threshold_and_resumes);
    tcase_add_test(tc, retry_failed_requeues_the_wave);
    tcase_add_test(tc, timeouts_count_as_failures_and_pause_between_waves);
    tcase_add_test(tc, records_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
