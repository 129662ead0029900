#ifndef HM_PM_T_H
#define HM_PM_T_H
/*
 * Types of the PM file parser (proto/pm.h): one measurement as handed to the caller's
 * callback, the file-level summary, and the result of TS 32.432 file-name parsing.
 *
 * Invariants:
 *  - every slice in struct hm_pm_meas / hm_pm_summary points into parser-owned memory and
 *    is valid only until the callback returns (meas) or until the next hm_pm_begin() /
 *    hm_pm_parser_destroy() (summary); copy what you keep;
 *  - value is NAN exactly when flags has HM_PM_NIL or HM_PM_TEXT;
 *  - a comma-separated `<r>` ("86,87,2") is emitted as <nvalues> measurements with the same
 *    counter name and index 0..nvalues-1 (a "multi-value"); a plain value has nvalues 1.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/slice.h"

enum hm_pm_format {
    HM_PM_FMT_UNKNOWN = 0,
    HM_PM_FMT_3GPP,  /* TS 32.435 measCollecFile */
    HM_PM_FMT_CMCC,  /* China Mobile "PmFile" (Baicells and other NanoCell eNBs) */
};

enum hm_pm_flag {
    HM_PM_NIL = 1u << 0,     /* "NIL" or empty: no value was collected */
    HM_PM_SUSPECT = 1u << 1, /* measValue/suspect was true: reliability in doubt */
    HM_PM_TEXT = 1u << 2,    /* value is not a number; the text is in <text> */
    HM_PM_INTEGER = 1u << 3, /* the text is a plain integer ([+-]digits, at most 15 of
                              * them): <value> is exact. Unset does not mean "not an
                              * integer" (longer or unusual forms take the slow path) */
};

struct hm_pm_meas {
    struct hm_slice sender;    /* fileSender@localDn (or @senderName); CMCC SenderName */
    struct hm_slice dn_prefix; /* fileHeader@dnPrefix; CMCC DnPrefix */
    struct hm_slice me;        /* managedElement@localDn; empty for CMCC */
    struct hm_slice obj;       /* measValue@measObjLdn; CMCC Pm@Dn */
    struct hm_slice info_id;   /* measInfo@measInfoId (may be empty); CMCC ObjectType */
    struct hm_slice counter;   /* measType / measTypes entry; CMCC N or CV/SN */
    struct hm_slice text;      /* the raw value text (trimmed), e.g. "4.5", "NIL" */
    int64_t period_end;        /* granPeriod@endTime (CMCC EndTime), Unix seconds UTC */
    uint32_t gran_s;           /* granPeriod@duration (CMCC EndTime-BeginTime), seconds */
    uint32_t rep_s;            /* repPeriod@duration in seconds, 0 if absent */
    double value;              /* NAN when NIL or TEXT */
    uint16_t index;            /* position inside a multi-value, 0-based */
    uint16_t nvalues;          /* number of values in the `<r>`, 1 for a plain value */
    unsigned flags;            /* enum hm_pm_flag */
    uint32_t group;            /* ordinal (from 1) of the measValue (CMCC: Pm) in the file:
                                * the measurements of one element share it and arrive
                                * consecutively, so a change of group starts a new element */
    uint64_t names_gen;        /* identity of the parser's counter-name table: while it keeps
                                * one non-zero value, an equal counter.ptr (and len) is the
                                * same name, so a consumer may compare pointers instead of
                                * bytes; 0 = no such promise (CMCC SN/SV names). Never reused
                                * by one parser, also across files */
};

struct hm_pm_summary {
    enum hm_pm_format format;
    struct hm_slice file_format_version; /* fileFormatVersion; CMCC InfoModelReferenced */
    struct hm_slice vendor;              /* vendorName; CMCC VendorName */
    struct hm_slice sender;              /* as in hm_pm_meas */
    struct hm_slice dn_prefix;
    int64_t begin;    /* fileHeader/measCollec@beginTime (CMCC BeginTime), 0 if absent */
    int64_t end;      /* fileFooter/measCollec@endTime (CMCC EndTime), 0 if absent */
    uint64_t count;   /* measurements delivered to the callback */
    uint64_t nil;     /* of which NIL */
    uint64_t suspect; /* of which suspect */
    uint64_t bytes;   /* XML bytes parsed (after gunzip) */
    bool gzip;        /* the input was gzip-compressed */
};

enum hm_pm_name_flag {
    HM_PM_NAME_NONCONFORMING = 1u << 0, /* not <T><date>.<time>-<time>_<id>: see fields */
    HM_PM_NAME_NO_TZ = 1u << 1,         /* times had no +hhmm offset: taken as UTC */
    HM_PM_NAME_GZ = 1u << 2,            /* ends in .gz */
};

struct hm_pm_name {
    char type;               /* 'A'..'D', or 0 when not recognised */
    int64_t begin;           /* Unix seconds UTC, 0 when not parsed */
    int64_t end;             /* Unix seconds UTC, 0 when not parsed */
    struct hm_slice sender;  /* <UniqueId>: slice of the name; empty when not found */
    struct hm_slice rc;      /* running count after "_-_", empty if none */
    unsigned flags;          /* enum hm_pm_name_flag */
};

#endif
