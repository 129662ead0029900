#ifndef HM_ALARMS_H
#define HM_ALARMS_H
/*
 * FaultMgmt alarm decoding (TS 32.593 §5.3, TR-157 FaultMgmt; docs/alarms.md).
 *
 * An Inform carries ExpeditedEvent.{i}.* (with "4 VALUE CHANGE") and QueuedEvent.{i}.*
 * parameters under Device.FaultMgmt., InternetGatewayDevice.FaultMgmt. or
 * ...FAPService.{i}.FaultMgmt. hm_alarms_decode() groups them per ring entry, turns each
 * complete entry into an X.733-style struct hm_alarm_rec and appends it to the Inform's
 * batch, so the alarms commit in the same transaction as the device record (before the
 * InformResponse):
 *   HM_DB_ALARMS     BE64 event_time_ms BE64 seq -> hm_alarm_rec (history)
 *   HM_DB_ALARM_CUR  device '\0' AlarmIdentifier -> hm_alarm_cur_rec (current set;
 *                    ClearedAlarm deletes the entry)
 * Deduplication: an entry re-sent (same device, EventTime, AlarmIdentifier and
 * NotificationType) adds nothing. The check uses the current set: a New/Changed entry whose
 * current record already has this EventTime and notification, or a Cleared entry for an
 * alarm not in the current set, is a duplicate. Within one Inform, identical entries count
 * once.
 *
 * Thread: the caller's (a shard), no allocation (fixed arrays on the stack; at most
 * HM_ALARMS_MAX_EVENTS entries per Inform, the rest are counted in *<dropped>).
 */
#include <stdint.h>

#include "core/slice.h"
#include "proto/cwmp.h"
#include "storage/store.h"

#define HM_ALARMS_MAX_EVENTS 32

/* One decoded ring entry; slices point into the Inform's parameter values. */
struct hm_alarm_event {
    struct hm_alarm_rec rec;
    bool queued;   /* QueuedEvent (else ExpeditedEvent) */
    uint32_t index; /* ring instance number */
    uint16_t have;  /* bit per field seen */
};

/*
 * Extracts the events of <params>[0..n) into <out> (cap entries); returns how many complete
 * entries (EventTime parseable, non-empty AlarmIdentifier, known NotificationType) were
 * written. Entries with an empty AlarmIdentifier (unused ring slots) are skipped; malformed
 * ones are counted in *<bad> (may be NULL). <device> is stored into each rec.
 */
int hm_alarms_extract(const struct hm_cwmp_param *params, uint32_t n, struct hm_slice device,
                      struct hm_alarm_event *out, int cap, uint32_t *bad);

/*
 * Decodes and appends the alarms of an Inform to <b>. <rd> must be inside a read snapshot
 * (used for deduplication against HM_DB_ALARM_CUR/HM_DB_ALARMS); <st> gives sequence
 * numbers. Returns the number of alarms added (0: none or all duplicates) or -E2BIG if a
 * record does not fit. *<dups> (may be NULL) receives the number of duplicates skipped.
 */
int hm_alarms_decode(struct hm_store_batch *b, struct hm_store_reader *rd, struct hm_store *st,
                     struct hm_slice device, const struct hm_cwmp_param *params, uint32_t n,
                     uint32_t *dups);

/* Names for JSON: "new"/"changed"/"cleared"; "Critical".."Cleared"; never NULL. */
const char *hm_alarm_notif_name(unsigned notif);
const char *hm_alarm_sev_name(unsigned sev);

#endif
