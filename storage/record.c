#include "storage/record.h"

#include <string.h>

#include "core/bug.h"
#include "core/err.h"

/*
 * One field list per record drives sizing, encoding and decoding, so the three can never
 * disagree about the layout: the walker below is called with a codec in one of three modes.
 */
enum mode { SIZE, ENC, DEC };

struct codec {
    enum mode mode;
    char *out;       /* ENC */
    const char *in;  /* DEC */
    size_t pos, cap; /* ENC: cap of out; DEC: length of in */
    int err;
};

static void need(struct codec *c, size_t n)
{
    if (c->err)
        return;
    if (c->mode == DEC && c->cap - c->pos < n)
        c->err = HM_ECORRUPT;
    else if (c->mode == ENC && c->cap - c->pos < n)
        c->err = -ENOSPC;
}

static void c_uint(struct codec *c, void *v, size_t width)
{
    uint64_t x = 0;
    need(c, width);
    if (c->err)
        return;
    switch (c->mode) {
    case SIZE:
        break;
    case ENC:
        if (width == 1)
            x = *(uint8_t *)v;
        else if (width == 4)
            x = *(uint32_t *)v;
        else
            x = *(uint64_t *)v;
        for (size_t i = 0; i < width; i++, x >>= 8)
            c->out[c->pos + i] = (char)(x & 0xff);
        break;
    case DEC:
        for (size_t i = width; i > 0; i--)
            x = (x << 8) | (unsigned char)c->in[c->pos + i - 1];
        if (width == 1)
            *(uint8_t *)v = (uint8_t)x;
        else if (width == 4)
            *(uint32_t *)v = (uint32_t)x;
        else
            *(uint64_t *)v = x;
        break;
    }
    c->pos += width;
}

#define c_u8(c, v) c_uint((c), (v), 1)
#define c_u32(c, v) c_uint((c), (v), 4)
#define c_u64(c, v) c_uint((c), (v), 8)

/* Enum byte: decoding rejects values above <max>. */
static void c_enum(struct codec *c, uint8_t *v, uint8_t max)
{
    c_u8(c, v);
    if (!c->err && *v > max)
        c->err = c->mode == DEC ? HM_ECORRUPT : -EINVAL;
}

static void c_str(struct codec *c, struct hm_slice *s)
{
    uint8_t hdr[2];
    if (c->err)
        return;
    if (c->mode != DEC && s->len > 0xffff) {
        c->err = -E2BIG;
        return;
    }
    need(c, 2);
    if (c->err)
        return;
    if (c->mode == DEC) {
        memcpy(hdr, c->in + c->pos, 2);
        size_t n = (size_t)hdr[0] | (size_t)hdr[1] << 8;
        c->pos += 2;
        need(c, n);
        if (c->err)
            return;
        *s = hm_slice(c->in + c->pos, n);
        c->pos += n;
        return;
    }
    if (c->mode == ENC) {
        c->out[c->pos] = (char)(s->len & 0xff);
        c->out[c->pos + 1] = (char)(s->len >> 8);
    }
    c->pos += 2;
    need(c, s->len);
    if (c->err)
        return;
    if (c->mode == ENC && s->len)
        memcpy(c->out + c->pos, s->ptr, s->len);
    c->pos += s->len;
}

/* Version byte first in every record. */
static void c_version(struct codec *c)
{
    uint8_t v = HM_REC_V1;
    if (c->mode == DEC && c->cap == 0) {
        c->err = HM_ECORRUPT;
        return;
    }
    c_u8(c, &v);
    if (!c->err && v != HM_REC_V1)
        c->err = HM_EVERSION;
}

static void walk_dev(struct codec *c, struct hm_dev_rec *r)
{
    c_version(c);
    c_str(c, &r->oui);
    c_str(c, &r->product_class);
    c_str(c, &r->serial);
    c_enum(c, &r->role, HM_ROLE_SERVING);
    c_enum(c, &r->reg_state, HM_REG_BLOCKED);
    c_str(c, &r->serving_node);
    c_u64(c, &r->last_inform_ms);
    c_str(c, &r->events);
    c_str(c, &r->source_addr);
    c_str(c, &r->cr_url);
    c_str(c, &r->cr_user);
    c_str(c, &r->cr_secret);
    c_enum(c, &r->cr_secret_is_ha1, 1);
    c_str(c, &r->sw_version);
    c_str(c, &r->param_key);
    c_str(c, &r->tls_identity);
    c_enum(c, &r->n_ipsec, HM_STORE_IPSEC_HIST);
    for (unsigned i = 0; i < r->n_ipsec && !c->err; i++) {
        c_str(c, &r->ipsec[i].addr);
        c_u64(c, &r->ipsec[i].since_ms);
    }
    /* optional tail: PM upload configuration, written only once there is one */
    if (c->mode == DEC ? !c->err && c->pos < c->cap : r->pm_state != HM_PM_NONE) {
        c_enum(c, &r->pm_state, HM_PM_DISABLED);
        if (!c->err && c->mode == DEC && r->pm_state == HM_PM_NONE) /* canonical */
            c->err = HM_ECORRUPT;
        c_enum(c, &r->pm_form, HM_PM_FORM_FILEMGMT);
        c_u32(c, &r->pm_interval_s);
        c_u64(c, &r->pm_seq);
        c_u64(c, &r->pm_since_ms);
        c_str(c, &r->pm_user);
        c_str(c, &r->pm_ha1);
        c_str(c, &r->pm_object);
    }
}

