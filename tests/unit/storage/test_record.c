#include "storage/record.h"

#include "core/err.h"
#include "hm_check.h"

#define S(lit) HM_SLICE_LIT(lit)
#define SEQ(a, b) ck_assert(hm_slice_eq((a), (b)))

static struct hm_dev_rec sample_dev(void)
{
    struct hm_dev_rec d = {
        .oui = S("00D0B7"),
        .product_class = S("HeNB-LTE"),
        .serial = S("SN0001"),
        .role = HM_ROLE_SERVING,
        .reg_state = HM_REG_REGISTERED,
        .serving_node = S("hems-2"),
        .last_inform_ms = 1764200000123ull,
        .events = S("0 BOOTSTRAP\n1 BOOT"),
        .source_addr = S("10.1.2.3:7547"),
        .cr_url = S("http://10.9.0.5:7547/cr"),
        .cr_user = S("acs"),
        .cr_secret = S("0123456789abcdef0123456789abcdef"),
        .cr_secret_is_ha1 = 1,
        .sw_version = S("4.2.1"),
        .param_key = S("pk-17"),
        .tls_identity = S("CN=00D0B7-SN0001"),
        .n_ipsec = 2,
    };
    d.ipsec[0] = (struct hm_ipsec_hist){S("172.16.0.9"), 1764200000000ull};
    d.ipsec[1] = (struct hm_ipsec_hist){S("172.16.0.7"), 1764100000000ull};
    return d;
}

static void dev_eq(const struct hm_dev_rec *a, const struct hm_dev_rec *b)
{
    SEQ(a->oui, b->oui);
    SEQ(a->product_class, b->product_class);
    SEQ(a->serial, b->serial);
    ck_assert_uint_eq(a->role, b->role);
    ck_assert_uint_eq(a->reg_state, b->reg_state);
    SEQ(a->serving_node, b->serving_node);
    ck_assert_uint_eq(a->last_inform_ms, b->last_inform_ms);
    SEQ(a->events, b->events);
    SEQ(a->source_addr, b->source_addr);
    SEQ(a->cr_url, b->cr_url);
    SEQ(a->cr_user, b->cr_user);
    SEQ(a->cr_secret, b->cr_secret);
    ck_assert_uint_eq(a->cr_secret_is_ha1, b->cr_secret_is_ha1);
    SEQ(a->sw_version, b->sw_version);
    SEQ(a->param_key, b->param_key);
    SEQ(a->tls_identity, b->tls_identity);
    ck_assert_uint_eq(a->n_ipsec, b->n_ipsec);
    for (unsigned i = 0; i < a->n_ipsec; i++) {
        SEQ(a->ipsec[i].addr, b->ipsec[i].addr);
        ck_assert_uint_eq(a->ipsec[i].since_ms, b->ipsec[i].since_ms);
    }
    ck_assert_uint_eq(a->pm_state, b->pm_state);
    ck_assert_uint_eq(a->pm_form, b->pm_form);
    ck_assert_uint_eq(a->pm_interval_s, b->pm_interval_s);
    ck_assert_uint_eq(a->pm_seq, b->pm_seq);
    ck_assert_uint_eq(a->pm_since_ms, b->pm_since_ms);
    SEQ(a->pm_user, b->pm_user);
    SEQ(a->pm_ha1, b->pm_ha1);
    SEQ(a->pm_object, b->pm_object);
}

/*
 * The generic checks every codec must pass: round trip, every truncation and one extra byte
 * rejected with HM_ECORRUPT, versions 0/2/255 rejected with HM_EVERSION, every too-small
 * output buffer rejected with -ENOSPC.
 */
