#include "core/err.h"

#include <string.h>

const char *hm_strerror(int err)
{
    switch (err) {
#define HM_ERR_CASE(n, v, s)                                                                 \
    case v:                                                                                  \
        return s;
        HM_ERR_LIST(HM_ERR_CASE)
#undef HM_ERR_CASE
    default:
        break;
    }
    if (err < 0 && err > -4000)
        return strerror(-err);
    return err == 0 ? "success" : "unknown error";
}
