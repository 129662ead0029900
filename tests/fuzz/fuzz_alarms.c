/* libFuzzer: FaultMgmt event decoding (core/alarms.h). Input: "name\tvalue\n" lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alarms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_cwmp_param p[64];
    uint32_t n = 0;
    const char *s = (const char *)data, *end = s + size;
    while (s < end && n < 64) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        const char *tab = memchr(s, '\t', (size_t)(le - s));
        p[n].name = hm_slice(s, (size_t)((tab ? tab : le) - s));
        p[n].value = tab ? hm_slice(tab + 1, (size_t)(le - tab - 1)) : hm_slice("", 0);
        p[n].type = 0;
        n++;
        s = le + 1;
    }
    struct hm_alarm_event ev[8];
    uint32_t bad;
    int k = hm_alarms_extract(p, n, HM_SLICE_LIT("dev"), ev, 8, &bad);
    if (k < 0 || k > 8)
        abort();
    for (int i = 0; i < k; i++) {
        if (!ev[i].rec.alarm_id.len || !ev[i].rec.event_time_ms || ev[i].rec.notification > 2 ||
            ev[i].rec.severity > 5 || (i && ev[i - 1].rec.event_time_ms > ev[i].rec.event_time_ms))
            abort();
        (void)hm_alarm_notif_name(ev[i].rec.notification);
    }
    return 0;
}
