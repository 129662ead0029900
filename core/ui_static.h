#ifndef HM_UI_STATIC_H
#define HM_UI_STATIC_H
/*
 * The dashboard's static files (docs/dashboard.md), served on the admin listener at "/" and
 * "/ui/NAME". hm_ui_load() reads every regular file of one folder (no subfolders, at most
 * HM_UI_MAX_FILES of at most HM_UI_MAX_BYTES each) into memory at start, so serving never
 * touches the disk on a shard. Files change with a restart.
 */
#include <stddef.h>

#include "core/shard.h"

#define HM_UI_MAX_FILES 32
#define HM_UI_MAX_BYTES (1u << 20)

struct hm_ui_file {
    char name[64];
    const char *ctype;
    char *data;
    size_t len;
};

struct hm_ui {
    char dir[4096];
    unsigned n;
    struct hm_ui_file f[HM_UI_MAX_FILES];
};

/*
 * Loads <dir>; empty <dir>: the first existing of <bindir>/../share/hems/ui and
 * <bindir>/../ops/ui (bindir: the folder of this executable). Returns the files loaded,
 * 0 when <dir> is "off", or a negative errno with a message in <err>.
 */
int hm_ui_load(struct hm_ui *ui, const char *dir, char *err, size_t errlen);
void hm_ui_free(struct hm_ui *ui);

/* Adds the routes ("/" exact, "/ui/" prefix); returns how many (2). */
unsigned hm_ui_routes(struct hm_route *r, struct hm_ui *ui);

#endif
