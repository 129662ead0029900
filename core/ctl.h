#ifndef HM_CTL_H
#define HM_CTL_H
/*
 * hemsctl's client side, shared by its command modules (core/hemsctl_main.c, ctl_files.c,
 * ctl_alarms.c, ...): one HTTP/1.1 request per connection to hemsd's admin listener, and one
 * way to print an answer (the API's error on stderr, its JSON with --json, else a table).
 * Control path only: blocking sockets, malloc.
 *
 * Exit codes of every command: 0 ok, 1 the API answered an error, 2 usage, 3 hemsd
 * unreachable (or a local file unreadable).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct hm_ctl {
    const char *addr;   /* admin listener ADDR:PORT */
    const char *token;  /* bearer token or NULL */
    const char *device; /* --device, or NULL */
    bool json;          /* --json: print the API's JSON */
};

/* Connects to c->addr and sends one request ("Connection: close"), with <extra> header lines
 * (each ending in CRLF; NULL: none) and, when <body> is not NULL, a body of type <ctype>.
 * Returns the connected socket or -errno. */
int hm_ctl_send(const struct hm_ctl *c, const char *method, const char *path, const char *extra,
                const char *ctype, const void *body, size_t blen);

/* Reads the response head from <fd>: *<status>, and the bytes after the head appended to
 * <rest>. 0, -errno, or -EPROTO for no or a malformed head. */
int hm_ctl_read_head(int fd, int *status, struct hm_buf *rest);

/* One exchange: *<status> and the whole body in <resp> (NUL-terminated; the NUL is counted
 * in resp->len). 0 or -errno. */
int hm_ctl_fetch(const struct hm_ctl *c, const char *method, const char *path,
                 const char *ctype, const void *body, size_t blen, int *status,
                 struct hm_buf *resp);

/* Prints an API error answer ("hemsctl: STATUS CODE: MESSAGE") on stderr; returns 1. */
int hm_ctl_api_error(int status, json_t *j);

/* Prints a JSON answer for humans. */
typedef void (*hm_ctl_table_fn)(json_t *j, void *arg);

/*
 * A whole command: hm_ctl_fetch(), then the error (exit 1), the raw JSON (--json), <table>
 * (NULL: hm_ctl_table_generic), or "ok (STATUS)" for an empty answer. *<status> (may be
 * NULL) gets the HTTP status; with <jout> the parsed answer is handed to the caller (NULL
 * when empty or not JSON; caller json_decref()s). Returns the exit code.
 */
int hm_ctl_call(const struct hm_ctl *c, const char *method, const char *path,
                const char *ctype, const void *body, size_t blen, hm_ctl_table_fn table,
                void *arg, int *status, json_t **jout);

/* One "key value" line per member of an object (non-strings as compact JSON), or one
 * compact JSON line per element of an array. */
void hm_ctl_table_generic(json_t *j, void *arg);

/* The string member <k> of <o>, or "" (never NULL). */
const char *hm_ctl_str(json_t *o, const char *k);

/* <ms> since the epoch as "YYYY-MM-DDTHH:MM:SSZ" (UTC), or "-" when <= 0. */
void hm_ctl_time(long long ms, char *out, size_t cap);

/* Appends <s> to <b> percent-encoded as a path segment or query value. */
void hm_ctl_pct(struct hm_buf *b, const char *s);

#endif
