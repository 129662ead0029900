/*
 * Store record decoders: the first byte picks the record type, the rest is the value.
 * Property: whatever decodes re-encodes to the identical bytes (the format is canonical),
 * so a decoder can never accept something the encoder would write differently.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/record.h"

#define TRY(T)                                                                                     \
    do {                                                                                           \
        struct hm_##T##_rec r;                                                                     \
        if (hm_rec_##T##_decode(in, &r) == 0) {                                                    \
            static char out[HM_STORE_MAX_VAL + 1];                                                 \
            int n = hm_rec_##T##_encode(&r, out, sizeof(out));                                     \
            if (in.len <= HM_STORE_MAX_VAL &&                                                      \
                (n != (int)in.len || memcmp(out, in.ptr, in.len) != 0))                            \
                abort();                                                                           \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    struct hm_slice in = hm_slice((const char *)data + 1, size - 1);
    switch (data[0] % 7) {
    case 0:
        TRY(dev);
        break;
    case 1:
        TRY(param);
        break;
    case 2:
        TRY(task);
        break;
    case 3:
        TRY(alarm);
        break;
    case 4:
        TRY(alarm_cur);
        break;
    case 5:
        TRY(file);
        break;
    case 6:
        TRY(pm);
        break;
    }
    return 0;
}
