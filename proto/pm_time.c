/* Time parsing for PM files: xs:dateTime, xs:duration and TS 32.432 file names. */
#include <stdint.h>
#include <string.h>

#include "proto/pm.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Reads exactly <n> digits at <s>[*i]. */
static bool digits(struct hm_slice s, size_t *i, unsigned n, unsigned *out)
{
    if (s.len - *i < n)
        return false;
    unsigned v = 0;
    for (unsigned k = 0; k < n; k++) {
        char c = s.ptr[*i + k];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *i += n;
    *out = v;
    return true;
}

static bool lit(struct hm_slice s, size_t *i, char c)
{
    if (*i < s.len && s.ptr[*i] == c) {
        (*i)++;
        return true;
    }
    return false;
}

static bool valid_date(unsigned y, unsigned mo, unsigned d)
{
    return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo);
}

int hm_pm_parse_datetime(struct hm_slice s, int64_t *out)
{
    unsigned y, mo, d, h, mi, se;
    size_t i = 0;
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\n' ||
                     s.ptr[s.len - 1] == '\t' || s.ptr[s.len - 1] == '\r'))
        s.len--;
    while (i < s.len && (s.ptr[i] == ' ' || s.ptr[i] == '\n' || s.ptr[i] == '\t' ||
                         s.ptr[i] == '\r'))
        i++;
    if (!s.ptr || !digits(s, &i, 4, &y) || !lit(s, &i, '-') || !digits(s, &i, 2, &mo) ||
        !lit(s, &i, '-') || !digits(s, &i, 2, &d) || !lit(s, &i, 'T') ||
        !digits(s, &i, 2, &h) || !lit(s, &i, ':') || !digits(s, &i, 2, &mi) ||
        !lit(s, &i, ':') || !digits(s, &i, 2, &se))
        return HM_EBADPM;
    if (!valid_date(y, mo, d) || h > 24 || mi > 59 || se > 60 ||
        (h == 24 && (mi || se)))
        return HM_EBADPM;
    if (lit(s, &i, '.')) {
        size_t b = i;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9')
            i++;
        if (i == b)
            return HM_EBADPM;
    }
    int64_t off = 0;
    if (lit(s, &i, 'Z')) {
    } else if (i < s.len && (s.ptr[i] == '+' || s.ptr[i] == '-')) {
        int sign = s.ptr[i++] == '-' ? -1 : 1;
        unsigned oh, om;
        if (!digits(s, &i, 2, &oh))
            return HM_EBADPM;
        lit(s, &i, ':');
        if (!digits(s, &i, 2, &om) || oh > 14 || om > 59)
            return HM_EBADPM;
        off = sign * (int64_t)(oh * 3600 + om * 60);
    }
    if (i != s.len)
        return HM_EBADPM;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    return 0;
}

int hm_pm_parse_duration(struct hm_slice s, uint32_t *out)
{
    size_t i = 0;
    uint64_t total = 0;
    bool in_time = false, any = false;
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\n'))
        s.len--;
    while (i < s.len && (s.ptr[i] == ' ' || s.ptr[i] == '\n'))
        i++;
    if (!s.ptr || !lit(s, &i, 'P'))
        return HM_EBADPM;
    while (i < s.len) {
        if (!in_time && lit(s, &i, 'T')) {
            in_time = true;
            if (i == s.len)
                return HM_EBADPM;
            continue;
        }
        uint64_t v = 0;
        size_t b = i;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9' && i - b < 10)
            v = v * 10 + (uint64_t)(s.ptr[i++] - '0');
        if (i == b || i == s.len)
            return HM_EBADPM;
        if (s.ptr[i] == '.') { /* fractional seconds: dropped, S must follow */
            i++;
            while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9')
                i++;
            if (i == s.len || s.ptr[i] != 'S' || !in_time)
                return HM_EBADPM;
        }
        char u = s.ptr[i++];
        if (!in_time && u == 'D')
            total += v * 86400;
        else if (in_time && u == 'H')
            total += v * 3600;
        else if (in_time && u == 'M')
            total += v * 60;
        else if (in_time && u == 'S')
            total += v;
        else
            return HM_EBADPM; /* Y and M (months) have no fixed length */
        any = true;
        if (total > UINT32_MAX)
            return HM_EBADPM;
    }
    if (!any)
        return HM_EBADPM;
    *out = (uint32_t)total;
    return 0;
}

