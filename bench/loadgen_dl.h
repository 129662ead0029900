#ifndef HM_LOADGEN_DL_H
#define HM_LOADGEN_DL_H
/*
 * File downloads of one hems-loadgen worker's simulated HeNBs (docs/loadgen.md,
 * "Downloads"): the CPE side of the TR-069 Download RPC with FileType "1 Firmware Upgrade
 * Image" or "3 Vendor Configuration File".
 *
 * On a Download the device answers Status 1 at once (bench/loadgen_cpe.c) and hands the
 * transfer to this module: one fetch thread per worker GETs the URL over plain HTTP from the
 * file server (hemsd's /files/, or any http://A.B.C.D[:port]/path), answering a 401 with
 * Digest (MD5, qop=auth) or Basic as the server offers, with the RPC's Username/Password,
 * and checks the body's length against FileSize. The result comes back to the worker's
 * epoll loop over an eventfd (tag HM_LG_DL_TAG); the worker then opens a session for the
 * device, whose Inform carries "7 TRANSFER COMPLETE" + "M Download" (CommandKey) - and for a
 * firmware image also "1 BOOT" and the new SoftwareVersion - and which sends
 * TransferComplete after the InformResponse, until the ACS acknowledges it.
 *
 * Outcomes (FaultCode of TransferComplete): 0 success; 9010 injected (--download-fail-pct:
 * the devices whose index hashes below the percentage, so the same devices fail in every
 * run); 9015 file server unreachable; 9012 credentials refused; 9016 other HTTP status;
 * 9018 size differs from FileSize; 9013 a URL that is not http://A.B.C.D.
 *
 * New SoftwareVersion after a firmware download: --fw-version V if given, else the file
 * name of the URL (the last path segment), e.g. ".../files/henb-5.0.1.img" -> "henb-5.0.1.img".
 * The device reports it in every later Inform.
 *
 * Threads: hm_lg_dl_start/event/report/transfer_complete/acked run on the worker's thread;
 * the fetch thread only sees the jobs it is handed.
 */
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/cwmp.h"

#define HM_LG_DL_TAG 0xFFFFEFFFu /* epoll data.u32 of the completion eventfd (below the CR tags) */

struct hm_lg_dl_opts {
    uint32_t fail_pct;      /* 0..100: devices whose TransferComplete reports fault 9010 */
    const char *fw_version; /* "" or NULL: the URL's file name */
    double timeout_s;       /* per fetch (connect, send, receive); 0: 10 */
};

struct hm_lg_dl_stats {
    uint64_t started, fetched, bytes, injected, errors, tc_sent, tc_acked;
};

struct hm_lg_dl;

/* Opens the module for devices [first_idx, first_idx + ndev) and registers its eventfd with
 * epoll <ep>. Returns 0 or -errno. *<out> owned: hm_lg_dl_close(). */
int hm_lg_dl_open(struct hm_lg_dl **out, int ep, uint32_t ndev, uint64_t first_idx,
                  const struct hm_lg_dl_opts *o);
/* Stops and joins the fetch thread; unfinished fetches are dropped. NULL: no-op. */
void hm_lg_dl_close(struct hm_lg_dl *dl);

/* Device <d> (worker-local index) got Download <req>: queues the fetch (copies what it
 * needs). Returns 0, or -EBUSY when a transfer of <d> is still unreported (the new one is
 * refused: the caller answers Fault 9004), -EINVAL for an unusable request. */
int hm_lg_dl_start(struct hm_lg_dl *dl, uint32_t d, const struct hm_cwmp_download *req);

/* The eventfd became readable: calls <fn>(<arg>, d) for each device whose transfer ended. */
void hm_lg_dl_event(struct hm_lg_dl *dl, void (*fn)(void *arg, uint32_t d), void *arg);

/*
 * For device <d>'s next Inform: when a finished transfer awaits its TransferComplete,
 * replaces the events with (firmware: "1 BOOT") + "7 TRANSFER COMPLETE" + "M Download" in
 * <ev> (room for 3) and returns their count; else 0. *<sw>: the SoftwareVersion to report
 * (set when the device was upgraded, else left alone).
 */
uint32_t hm_lg_dl_inform(struct hm_lg_dl *dl, uint32_t d, struct hm_cwmp_event *ev,
                         struct hm_slice *sw);

/* After the InformResponse: appends the TransferComplete of <d> to <out> and returns 1, or
 * 0 when there is none to report. */
int hm_lg_dl_transfer_complete(struct hm_lg_dl *dl, uint32_t d, uint8_t ver, struct hm_buf *out);

/* The ACS acknowledged <d>'s TransferComplete. */
void hm_lg_dl_acked(struct hm_lg_dl *dl, uint32_t d);

const struct hm_lg_dl_stats *hm_lg_dl_stats(const struct hm_lg_dl *dl);

/* Whether device <global_index> is one of the <pct> % that fail (a stable hash). */
bool hm_lg_dl_fails(uint64_t global_index, uint32_t pct);

#endif
