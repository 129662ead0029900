/* libFuzzer target for proto/cwmp: parse one HTTP body; on success, re-serialise the
 * parameter-bearing messages with the writers and parse the result again, which must
 * give the same counts (writer output must always be parseable). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/cwmp.h"

static char mem[1 << 18], mem2[1 << 18];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_soap_arena a, a2;
    struct hm_cwmp_msg m, m2;
    static struct hm_buf b;
    hm_soap_arena_init(&a, mem, sizeof(mem));
    if (hm_cwmp_parse((const char *)data, size, &a, NULL, &m) != 0)
        return 0;
    struct hm_cwmp_hdr h = {.ver = m.ver, .id = m.id, .hold_requests = m.hold_requests};
    hm_buf_reset(&b);
    uint32_t n = 0;
    switch (m.method) {
    case HM_CWMP_INFORM:
        hm_cwmp_write_inform(&b, &h, &m.u.inform);
        n = m.u.inform.params.n;
        break;
    case HM_CWMP_GET_PARAMETER_VALUES_RESPONSE:
        hm_cwmp_write_gpv_response(&b, &h, m.u.params.v, m.u.params.n);
        n = m.u.params.n;
        break;
    case HM_CWMP_FAULT:
        hm_cwmp_write_fault(&b, &h, m.u.fault.code, m.u.fault.string, m.u.fault.spv_faults.v,
                            m.u.fault.spv_faults.n);
        n = m.u.fault.spv_faults.n;
        break;
    default:
        return 0;
    }
    hm_soap_arena_init(&a2, mem2, sizeof(mem2));
    int err = hm_cwmp_parse(b.base, b.len, &a2, NULL, &m2);
    /* Values may shrink (C0 controls become '?') but never grow past the XSD limits. */
    if (err != 0 || m2.method != m.method)
        abort();
    if (m.method == HM_CWMP_INFORM && m2.u.inform.params.n != n)
        abort();
    return 0;
}
