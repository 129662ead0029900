#ifndef HM_API_ALARMS_H
#define HM_API_ALARMS_H
/*
 * Northbound alarm queries (docs/alarms.md, docs/api.md), called by core/api.c's router on
 * the shard that received the request; each runs one short read snapshot on <rd> and fills
 * x->out with JSON. Return the HTTP status.
 *   GET /api/v1/alarms?device=ID&since=MS&after=KEY&limit=N   history, oldest first
 *   GET /api/v1/devices/{id}/alarms                            current (raised) alarms
 *   GET /api/v1/alarms/active                    current alarms of every device (<dev> empty)
 *   POST /api/v1/alarms/{key}/ack  body {"by": NAME} (optional)   acknowledge (operator)
 * An alarm's "key" is its HM_DB_ALARMS key in hex (32 digits): event time, then sequence.
 */
#include "core/httpd.h"
#include "storage/store.h"

int hm_api_alarms_list(struct hm_http_exchange *x, struct hm_store_reader *rd);
int hm_api_alarms_current(struct hm_http_exchange *x, struct hm_store_reader *rd,
                          struct hm_slice dev);

/*
 * Acknowledges alarm <hexkey>: the history record gets ack time and <by> (the body's "by",
 * else "operator@PEER") in a store commit; answered (200, the alarm) after the commit, so
 * HM_HTTP_DEFER. Acknowledging twice keeps the first acknowledgement (200). 404: no alarm.
 */
int hm_api_alarm_ack(struct hm_http_exchange *x, struct hm_store_reader *rd,
                     struct hm_store *st, struct hm_slice hexkey);

/* The JSON of one alarm (key, device, ..., "ack": {time_ms, by} or null); caller owns it. */
#include <jansson.h>
json_t *hm_alarm_json(struct hm_slice key, const struct hm_alarm_rec *a);

/* Writes the 32-digit hex form of a 16-byte alarm key into <out> (33 bytes, NUL-ended). */
void hm_alarm_key_hex(const char *key, char out[33]);
/* Parses the hex form; 0 or -EINVAL. */
int hm_alarm_key_unhex(struct hm_slice hex, char key[16]);

#endif
