#ifndef HM_HEMS_PROC_H
#define HM_HEMS_PROC_H
/*
 * HeMS procedures of TS 32.593 (docs/procedures.md): Serving HeMS discovery at the Initial
 * HeMS (whitelist, assignment of a Serving HeMS and SeGW, redirection by SetParameterValues)
 * and registration at the Serving HeMS (S1 far end, IPsec usage indicator, active
 * notification on the IPsec inner address, AdminState last).
 *
 * The node's role comes from [hems] role; the policy (whitelist, serving nodes, SeGWs, static
 * assignments, S1, per-ProductClass IPsec indicator) from the JSON file [hems] policy_file,
 * read at start, on hm_hems_reload() (SIGHUP) and replaceable in part through the API
 * (whitelist). The policy is an immutable jansson tree swapped under a mutex: the Inform hook
 * takes the mutex only for 0 BOOTSTRAP / 1 BOOT Informs, which are rare.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/slice.h"
#include "proto/cwmp.h"
#include "storage/store.h"
#include "storage/store-t.h"

enum { HM_HEMS_ROLE_INITIAL = 1, HM_HEMS_ROLE_SERVING = 2 };

/* "initial" | "serving" | "both" -> role mask, or -EINVAL. */
int hm_hems_role_parse(const char *s);

/* ---- rendezvous (highest random weight) hashing -------------------------------------- */

struct hm_hrw_node {
    const char *id; /* NUL-terminated, hashed with the key */
    double weight;  /* > 0; 0 or less: never chosen */
};

/*
 * Index of the node <key> maps to among <nodes> (weighted rendezvous hashing: score
 * -w / ln(u), u uniform in (0,1) from a 64-bit hash of key and node id), or -1 if no node has
 * a positive weight. Deterministic; adding a node of weight w to a total W moves only the
 * keys the new node wins, a share w / (W + w) of them.
 */
int hm_hrw_pick(const struct hm_hrw_node *nodes, size_t n, struct hm_slice key);

/* ---- policy ---------------------------------------------------------------------------- */

/*
 * Parses and validates policy JSON <text> (format in docs/procedures.md). Returns a new
 * reference (caller owns, json_decref) or NULL with a message in <err>.
 */
json_t *hm_hems_policy_parse(const char *text, size_t len, char *err, size_t errlen);

/* Validates a whitelist array; 0 or -EINVAL with <err>. */
int hm_hems_whitelist_check(json_t *wl, char *err, size_t errlen);

/*
 * Whether device <oui>-<pc>-<serial> is admitted by whitelist array <wl> (entries
 * {"device": "OUI-PC-SERIAL"}, {"oui", "product_class", "serial_from", "serial_to"} (serials
 * in a range compare by length, then bytes, so numeric serials of one width order
 * naturally), or {"tls_identity": "ID" or "*SUFFIX"}: the verified client-certificate
 * identity <tls_identity> of the connection (NULL: not TLS, or no certificate), which the ACS
 * has already bound to the DeviceId (TS 33.320, core/tls.h)).
 */
bool hm_hems_whitelisted(json_t *wl, struct hm_slice oui, struct hm_slice pc,
                         struct hm_slice serial, const char *tls_identity);

/* ---- the node's HeMS state -------------------------------------------------------------- */

struct hm_hems;

/*
 * From cfg's [hems] role, node_id, policy_file (read now). NULL with <err> on a bad role or
 * an unreadable / invalid policy file. Owned by the caller (hm_hems_destroy).
 */
struct hm_hems *hm_hems_create(const struct hm_config *cfg, char *err, size_t errlen);
void hm_hems_destroy(struct hm_hems *h);

/* Re-reads the policy file (SIGHUP); on error keeps the running policy. 0 or -errno. */
int hm_hems_reload(struct hm_hems *h, char *err, size_t errlen);

