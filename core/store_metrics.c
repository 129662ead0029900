#include "core/store_metrics.h"

#include "storage/store.h"

static const char *const db_names[HM_DB__COUNT] = {"devices", "params", "tasks", "alarms",
                                                   "alarm_cur", "files", "pm", "meta"};

static void gauge(struct hm_buf *o, const char *name, const char *help, uint64_t v)
{
    hm_buf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
                  (unsigned long long)v);
}

static void counter(struct hm_buf *o, const char *name, const char *help, uint64_t v)
{
    hm_buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                  (unsigned long long)v);
}

/* Log2 buckets (bucket i: [2^i, 2^(i+1))) as a Prometheus histogram with le = 2^(i+1). */
static void hist(struct hm_buf *o, const char *name, const char *help, const uint64_t *b,
                 double scale)
{
    hm_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < HM_STORE_HIST_BUCKETS; i++) {
        cum += b[i];
        hm_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, (double)(1ull << (i + 1)) * scale,
                      (unsigned long long)cum);
    }
    hm_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_count %llu\n", name,
                  (unsigned long long)cum, name, (unsigned long long)cum);
}

void hm_store_render_metrics(struct hm_buf *o, void *arg)
{
    struct hm_store_stats st;
    if (hm_store_stats(arg, &st) < 0)
        return;
    hm_buf_append_lit(o, "# HELP hems_store_entries entries per database\n"
                         "# TYPE hems_store_entries gauge\n");
    for (int i = 0; i < HM_DB__COUNT; i++)
        hm_buf_printf(o, "hems_store_entries{db=\"%s\"} %llu\n", db_names[i],
                      (unsigned long long)st.db[i].entries);
    hm_buf_append_lit(o, "# HELP hems_store_pages pages per database and kind\n"
                         "# TYPE hems_store_pages gauge\n");
    for (int i = 0; i < HM_DB__COUNT; i++)
        hm_buf_printf(o,
                      "hems_store_pages{db=\"%s\",kind=\"branch\"} %llu\n"
                      "hems_store_pages{db=\"%s\",kind=\"leaf\"} %llu\n"
                      "hems_store_pages{db=\"%s\",kind=\"overflow\"} %llu\n",
                      db_names[i], (unsigned long long)st.db[i].branch_pages, db_names[i],
                      (unsigned long long)st.db[i].leaf_pages, db_names[i],
                      (unsigned long long)st.db[i].overflow_pages);
    gauge(o, "hems_store_map_bytes", "LMDB map size", st.map_size);
    gauge(o, "hems_store_used_bytes", "bytes up to the last used page",
          (st.last_pgno + 1) * st.page_size);
    gauge(o, "hems_store_readers", "LMDB reader slots in use", st.num_readers);
    gauge(o, "hems_store_readers_max", "LMDB reader slots", st.max_readers);
    counter(o, "hems_store_commits_total", "write transactions committed", st.commits);
    counter(o, "hems_store_batches_total", "write batches acknowledged after commit", st.batches);
    counter(o, "hems_store_batches_failed_total", "write batches that failed", st.batches_failed);
    counter(o, "hems_store_map_grows_total", "map size increases after MDB_MAP_FULL",
            st.map_grows);
    counter(o, "hems_store_stale_readers_total", "stale reader slots cleared",
            st.stale_readers);
    counter(o, "hems_store_submit_full_total", "batches refused because the writer ring was full",
            st.submit_full);
    hist(o, "hems_store_batches_per_commit", "batches grouped into one commit",
         st.batches_per_commit, 1);
    hist(o, "hems_store_commit_seconds", "write transaction time, begin to durable commit",
         st.commit_us, 1e-6);
}
