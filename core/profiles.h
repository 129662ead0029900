#ifndef HM_PROFILES_H
#define HM_PROFILES_H
/*
 * Profiles: declarative desired state for groups of devices (docs/profiles.md).
 *
 * A profile is a named set of parameter values with a selector (ProductClass, software
 * version, tags, explicit devices: every given criterion must hold) and a priority (where
 * profiles overlap, the higher priority sets the value; equal priorities: the profile whose
 * name sorts last). A value may be "${pool:NAME}": the device's value from that parameter
 * pool (core/pools.h).
 *
 * All profiles are compiled into an immutable set (struct hm_profset). Lookups of a
 * device's merged desired state are cached in the set per (ProductClass, SoftwareVersion,
 * tags[, device when a profile names it]) and per reader slot (one per shard thread), so the
 * work per Inform is one hash probe whatever the number of profiles; the first lookup of a
 * combination on a slot merges the matching profiles once (and allocates: control-path cost
 * paid once per combination and slot, until the set is replaced).
 *
 * This file is pure: no store, no threads. core/fleet.h runs it.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

#define HM_PROFILE_NAME_MAX 63
#define HM_PROFILE_MAX_PARAMS 512
#define HM_PROFSET_SLOTS 257 /* reader slots: shard ids 0..255, and core/fleet.c's S1 hook */

struct hm_profile_param {
    char *name, *value; /* value: empty when pool >= 0 */
    uint8_t type;       /* enum hm_cwmp_type */
    int16_t pool;       /* index of the pool the value comes from, or -1 */
};

struct hm_profile {
    char *name;
    int64_t priority;
    char *product_class, *sw_version; /* NULL: any; sw_version "4.2.*": prefix */
    char **tags;                      /* all must be on the device */
    char **devices;                   /* "OUI-ProductClass-Serial"; none: any device */
    uint32_t ntags, ndevices, nparams;
    struct hm_profile_param *params;
    json_t *json; /* the normalised profile (owned; read-only: copy it, never incref it,
                   * jansson's reference counts are not atomic) */
    int refs;     /* sets holding it (control path only, under the owner's mutex) */
};

/*
 * Resolves pool <name> for the parser: returns its index (>= 0) and sets *<sample> to a
 * value of the pool (used to check the parameter against the data model), or -ENOENT.
 */
typedef int (*hm_profile_pool_fn)(void *arg, const char *name, int64_t *sample);

/*
 * Parses and validates profile <name> from JSON <in>:
 *   {"priority": 10,
 *    "selector": {"product_class": "HeNB", "software_version": "4.2.*", "tags": ["north"],
 *                 "devices": ["00005A-HeNB-SN1"]},
 *    "params": [{"name": "Device...PhyCellID", "value": "12"},
 *               {"name": "...", "value": "${pool:pci}"}, {"name":..., "value":..., "type":..}]}
 * Every parameter is checked with hm_task_validate() (so against the data model when one
 * is loaded, which also gives the xsi:type). On success *<out> is a new profile with refs 1
 * (hm_profile_put()). On failure -EINVAL with a message naming the field or parameter.
 */
int hm_profile_parse(const char *name, json_t *in, hm_profile_pool_fn pool_fn, void *arg,
                     struct hm_profile **out, char *err, size_t errlen);

/*
 * A selector alone ({"product_class", "software_version", "tags", "devices"}, same rules as
 * a profile's): *<out> is a profile without parameters (refs 1, hm_profile_put()) to test
 * with hm_profile_matches(). Used by campaigns (core/campaign.h). -EINVAL with <err>.
 */
int hm_selector_parse(json_t *sel, struct hm_profile **out, char *err, size_t errlen);

/* Drops a reference; frees at zero. NULL is a no-op. */
void hm_profile_put(struct hm_profile *p);

/* Whether <name> is a valid profile name (letters, digits, '_', '-', '.', 1..63). */
bool hm_profile_name_ok(const char *name);

/* Whether <p>'s selector holds for a device. <tags>: its tags, normalised (sorted,
 * ','-joined, see hm_tags_normalise()). */
bool hm_profile_matches(const struct hm_profile *p, struct hm_slice pc, struct hm_slice sw,
                        struct hm_slice tags, struct hm_slice dev);

/*
 * Normalises a JSON array of tag strings into <out> (<cap> bytes, NUL-terminated): sorted,
 * duplicates removed, joined with ','. Tags: 1..32 of [A-Za-z0-9_.:-]. Returns the length
 * or -EINVAL with <err>.
 */
int hm_tags_normalise(json_t *arr, char *out, size_t cap, char *err, size_t errlen);

/* ---- merged desired state --------------------------------------------------------------- */

struct hm_desired_param {
    const char *name, *value; /* point into the set's profiles */
    uint8_t type;
    int16_t pool;
};

struct hm_desired {
    uint64_t hash; /* of names, values (pool references as such) and types */
    uint64_t filter[4]; /* bit hm_desired_bit(name) set for every name: cheap misses */
    uint32_t n;
    uint32_t npools;
    int16_t pools[8]; /* distinct pools referenced (first 8) */
    struct hm_desired_param v[]; /* sorted by name (strcmp) */
};

/* A name's bit in hm_desired.filter (length and last characters: O(1)). */
static inline unsigned hm_desired_bit(struct hm_slice name)
{
    size_t n = name.len;
    unsigned a = n ? (unsigned char)name.ptr[n - 1] : 0, b = n > 1 ? (unsigned char)name.ptr[n - 2] : 0;
    return (unsigned)(n * 7u + a * 31u + b) & 255u;
}

/* The entry named <name>, or NULL. O(1) for most misses, else O(log n). */
const struct hm_desired_param *hm_desired_find(const struct hm_desired *d, struct hm_slice name);

/* Merges the profiles among <ps> that match (<ps> in any order). NULL when none matches or
 * none sets a parameter. Caller frees (free()). Valid while <ps> are. */
struct hm_desired *hm_desired_merge(struct hm_profile *const *ps, size_t n, struct hm_slice pc,
                                    struct hm_slice sw, struct hm_slice tags,
                                    struct hm_slice dev);

/* ---- compiled sets ------------------------------------------------------------------------ */

struct hm_profset;

/* A set of <n> profiles (each gains a reference). Control path. */
struct hm_profset *hm_profset_build(struct hm_profile *const *ps, size_t n);
/* Frees the set and its caches, dropping its references. No reader may hold it. */
void hm_profset_free(struct hm_profset *s);

size_t hm_profset_count(const struct hm_profset *s);
/* The i-th profile, sorted by name. */
const struct hm_profile *hm_profset_at(const struct hm_profset *s, size_t i);
/* Whether some profile selects by tag (else a device's tags need not be read). */
bool hm_profset_uses_tags(const struct hm_profset *s);

/*
 * The merged desired state of a device, or NULL if no profile sets anything for it. Only
 * the thread owning reader slot <slot> (< HM_PROFSET_SLOTS) may use that slot. The result
 * is valid until the set is freed.
 */
const struct hm_desired *hm_profset_lookup(struct hm_profset *s, unsigned slot,
                                           struct hm_slice pc, struct hm_slice sw,
                                           struct hm_slice tags, struct hm_slice dev);

/* 64-bit FNV-1a continuing from <h> (start with HM_HASH_INIT). */
#define HM_HASH_INIT 0xcbf29ce484222325ull
uint64_t hm_hash_bytes(uint64_t h, const void *p, size_t n);


/* "xsd:unsignedInt" etc. for an enum hm_cwmp_type, as tasks store it. */
const char *hm_profile_xsi(uint8_t type);

#endif
