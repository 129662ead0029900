/* libFuzzer target for core/campaign.c: the input is a campaign definition (POST
 * /api/v1/campaigns body). A definition that validates is planned over 7 devices, started,
 * driven for a few ticks, written as records and restored: the restored campaign must have
 * the same state and counts. The input is also decoded as a device record. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/campaign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_camp_dev dd;
    if (hm_camp_dev_decode(hm_slice((const char *)data, size), &dd) == 0)
        free(dd.id);
    json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!in)
        return 0;
    struct hm_camp_cfg c;
    char err[300];
    if (hm_camp_cfg_parse(in, &c, err, sizeof(err)) != 0) {
        json_decref(in);
        return 0;
    }
    json_decref(in);
    if (!c.file_type)
        c.file_type = 3;
    char *ids[7] = {"a-1", "a-2", "a-3", "b-1", "b-2", "c-1", "c-2"};
    struct hm_camp *k = hm_camp_new(&c, ids, 7, 1000);
    (void)hm_camp_command(k, HM_CAMP_CMD_START, NULL, 1000, err, sizeof(err));
    for (uint64_t now = 1000; now < 20000; now += 700) {
        int64_t i;
        while ((i = hm_camp_next(k, now)) >= 0)
            hm_camp_set(k, (uint32_t)i, HM_CD_IN_PROGRESS, 0, now);
        for (uint32_t j = 0; j < k->ndev; j++)
            if (k->dev[j].state == HM_CD_IN_PROGRESS && (j + now / 700) % 3 == 0)
                hm_camp_set(k, j, j % 2 ? HM_CD_FAILED : HM_CD_SUCCEEDED, 9010, now);
        hm_camp_tick(k, now);
    }
    struct hm_buf rec = {0};
    hm_camp_record(k, &rec);
    struct hm_camp_dev *devs = calloc(k->ndev ? k->ndev : 1, sizeof(*devs));
    for (uint32_t j = 0; j < k->ndev; j++) {
        char b[4000];
        int n = hm_camp_dev_encode(&k->dev[j], b, sizeof(b));
        if (n < 0 || hm_camp_dev_decode(hm_slice(b, (size_t)n), &devs[j]) != 0)
            abort();
    }
    struct hm_camp *r = hm_camp_restore(hm_slice(rec.base, rec.len), devs, k->ndev, err,
                                        sizeof(err));
    if (!r || r->state != k->state || r->wave != k->wave ||
        memcmp(r->cnt, k->cnt, sizeof(k->cnt)) != 0)
        abort();
    json_t *j = hm_camp_json(r);
    json_decref(j);
    hm_camp_free(r);
    hm_buf_free(&rec);
    hm_camp_free(k);
    return 0;
}
