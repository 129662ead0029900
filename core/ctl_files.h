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
 * <addr> is the admin listener, <token> the bearer token or NULL. Prints a table, or the
 * API's JSON when <as_json>. Returns hemsctl's exit codes: 0 ok, 1 API error (printed), 2
 * usage, 3 hemsd unreachable or the local file unreadable.
 */
#include <stdbool.h>

int hm_ctl_files(const char *addr, const char *token, bool as_json, int argc, char **argv);

#endif
