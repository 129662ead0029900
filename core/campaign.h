#ifndef HM_CAMPAIGN_H
#define HM_CAMPAIGN_H
/*
 * Rollout campaigns (docs/campaigns.md): a firmware image ("1 Firmware Upgrade Image") or a
 * configuration file ("3 Vendor Configuration File") delivered by Download to a frozen set of
 * devices, in waves, with paced dispatch, per-device timeouts and an automatic halt when a
 * wave's failures exceed max_failure_ratio x its size.
 *
 * This header has two halves:
 *  - the pure state machine (struct hm_camp: no store, no threads, no clock of its own: every
 *    function takes <now_ms>), unit-tested in tests/unit/core/test_campaign.c;
 *  - the runtime (struct hm_campaigns, core/campaigns.c): one control thread that drives
 *    every campaign (polls task outcomes in the store, queues Download tasks, sends paced
 *    connection requests, persists each change before acting on it) and the API handler.
 *
 * State machine of a campaign:
 *
 *   created --start--> running --pause--> paused --resume--> running
 *      |                 |  \--(failures > ratio x wave size)--> halted --resume--> running
 *      |                 \--(last wave evaluated)--> completed
 *      \--cancel (from created, running, paused, halted)--> cancelled
 *
 * Devices: pending -> in_progress (task queued) -> succeeded | failed | timed_out;
 * pending -> cancelled on cancel. Outcomes are final (resume with "retry_failed" puts the
 * current wave's failed and timed_out devices back to pending).
 *
 * Ownership: a struct hm_camp owns its devices' ids and its JSON members; hm_camp_free().
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"

#define HM_CAMP_NAME_MAX 63
#define HM_CAMP_MAX_WAVES 16
#define HM_CAMP_MAX_DEVICES 1000000u
#define HM_CAMP_MAX 64 /* campaigns kept (terminal ones included; DELETE removes them) */

enum hm_camp_state {
    HM_CAMP_CREATED,
    HM_CAMP_RUNNING,
    HM_CAMP_PAUSED,
    HM_CAMP_HALTED,
    HM_CAMP_COMPLETED,
    HM_CAMP_CANCELLED,
    HM_CAMP__NSTATES
};

enum hm_camp_dstate {
    HM_CD_PENDING,
    HM_CD_IN_PROGRESS,
    HM_CD_SUCCEEDED,
    HM_CD_FAILED,
    HM_CD_TIMED_OUT,
    HM_CD_CANCELLED,
    HM_CD__N
};

enum hm_camp_cmd { HM_CAMP_CMD_START, HM_CAMP_CMD_PAUSE, HM_CAMP_CMD_RESUME, HM_CAMP_CMD_CANCEL };

/* A wave size: <n> devices, or <n> percent of the campaign's devices when <pct>. */
struct hm_camp_wave_spec {
    uint32_t n;
    bool pct;
};

struct hm_camp_cfg {
    char name[HM_CAMP_NAME_MAX + 1];
    char file[129];           /* an uploaded file (core/files.h) */
    char target_version[65];  /* firmware: the SoftwareVersion that means success */
    uint8_t file_type;        /* 1 or 3 */
    json_t *selector;         /* owned; validated by hm_selector_parse() */
    uint32_t nwaves;
    struct hm_camp_wave_spec waves[HM_CAMP_MAX_WAVES];
    double max_failure_ratio; /* 0..1: halt when a wave's failures exceed ratio x size */
    uint32_t pause_s;         /* between a wave's success and the next wave */
    uint32_t timeout_s;       /* per device, from dispatch to outcome */
    uint32_t cr_per_s;        /* dispatches (task + connection request) per second */
    uint32_t max_in_flight;   /* devices in progress at once; 0: no limit but the wave */
    uint32_t cr_retry_s;      /* a device whose task is still queued after this long gets
                               * another connection request; 0: never */
};

struct hm_camp_dev {
    char *id;              /* owned */
    uint64_t task_seq;     /* 0 until dispatched */
    uint64_t started_ms, ended_ms;
    uint64_t cr_ms;        /* last connection request (memory only; 0 after a restart) */
    uint32_t fault;        /* TransferComplete / task fault code; 0 */
    uint16_t wave;
    uint8_t state;         /* enum hm_camp_dstate */
    uint8_t dirty;         /* changed since the last persist */
};