static void walk_param(struct codec *c, struct hm_param_rec *r)
{
    c_version(c);
    c_enum(c, &r->type, HM_PT_OTHER);
    c_u64(c, &r->time_ms);
    c_str(c, &r->value);
}

static void walk_task(struct codec *c, struct hm_task_rec *r)
{
    c_version(c);
    c_enum(c, &r->kind, HM_TASK_SCHEDULE_INFORM);
    if (!c->err && c->mode == DEC && r->kind == 0)
        c->err = HM_ECORRUPT;
    c_enum(c, &r->state, HM_TASK_FAILED);
    c_u32(c, &r->fault_code);
    c_u64(c, &r->created_ms);
    c_u64(c, &r->updated_ms);
    c_str(c, &r->args);
    c_str(c, &r->result);
}

static void walk_alarm(struct codec *c, struct hm_alarm_rec *r)
{
    c_version(c);
    c_u64(c, &r->event_time_ms);
    c_enum(c, &r->notification, HM_ALARM_CLEARED);
    c_enum(c, &r->severity, HM_SEV_CRITICAL);
    c_str(c, &r->device);
    c_str(c, &r->alarm_id);
    c_str(c, &r->managed_object);
    c_str(c, &r->event_type);
    c_str(c, &r->probable_cause);
    c_str(c, &r->specific_problem);
    c_str(c, &r->additional_text);
    c_str(c, &r->additional_info);
    /* optional tail: the acknowledgement, written only once there is one */
    if (c->mode == DEC ? !c->err && c->pos < c->cap : r->ack_ms != 0) {
        c_u64(c, &r->ack_ms);
        if (!c->err && c->mode == DEC && r->ack_ms == 0) /* canonical: no tail when unacked */
            c->err = HM_ECORRUPT;
        c_str(c, &r->ack_by);
    }
}

static void walk_alarm_cur(struct codec *c, struct hm_alarm_cur_rec *r)
{
    c_version(c);
    c_u64(c, &r->time_ms);
    c_u64(c, &r->seq);
    c_enum(c, &r->severity, HM_SEV_CRITICAL);
}

static void walk_file(struct codec *c, struct hm_file_rec *r)
{
    c_version(c);
    c_u8(c, &r->file_type);
    c_u64(c, &r->size);
    c_u64(c, &r->mtime_ms);
    c_str(c, &r->sha256);
    c_str(c, &r->path);
    c_str(c, &r->product_class);
    c_str(c, &r->version);
}

static void walk_pm(struct codec *c, struct hm_pm_rec *r)
{
    uint64_t bits;
    c_version(c);
    c_enum(c, &r->vtype, HM_PM_REAL);
    c_enum(c, &r->suspect, 1);
    c_u32(c, &r->duration_s);
    HM_BUILD_ASSERT(sizeof(r->v) == sizeof(bits));
    if (c->mode != DEC)
        memcpy(&bits, &r->v, sizeof(bits));
    c_u64(c, &bits);
    if (c->mode == DEC && !c->err)
        memcpy(&r->v, &bits, sizeof(bits));
}

#define HM_REC_DEFINE(T)                                                                           \
    size_t hm_rec_##T##_size(const struct hm_##T##_rec *r)                                         \
    {                                                                                              \
        struct codec c = {.mode = SIZE, .cap = SIZE_MAX};                                          \
        walk_##T(&c, (struct hm_##T##_rec *)r);                                                    \
        return c.pos;                                                                              \
    }                                                                                              \
    int hm_rec_##T##_encode(const struct hm_##T##_rec *r, char *out, size_t cap)                   \
    {                                                                                              \
        struct codec c = {.mode = ENC, .out = out, .cap = cap};                                    \
        walk_##T(&c, (struct hm_##T##_rec *)r);                                                    \
        if (c.err)                                                                                 \
            return c.err;                                                                          \
        return c.pos > HM_STORE_MAX_VAL ? -E2BIG : (int)c.pos;                                     \
    }                                                                                              \
    int hm_rec_##T##_decode(struct hm_slice in, struct hm_##T##_rec *out)                          \
    {                                                                                              \
        struct codec c = {.mode = DEC, .in = in.ptr, .cap = in.len};                               \
        memset(out, 0, sizeof(*out));                                                              \
        walk_##T(&c, out);                                                                         \
        if (c.err)                                                                                 \
            return c.err;                                                                          \
        return c.pos == in.len ? 0 : HM_ECORRUPT;                                                  \
    }

