#ifndef HM_PM_H
#define HM_PM_H
/*
 * Streaming PM file parser: 3GPP TS 32.435 measCollec XML and the China Mobile "PmFile"
 * format, detected by the root element. Built on a libxml2 SAX2 push parser that is created
 * once per parser and reset per file, so a 60 KB and a 50 MB file use the same bounded
 * memory (no DOM). gzip input is recognised by its magic bytes and inflated on the fly.
 * DTDs are refused (XXE and entity-expansion safe), the network is never touched, and the
 * libxml2 "huge" limits stay off. No sockets, no threads; one parser per thread.
 *
 * Use:  p = hm_pm_parser_create();
 *       hm_pm_begin(p, cb, arg);  hm_pm_feed(p, chunk, n) ...;  hm_pm_finish(p, &sum);
 *   or  hm_pm_parse_fd(p, fd, cb, arg, &sum);
 *
 * Measurements reach <cb> as soon as their measValue (32.435) or value element (CMCC) is
 * complete, so a file that later turns out malformed has already delivered some: callers
 * stage them and commit only when hm_pm_finish() succeeds (the quarantine rule).
 *
 * Errors: HM_EBADPM for anything wrong with the file (not XML, truncated, DTD present,
 * unknown root, a value without a measType, limits exceeded, bad gzip); hm_pm_errmsg()
 * then gives "line N: reason" for the quarantine log. A callback's negative return stops
 * the parse and is returned as is.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto/pm-t.h" /* before bug.h: slice.h pulls <string.h> */
#include "core/bug.h"
#include "core/err.h"

struct hm_pm_parser;

/* Called once per measurement; <m> and its slices are valid only during the call.
 * Return 0 to go on, or a negative error to stop the parse with that error. */
typedef int (*hm_pm_cb)(void *arg, const struct hm_pm_meas *m);

#define HM_PM_MAX_TYPES 4096       /* counters per measInfo / Measurements block */
#define HM_PM_MAX_TEXT (1u << 20)  /* bytes of one element's text, of one block's names */
#define HM_PM_MAX_DN 1024          /* bytes of a DN, measInfoId, version, vendor ... */
#define HM_PM_DEFAULT_MAX_BYTES (1ull << 30) /* decompressed XML per file (gzip bombs) */

/* Creates a parser (allocates; control path). Returns NULL only if libxml2 fails.
 * Free with hm_pm_parser_destroy(). */
struct hm_pm_parser *hm_pm_parser_create(void);
void hm_pm_parser_destroy(struct hm_pm_parser *p);

/* Caps the decompressed XML bytes accepted per file (default HM_PM_DEFAULT_MAX_BYTES). */
void hm_pm_set_max_bytes(struct hm_pm_parser *p, uint64_t max_bytes);

/* Starts a new file: resets the XML context and all state; <cb>/<arg> receive its
 * measurements. Returns 0 or HM_EBADPM (libxml2 could not reset). */
int hm_pm_begin(struct hm_pm_parser *p, hm_pm_cb cb, void *arg) HM_MUST_CHECK;

/* Feeds the next <len> bytes of the file (raw or gzip, any chunking). Returns 0, or the
 * error that stopped the parse (sticky: later feeds return it again). */
int hm_pm_feed(struct hm_pm_parser *p, const void *data, size_t len) HM_MUST_CHECK;

/* Ends the file. Returns 0 and fills <sum> (may be NULL; its slices live until the next
 * hm_pm_begin()) when the file was complete and well formed, else an error as above. */
int hm_pm_finish(struct hm_pm_parser *p, struct hm_pm_summary *sum) HM_MUST_CHECK;

/* begin + feed from <fd> until EOF (64 KB reads, EINTR retried) + finish. Does not close
 * <fd>. Returns 0, -errno for a read error, or an error as above. */
int hm_pm_parse_fd(struct hm_pm_parser *p, int fd, hm_pm_cb cb, void *arg,
                   struct hm_pm_summary *sum) HM_MUST_CHECK;

/* begin + feed(<data>, <len>) + finish. */
int hm_pm_parse_buf(struct hm_pm_parser *p, const void *data, size_t len, hm_pm_cb cb,
                    void *arg, struct hm_pm_summary *sum) HM_MUST_CHECK;

/* "line N: reason" for the last error of <p>, or "" if none; static to <p>, valid until
 * the next hm_pm_begin(). */
const char *hm_pm_errmsg(const struct hm_pm_parser *p);

/* Parses a TS 32.432 file name (a basename, optionally with .xml / .xml.gz / .gz):
 * "A20261126.1400+0000-1415+0000_HeNB-1.xml", type C/D "C20261126.1400+0000-20261126.1500+0000_x".
 * Never fails: a name that does not conform is accepted with HM_PM_NAME_NONCONFORMING set
 * and whatever could be parsed filled in. out->sender/rc point into <name>. */
void hm_pm_name_parse(struct hm_slice name, struct hm_pm_name *out);

/* xs:dateTime ("2026-11-26T14:15:00+00:00", "...Z", fraction ignored, no zone = UTC) to
 * Unix seconds. Returns 0 or HM_EBADPM. */
int hm_pm_parse_datetime(struct hm_slice s, int64_t *out) HM_MUST_CHECK;

/* xs:duration in days/hours/minutes/seconds ("PT900S", "PT15M", "P1DT1H") to seconds.
 * Years and months (no fixed length) are refused. Returns 0 or HM_EBADPM. */
int hm_pm_parse_duration(struct hm_slice s, uint32_t *out) HM_MUST_CHECK;

#endif
