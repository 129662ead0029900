#ifndef HM_CTL_FILES_H
#define HM_CTL_FILES_H
/*
 * `hemsctl files ...`: the file server's commands (docs/files.md), kept out of
 * core/hemsctl_main.c because uploads send binary bodies its JSON client does not carry.
 *
 *   files list                                     uploaded files
 *   files show NAME                                one file's metadata and URL
 *   files upload PATH [NAME] [type=N] [username=U] upload (type 1..5, default 3)
 *   files delete NAME
 *   files applied DEVICE                           files a device has applied
 *
 * Prints a table, or the API's JSON with --json. Returns hemsctl's exit codes (core/ctl.h).
 */
#include "core/ctl.h"

int hm_ctl_files(const struct hm_ctl *c, int argc, char **argv);

#endif
