/* FaultMgmt alarm decoding into the Inform's batch (core/alarms.h, docs/alarms.md). */
#include "core/alarms.h"

#include <errno.h>
#include <string.h>

#include "core/bug.h"
#include "proto/pm.h"
#include "storage/record.h"

enum {
    F_TIME = 1 << 0,
    F_ID = 1 << 1,
    F_NOTIF = 1 << 2,
    F_MOI = 1 << 3,
    F_ETYPE = 1 << 4,
    F_CAUSE = 1 << 5,
    F_SPEC = 1 << 6,
    F_SEV = 1 << 7,
    F_TEXT = 1 << 8,
    F_INFO = 1 << 9,
    F_BAD = 1 << 15,
};

static const char *find(struct hm_slice h, const char *needle, size_t nl)
{
    if (h.len < nl)
        return NULL;
    for (size_t i = 0; i + nl <= h.len; i++)
        if (h.ptr[i] == needle[0] && memcmp(h.ptr + i, needle, nl) == 0)
            return h.ptr + i;
    return NULL;
}

static bool eq(struct hm_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int parse_notif(struct hm_slice v)
{
    if (eq(v, "NewAlarm"))
        return HM_ALARM_NEW;
    if (eq(v, "ChangedAlarm"))
        return HM_ALARM_CHANGED;
    if (eq(v, "ClearedAlarm"))
        return HM_ALARM_CLEARED;
    return -1;
}

static int parse_sev(struct hm_slice v)
{
    static const char *const names[] = {"Cleared", "Indeterminate", "Warning",
                                        "Minor",   "Major",         "Critical"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (eq(v, names[i]))
            return (int)i;
    return -1;
}

const char *hm_alarm_notif_name(unsigned notif)
{
    static const char *const n[] = {"new", "changed", "cleared"};
    return notif < 3 ? n[notif] : "unknown";
}

const char *hm_alarm_sev_name(unsigned sev)
{
    static const char *const n[] = {"Cleared", "Indeterminate", "Warning",
                                    "Minor",   "Major",         "Critical"};
    return sev < 6 ? n[sev] : "Indeterminate";
}

/* "ExpeditedEvent.<i>.<Field>" or "QueuedEvent.<i>.<Field>" after ".FaultMgmt." */
static bool split_name(struct hm_slice name, bool *queued, uint32_t *index, struct hm_slice *field)
{
    static const char fm[] = ".FaultMgmt.";
    const char *p = find(name, fm, sizeof(fm) - 1);
    if (!p)
        return false;
    p += sizeof(fm) - 1;
    const char *end = name.ptr + name.len;
    size_t rest = (size_t)(end - p);
    if (rest > 15 && memcmp(p, "ExpeditedEvent.", 15) == 0) {
        *queued = false;
        p += 15;
    } else if (rest > 12 && memcmp(p, "QueuedEvent.", 12) == 0) {
        *queued = true;
        p += 12;
    } else {
        return false;
    }
    uint32_t i = 0;
    const char *d = p;
    while (p < end && *p >= '0' && *p <= '9' && p - d < 9)
        i = i * 10 + (uint32_t)(*p++ - '0');
    if (p == d || p >= end || *p != '.' || i == 0)
        return false;
    p++;
    *index = i;
    *field = hm_slice(p, (size_t)(end - p));
    return field->len > 0;
}

int hm_alarms_extract(const struct hm_cwmp_param *params, uint32_t n, struct hm_slice device,
                      struct hm_alarm_event *out, int cap, uint32_t *bad)
{
    int used = 0;
    uint32_t nbad = 0;
    for (uint32_t k = 0; k < n; k++) {
        bool q;
        uint32_t idx;
        struct hm_slice f;
        if (!split_name(params[k].name, &q, &idx, &f))
            continue;
        int j;
        for (j = 0; j < used; j++)
            if (out[j].queued == q && out[j].index == idx)
                break;
        if (j == used) {
            if (used == cap) {
                nbad++;
                continue;
            }
            out[used] = (struct hm_alarm_event){.queued = q, .index = idx};
            out[used].rec.device = device;
            used++;
        }
        struct hm_alarm_event *e = &out[j];
        struct hm_slice v = params[k].value;
        if (eq(f, "EventTime")) {
            int64_t t;
            if (hm_pm_parse_datetime(v, &t) == 0 && t > 0)
                e->rec.event_time_ms = (uint64_t)t * 1000;
            else if (!eq(v, "0001-01-01T00:00:00Z"))
                e->have |= F_BAD;
            e->have |= F_TIME;
        } else if (eq(f, "AlarmIdentifier")) {
            e->rec.alarm_id = v;
            e->have |= F_ID;
        } else if (eq(f, "NotificationType")) {
            int t = parse_notif(v);
            if (t < 0)
                e->have |= F_BAD;
            else
                e->rec.notification = (uint8_t)t;
            e->have |= F_NOTIF;
        } else if (eq(f, "ManagedObjectInstance")) {
            e->rec.managed_object = v;
        } else if (eq(f, "EventType")) {
            e->rec.event_type = v;
        } else if (eq(f, "ProbableCause")) {
            e->rec.probable_cause = v;
        } else if (eq(f, "SpecificProblem")) {
            e->rec.specific_problem = v;
        } else if (eq(f, "PerceivedSeverity")) {
            int s = parse_sev(v);
            e->rec.severity = (uint8_t)(s < 0 ? HM_SEV_INDETERMINATE : s);
            e->have |= F_SEV;
        } else if (eq(f, "AdditionalText")) {
            e->rec.additional_text = v;
        } else if (eq(f, "AdditionalInformation")) {
            e->rec.additional_info = v;
        }
    }
    /* Keep complete entries; drop unused slots (empty AlarmIdentifier) silently. */
    int w = 0;
    for (int j = 0; j < used; j++) {
        struct hm_alarm_event *e = &out[j];
        if ((e->have & F_ID) && !e->rec.alarm_id.len)
            continue;
        if ((e->have & (F_TIME | F_ID | F_NOTIF)) != (F_TIME | F_ID | F_NOTIF) ||
            (e->have & F_BAD) || !e->rec.event_time_ms) {
            nbad++;
            continue;
        }
        if (e->rec.notification == HM_ALARM_CLEARED)
            e->rec.severity = HM_SEV_CLEARED;
        else if (!(e->have & F_SEV))
            e->rec.severity = HM_SEV_INDETERMINATE;
        out[w++] = *e;
    }
    /* Oldest first, so the current set ends on the latest event of each alarm. */
    for (int a = 1; a < w; a++) {
        struct hm_alarm_event t = out[a];
        int b = a - 1;
        while (b >= 0 && out[b].rec.event_time_ms > t.rec.event_time_ms) {
            out[b + 1] = out[b];
            b--;
        }
        out[b + 1] = t;
    }
    if (bad)
        *bad = nbad;
    return w;
}

static bool same_event(const struct hm_alarm_rec *a, const struct hm_alarm_rec *b)
{
    return a->event_time_ms == b->event_time_ms && a->notification == b->notification &&
           hm_slice_eq(a->alarm_id, b->alarm_id);
}

/* Is <e> already the latest stored event of its alarm (or, cleared, an unknown alarm)? */
static bool stored_dup(struct hm_store_reader *rd, const struct hm_alarm_rec *e)
{
    char ck[HM_STORE_MAX_KEY];
    int cl = hm_key_alarm_cur(ck, sizeof(ck), e->device, e->alarm_id);
    if (cl < 0)
        return false;
    struct hm_slice v;
    struct hm_alarm_cur_rec cur;
    if (hm_store_get(rd, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl), &v) != 0 ||
        hm_rec_alarm_cur_decode(v, &cur) != 0)
        return e->notification == HM_ALARM_CLEARED;
    if (e->notification == HM_ALARM_CLEARED)
        return false;
    if (cur.time_ms != e->event_time_ms)
        return false;
    char ak[HM_KEY_ALARM_LEN];
    struct hm_alarm_rec old;
    if (hm_key_alarm(ak, sizeof(ak), cur.time_ms, cur.seq) < 0 ||
        hm_store_get(rd, HM_DB_ALARMS, hm_slice(ak, sizeof(ak)), &v) != 0 ||
        hm_rec_alarm_decode(v, &old) != 0)
        return false;
    return old.notification == e->notification;
}

int hm_alarms_decode(struct hm_store_batch *b, struct hm_store_reader *rd, struct hm_store *st,
                     struct hm_slice device, const struct hm_cwmp_param *params, uint32_t n,
                     uint32_t *dups)
{
    struct hm_alarm_event ev[HM_ALARMS_MAX_EVENTS];
    uint32_t ndup = 0;
    int added = 0;
    int ne = hm_alarms_extract(params, n, device, ev, HM_ALARMS_MAX_EVENTS, NULL);
    for (int i = 0; i < ne; i++) {
        const struct hm_alarm_rec *e = &ev[i].rec;
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = same_event(&ev[j].rec, e);
        /* A clear that follows a raise in this same Inform is not "unknown". */
        bool raised_here = false;
        for (int j = 0; j < i; j++)
            if (hm_slice_eq(ev[j].rec.alarm_id, e->alarm_id))
                raised_here = true;
        if (!dup && !raised_here)
            dup = stored_dup(rd, e);
        if (dup) {
            ndup++;
            continue;
        }
        uint64_t seq = hm_store_next_seq(st);
        char ak[HM_KEY_ALARM_LEN];
        if (hm_key_alarm(ak, sizeof(ak), e->event_time_ms, seq) < 0)
            return -E2BIG;
        size_t sz = hm_rec_alarm_size(e);
        char *p = hm_store_batch_put_reserve(b, HM_DB_ALARMS, hm_slice(ak, sizeof(ak)), sz);
        if (!p || hm_rec_alarm_encode(e, p, sz) < 0)
            return -E2BIG;
        char ck[HM_STORE_MAX_KEY];
        int cl = hm_key_alarm_cur(ck, sizeof(ck), device, e->alarm_id);
        if (cl < 0)
            return -E2BIG;
        if (e->notification == HM_ALARM_CLEARED) {
            if (hm_store_batch_del(b, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl)) < 0)
                return -E2BIG;
        } else {
            struct hm_alarm_cur_rec cur = {.time_ms = e->event_time_ms, .seq = seq,
                                           .severity = e->severity};
            size_t cs = hm_rec_alarm_cur_size(&cur);
            char *cp = hm_store_batch_put_reserve(b, HM_DB_ALARM_CUR, hm_slice(ck, (size_t)cl), cs);
            if (!cp || hm_rec_alarm_cur_encode(&cur, cp, cs) < 0)
                return -E2BIG;
        }
        added++;
    }
    if (dups)
        *dups = ndup;
    return added;
}
