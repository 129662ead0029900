/* FaultMgmt alarm decoding against a real LMDB store (core/alarms.h). */
#include "../storage/store_test.h"
#include "core/alarms.h"

#define P(n, v) {HM_SLICE_LIT(n), HM_SLICE_LIT(v), 0}
#define DEV HM_SLICE_LIT("00D0B7-HeNB-SN1")

static const struct hm_cwmp_param raise1[] = {
    P("Device.FaultMgmt.ExpeditedEvent.1.EventTime", "2026-11-27T01:00:00Z"),
    P("Device.FaultMgmt.ExpeditedEvent.1.AlarmIdentifier", "A-17"),
    P("Device.FaultMgmt.ExpeditedEvent.1.NotificationType", "NewAlarm"),
    P("Device.FaultMgmt.ExpeditedEvent.1.ManagedObjectInstance", "DC=a,SubNetwork=1,ENBFunction=1"),
    P("Device.FaultMgmt.ExpeditedEvent.1.EventType", "Communications Alarm"),
    P("Device.FaultMgmt.ExpeditedEvent.1.ProbableCause", "Loss of Signal"),
    P("Device.FaultMgmt.ExpeditedEvent.1.SpecificProblem", "S1 link down"),
    P("Device.FaultMgmt.ExpeditedEvent.1.PerceivedSeverity", "Major"),
    P("Device.FaultMgmt.ExpeditedEvent.1.AdditionalText", "MME 10.1.1.1"),
    P("Device.FaultMgmt.ExpeditedEvent.2.EventTime", "0001-01-01T00:00:00Z"),
    P("Device.FaultMgmt.ExpeditedEvent.2.AlarmIdentifier", ""),
    P("Device.DeviceInfo.SoftwareVersion", "1.0"),
    P("InternetGatewayDevice.Services.FAPService.1.FaultMgmt.QueuedEvent.3.EventTime",
      "2026-11-27T00:59:00Z"),
    P("InternetGatewayDevice.Services.FAPService.1.FaultMgmt.QueuedEvent.3.AlarmIdentifier", "B-2"),
    P("InternetGatewayDevice.Services.FAPService.1.FaultMgmt.QueuedEvent.3.NotificationType",
      "NewAlarm"),
    P("InternetGatewayDevice.Services.FAPService.1.FaultMgmt.QueuedEvent.3.PerceivedSeverity",
      "Minor"),
};

static const struct hm_cwmp_param clear1[] = {
    P("Device.FaultMgmt.ExpeditedEvent.2.EventTime", "2026-11-27T01:05:00Z"),
    P("Device.FaultMgmt.ExpeditedEvent.2.AlarmIdentifier", "A-17"),
    P("Device.FaultMgmt.ExpeditedEvent.2.NotificationType", "ClearedAlarm"),
    P("Device.FaultMgmt.ExpeditedEvent.2.PerceivedSeverity", "Cleared"),
};

static const struct hm_cwmp_param malformed[] = {
    P("Device.FaultMgmt.ExpeditedEvent.1.EventTime", "yesterday"),
    P("Device.FaultMgmt.ExpeditedEvent.1.AlarmIdentifier", "X"),
    P("Device.FaultMgmt.ExpeditedEvent.1.NotificationType", "NewAlarm"),
    P("Device.FaultMgmt.ExpeditedEvent.x.EventTime", "2026-11-27T01:05:00Z"),
    P("Device.FaultMgmt.QueuedEvent.2.AlarmIdentifier", "Y"),
    P("Device.FaultMgmt.QueuedEvent.2.EventTime", "2026-11-27T01:05:00Z"),
    P("Device.FaultMgmt.QueuedEvent.2.NotificationType", "Bogus"),
};

START_TEST(extract_groups_and_orders)
{
    struct hm_alarm_event ev[8];
    uint32_t bad = 99;
    int n = hm_alarms_extract(raise1, sizeof(raise1) / sizeof(raise1[0]), DEV, ev, 8, &bad);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(bad, 0);
    /* Oldest first: the queued B-2 (00:59) before A-17 (01:00). */
    ck_assert(hm_slice_eq_lit(ev[0].rec.alarm_id, "B-2"));
    ck_assert(ev[0].queued);
    ck_assert_uint_eq(ev[0].index, 3);
    ck_assert_uint_eq(ev[0].rec.severity, HM_SEV_MINOR);
    ck_assert(hm_slice_eq_lit(ev[1].rec.alarm_id, "A-17"));
    ck_assert_uint_eq(ev[1].rec.event_time_ms, 1795741200000ull);
    ck_assert_uint_eq(ev[1].rec.notification, HM_ALARM_NEW);
    ck_assert_uint_eq(ev[1].rec.severity, HM_SEV_MAJOR);
    ck_assert(hm_slice_eq_lit(ev[1].rec.probable_cause, "Loss of Signal"));
    ck_assert(hm_slice_eq_lit(ev[1].rec.additional_text, "MME 10.1.1.1"));
    ck_assert(hm_slice_eq(ev[1].rec.device, DEV));

    n = hm_alarms_extract(malformed, sizeof(malformed) / sizeof(malformed[0]), DEV, ev, 8, &bad);
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(bad, 2);
    /* Capacity: the overflow is counted, not written. */
    n = hm_alarms_extract(raise1, sizeof(raise1) / sizeof(raise1[0]), DEV, ev, 1, &bad);
    ck_assert_int_le(n, 1);
    ck_assert_uint_ge(bad, 1);
}
END_TEST