#define CHECK_CODEC(T, rec, eqfn)                                                                  \
    do {                                                                                           \
        char enc[HM_STORE_MAX_VAL + 1];                                                            \
        struct hm_##T##_rec out;                                                                   \
        size_t sz = hm_rec_##T##_size(&(rec));                                                     \
        int n = hm_rec_##T##_encode(&(rec), enc, sizeof(enc) - 1);                                 \
        ck_assert_int_eq(n, (int)sz);                                                              \
        ck_assert_uint_eq((unsigned char)enc[0], HM_REC_V1);                                       \
        ck_assert_int_eq(hm_rec_##T##_decode(hm_slice(enc, (size_t)n), &out), 0);                  \
        eqfn(&(rec), &out);                                                                        \
        for (int cut = 0; cut < n; cut++)                                                          \
            ck_assert_int_eq(hm_rec_##T##_decode(hm_slice(enc, (size_t)cut), &out), HM_ECORRUPT);  \
        enc[n] = 0;                                                                                \
        ck_assert_int_eq(hm_rec_##T##_decode(hm_slice(enc, (size_t)n + 1), &out), HM_ECORRUPT);    \
        static const unsigned char bad[] = {0, 2, 255};                                            \
        for (unsigned i = 0; i < sizeof(bad); i++) {                                               \
            enc[0] = (char)bad[i];                                                                 \
            ck_assert_int_eq(hm_rec_##T##_decode(hm_slice(enc, (size_t)n), &out), HM_EVERSION);    \
        }                                                                                          \
        char small[HM_STORE_MAX_VAL];                                                              \
        for (int cap = 0; cap < n; cap++)                                                          \
            ck_assert_int_eq(hm_rec_##T##_encode(&(rec), small, (size_t)cap), -ENOSPC);            \
    } while (0)

START_TEST(dev_codec)
{
    struct hm_dev_rec d = sample_dev();
    CHECK_CODEC(dev, d, dev_eq);
    /* Empty strings and no IPsec history are valid too. */
    struct hm_dev_rec e = {.oui = S("A"), .product_class = S("B"), .serial = S("C")};
    CHECK_CODEC(dev, e, dev_eq);
    /* The PM tail: present only with a PM state, so older records decode unchanged. */
    char enc[1024];
    int without = hm_rec_dev_encode(&d, enc, sizeof(enc));
    d.pm_state = HM_PM_ENABLED;
    d.pm_form = HM_PM_FORM_FILEMGMT;
    d.pm_interval_s = 900;
    d.pm_seq = 77;
    d.pm_since_ms = 1764200000999ull;
    d.pm_user = S("00D0B7-HeNB-LTE-SN0001");
    d.pm_ha1 = S("0123456789abcdef0123456789abcdef");
    d.pm_object = S("Device.FAP.PerfMgmt.Config.2.");
    int with = hm_rec_dev_encode(&d, enc, sizeof(enc));
    ck_assert_int_eq(with, (int)hm_rec_dev_size(&d));
    ck_assert_int_gt(with, without);
    struct hm_dev_rec out;
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)with), &out), 0);
    dev_eq(&d, &out);
    for (int cut = without + 1; cut < with; cut++)
        ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)cut), &out), HM_ECORRUPT);
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)without), &out), 0);
    ck_assert_uint_eq(out.pm_state, HM_PM_NONE);
    /* a tail with state NONE is not canonical, a truncated tail is corrupt */
    enc[without] = HM_PM_NONE;
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)with), &out), HM_ECORRUPT);
    enc[without] = HM_PM_ENABLED;
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)with - 1), &out), HM_ECORRUPT);
    enc[without] = 9;
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)with), &out), HM_ECORRUPT);
}
END_TEST

START_TEST(dev_rejects_bad_fields)
{
    char enc[1024];
    struct hm_dev_rec d = sample_dev(), out;
    d.n_ipsec = HM_STORE_IPSEC_HIST + 1;
    ck_assert_int_eq(hm_rec_dev_encode(&d, enc, sizeof(enc)), -EINVAL);
    d = sample_dev();
    d.role = 9;
    ck_assert_int_eq(hm_rec_dev_encode(&d, enc, sizeof(enc)), -EINVAL);
    d = sample_dev();
    int n = hm_rec_dev_encode(&d, enc, sizeof(enc));
    ck_assert_int_gt(n, 0);
    /* role byte follows version + three strings */
    size_t role_at = 1 + 2 + d.oui.len + 2 + d.product_class.len + 2 + d.serial.len;
    enc[role_at] = 7;
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)n), &out), HM_ECORRUPT);
    /* a string length running past the end */
    enc[role_at] = HM_ROLE_SERVING;
    enc[1] = (char)0xff;
    ck_assert_int_eq(hm_rec_dev_decode(hm_slice(enc, (size_t)n), &out), HM_ECORRUPT);
    /* records over HM_STORE_MAX_VAL are refused at encode */
    static char big[HM_STORE_MAX_VAL];
    memset(big, 'x', sizeof(big));
    d = sample_dev();
    d.events = hm_slice(big, sizeof(big));
    static char out2[2 * HM_STORE_MAX_VAL];
    ck_assert_int_eq(hm_rec_dev_encode(&d, out2, sizeof(out2)), -E2BIG);
}
END_TEST

static void param_eq(const struct hm_param_rec *a, const struct hm_param_rec *b)
{
    ck_assert_uint_eq(a->type, b->type);
    ck_assert_uint_eq(a->time_ms, b->time_ms);
    SEQ(a->value, b->value);
}

