#ifndef HM_HENB_AGENT_H
#define HM_HENB_AGENT_H
/*
 * A simulated HeNB TR-069 agent with no I/O, for load generators and tests.
 *
 * The data model (parameters, types, writability, default values) is loaded once from a
 * genieacs-sim CSV (../shared/data/datamodels/henb-tr196-lte-params.csv) into a shared,
 * read-only struct hm_henb_model. Each simulated device is a struct hm_henb_agent of a
 * few KB holding only what differs from the model: serial number, overridden values,
 * added object instances, pending events and transfers. Thousands of agents share one
 * model.
 *
 * A session from the agent's side:
 *   hm_henb_agent_inform(a, &out)            -> POST the Inform
 *   hm_henb_agent_handle(a, body, ..., &out) -> for each HTTP response body: returns 1 with
 *        the next message to POST in <out> (a response to an ACS request, or a
 *        TransferComplete after the InformResponse), or 0 when the agent has nothing to
 *        send (POST an empty body; an empty ACS answer ends the session).
 * Writers and parsers are proto/cwmp.h; no allocation after hm_henb_model_load().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/slice.h"
#include "proto/cwmp.h"

struct hm_henb_param {
    struct hm_slice name;  /* objects end with '.' */
    struct hm_slice value; /* default value */
    uint8_t type;          /* enum hm_cwmp_type */
    bool writable;
    bool object;
};

/* Shared, read-only after load: parameters sorted by name. */
struct hm_henb_model {
    struct hm_henb_param *params;
    uint32_t n;
    char *text; /* owns every name and value */
};

/* Loads <csv_path>. Returns 0, -errno or HM_EBADCONF. Boot-time: allocates (aborts on OOM). */
int hm_henb_model_load(struct hm_henb_model *m, const char *csv_path) HM_MUST_CHECK;
void hm_henb_model_free(struct hm_henb_model *m);
/* Index of <name> or -1. */
int hm_henb_model_find(const struct hm_henb_model *m, struct hm_slice name);

#define HM_HENB_MAX_OVERRIDES 48
#define HM_HENB_POOL 2048
#define HM_HENB_MAX_ADDED 8

enum hm_henb_event {
    HM_HENB_EV_BOOTSTRAP = 1u << 0,
    HM_HENB_EV_BOOT = 1u << 1,
    HM_HENB_EV_PERIODIC = 1u << 2,
    HM_HENB_EV_SCHEDULED = 1u << 3,
    HM_HENB_EV_VALUE_CHANGE = 1u << 4,
    HM_HENB_EV_CONNECTION_REQUEST = 1u << 5,
    HM_HENB_EV_TRANSFER_COMPLETE = 1u << 6,
    HM_HENB_EV_M_REBOOT = 1u << 7,
    HM_HENB_EV_M_DOWNLOAD = 1u << 8,
    HM_HENB_EV_M_SCHEDULE_INFORM = 1u << 9,
    HM_HENB_EV_M_UPLOAD = 1u << 10,
};

struct hm_henb_override {
    uint16_t param; /* index in the model */
    uint16_t off;   /* value in pool */
    uint16_t len;
};

/* One simulated device: embed it, hm_henb_agent_init() it; no destructor. */
struct hm_henb_agent {
    const struct hm_henb_model *model;
    uint32_t events;           /* enum hm_henb_event bits for the next Inform */
    uint32_t next_id;
    uint8_t ver;               /* enum hm_cwmp_ver the agent speaks */
    uint8_t n_over;
    uint8_t n_added;
    bool tc_pending;           /* TransferComplete to send after the InformResponse */
    bool tc_is_upload;
    char serial[24];
    char parameter_key[33];
    char reboot_key[33];
    char transfer_key[33];
    char sched_key[33];
    struct {
        uint16_t table;        /* model index of the table's object "X." */
        uint16_t instance;
    } added[HM_HENB_MAX_ADDED];
    uint16_t pool_used;
    struct hm_henb_override over[HM_HENB_MAX_OVERRIDES];
    char pool[HM_HENB_POOL];
    /* PM upload configuration (TS 32.593 5.4.1), kept whatever the model lists:
     * <root>FAP.PerfMgmt.Config.<n>.{Enable, URL, Username, Password,
     * PeriodicUploadInterval, PeriodicUploadTime} (rows made by AddObject) and the TR-196
     * issue 1 <root>Services.FAPService.<i>.PerfMgmt.FileMgmt.{PeriodicUploadEnable, ...};
     * FAPControl.LTE.PMConfig is accepted. The last row written wins. */
    struct {
        uint16_t rows;     /* Config rows added (instances 1..rows) */
        bool enable;
        uint32_t interval_s;
        char url[160], user[96], password[64];
    } pm;
};

/* The PM upload the ACS configured: true (with its URL, Username and Password) while
 * enabled with a URL; false otherwise. Pointers into <a>. */
bool hm_henb_agent_pm(const struct hm_henb_agent *a, const char **url, const char **user,
                      const char **password);

/* A fresh device (BOOTSTRAP + BOOT pending) with serial "HENB%06u" of <index>. */
void hm_henb_agent_init(struct hm_henb_agent *a, const struct hm_henb_model *m, uint32_t index,
                        enum hm_cwmp_ver ver);

/* Current value of model parameter <idx> for this device. */
struct hm_slice hm_henb_agent_value(const struct hm_henb_agent *a, uint32_t idx);

/* Appends the Inform for the pending events (2 PERIODIC if none) with the forced
 * parameters to <out>. */
void hm_henb_agent_inform(struct hm_henb_agent *a, struct hm_buf *out);

/* The EventStructs of <events> (enum hm_henb_event bits) in TR-069 order, with <a>'s
 * CommandKeys for the M events, written to <ev> (HM_HENB_MAX_EVENTS entries); returns how
 * many. Slices point into <a> and static strings. */
#define HM_HENB_MAX_EVENTS 11
size_t hm_henb_agent_events(const struct hm_henb_agent *a, uint32_t events,
                            struct hm_cwmp_event *ev);

/* Handles one ACS message <body>[<len>] (from the HTTP response). <scratch> is the parse
 * arena (256 KiB is ample). Returns 1 when <out> holds the next message to POST, 0 when
 * there is nothing to send, or a parse error (HM_E*) for a body that is not CWMP. */
int hm_henb_agent_handle(struct hm_henb_agent *a, const char *body, size_t len,
                         struct hm_soap_arena *scratch, struct hm_buf *out) HM_MUST_CHECK;

#endif
