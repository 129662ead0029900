#include "storage/store_health.h"

#include "storage/store.h"

void hm_store_render_health(struct hm_buf *o, struct hm_store *s)
{
    int err = hm_store_write_error(s);
    hm_buf_printf(o,
                  "# HELP hems_store_write_failing 1 while commits fail (disk full or I/O "
                  "error): new sessions get 8005 + Retry-After, reads continue\n"
                  "# TYPE hems_store_write_failing gauge\nhems_store_write_failing %d\n"
                  "# HELP hems_store_disk_full 1 while the failing-writes episode is a full "
                  "disk or map\n# TYPE hems_store_disk_full gauge\nhems_store_disk_full %d\n"
                  "# HELP hems_store_write_fail_episodes_total failing-writes episodes\n"
                  "# TYPE hems_store_write_fail_episodes_total counter\n"
                  "hems_store_write_fail_episodes_total %llu\n"
                  "# HELP hems_store_queue_depth batches waiting for the writer thread\n"
                  "# TYPE hems_store_queue_depth gauge\nhems_store_queue_depth %u\n"
                  "# HELP hems_store_commit_ewma_seconds EWMA of the write transaction time\n"
                  "# TYPE hems_store_commit_ewma_seconds gauge\n"
                  "hems_store_commit_ewma_seconds %g\n",
                  err != 0, err == -ENOSPC, (unsigned long long)hm_store_write_fail_episodes(s),
                  hm_store_queue_depth(s), (double)hm_store_commit_ewma_us(s) / 1e6);
}
