#ifndef HM_API_JSON_H
#define HM_API_JSON_H
/*
 * JSON answers of the northbound API, shared by every module that serves part of it
 * (core/api.c, api_alarms.c, api_profiles.c, files.c, pm_pipe.c). Shard thread, inside a
 * request handler.
 */
#include <jansson.h>
#include <stdbool.h>

#include "core/buf.h"
#include "core/httpd.h"
#include "core/slice.h"

#define HM_API_JSON_CTYPE "application/json"

/* Sets <j> (consumed) as the compact JSON body (one line) of <x>'s response, with the JSON
 * content type; returns <status> for the handler to return. */
int hm_api_send_json(struct hm_http_exchange *x, int status, json_t *j);

/* The API's error body {"error":{"code":<code>,"message":<printf-style message>}}; returns
 * <status>. Messages longer than 511 bytes are cut. */
int hm_api_error(struct hm_http_exchange *x, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* {"error":{"code":<code>,"message":<msg>}} (new reference). */
json_t *hm_api_error_json(const char *code, const char *msg);

/*
 * Answers deferred exchange <ref> (core/httpd.h) with <status> and <j> (consumed; NULL: no
 * body) as its one-line JSON body, after any headers the caller already put in the deferred
 * header buffer. Nothing happens (but <j> is freed) when the connection is gone. Shard thread.
 */
void hm_api_finish_json(struct hm_conn_ref ref, int status, json_t *j, bool close);

/* Percent-decodes <in> ('+' is a space) into <out> (<cap> bytes, no NUL added): the length,
 * or -EINVAL for a bad or %00 escape or when <out> is too small. */
int hm_api_pct_decode(struct hm_slice in, char *out, size_t cap);

/* A path segment (e.g. a device id in /api/v1/devices/{id}) percent-decoded into <out> with
 * a NUL ('+' stays '+', as RFC 3986 paths have it): its length, or -EINVAL when empty,
 * malformed, holding %00, or longer than <cap> - 1. */
int hm_api_path_segment(struct hm_slice in, char *out, size_t cap);

/* Appends <in> percent-encoded for a URL path segment (all but ALPHA DIGIT - . _ ~). */
void hm_api_pct_encode(struct hm_buf *out, struct hm_slice in);

/* Query parameter <name> of <q> (the part after '?'), percent-decoded ('+' is a space) into
 * <out> with a NUL: its length (0 for "name="), -ENOENT when absent, -EINVAL when malformed
 * (bad %-escape, %00) or longer than <cap> - 1. */
int hm_api_query(struct hm_slice q, const char *name, char *out, size_t cap);

#endif