static void task_eq(const struct hm_task_rec *a, const struct hm_task_rec *b)
{
    ck_assert_uint_eq(a->kind, b->kind);
    ck_assert_uint_eq(a->state, b->state);
    ck_assert_uint_eq(a->fault_code, b->fault_code);
    ck_assert_uint_eq(a->created_ms, b->created_ms);
    ck_assert_uint_eq(a->updated_ms, b->updated_ms);
    SEQ(a->args, b->args);
    SEQ(a->result, b->result);
}

static void alarm_eq(const struct hm_alarm_rec *a, const struct hm_alarm_rec *b)
{
    ck_assert_uint_eq(a->event_time_ms, b->event_time_ms);
    ck_assert_uint_eq(a->notification, b->notification);
    ck_assert_uint_eq(a->severity, b->severity);
    SEQ(a->device, b->device);
    SEQ(a->alarm_id, b->alarm_id);
    SEQ(a->managed_object, b->managed_object);
    SEQ(a->event_type, b->event_type);
    SEQ(a->probable_cause, b->probable_cause);
    SEQ(a->specific_problem, b->specific_problem);
    SEQ(a->additional_text, b->additional_text);
    SEQ(a->additional_info, b->additional_info);
}

static void alarm_cur_eq(const struct hm_alarm_cur_rec *a, const struct hm_alarm_cur_rec *b)
{
    ck_assert_uint_eq(a->time_ms, b->time_ms);
    ck_assert_uint_eq(a->seq, b->seq);
    ck_assert_uint_eq(a->severity, b->severity);
}

static void file_eq(const struct hm_file_rec *a, const struct hm_file_rec *b)
{
    ck_assert_uint_eq(a->file_type, b->file_type);
    ck_assert_uint_eq(a->size, b->size);
    ck_assert_uint_eq(a->mtime_ms, b->mtime_ms);
    SEQ(a->sha256, b->sha256);
    SEQ(a->path, b->path);
    SEQ(a->product_class, b->product_class);
    SEQ(a->version, b->version);
}

static void pm_eq(const struct hm_pm_rec *a, const struct hm_pm_rec *b)
{
    ck_assert_uint_eq(a->vtype, b->vtype);
    ck_assert_uint_eq(a->suspect, b->suspect);
    ck_assert_uint_eq(a->duration_s, b->duration_s);
    ck_assert(memcmp(&a->v, &b->v, sizeof(a->v)) == 0);
}

START_TEST(other_codecs)
{
    struct hm_param_rec p = {HM_PT_UINT, 1764200000999ull,
                             S("Device.Services.FAPService.1.CellConfig.LTE.RAN.RF.EARFCNDL")};
    CHECK_CODEC(param, p, param_eq);
    struct hm_param_rec pe = {HM_PT_STRING, 0, {NULL, 0}};
    CHECK_CODEC(param, pe, param_eq);

    struct hm_task_rec t = {HM_TASK_SET_PARAM_VALUES,  HM_TASK_FAILED, 9002, 10, 20,
                            S("\x01\x02args\x00blob"), S("fault 9002")};
    CHECK_CODEC(task, t, task_eq);

    struct hm_alarm_rec a = {1764200000000ull,
                             HM_ALARM_NEW,
                             HM_SEV_MAJOR,
                             S("00D0B7-HeNB-SN0001"),
                             S("42"),
                             S("Device.Services.FAPService.1"),
                             S("Communications Alarm"),
                             S("Loss of signal"),
                             S("S1 link down"),
                             S("MME unreachable"),
                             S("mme=10.0.0.1"),
                             0,
                             {NULL, 0}};
    CHECK_CODEC(alarm, a, alarm_eq);

    {
        /* Acknowledged: an optional tail after the fields of an unacknowledged record. */
        char aenc[512], aenc0[512];
        struct hm_alarm_rec aout;
        int an0 = hm_rec_alarm_encode(&a, aenc0, sizeof(aenc0));
        struct hm_alarm_rec ack = a;
        ack.ack_ms = 1764200009999ull;
        ack.ack_by = S("alice");
        int an = hm_rec_alarm_encode(&ack, aenc, sizeof(aenc));
        ck_assert_int_eq(an, an0 + 8 + 2 + 5);
        ck_assert_int_eq(an, (int)hm_rec_alarm_size(&ack));
        ck_assert(memcmp(aenc, aenc0, (size_t)an0) == 0);
        ck_assert_int_eq(hm_rec_alarm_decode(hm_slice(aenc, (size_t)an), &aout), 0);
        alarm_eq(&ack, &aout);
        ck_assert_uint_eq(aout.ack_ms, ack.ack_ms);
        SEQ(aout.ack_by, ack.ack_by);
        ck_assert_int_eq(hm_rec_alarm_decode(hm_slice(aenc0, (size_t)an0), &aout), 0);
        ck_assert_uint_eq(aout.ack_ms, 0);
        ck_assert_uint_eq(aout.ack_by.len, 0);
        memset(aenc + an0, 0, 8); /* a tail with ack time 0 is not canonical */
        ck_assert_int_eq(hm_rec_alarm_decode(hm_slice(aenc, (size_t)an), &aout), HM_ECORRUPT);
        for (int cut = an0 + 1; cut < an; cut++) /* inside the tail */
            ck_assert_int_eq(hm_rec_alarm_decode(hm_slice(aenc, (size_t)cut), &aout), HM_ECORRUPT);
    }

    struct hm_alarm_cur_rec ac = {1764200000000ull, 77, HM_SEV_CRITICAL};
    CHECK_CODEC(alarm_cur, ac, alarm_cur_eq);

    struct hm_file_rec f = {1,
                            123456789,
                            1764200000000ull,
                            S("0123456789abcdef0123456789abcdef"),
                            S("/var/lib/hems/fw.bin"),
                            S("HeNB-LTE"),
                            S("4.3.0")};
    CHECK_CODEC(file, f, file_eq);

    struct hm_pm_rec pi = {HM_PM_INT, 0, 900, {.i = -5}};
    CHECK_CODEC(pm, pi, pm_eq);
    struct hm_pm_rec pr = {HM_PM_REAL, 1, 900, {.r = 3.25}};
    CHECK_CODEC(pm, pr, pm_eq);
}
END_TEST