HM_REC_DEFINE(dev)
HM_REC_DEFINE(param)
HM_REC_DEFINE(task)
HM_REC_DEFINE(alarm)
HM_REC_DEFINE(alarm_cur)
HM_REC_DEFINE(file)
HM_REC_DEFINE(pm)

/* ---- keys ---------------------------------------------------------------------------- */

struct kb {
    char *out;
    size_t len, cap;
    int err;
};

static void kb_put(struct kb *k, const void *p, size_t n)
{
    if (k->err)
        return;
    if (k->cap - k->len < n || k->len + n > HM_STORE_MAX_KEY) {
        k->err = -E2BIG;
        return;
    }
    if (n)
        memcpy(k->out + k->len, p, n);
    k->len += n;
}

static void kb_be64(struct kb *k, uint64_t v)
{
    char b[8];
    hm_be64_put(b, v);
    kb_put(k, b, 8);
}

static int kb_done(const struct kb *k)
{
    return k->err ? k->err : (int)k->len;
}

int hm_key_dev(char *out, size_t cap, struct hm_slice oui, struct hm_slice product_class,
               struct hm_slice serial)
{
    struct kb k = {out, 0, cap, 0};
    kb_put(&k, oui.ptr, oui.len);
    kb_put(&k, "-", 1);
    kb_put(&k, product_class.ptr, product_class.len);
    kb_put(&k, "-", 1);
    kb_put(&k, serial.ptr, serial.len);
    return kb_done(&k);
}

int hm_key_dev_prefix(char *out, size_t cap, struct hm_slice dev)
{
    struct kb k = {out, 0, cap, 0};
    kb_put(&k, dev.ptr, dev.len);
    kb_put(&k, "", 1);
    return kb_done(&k);
}

int hm_key_param(char *out, size_t cap, struct hm_slice dev, struct hm_slice path)
{
    struct kb k = {out, 0, cap, 0};
    kb_put(&k, dev.ptr, dev.len);
    kb_put(&k, "", 1);
    kb_put(&k, path.ptr, path.len);
    return kb_done(&k);
}

int hm_key_task(char *out, size_t cap, struct hm_slice dev, uint64_t seq)
{
    struct kb k = {out, 0, cap, 0};
    kb_put(&k, dev.ptr, dev.len);
    kb_put(&k, "", 1);
    kb_be64(&k, seq);
    return kb_done(&k);
}

int hm_key_alarm(char *out, size_t cap, uint64_t time_ms, uint64_t seq)
{
    struct kb k = {out, 0, cap, 0};
    kb_be64(&k, time_ms);
    kb_be64(&k, seq);
    return kb_done(&k);
}

int hm_key_alarm_cur(char *out, size_t cap, struct hm_slice dev, struct hm_slice alarm_id)
{
    return hm_key_param(out, cap, dev, alarm_id);
}

int hm_key_pm(char *out, size_t cap, struct hm_slice object, struct hm_slice counter,
              uint64_t period_start_ms)
{
    struct kb k = {out, 0, cap, 0};
    kb_put(&k, object.ptr, object.len);
    kb_put(&k, "", 1);
    kb_put(&k, counter.ptr, counter.len);
    kb_put(&k, "", 1);
    kb_be64(&k, period_start_ms);
    return kb_done(&k);
}

int hm_key_task_split(struct hm_slice key, struct hm_slice *dev, uint64_t *seq)
{
    if (key.len < 9 || key.ptr[key.len - 9] != '\0')
        return HM_ECORRUPT;
    *dev = hm_slice(key.ptr, key.len - 9);
    *seq = hm_be64_get(key.ptr + key.len - 8);
    return 0;
}

int hm_key_alarm_split(struct hm_slice key, uint64_t *time_ms, uint64_t *seq)
{
    if (key.len != HM_KEY_ALARM_LEN)
        return HM_ECORRUPT;
    *time_ms = hm_be64_get(key.ptr);
    *seq = hm_be64_get(key.ptr + 8);
    return 0;
}
