#ifndef HM_STORE_T_H
#define HM_STORE_T_H
/*
 * Types of the durable device store (storage/store.h has the functions).
 *
 * Invariants:
 * - Every record value starts with a version byte (HM_REC_V1 today). A decoder accepts only
 *   versions it knows (else HM_EVERSION) and only records whose length matches the fields
 *   exactly (else HM_ECORRUPT): a truncated or padded record is never half-read.
 * - Integers inside records are little-endian; integers inside keys are big-endian so that
 *   LMDB's memcmp order is numeric order.
 * - Strings inside records are a u16 length then the bytes (no NUL). A decoded record holds
 *   hm_slice views into the bytes it was decoded from (usually LMDB's map: valid until the
 *   read transaction ends, see hm_store_read_end()).
 * - Values are at most HM_STORE_MAX_VAL bytes and keys at most HM_STORE_MAX_KEY bytes.
 */
#include <stdint.h>

#include "core/slice.h"

#define HM_REC_V1 1u
#define HM_STORE_SCHEMA 1u
#define HM_STORE_MAX_KEY 511u    /* LMDB's default key limit */
#define HM_STORE_MAX_VAL 4000u   /* "under one page" (4 KiB pages) */
#define HM_STORE_HIST_BUCKETS 24 /* log2 buckets: bucket i counts values in [2^i, 2^(i+1)) */
#define HM_STORE_IPSEC_HIST 4    /* inner addresses remembered per device, newest first */

/* Named databases. The key layout of each is in docs/storage.md. */
enum hm_store_db {
    HM_DB_DEVICES,   /* "OUI-ProductClass-SerialNumber" -> struct hm_dev_rec */
    HM_DB_PARAMS,    /* device '\0' path -> struct hm_param_rec */
    HM_DB_TASKS,     /* device '\0' BE64 seq -> struct hm_task_rec */
    HM_DB_ALARMS,    /* BE64 time_ms BE64 seq -> struct hm_alarm_rec */
    HM_DB_ALARM_CUR, /* device '\0' AlarmIdentifier -> struct hm_alarm_cur_rec */
    HM_DB_FILES,     /* file name -> struct hm_file_rec */
    HM_DB_PM,        /* object '\0' counter '\0' BE64 period_start -> struct hm_pm_rec */
    HM_DB_META,      /* "magic", "schema", "node_id", "seq" */
    HM_DB__COUNT
};

enum hm_dev_role { HM_ROLE_UNKNOWN, HM_ROLE_INITIAL, HM_ROLE_SERVING };

enum hm_reg_state {
    HM_REG_UNKNOWN,
    HM_REG_DISCOVERED, /* seen by the Initial HeMS */
    HM_REG_REDIRECTED, /* told its Serving HeMS */
    HM_REG_REGISTERED, /* first Inform at the Serving HeMS accepted */
    HM_REG_BLOCKED,    /* refused by policy */
};

struct hm_ipsec_hist {
    struct hm_slice addr; /* inner (tunnel) address, text */
    uint64_t since_ms;    /* first seen, ms since the epoch */
};