START_TEST(task_kind_zero_rejected)
{
    char enc[256];
    struct hm_task_rec t = {HM_TASK_REBOOT, HM_TASK_QUEUED, 0, 1, 2, S("x"), {NULL, 0}}, out;
    int n = hm_rec_task_encode(&t, enc, sizeof(enc));
    ck_assert_int_gt(n, 0);
    enc[1] = 0;
    ck_assert_int_eq(hm_rec_task_decode(hm_slice(enc, (size_t)n), &out), HM_ECORRUPT);
}
END_TEST

START_TEST(keys)
{
    char k[HM_STORE_MAX_KEY + 16];
    int n = hm_key_dev(k, sizeof(k), S("00D0B7"), S("HeNB"), S("SN1"));
    ck_assert_int_eq(n, 15);
    ck_assert(memcmp(k, "00D0B7-HeNB-SN1", 15) == 0);

    n = hm_key_task(k, sizeof(k), S("dev"), 0x0102030405060708ull);
    ck_assert_int_eq(n, 12);
    struct hm_slice dev;
    uint64_t seq;
    ck_assert_int_eq(hm_key_task_split(hm_slice(k, (size_t)n), &dev, &seq), 0);
    SEQ(dev, S("dev"));
    ck_assert_uint_eq(seq, 0x0102030405060708ull);
    ck_assert_int_eq(hm_key_task_split(S("short"), &dev, &seq), HM_ECORRUPT);

    /* big-endian keys sort numerically under memcmp */
    char a[16], b[16];
    hm_key_alarm(a, sizeof(a), 255, 1);
    hm_key_alarm(b, sizeof(b), 256, 0);
    ck_assert_int_lt(memcmp(a, b, 16), 0);
    uint64_t t;
    ck_assert_int_eq(hm_key_alarm_split(hm_slice(b, 16), &t, &seq), 0);
    ck_assert_uint_eq(t, 256);
    ck_assert_uint_eq(seq, 0);

    n = hm_key_pm(k, sizeof(k), S("ManagedElement=1"), S("RRC.ConnEstabAtt"), 900000);
    ck_assert_int_eq(n, 16 + 1 + 16 + 1 + 8);
    n = hm_key_param(k, sizeof(k), S("dev"), S("Device.X"));
    ck_assert_int_eq(n, 12);
    ck_assert(memcmp(k, "dev\0Device.X", 12) == 0);

    ck_assert_int_eq(hm_key_param(k, 5, S("dev"), S("Device.X")), -E2BIG);
    static char longp[HM_STORE_MAX_KEY];
    memset(longp, 'p', sizeof(longp));
    ck_assert_int_eq(hm_key_param(k, sizeof(k), S("dev"), hm_slice(longp, sizeof(longp))), -E2BIG);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, dev_codec);
    tcase_add_test(tc, dev_rejects_bad_fields);
    tcase_add_test(tc, other_codecs);
    tcase_add_test(tc, task_kind_zero_rejected);
    tcase_add_test(tc, keys);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