static int count_cb(void *arg, struct hm_slice k, struct hm_slice v)
{
    (void)k;
    (void)v;
    ++*(int *)arg;
    return 0;
}

static int count(struct hm_store_reader *rd, enum hm_store_db db)
{
    int n = 0;
    ck_assert_int_eq(hm_store_read_begin(rd), 0);
    ck_assert_int_eq(hm_store_scan(rd, db, hm_slice("", 0), hm_slice("", 0), count_cb, &n), 0);
    hm_store_read_end(rd);
    return n;
}

static int apply(struct hm_store *s, struct hm_store_reader *rd, const struct hm_cwmp_param *p,
                 uint32_t n, uint32_t *dups)
{
    struct hm_store_batch b;
    hm_store_batch_init(&b);
    ck_assert_int_eq(hm_store_read_begin(rd), 0);
    int r = hm_alarms_decode(&b, rd, s, DEV, p, n, dups);
    hm_store_read_end(rd);
    ck_assert_int_eq(submit_wait(s, &b), 0);
    hm_store_batch_fini(&b);
    return r;
}

START_TEST(decode_dedupes_and_clears)
{
    char dir[256];
    tmpdir_make(dir, "alarms");
    struct hm_store *s;
    struct hm_store_opts o = {.no_sync = 1};
    ck_assert_int_eq(hm_store_open(dir, &o, &s), 0);
    struct hm_store_reader *rd;
    ck_assert_int_eq(hm_store_reader_open(s, &rd), 0);
    uint32_t nr = sizeof(raise1) / sizeof(raise1[0]), nc = sizeof(clear1) / sizeof(clear1[0]);
    uint32_t dups = 99;

    ck_assert_int_eq(apply(s, rd, raise1, nr, &dups), 2);
    ck_assert_uint_eq(dups, 0);
    ck_assert_int_eq(count(rd, HM_DB_ALARMS), 2);
    ck_assert_int_eq(count(rd, HM_DB_ALARM_CUR), 2);

    /* The same ring entries re-sent (next periodic Inform): nothing new. */
    ck_assert_int_eq(apply(s, rd, raise1, nr, &dups), 0);
    ck_assert_uint_eq(dups, 2);
    ck_assert_int_eq(count(rd, HM_DB_ALARMS), 2);

    /* Clear A-17: history grows, current set shrinks; a re-sent clear is a duplicate. */
    ck_assert_int_eq(apply(s, rd, clear1, nc, &dups), 1);
    ck_assert_int_eq(count(rd, HM_DB_ALARMS), 3);
    ck_assert_int_eq(count(rd, HM_DB_ALARM_CUR), 1);
    ck_assert_int_eq(apply(s, rd, clear1, nc, &dups), 0);
    ck_assert_uint_eq(dups, 1);
    ck_assert_int_eq(count(rd, HM_DB_ALARMS), 3);

    /* The remaining current entry is B-2 and points at its history record. */
    char ck[128];
    int cl = hm_key_alarm_cur(ck, sizeof(ck), DEV, HM_SLICE_LIT("B-2"));
    ck_assert_int_gt(cl, 0);
    struct hm_slice v;
    struct hm_alarm_cur_rec cur;
    ck_assert_int_eq(hm_store_read_begin(rd), 0);
    ck_assert_int_eq(hm_store_get(rd, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl), &v), 0);
    ck_assert_int_eq(hm_rec_alarm_cur_decode(v, &cur), 0);
    ck_assert_uint_eq(cur.severity, HM_SEV_MINOR);
    char ak[HM_KEY_ALARM_LEN];
    ck_assert_int_eq(hm_key_alarm(ak, sizeof(ak), cur.time_ms, cur.seq), HM_KEY_ALARM_LEN);
    struct hm_alarm_rec a;
    ck_assert_int_eq(hm_store_get(rd, HM_DB_ALARMS, hm_slice(ak, sizeof(ak)), &v), 0);
    ck_assert_int_eq(hm_rec_alarm_decode(v, &a), 0);
    ck_assert(hm_slice_eq_lit(a.alarm_id, "B-2"));
    hm_store_read_end(rd);

    hm_store_reader_close(rd);
    hm_store_close(s);
    rm_rf(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("alarms");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, extract_groups_and_orders);
    tcase_add_test(tc, decode_dedupes_and_clears);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
