#ifndef HM_HTTP_RANGE_H
#define HM_HTTP_RANGE_H
/*
 * The Range request header (RFC 9110 14.2), reduced to what the file server serves: one
 * byte range. Pure and allocation-free; fuzzed by tests/fuzz/fuzz_range.c.
 */
#include <stdint.h>

#include "core/slice.h"

/*
 * Resolves the Range header value <v> against a representation of <size> bytes.
 * Returns:
 *   1        one satisfiable range: bytes [*<first>, *<last>] (inclusive, last < size)
 *   0        ignore the header and send the whole representation (200): empty value, a unit
 *            other than "bytes", a syntax error, or several ranges (RFC 9110 lets a server
 *            ignore Range; we never build multipart/byteranges)
 *   -ERANGE  unsatisfiable: answer 416 with "Content-Range: bytes * /<size>"
 * A last-pos past the end is clamped to size - 1; "bytes=-N" is the last N bytes.
 * <first> and <last> are written only on 1.
 */
int hm_http_range_parse(struct hm_slice v, uint64_t size, uint64_t *first, uint64_t *last);

#endif