struct hm_camp {
    struct hm_camp_cfg c;
    uint8_t state; /* enum hm_camp_state */
    char reason[200];
    uint32_t wave;           /* current wave */
    uint64_t next_wave_ms;   /* the current wave opens at this time (0: open) */
    uint64_t created_ms, started_ms, ended_ms, updated_ms;
    uint32_t ndev;
    struct hm_camp_dev *dev;                   /* owned; sorted by wave */
    uint32_t wave_start[HM_CAMP_MAX_WAVES + 1]; /* devices of wave w: [wave_start[w], [w+1]) */
    uint32_t nw;                               /* waves actually planned (non-empty) */
    uint32_t cnt[HM_CAMP_MAX_WAVES][HM_CD__N];
    uint32_t in_flight;     /* devices in_progress, all waves */
    double tokens;          /* dispatch budget (token bucket, cr_per_s) */
    uint64_t tokens_ms;
    bool dirty;             /* campaign record changed since the last persist */
};

const char *hm_camp_state_name(uint8_t s);
const char *hm_camp_dstate_name(uint8_t s);

/*
 * Validates a campaign definition <in> (POST /api/v1/campaigns body):
 *   {"name", "file", "file_type": 1|3 (optional: the file's), "target_version" (type 1),
 *    "selector": {...as profiles}, "waves": [10, "10%", "100%"], "pause_s", "max_failure_ratio",
 *    "timeout_s", "cr_per_s", "max_in_flight", "cr_retry_s"}
 * Fills <c> (c->selector: a new reference). 0, or -EINVAL with a message naming the field.
 */
int hm_camp_cfg_parse(json_t *in, struct hm_camp_cfg *c, char *err, size_t errlen);

/* The definition as JSON (new reference), the same form hm_camp_cfg_parse() accepts. */
json_t *hm_camp_cfg_json(const struct hm_camp_cfg *c);

/*
 * A new campaign in state "created" over the <n> device ids <ids> (copied; any order; no
 * duplicates), assigned to waves: devices ordered by a hash of (campaign name, id), wave i
 * takes c->waves[i] devices (a count or a percentage of <n>, at least 1), the last wave
 * takes every device left. <c> is moved into the campaign (its selector reference too).
 */
struct hm_camp *hm_camp_new(struct hm_camp_cfg *c, char *const *ids, uint32_t n,
                            uint64_t now_ms);
void hm_camp_free(struct hm_camp *k);

/*
 * Operator commands. <opts> (may be NULL) for resume: {"max_failure_ratio": r,
 * "retry_failed": bool}. Returns 0, or -EBUSY (not allowed in this state; <err> says why),
 * -EINVAL (bad <opts>).
 */
int hm_camp_command(struct hm_camp *k, enum hm_camp_cmd cmd, json_t *opts, uint64_t now_ms,
                    char *err, size_t errlen);

/* Sets device <i>'s state (counts follow; marks it dirty; final states set ended_ms). */
void hm_camp_set(struct hm_camp *k, uint32_t i, uint8_t state, uint32_t fault, uint64_t now_ms);

/*
 * Advances the campaign at <now_ms>: times out devices in progress for longer than
 * timeout_s, halts a running campaign whose current wave has too many failures, closes a
 * wave whose devices all ended (opens the next after pause_s, or completes). Returns true
 * when something changed.
 */
bool hm_camp_tick(struct hm_camp *k, uint64_t now_ms);

/*
 * The next device to dispatch at <now_ms> (running, wave open, a token and in-flight room
 * available), or -1. The caller dispatches it and calls hm_camp_set(.., IN_PROGRESS, ..)
 * (which takes the token).
 */
int64_t hm_camp_next(struct hm_camp *k, uint64_t now_ms);

/* Whether the current wave's failures exceed its allowance (ratio x size). */
bool hm_camp_over_threshold(const struct hm_camp *k, uint32_t wave);

/* Progress JSON: definition, state, reason, wave, per-wave counts, totals (new reference). */
json_t *hm_camp_json(const struct hm_camp *k);
/* One device's outcome as JSON (new reference). */
json_t *hm_camp_dev_json(const struct hm_camp *k, uint32_t i);

/* ---- durable form (core/campaigns.c keeps them in HM_DB_META) ---- */

/* The campaign record (definition + state, no devices): compact JSON string in <out>. */
void hm_camp_record(const struct hm_camp *k, struct hm_buf *out);
/* Rebuilds a campaign from its record and its devices (hm_camp_dev_decode(), in index
 * order; <devs> is a malloc'd array the campaign takes over on success); counts are
 * recomputed. NULL with <err> when the record does not parse (<devs> stays the caller's). */
struct hm_camp *hm_camp_restore(struct hm_slice rec, struct hm_camp_dev *devs, uint32_t n,
                                char *err, size_t errlen);
/* A device record: 34 bytes + id. Returns the bytes written or -E2BIG. */
int hm_camp_dev_encode(const struct hm_camp_dev *d, char *out, size_t cap);
/* Decodes into <d> (d->id: a new allocation). 0 or HM_ECORRUPT / HM_EVERSION. */
int hm_camp_dev_decode(struct hm_slice in, struct hm_camp_dev *d);

#endif
