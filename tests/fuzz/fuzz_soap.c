/* libFuzzer target for proto/soap: tokenize to the end, then check each token's slices
 * lie inside the input or the arena, and that errors are sticky. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/soap.h"

static char mem[1 << 16];

static int inside(struct hm_slice s, const char *a, size_t an, const char *b, size_t bn)
{
    if (!s.len)
        return 1;
    return (s.ptr >= a && s.ptr + s.len <= a + an) || (s.ptr >= b && s.ptr + s.len <= b + bn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hm_soap_arena a;
    struct hm_soap p;
    struct hm_soap_tok t;
    const char *in = (const char *)data;
    hm_soap_arena_init(&a, mem, sizeof(mem));
    hm_soap_init(&p, in, size, &a, NULL);
    int err;
    while (!(err = hm_soap_next(&p, &t)) && t.type != HM_SOAP_EOF) {
        if (t.type == HM_SOAP_TEXT && !inside(t.text, in, size, mem, sizeof(mem)))
            abort();
        if (t.type == HM_SOAP_START)
            for (unsigned i = 0; i < t.nattr; i++)
                if (!inside(t.attrs[i].value, in, size, mem, sizeof(mem)))
                    abort();
        if (t.type == HM_SOAP_START && t.depth == 3 && hm_soap_leaf_text(&p, &t.text) == 0 &&
            !inside(t.text, in, size, mem, sizeof(mem)))
            abort();
    }
    if (err && hm_soap_next(&p, &t) != err)
        abort();
    return 0;
}