/* One HeNB. All slices point into the decoded bytes (or, when encoding, into the caller's). */
struct hm_dev_rec {
    struct hm_slice oui, product_class, serial;
    uint8_t role;                 /* enum hm_dev_role */
    uint8_t reg_state;            /* enum hm_reg_state */
    struct hm_slice serving_node; /* node id the device is assigned to, may be empty */
    uint64_t last_inform_ms;
    struct hm_slice events;      /* last Inform's event codes, '\n'-separated */
    struct hm_slice source_addr; /* "ip:port" the last Inform came from */
    struct hm_slice cr_url;      /* ConnectionRequestURL */
    struct hm_slice cr_user;     /* ConnectionRequestUsername */
    struct hm_slice cr_secret;   /* Digest HA1 (hex) where possible, else the password */
    uint8_t cr_secret_is_ha1;
    struct hm_slice sw_version;
    struct hm_slice param_key;    /* ParameterKey last set */
    struct hm_slice tls_identity; /* client certificate subject or fingerprint */
    uint8_t n_ipsec;              /* entries used in ipsec[]: 0..HM_STORE_IPSEC_HIST */
    struct hm_ipsec_hist ipsec[HM_STORE_IPSEC_HIST]; /* [0] is the current inner address */
    /* PM upload configuration (TS 32.593 5.4.1, core/hems_pm.h): an optional tail of the
     * encoding, absent while pm_state is HM_PM_NONE (records written before it decode so) */
    uint8_t pm_state;          /* enum hm_pm_state */
    uint8_t pm_form;           /* enum hm_pm_form: which object carries the configuration */
    uint32_t pm_interval_s;    /* PeriodicUploadInterval provisioned */
    uint64_t pm_seq;           /* task seq reserved for the Config SPV (0: none pending) */
    uint64_t pm_since_ms;      /* when the credentials were (re)generated */
    struct hm_slice pm_user;   /* upload username */
    struct hm_slice pm_ha1;    /* hex MD5(user:realm:password); never the password */
    struct hm_slice pm_object; /* e.g. "Device.FAP.PerfMgmt.Config.2." ("": not known yet) */
};

enum hm_pm_state {
    HM_PM_NONE,     /* not provisioned by this node: node-wide credentials (if allowed) */
    HM_PM_PENDING,  /* provisioning queued, credentials not sent yet */
    HM_PM_ENABLED,  /* uploads expected, with the device's own credentials */
    HM_PM_DISABLED, /* no upload expected or accepted */
};

enum hm_pm_form {
    HM_PM_FORM_CONFIG,   /* <root>FAP.PerfMgmt.Config.{i}. (TR-262 / TR-196 issue 2) */
    HM_PM_FORM_FILEMGMT, /* <root>Services.FAPService.1.PerfMgmt.FileMgmt. (TR-196 issue 1) */
};

enum hm_param_type {
    HM_PT_STRING,
    HM_PT_INT,
    HM_PT_UINT,
    HM_PT_BOOL,
    HM_PT_DATETIME,
    HM_PT_BASE64,
    HM_PT_LONG,
    HM_PT_ULONG,
    HM_PT_HEXBINARY,
    HM_PT_OTHER
};

struct hm_param_rec {
    uint8_t type;     /* enum hm_param_type */
    uint64_t time_ms; /* when the value was learnt */
    struct hm_slice value;
};

enum hm_task_kind {
    HM_TASK_GET_PARAM_VALUES = 1,
    HM_TASK_SET_PARAM_VALUES,
    HM_TASK_GET_PARAM_NAMES,
    HM_TASK_GET_PARAM_ATTRS,
    HM_TASK_SET_PARAM_ATTRS,
    HM_TASK_ADD_OBJECT,
    HM_TASK_DELETE_OBJECT,
    HM_TASK_REBOOT,
    HM_TASK_FACTORY_RESET,
    HM_TASK_DOWNLOAD,
    HM_TASK_UPLOAD,
    HM_TASK_SCHEDULE_INFORM
};

enum hm_task_state { HM_TASK_QUEUED, HM_TASK_SENT, HM_TASK_DONE, HM_TASK_FAILED };

struct hm_task_rec {
    uint8_t kind;  /* enum hm_task_kind */
    uint8_t state; /* enum hm_task_state */
    uint32_t fault_code;
    uint64_t created_ms, updated_ms;
    struct hm_slice args;   /* opaque argument blob (the CWMP layer's encoding) */
    struct hm_slice result; /* opaque result blob, may be empty */
};

enum hm_alarm_notif { HM_ALARM_NEW, HM_ALARM_CHANGED, HM_ALARM_CLEARED };
enum hm_alarm_sev {
    HM_SEV_CLEARED,
    HM_SEV_INDETERMINATE,
    HM_SEV_WARNING,
    HM_SEV_MINOR,
    HM_SEV_MAJOR,
    HM_SEV_CRITICAL
};

