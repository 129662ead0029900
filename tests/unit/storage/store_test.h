#ifndef HM_STORE_TEST_H
#define HM_STORE_TEST_H
/* Helpers shared by the storage tests (header-only, included by one test each). */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_check.h"
#include "storage/record.h"
#include "storage/store.h"

#ifdef HM_TSAN
/*
 * ck_ring synchronises through inline assembly TSan cannot see; the store annotates the
 * batch hand-off itself (__tsan_release/acquire), so only the ring's own index words remain.
 */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:ck_ring\n";
}
#endif

/* A fresh empty directory under $TMPDIR (or /tmp); <out> must hold 256 bytes. */
static inline void tmpdir_make(char *out, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, 256, "%s/hems-%s-XXXXXX", base ? base : "/tmp", tag);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

static inline void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int n = snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(p))
            continue;
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Submits <b> and waits for its completion; returns the completion status. */
static inline int submit_wait(struct hm_store *s, struct hm_store_batch *b)
{
    return hm_store_submit_wait(s, b, 0);
}

/* Device key and record number <i> (deterministic contents). */
static inline int dev_key(char *k, size_t cap, unsigned i)
{
    char sn[32];
    int n = snprintf(sn, sizeof(sn), "SN%08u", i);
    return hm_key_dev(k, cap, HM_SLICE_LIT("00D0B7"), HM_SLICE_LIT("HeNB-LTE"),
                      hm_slice(sn, (size_t)n));
}

static inline int put_dev(struct hm_store_batch *b, unsigned i, uint64_t inform_ms)
{
    char k[64], sn[32];
    int kl = dev_key(k, sizeof(k), i);
    int sl = snprintf(sn, sizeof(sn), "SN%08u", i);
    struct hm_dev_rec d = {
        .oui = HM_SLICE_LIT("00D0B7"),
        .product_class = HM_SLICE_LIT("HeNB-LTE"),
        .serial = hm_slice(sn, (size_t)sl),
        .role = HM_ROLE_SERVING,
        .reg_state = HM_REG_REGISTERED,
        .last_inform_ms = inform_ms,
        .events = HM_SLICE_LIT("2 PERIODIC"),
        .source_addr = HM_SLICE_LIT("10.0.0.1:7547"),
        .cr_url = HM_SLICE_LIT("http://10.0.0.1:7547/cr"),
        .sw_version = HM_SLICE_LIT("1.0"),
    };
    size_t sz = hm_rec_dev_size(&d);
    char *v = hm_store_batch_put_reserve(b, HM_DB_DEVICES, hm_slice(k, (size_t)kl), sz);
    if (!v)
        return -E2BIG;
    int n = hm_rec_dev_encode(&d, v, sz);
    return n < 0 ? n : 0;
}

/* Reads device <i>: 0 and its last_inform_ms in *<ms>, or an error. */
static inline int get_dev(struct hm_store_reader *r, unsigned i, uint64_t *ms)
{
    char k[64];
    int kl = dev_key(k, sizeof(k), i);
    struct hm_slice v;
    struct hm_dev_rec d;
    int rc = hm_store_get(r, HM_DB_DEVICES, hm_slice(k, (size_t)kl), &v);
    if (rc == 0)
        rc = hm_rec_dev_decode(v, &d);
    if (rc == 0)
        *ms = d.last_inform_ms;
    return rc;
}

#endif