/* "HHMM" then an optional "+hhmm"/"-hhmm": seconds into the day in UTC terms. */
static bool name_time(struct hm_slice s, size_t *i, int64_t *secs, bool *tz, bool want_tz)
{
    unsigned hh, mm;
    if (!digits(s, i, 2, &hh) || !digits(s, i, 2, &mm) || hh > 24 || mm > 59)
        return false;
    int64_t v = hh * 3600 + mm * 60;
    *tz = false;
    if (want_tz && *i < s.len && (s.ptr[*i] == '+' || s.ptr[*i] == '-')) {
        size_t j = *i + 1;
        unsigned oh, om;
        if (digits(s, &j, 2, &oh) && digits(s, &j, 2, &om) && oh <= 14 && om <= 59) {
            int sign = s.ptr[*i] == '-' ? -1 : 1;
            v -= sign * (int64_t)(oh * 3600 + om * 60);
            *i = j;
            *tz = true;
        }
    }
    *secs = v;
    return true;
}

static bool name_date(struct hm_slice s, size_t *i, int64_t *day)
{
    unsigned y, mo, d;
    size_t j = *i;
    if (!digits(s, &j, 4, &y) || !digits(s, &j, 2, &mo) || !digits(s, &j, 2, &d) ||
        !valid_date(y, mo, d))
        return false;
    *i = j;
    *day = days_from_civil(y, mo, d) * 86400;
    return true;
}

static bool ends_with(struct hm_slice *s, const char *suf, size_t n)
{
    if (s->len >= n && strncasecmp(s->ptr + s->len - n, suf, n) == 0) {
        s->len -= n;
        return true;
    }
    return false;
}

void hm_pm_name_parse(struct hm_slice name, struct hm_pm_name *out)
{
    memset(out, 0, sizeof *out);
    struct hm_slice s = name;
    if (!s.ptr) {
        out->flags = HM_PM_NAME_NONCONFORMING;
        return;
    }
    const char *slash = memrchr(s.ptr, '/', s.len);
    if (slash) {
        s.len -= (size_t)(slash + 1 - s.ptr);
        s.ptr = slash + 1;
    }
    if (ends_with(&s, ".gz", 3))
        out->flags |= HM_PM_NAME_GZ;
    ends_with(&s, ".xml", 4);

    size_t i = 0;
    int64_t bday, eday, bt, et;
    bool btz, etz, explicit_end = false;
    unsigned bad = HM_PM_NAME_NONCONFORMING;
    if (s.len < 1 || s.ptr[0] < 'A' || s.ptr[0] > 'D')
        goto done;
    i = 1;
    if (!name_date(s, &i, &bday) || !lit(s, &i, '.'))
        goto done;
    /* "0000-0015" is either a start time with offset -00:15 or two bare times: take the
     * offset reading only if an end time still follows it. */
    for (int want_tz = 1; want_tz >= 0; want_tz--) {
        size_t j = i;
        explicit_end = false;
        if (!name_time(s, &j, &bt, &btz, want_tz) || !lit(s, &j, '-'))
            continue;
        eday = bday;
        /* Type C/D (and some A producers) repeat the date: <Enddate>.<Endtime> */
        size_t k = j;
        int64_t d2;
        if (name_date(s, &k, &d2) && lit(s, &k, '.')) {
            eday = d2;
            j = k;
            explicit_end = true;
        }
        if (name_time(s, &j, &et, &etz, true)) {
            i = j;
            goto times;
        }
    }
    goto done;
times:
    out->type = s.ptr[0];
    out->begin = bday + bt;
    out->end = eday + et;
    if (!explicit_end && out->end <= out->begin)
        out->end += 86400; /* the period crosses midnight */
    if (!btz || !etz)
        out->flags |= HM_PM_NAME_NO_TZ;
    if (!lit(s, &i, '_') || i == s.len)
        goto done;
    {
        struct hm_slice id = hm_slice(s.ptr + i, s.len - i);
        const char *rc = NULL;
        for (size_t k = 0; k + 3 <= id.len; k++)
            if (memcmp(id.ptr + k, "_-_", 3) == 0) {
                rc = id.ptr + k;
                break;
            }
        if (rc) {
            out->rc = hm_slice(rc + 3, (size_t)(id.ptr + id.len - rc - 3));
            id.len = (size_t)(rc - id.ptr);
        }
        if (!id.len)
            goto done;
        out->sender = id;
    }
    bad = 0;
done:
    out->flags |= bad;
}