/* One FaultMgmt event (TR-196 / TR-069 Amendment 5 FaultMgmt.*Event fields). */
struct hm_alarm_rec {
    uint64_t event_time_ms;
    uint8_t notification; /* enum hm_alarm_notif */
    uint8_t severity;     /* enum hm_alarm_sev */
    struct hm_slice device, alarm_id, managed_object, event_type, probable_cause, specific_problem,
        additional_text, additional_info;
    /* Operator acknowledgement (POST /api/v1/alarms/{key}/ack): 0 / empty when none. An
     * optional tail: records without it (written before acks existed) decode as unacked. */
    uint64_t ack_ms;
    struct hm_slice ack_by;
};

/* Current-alarm set entry: points at the latest event of a raised alarm. */
struct hm_alarm_cur_rec {
    uint64_t time_ms, seq; /* the HM_DB_ALARMS key */
    uint8_t severity;
};

struct hm_file_rec {
    uint8_t file_type; /* TR-069 FileType number: 1 firmware, 3 vendor configuration, ... */
    uint64_t size, mtime_ms;
    struct hm_slice sha256;        /* 32 raw bytes */
    struct hm_slice path;          /* on-disk location */
    struct hm_slice product_class; /* target, may be empty */
    struct hm_slice version;       /* target software version, may be empty */
};

enum hm_pm_vtype { HM_PM_INT, HM_PM_REAL };

struct hm_pm_rec {
    uint8_t vtype;   /* enum hm_pm_vtype */
    uint8_t suspect; /* 32.435 "suspect" flag */
    uint32_t duration_s;
    union {
        int64_t i;
        double r;
    } v;
};

/* Batch operation kinds. */
enum hm_store_op { HM_STORE_PUT = 1, HM_STORE_DEL, HM_STORE_DEL_PREFIX };

/*
 * Completion of a submitted batch. Runs on the writer thread after the transaction holding
 * the batch committed (status 0) or failed (negative error; nothing of the batch is stored).
 * It must not block; the reactor posts to the owning shard from here.
 */
typedef void (*hm_store_done_fn)(void *arg, int status);

/*
 * A write batch: a list of operations copied into the batch's own memory. Embeddable and
 * zero-initialisable; memory grows to the high-water mark and is reused across
 * hm_store_batch_reset(), so steady state allocates nothing.
 */
struct hm_store_batch {
    char *base; /* encoded ops: [u8 op][u8 db][u16 klen][u32 vlen][key][val] ... */
    uint32_t len, cap;
    uint32_t nops;
    int status; /* private: set by the writer */
    hm_store_done_fn done;
    void *arg;
};

struct hm_store_opts {
    uint64_t map_size;       /* initial map size in bytes; 0: 64 MiB */
    uint64_t map_max;        /* growth limit; 0: 64 GiB */
    unsigned max_readers;    /* 0: 512 */
    unsigned ring_size;      /* submission ring slots, power of two; 0: 4096 */
    unsigned max_group;      /* batches per write txn at most; 0: 1024 */
    unsigned reader_check_s; /* mdb_reader_check period in the writer; 0: 10 s */
    int no_sync;             /* MDB_NOSYNC: tests/benchmarks only, forfeits durability */
    struct hm_slice node_id; /* stored in meta on creation; empty: none */
};

struct hm_store_db_stats {
    uint64_t entries, depth, branch_pages, leaf_pages, overflow_pages;
};

struct hm_store_stats {
    struct hm_store_db_stats db[HM_DB__COUNT];
    uint64_t map_size, page_size, last_pgno, last_txnid, max_readers, num_readers;
    uint64_t commits;        /* write transactions committed */
    uint64_t batches;        /* batches acknowledged with status 0 */
    uint64_t batches_failed; /* batches acknowledged with an error */
    uint64_t ops;            /* operations applied in committed batches */
    uint64_t map_grows, stale_readers, submit_full;
    uint64_t batches_per_commit[HM_STORE_HIST_BUCKETS];
    uint64_t commit_us[HM_STORE_HIST_BUCKETS]; /* txn begin -> commit returned, microseconds */
};

#endif