/* The whitelist now (new reference). */
json_t *hm_hems_whitelist_get(struct hm_hems *h);
/* Replaces the whitelist (as hm_hems_policy_set(h, "whitelist", wl, true, ...)). */
int hm_hems_whitelist_put(struct hm_hems *h, json_t *wl, char *err, size_t errlen);

/*
 * Policy sections set through the API ("overrides"): the effective policy is the policy
 * file's with each overridden top-level section (whitelist, serving_nodes, segws, static, s1,
 * ipsec_indicator, location_params, location_check, pm, registration) replaced whole. Overrides survive SIGHUP
 * reloads of the file; the API persists them in the store (core/api_policy.c) and feeds
 * them back at start.
 */
bool hm_hems_policy_section_ok(const char *name);
/* A copy of section <section> of the effective policy (json null when absent; *overridden
 * tells whether the API set it), or with a NULL <section> the whole effective policy. */
json_t *hm_hems_policy_get(struct hm_hems *h, const char *section, bool *overridden);
/* The names of the overridden sections (new array). */
json_t *hm_hems_policy_overridden(struct hm_hems *h);
/*
 * Sets section <section> to <val> (copied), or with a NULL <val> drops the override (the
 * file's section applies again). The result is validated as a whole; with <apply> false
 * nothing changes (a dry run). 0, -ENOENT (unknown section) or -EINVAL, with <err>.
 */
int hm_hems_policy_set(struct hm_hems *h, const char *section, json_t *val, bool apply,
                       char *err, size_t errlen);

int hm_hems_role(const struct hm_hems *h);

/*
 * The Inform hook, called by the ACS after it has built device record <d> (for device key
 * <dev>) and before it commits batch <b>. Adds to <b> the tasks of discovery (initial role,
 * 0 BOOTSTRAP) or registration (serving role, 0 BOOTSTRAP, or 1 BOOT of a device not yet
 * registered here), and sets d->role, d->reg_state, d->serving_node (pointing into <nodebuf>,
 * which must outlive the record's encoding). <host> and <path> are the Host header and path
 * of the HTTP request that carried the Inform (the ACS URL the device used; empty host:
 * unknown); <tls_identity> the connection's verified client-certificate identity or NULL.
 * Returns 0, -E2BIG when the batch is full, or HM_HEMS_REFUSED when the device must be
 * refused with a CWMP fault (its Inform reports a location outside the area).
 * With a NULL <h> only sets reg_state as before (registered).
 */
int hm_hems_on_inform(struct hm_hems *h, struct hm_store *st, struct hm_store_batch *b,
                      struct hm_slice dev, const struct hm_cwmp_inform *in,
                      struct hm_slice host, struct hm_slice path, const char *tls_identity,
                      struct hm_dev_rec *d, char *nodebuf, size_t nodecap);

/*
 * The task result hook, called by the ACS after it has put task record <t> (sequence <seq>,
 * the CPE's answer <m>) in batch <b>, inside a read transaction of <rd>: the PM upload
 * provisioning of core/hems_pm.h (AddObject answered -> SPV with credentials; PM Enable
 * changed by a task). 0 or a negative error (batch full). NULL <h>: nothing.
 */
int hm_hems_on_result(struct hm_hems *h, struct hm_store_reader *rd, struct hm_store_batch *b,
                      struct hm_slice dev, uint64_t seq, const struct hm_task_rec *t,
                      const struct hm_cwmp_msg *m);

/* hm_hems_on_inform's refusal of the device (location outside the allowed area): the ACS
 * answers the Inform with CWMP Fault 8001 and commits nothing. */
#define HM_HEMS_REFUSED (-EPERM)

/* Wires <h> (not owned, outlives the ACS) into the ACS's Inform path (core/acs.c). */
struct hm_acs;
void hm_acs_set_hems(struct hm_acs *a, struct hm_hems *h);

/* Appends the Prometheus counters (hems_discovery_*, hems_registration_*). */
void hm_hems_render_metrics(struct hm_buf *out, void *arg);

#endif
