#ifndef HM_REGIONS_H
#define HM_REGIONS_H
/*
 * S1 far-end regions (docs/profiles.md): a region is a named list of S1 signalling end
 * points (MMEs or HeNB-GWs) with an optional SCTP port, and a selector saying which devices
 * belong to it (tags, TAC ranges, OUI, ProductClass: every given criterion must hold). Where
 * several regions match a device, the highest priority wins, then the name sorting last
 * (as profiles).
 *
 * A device's list is the region's servers in the device's own order: highest random weight
 * (rendezvous) order of hash(device, server). So load spreads evenly over the servers (each
 * is first for ~1/n of the devices), a device gets the same order at every registration,
 * and adding a server to a region of n moves the first choice of only ~1/(n+1) of its
 * devices (to the new server) while the relative order of the others stays.
 *
 * This file is pure: no store, no threads (core/fleet.c runs it).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

#define HM_REGION_NAME_MAX 63
#define HM_REGION_MAX_SERVERS 16
#define HM_REGION_SERVER_MAX 253 /* a DNS name */
#define HM_REGION_MAX_TACS 64    /* TAC ranges per selector */
#define HM_REGION_MAX_TAGS 16
#define HM_REGION_LIST_MAX 1024  /* bytes of the joined list */
#define HM_REGIONS_MAX 256

struct hm_region {
    char name[HM_REGION_NAME_MAX + 1];
    int64_t priority;
    char *servers[HM_REGION_MAX_SERVERS];
    uint32_t nservers, max_servers; /* max_servers 0: all */
    int32_t port;                   /* -1: not set */
    char *tags[HM_REGION_MAX_TAGS];
    uint32_t ntags, ntacs;
    int64_t tac_lo[HM_REGION_MAX_TACS], tac_hi[HM_REGION_MAX_TACS];
    char *oui, *product_class; /* NULL: any */
    json_t *json;              /* normalised (owned; read-only: copy it, never incref it) */
};

/*
 * Parses region <name> from <in>:
 *   {"servers": ["10.0.0.1", "mme2.op.example"] | "10.0.0.1,mme2.op.example",
 *    "port": 36412, "max_servers": 2, "priority": 10,
 *    "selector": {"tags": ["north"], "tac": [100, [200, 299]], "oui": "00256D",
 *                 "product_class": "HeNB"}}
 * Unknown keys are refused. 0 and a new region in *<out> (hm_region_free()), or -EINVAL
 * with a message naming the field in <err>.
 */
int hm_region_parse(const char *name, json_t *in, struct hm_region **out, char *err,
                    size_t errlen);
void hm_region_free(struct hm_region *r);

/* Whether <r> selects a device with tags <tags> (normalised "a,b"), TAC <tac> (-1: none
 * known; never in a TAC range), <oui> and <pc>. */
bool hm_region_matches(const struct hm_region *r, struct hm_slice tags, int64_t tac,
                       struct hm_slice oui, struct hm_slice pc);

/* The region among <rs> that applies (priority, then name), or NULL. */
const struct hm_region *hm_region_pick(struct hm_region *const *rs, size_t n,
                                       struct hm_slice tags, int64_t tac, struct hm_slice oui,
                                       struct hm_slice pc);

/* Writes device <dev>'s list ("a,b,c", NUL-terminated) into <out>: its length, or -E2BIG
 * when <cap> is too small (HM_REGION_LIST_MAX + 1 always suffices). */
int hm_region_list(const struct hm_region *r, struct hm_slice dev, char *out, size_t cap);

/* Whether any selector of <rs> uses tags (else a device's tags need not be read). */
bool hm_regions_use_tags(struct hm_region *const *rs, size_t n);

#endif
