/* libFuzzer: profile parsing, matching and merging (core/profiles.h). Input: profile JSON. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/profiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int pool(void *arg, const char *name, int64_t *sample)
{
    (void)arg;
    *sample = 1;
    return strcmp(name, "pci") ? -ENOENT : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (!j)
        return 0;
    struct hm_profile *p = NULL;
    char err[256] = "";
    if (hm_profile_parse("fuzz", j, pool, NULL, &p, err, sizeof(err)) == 0) {
        struct hm_profset *s = hm_profset_build(&p, 1);
        const struct hm_desired *d = hm_profset_lookup(s, 0, HM_SLICE_LIT("HeNB"),
                                                       HM_SLICE_LIT("4.2.1"), HM_SLICE_LIT("a,b"),
                                                       HM_SLICE_LIT("00005A-HeNB-1"));
        for (uint32_t i = 0; d && i < d->n; i++)
            if (hm_desired_find(d, hm_slice_cstr(d->v[i].name)) != &d->v[i])
                abort();
        if (d && d->n > p->nparams)
            abort();
        hm_profset_free(s);
        hm_profile_put(p);
    } else if (p || !err[0]) {
        abort();
    }
    json_decref(j);
    return 0;
}
