#ifndef HM_FLEET_S1_H
#define HM_FLEET_S1_H
/*
 * The S1 far end of a device from its S1 region (core/regions.h, docs/profiles.md), for the
 * registration at the Serving HeMS (and discovery with s1.set_by "initial") in
 * core/hems_proc.c: where a region selects the device, its SetParameterValues carries the
 * region's list in the device's own order (and the region's port) instead of the policy's
 * s1.servers. Kept apart from core/hems_proc.h so the two modules stay independent: hemsd
 * wires hm_fleet_s1_source into the hems state with hm_hems_set_s1_source().
 */
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "proto/cwmp.h"

struct hm_hems;

/*
 * Writes device <dev>'s S1 list ("a,b", NUL-terminated) into <list> (<cap> bytes) and its
 * port (or -1) into *<port>: 1; 0 when no region selects the device (or none is defined).
 * Called on the shard thread during an Inform with BOOTSTRAP or BOOT.
 */
typedef int (*hm_hems_s1_fn)(void *arg, struct hm_slice dev, const struct hm_cwmp_inform *in,
                             char *list, size_t cap, int32_t *port);

/* Sets the source (defined in core/hems_proc.c; before the shards start). */
void hm_hems_set_s1_source(struct hm_hems *h, hm_hems_s1_fn fn, void *arg);

/*
 * The fleet's source (<arg>: struct hm_fleet *, core/fleet.c): the region the device's
 * tags, desired TAC (its profiles' TAC parameter; a TAC pool value only once allocated),
 * OUI and ProductClass select. Opens its own store snapshot (the hook has none), serialised
 * by a mutex: bootstrap path only.
 */
int hm_fleet_s1_source(void *arg, struct hm_slice dev, const struct hm_cwmp_inform *in,
                       char *list, size_t cap, int32_t *port);

#endif
