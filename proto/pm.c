#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <zlib.h>

#include "core/buf.h"
#include "proto/pm.h"

#define CHUNK (64u * 1024)

/* Elements we act on. 32.435 and CMCC names are disjoint, so one table serves both; an
 * element of the other format is treated as unknown (ignored). */
enum el {
    E_OTHER = 0,
    /* 3GPP TS 32.435 */
    E_MEASCOLLECFILE, E_FILEHEADER, E_FILESENDER, E_MEASCOLLEC, E_MANAGEDELEMENT, E_MEASINFO,
    E_GRANPERIOD, E_REPPERIOD, E_MEASTYPES, E_MEASTYPE, E_MEASVALUE, E_MEASRESULTS, E_R,
    E_SUSPECT, E_FILEFOOTER,
    /* CMCC PmFile */
    E_PMFILE, E_CFILEHEADER, E_INFOMODEL, E_DNPREFIX, E_SENDERNAME, E_VENDORNAME,
    E_BEGINTIME, E_ENDTIME, E_MEASUREMENTS, E_OBJECTTYPE, E_N, E_PM, E_V, E_SN, E_SV,
};

struct eldef {
    const char *name;
    unsigned char len;
    unsigned char el;
    unsigned char fmt;
};

#define D(s, e, f) {s, sizeof(s) - 1, e, f}
/* Hot elements first: the scan is linear. */
static const struct eldef eltab[] = {
    D("r", E_R, HM_PM_FMT_3GPP),
    D("V", E_V, HM_PM_FMT_CMCC),
    D("SN", E_SN, HM_PM_FMT_CMCC),
    D("SV", E_SV, HM_PM_FMT_CMCC),
    D("measValue", E_MEASVALUE, HM_PM_FMT_3GPP),
    D("measResults", E_MEASRESULTS, HM_PM_FMT_3GPP),
    D("measType", E_MEASTYPE, HM_PM_FMT_3GPP),
    D("suspect", E_SUSPECT, HM_PM_FMT_3GPP),
    D("N", E_N, HM_PM_FMT_CMCC),
    D("Pm", E_PM, HM_PM_FMT_CMCC),
    D("measTypes", E_MEASTYPES, HM_PM_FMT_3GPP),
    D("measInfo", E_MEASINFO, HM_PM_FMT_3GPP),
    D("granPeriod", E_GRANPERIOD, HM_PM_FMT_3GPP),
    D("repPeriod", E_REPPERIOD, HM_PM_FMT_3GPP),
    D("managedElement", E_MANAGEDELEMENT, HM_PM_FMT_3GPP),
    D("measCollec", E_MEASCOLLEC, HM_PM_FMT_3GPP),
    D("fileHeader", E_FILEHEADER, HM_PM_FMT_3GPP),
    D("fileSender", E_FILESENDER, HM_PM_FMT_3GPP),
    D("fileFooter", E_FILEFOOTER, HM_PM_FMT_3GPP),
    D("measCollecFile", E_MEASCOLLECFILE, HM_PM_FMT_3GPP),
    D("Measurements", E_MEASUREMENTS, HM_PM_FMT_CMCC),
    D("ObjectType", E_OBJECTTYPE, HM_PM_FMT_CMCC),
    D("FileHeader", E_CFILEHEADER, HM_PM_FMT_CMCC),
    D("InfoModelReferenced", E_INFOMODEL, HM_PM_FMT_CMCC),
    D("DnPrefix", E_DNPREFIX, HM_PM_FMT_CMCC),
    D("SenderName", E_SENDERNAME, HM_PM_FMT_CMCC),
    D("VendorName", E_VENDORNAME, HM_PM_FMT_CMCC),
    D("BeginTime", E_BEGINTIME, HM_PM_FMT_CMCC),
    D("EndTime", E_ENDTIME, HM_PM_FMT_CMCC),
    D("PmFile", E_PMFILE, HM_PM_FMT_CMCC),
};
#undef D

/* A bounded copy of an attribute or short text (DNs, ids): attribute pointers from
 * libxml2 die with the start-element callback, and these outlive it. */
struct fstr {
    uint32_t len;
    char s[HM_PM_MAX_DN];
};

struct pend {
    uint32_t p, off, len;
};

struct hm_pm_parser {
    xmlParserCtxtPtr ctxt;
    hm_pm_cb cb;
    void *arg;
    int err;
    enum hm_pm_format fmt;
    unsigned depth;
    bool in_header, in_footer, root_done, stopped;
    unsigned char cap; /* enum el whose text is being captured, E_OTHER for none */
    struct hm_buf *capbuf; /* where its text goes: <text>, or <vals> for an `<r>` */
    size_t capoff;        /* where in *capbuf it starts */
    struct hm_buf text;
    /* SAX2 hands over element names interned in the context's dictionary: comparing
     * pointers replaces string compares on the hot path */
    xmlDictPtr dict;
    const xmlChar *elname[HM_ARRAY_SIZE(eltab)];
    const xmlChar *attr_p; /* "p", interned likewise: `<r p=>` is the hottest attribute */
    /* the class of each open element, so an end tag needs no lookup; libxml2 refuses
     * nesting deeper than 256 without XML_PARSE_HUGE, deeper ones count as E_OTHER */
    unsigned char open_el[260];

    struct fstr version, vendor, sender, dn_prefix, me;
    int64_t begin, end;
    bool have_begin, have_end;

    /* current measInfo / Measurements block */
    struct fstr info_id, obj, sn;
    int64_t period_end;
    uint32_t gran, rep;
    bool have_gran;
    uint32_t ntypes; /* highest p with a name (names are 1-based) */
    uint32_t name_off[HM_PM_MAX_TYPES + 1];
    uint32_t name_len[HM_PM_MAX_TYPES + 1]; /* UINT32_MAX: unset */
    struct hm_buf names;
    uint32_t cur_p, r_seq;
    uint64_t names_gen; /* hm_pm_meas.names_gen: bumped whenever names / name_* change */

    /* current measValue: values wait for <suspect>, which follows them */
    struct pend pend[HM_PM_MAX_TYPES];
    uint32_t npend;
    struct hm_buf vals;
    bool suspect;
    uint32_t group; /* measValue / Pm ordinal in the file (hm_pm_meas.group) */

    uint64_t max_bytes;
    unsigned char magic[2];
    unsigned nmagic;
    bool sniffed, gz, z_end;
    z_stream z;
    struct hm_pm_summary sum;
    char errmsg[256];
    unsigned char zout[CHUNK];
    unsigned char inbuf[CHUNK];
};

static unsigned long cur_line(const struct hm_pm_parser *p)
{
    return p->ctxt && p->ctxt->input ? (unsigned long)p->ctxt->input->line : 0;
}

static int fail_at(struct hm_pm_parser *p, unsigned long line, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(struct hm_pm_parser *p, unsigned long line, int err, const char *fmt, ...)
{
    if (p->err)
        return p->err;
    p->err = err;
    int n = snprintf(p->errmsg, sizeof p->errmsg, "line %lu: ", line);
    if (n < 0 || (size_t)n >= sizeof p->errmsg)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg + n, sizeof p->errmsg - (size_t)n, fmt, ap);
    va_end(ap);
    return err;
}

/* Halting frees libxml2's input buffer, which the attribute and text pointers of the
 * running callback point into; so a failing callback only records the error, and the next
 * callback halts the parser before touching anything. */
static bool halted(struct hm_pm_parser *p)
{
    if (!p->err)
        return false;
    if (!p->stopped) {
        p->stopped = true;
        xmlStopParser(p->ctxt);
    }
    return true;
}
#define FAIL(p, ...) fail_at((p), cur_line(p), HM_EBADPM, __VA_ARGS__)

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline __attribute__((always_inline)) struct hm_slice trim(const char *s, size_t n)
{
    while (n && is_ws(*s))
        s++, n--;
    while (n && is_ws(s[n - 1]))
        n--;
    return hm_slice(s, n);
}

static inline struct hm_slice fs(const struct fstr *f)
{
    return hm_slice(f->s, f->len);
}

/* Copies <v> into <f>, undoing libxml2's "&#38;" (what it passes for &amp; in attributes
 * when entity substitution is off). */
static int fset(struct hm_pm_parser *p, struct fstr *f, struct hm_slice v, const char *what)
{
    v = trim(v.ptr, v.len);
    size_t o = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (o == sizeof f->s)
            return FAIL(p, "%s longer than %u bytes", what, HM_PM_MAX_DN);
        f->s[o++] = v.ptr[i];
        if (v.ptr[i] == '&' && v.len - i >= 5 && memcmp(v.ptr + i, "&#38;", 5) == 0)
            i += 4;
    }
    f->len = (uint32_t)o;
    return 0;
}

static inline __attribute__((always_inline)) struct hm_slice attr(const xmlChar **attrs, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        const char *an = (const char *)attrs[i * 5];
        size_t k = 0;
        while (an[k] && an[k] == name[k])
            k++;
        if (an[k] == 0 && name[k] == 0) {
            const char *v = (const char *)attrs[i * 5 + 3];
            const char *e = (const char *)attrs[i * 5 + 4];
            return hm_slice(v, (size_t)(e - v));
        }
    }
    return hm_slice(NULL, 0);
}
#define ATTR(name) attr(attrs, nattrs, name)

static inline __attribute__((always_inline)) int parse_u32(struct hm_slice s, uint32_t *out)
{
    s = trim(s.ptr, s.len);
    if (s.len == 0 || s.len > 9)
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s.ptr[i] - '0');
    }
    *out = v;
    return 0;
}

static inline void names_changed(struct hm_pm_parser *p)
{
    if (++p->names_gen == 0)
        p->names_gen = 1;
}

/* Records counter <pos> as the bytes <name> already inside p->names (no copy). */
static int set_name(struct hm_pm_parser *p, uint32_t pos, struct hm_slice name)
{
    if (pos == 0 || pos > HM_PM_MAX_TYPES)
        return FAIL(p, "counter position %u out of range 1..%u", pos, HM_PM_MAX_TYPES);
    if (name.len == 0)
        return FAIL(p, "empty counter name at position %u", pos);
    names_changed(p);
    while (p->ntypes < pos)
        p->name_len[++p->ntypes] = UINT32_MAX;
    p->name_off[pos] = (uint32_t)(name.ptr - p->names.base);
    p->name_len[pos] = (uint32_t)name.len;
    return 0;
}

static void reset_block(struct hm_pm_parser *p)
{
    p->ntypes = 0;
    hm_buf_reset(&p->names);
    names_changed(p);
    p->info_id.len = 0;
    p->have_gran = false;
    p->period_end = 0;
    p->gran = p->rep = 0;
}

/* Fast path for the common integer counter; strtod for the rest. */
/* Returns false when <v> is not a number or NIL (then HM_PM_TEXT is set). */
static inline __attribute__((always_inline)) bool parse_value(struct hm_slice v, struct hm_pm_meas *m)
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    m->text = v;
    m->flags &= ~(unsigned)(HM_PM_NIL | HM_PM_TEXT | HM_PM_INTEGER);
    if (v.len == 0 || (v.len == 3 && (v.ptr[0] == 'N' || v.ptr[0] == 'n') &&
                       strncasecmp(v.ptr, "NIL", 3) == 0)) {
        m->flags |= HM_PM_NIL;
        m->value = NAN;
        return true;
    }
    size_t i = 0;
    bool neg = false;
    if (v.ptr[0] == '-' || v.ptr[0] == '+') {
        neg = v.ptr[0] == '-';
        i = 1;
    }
    /* [-]digits[.digits] with at most 15 significant digits: u < 2^53 and 10^k are exact
     * doubles, so one division rounds exactly as strtod would. */
    if (i < v.len && v.len - i <= 16) {
        uint64_t u = 0;
        size_t j = i, nd = 0, fd = 0;
        bool dot = false;
        while (j < v.len && v.ptr[j] >= '0' && v.ptr[j] <= '9')
            u = u * 10 + (uint64_t)(v.ptr[j++] - '0'), nd++;
        if (j < v.len && v.ptr[j] == '.' && nd) {
            j++;
            dot = true;
            while (j < v.len && v.ptr[j] >= '0' && v.ptr[j] <= '9')
                u = u * 10 + (uint64_t)(v.ptr[j++] - '0'), nd++, fd++;
        }
        if (j == v.len && nd && nd <= 15) {
            double d = fd ? (double)u / pow10[fd] : (double)u;
            m->value = neg ? -d : d;
            if (!dot)
                m->flags |= HM_PM_INTEGER;
            return true;
        }
    }
    char tmp[64];
    if (v.len < sizeof tmp) {
        memcpy(tmp, v.ptr, v.len);
        tmp[v.len] = 0;
        char *end;
        double d = strtod(tmp, &end);
        if (end == tmp + v.len) {
            m->value = d;
            return true;
        }
    }
    m->flags |= HM_PM_TEXT;
    m->value = NAN;
    return false;
}

/* Emits one value text, split on commas into a multi-value (see pm-t.h). */
static int emit(struct hm_pm_parser *p, struct hm_pm_meas *m, const char *txt, size_t len)
{
    if (!txt)
        txt = "";
    struct hm_slice t = trim(txt, len);
    size_t n = 1;
    /* Parse the whole text first: the usual single number needs no comma scan. */
    bool single = parse_value(t, m) || !memchr(t.ptr, ',', t.len);
    if (HM_UNLIKELY(!single))
        for (size_t i = 0; i < t.len; i++)
            n += t.ptr[i] == ',';
    if (n > UINT16_MAX)
        return FAIL(p, "more than %u values in one result", UINT16_MAX);
    m->nvalues = (uint16_t)n;
    const char *s = t.ptr, *end = t.ptr + t.len;
    for (size_t k = 0; k < n; k++) {
        const char *c = n == 1 ? end : memchr(s, ',', (size_t)(end - s));
        if (!c)
            c = end;
        m->index = (uint16_t)k;
        if (n > 1)
            parse_value(trim(s, (size_t)(c - s)), m);
        p->sum.count++;
        p->sum.nil += (m->flags & HM_PM_NIL) != 0;
        p->sum.suspect += (m->flags & HM_PM_SUSPECT) != 0;
        int rc = p->cb ? p->cb(p->arg, m) : 0;
        if (rc < 0) {
            if (!p->err) {
                p->err = rc;
                snprintf(p->errmsg, sizeof p->errmsg, "line %lu: callback: %s", cur_line(p),
                         hm_strerror(rc));
            }
            return rc;
        }
        s = c + 1;
    }
    return 0;
}

static void meas_init(struct hm_pm_parser *p, struct hm_pm_meas *m)
{
    memset(m, 0, sizeof *m);
    m->sender = fs(&p->sender);
    m->dn_prefix = fs(&p->dn_prefix);
    m->me = fs(&p->me);
    m->obj = fs(&p->obj);
    m->info_id = fs(&p->info_id);
    m->period_end = p->period_end;
    m->gran_s = p->gran;
    m->rep_s = p->rep;
    m->group = p->group;
    m->names_gen = p->names_gen;
}

static int flush_measvalue(struct hm_pm_parser *p)
{
    if (!p->npend)
        return 0;
    if (!p->have_gran)
        return FAIL(p, "measInfo without granPeriod");
    struct hm_pm_meas m;
    meas_init(p, &m);
    m.flags = p->suspect ? HM_PM_SUSPECT : 0;
    for (uint32_t i = 0; i < p->npend; i++) {
        uint32_t pos = p->pend[i].p;
        if (pos == 0 || pos > p->ntypes || p->name_len[pos] == UINT32_MAX)
            return FAIL(p, "result p=%u has no measType", pos);
        m.counter = hm_slice(p->names.base + p->name_off[pos], p->name_len[pos]);
        int rc = emit(p, &m, p->vals.base ? p->vals.base + p->pend[i].off : "", p->pend[i].len);
        if (rc)
            return rc;
    }
    p->npend = 0;
    hm_buf_reset(&p->vals);
    return 0;
}

/* Splits a whitespace-separated list (measTypes / measResults), calling <fn> per token
 * with its 1-based position. Returns the token count or an error. */
static int split_ws(struct hm_pm_parser *p, struct hm_slice s,
                    int (*fn)(struct hm_pm_parser *, uint32_t, struct hm_slice))
{
    uint32_t n = 0;
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && is_ws(s.ptr[i]))
            i++;
        if (i == s.len)
            break;
        size_t b = i;
        while (i < s.len && !is_ws(s.ptr[i]))
            i++;
        int rc = fn(p, ++n, hm_slice(s.ptr + b, i - b));
        if (rc)
            return rc;
    }
    return (int)n;
}

static int time_attr(struct hm_pm_parser *p, struct hm_slice v, int64_t *out, const char *what)
{
    if (hm_pm_parse_datetime(v, out) != 0)
        return FAIL(p, "bad %s \"%.*s\"", what, (int)HM_MIN(v.len, 64), v.ptr ? v.ptr : "");
    return 0;
}

static int dur_attr(struct hm_pm_parser *p, struct hm_slice v, uint32_t *out, const char *what)
{
    if (hm_pm_parse_duration(v, out) != 0)
        return FAIL(p, "bad %s \"%.*s\"", what, (int)HM_MIN(v.len, 64), v.ptr ? v.ptr : "");
    return 0;
}

/* Done per file, not cached per dictionary pointer: a reset that freed the dictionary
 * and got a new one at the same address would leave stale pointers (30 lookups per file
 * cost ~0.2% of parsing a 30 KB file). */
static int intern_names(struct hm_pm_parser *p)
{
    p->dict = p->ctxt->dict;
    for (size_t i = 0; i < HM_ARRAY_SIZE(eltab); i++) {
        p->elname[i] = xmlDictLookup(p->dict, (const xmlChar *)eltab[i].name, eltab[i].len);
        if (!p->elname[i]) {
            p->dict = NULL;
            return -1;
        }
    }
    p->attr_p = xmlDictLookup(p->dict, (const xmlChar *)"p", 1);
    return p->attr_p ? 0 : -1;
}

static enum el classify(const struct hm_pm_parser *p, const xmlChar *name)
{
    for (size_t i = 0; i < HM_ARRAY_SIZE(eltab); i++) {
        if (p->elname[i] == name) {
            const struct eldef *d = &eltab[i];
            return p->fmt == HM_PM_FMT_UNKNOWN || p->fmt == d->fmt ? (enum el)d->el
                                                                    : E_OTHER;
        }
    }
    return E_OTHER;
}

static void start_capture(struct hm_pm_parser *p, enum el e)
{
    p->cap = (unsigned char)e;
    p->capbuf = &p->text;
    p->capoff = 0;
    hm_buf_reset(&p->text);
}

/* Captures text straight into the store it ends up in (counter names, measValue values),
 * so it is copied once, from libxml2's buffer. */
static void capture_into(struct hm_pm_parser *p, enum el e, struct hm_buf *b)
{
    if (b == &p->names) /* appending may move the names */
        names_changed(p);
    p->cap = (unsigned char)e;
    p->capbuf = b;
    p->capoff = b->len;
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                     const xmlChar *uri, int nns, const xmlChar **ns, int nattrs,
                     int ndefaulted, const xmlChar **attrs)
{
    struct hm_pm_parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (halted(p))
        return;
    p->depth++;
    enum el e = classify(p, localname);
    if (p->depth < sizeof p->open_el)
        p->open_el[p->depth] = (unsigned char)e;
    p->cap = E_OTHER;
    if (p->depth == 1) {
        if (e == E_MEASCOLLECFILE)
            p->fmt = HM_PM_FMT_3GPP;
        else if (e == E_PMFILE)
            p->fmt = HM_PM_FMT_CMCC;
        else
            FAIL(p, "unknown root element <%.64s>", (const char *)localname);
        p->sum.format = p->fmt;
        return;
    }
    switch (e) {
    case E_R: {
        uint32_t pos = ++p->r_seq;
        struct hm_slice ps =
            nattrs == 1 && attrs[0] == p->attr_p
                ? hm_slice((const char *)attrs[3], (size_t)(attrs[4] - attrs[3]))
                : ATTR("p");
        if (ps.ptr && parse_u32(ps, &pos) != 0) {
            FAIL(p, "bad r@p");
            return;
        }
        p->cur_p = pos;
        p->cap = E_R;
        p->capbuf = &p->vals; /* straight into the measValue's value store, no copy */
        p->capoff = p->vals.len;
        return;
    }
    case E_MEASTYPE: {
        uint32_t pos = p->ntypes + 1;
        struct hm_slice ps = ATTR("p");
        if (ps.ptr && parse_u32(ps, &pos) != 0) {
            FAIL(p, "bad measType@p");
            return;
        }
        p->cur_p = pos;
        capture_into(p, e, &p->names);
        return;
    }
    case E_N:
    case E_V: {
        if (parse_u32(ATTR("i"), &p->cur_p) != 0) {
            FAIL(p, "missing or bad @i");
            return;
        }
        if (e == E_N)
            capture_into(p, e, &p->names);
        else
            start_capture(p, e);
        return;
    }
    case E_MEASTYPES:
        p->ntypes = 0;
        hm_buf_reset(&p->names);
        capture_into(p, e, &p->names);
        return;
    case E_MEASRESULTS:
        capture_into(p, e, &p->vals);
        return;
    case E_SN:
    case E_SV:
    case E_SUSPECT:
    case E_INFOMODEL:
    case E_DNPREFIX:
    case E_SENDERNAME:
    case E_VENDORNAME:
    case E_BEGINTIME:
    case E_ENDTIME:
    case E_OBJECTTYPE:
        start_capture(p, e);
        return;
    case E_MEASVALUE:
        p->group++;
        p->npend = 0;
        p->r_seq = 0;
        p->suspect = false;
        hm_buf_reset(&p->vals);
        fset(p, &p->obj, ATTR("measObjLdn"), "measObjLdn");
        return;
    case E_PM:
        p->group++;
        fset(p, &p->obj, ATTR("Dn"), "Pm@Dn");
        return;
    case E_MEASINFO:
        reset_block(p);
        fset(p, &p->info_id, ATTR("measInfoId"), "measInfoId");
        return;
    case E_MEASUREMENTS:
        p->ntypes = 0;
        hm_buf_reset(&p->names);
        names_changed(p);
        p->info_id.len = 0;
        return;
    case E_GRANPERIOD:
        if (dur_attr(p, ATTR("duration"), &p->gran, "granPeriod@duration") == 0 &&
            time_attr(p, ATTR("endTime"), &p->period_end, "granPeriod@endTime") == 0)
            p->have_gran = true;
        return;
    case E_REPPERIOD:
        dur_attr(p, ATTR("duration"), &p->rep, "repPeriod@duration");
        return;
    case E_MANAGEDELEMENT:
        fset(p, &p->me, ATTR("localDn"), "managedElement@localDn");
        return;
    case E_FILEHEADER:
        p->in_header = true;
        if (fset(p, &p->version, ATTR("fileFormatVersion"), "fileFormatVersion") == 0 &&
            fset(p, &p->vendor, ATTR("vendorName"), "vendorName") == 0)
            fset(p, &p->dn_prefix, ATTR("dnPrefix"), "dnPrefix");
        return;
    case E_FILESENDER: {
        struct hm_slice s = ATTR("localDn");
        if (!s.len)
            s = ATTR("senderName");
        fset(p, &p->sender, s, "fileSender@localDn");
        return;
    }
    case E_FILEFOOTER:
        p->in_footer = true;
        return;
    case E_MEASCOLLEC:
        if (p->in_header && time_attr(p, ATTR("beginTime"), &p->begin, "beginTime") == 0)
            p->have_begin = true;
        else if (p->in_footer && time_attr(p, ATTR("endTime"), &p->end, "endTime") == 0)
            p->have_end = true;
        return;
    case E_CFILEHEADER:
        p->in_header = true;
        return;
    default:
        return;
    }
}

static int cmcc_period(struct hm_pm_parser *p)
{
    if (!p->have_gran) {
        if (!p->have_begin || !p->have_end || p->end <= p->begin ||
            p->end - p->begin > UINT32_MAX)
            return FAIL(p, "PmFile without a valid BeginTime/EndTime");
        p->gran = (uint32_t)(p->end - p->begin);
        p->period_end = p->end;
        p->have_gran = true;
    }
    return 0;
}

static int store_result(struct hm_pm_parser *p, uint32_t pos, struct hm_slice v)
{
    if (p->npend == HM_PM_MAX_TYPES)
        return FAIL(p, "more than %u results in one measValue", HM_PM_MAX_TYPES);
    p->pend[p->npend++] =
        (struct pend){pos, (uint32_t)(v.ptr - p->vals.base), (uint32_t)v.len};
    return 0;
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
                   const xmlChar *uri)
{
    struct hm_pm_parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (halted(p))
        return;
    enum el e = p->depth < sizeof p->open_el ? (enum el)p->open_el[p->depth] : E_OTHER;
    if (--p->depth == 0) {
        p->root_done = true;
        return;
    }
    struct hm_slice t = hm_slice(NULL, 0);
    bool captured = e != E_OTHER && e == p->cap;
    if (captured) {
        p->cap = E_OTHER;
        t = hm_slice(p->capbuf->base ? p->capbuf->base + p->capoff : NULL,
                     p->capbuf->len - p->capoff);
    }
    switch (e) {
    case E_R:
        if (p->npend == HM_PM_MAX_TYPES) {
            FAIL(p, "more than %u results in one measValue", HM_PM_MAX_TYPES);
            return;
        }
        p->pend[p->npend++] = (struct pend){
            p->cur_p, (uint32_t)p->capoff, captured ? (uint32_t)(p->vals.len - p->capoff) : 0};
        return;
    case E_MEASVALUE:
        flush_measvalue(p);
        return;
    case E_MEASTYPE:
        set_name(p, p->cur_p, trim(t.ptr, t.len));
        return;
    case E_MEASTYPES:
        split_ws(p, t, set_name);
        return;
    case E_MEASRESULTS: {
        int n = split_ws(p, t, store_result);
        if (n >= 0 && (uint32_t)n != p->ntypes)
            FAIL(p, "measResults has %d values for %u measTypes", n, p->ntypes);
        return;
    }
    case E_SUSPECT:
        t = trim(t.ptr, t.len);
        p->suspect = hm_slice_eq_lit(t, "true") || hm_slice_eq_lit(t, "1");
        return;
    case E_FILEHEADER:
    case E_CFILEHEADER:
        p->in_header = false;
        return;
    case E_FILEFOOTER:
        p->in_footer = false;
        return;
    /* CMCC */
    case E_INFOMODEL:
        fset(p, &p->version, t, "InfoModelReferenced");
        return;
    case E_DNPREFIX:
        fset(p, &p->dn_prefix, t, "DnPrefix");
        return;
    case E_SENDERNAME:
        fset(p, &p->sender, t, "SenderName");
        return;
    case E_VENDORNAME:
        fset(p, &p->vendor, t, "VendorName");
        return;
    case E_BEGINTIME:
        if (time_attr(p, t, &p->begin, "BeginTime") == 0)
            p->have_begin = true;
        return;
    case E_ENDTIME:
        if (time_attr(p, t, &p->end, "EndTime") == 0)
            p->have_end = true;
        return;
    case E_OBJECTTYPE:
        fset(p, &p->info_id, t, "ObjectType");
        return;
    case E_N:
        set_name(p, p->cur_p, trim(t.ptr, t.len));
        return;
    case E_SN:
        fset(p, &p->sn, t, "SN");
        return;
    case E_V:
    case E_SV: {
        if (cmcc_period(p))
            return;
        struct hm_pm_meas m;
        meas_init(p, &m);
        if (e == E_V) {
            uint32_t pos = p->cur_p;
            if (pos == 0 || pos > p->ntypes || p->name_len[pos] == UINT32_MAX) {
                FAIL(p, "V i=%u has no PmName/N", pos);
                return;
            }
            m.counter = hm_slice(p->names.base + p->name_off[pos], p->name_len[pos]);
        } else {
            if (!p->sn.len) {
                FAIL(p, "SV without SN");
                return;
            }
            m.counter = fs(&p->sn);
            m.names_gen = 0; /* p->sn is rewritten per SN */
        }
        emit(p, &m, t.ptr, t.len);
        if (e == E_SV)
            p->sn.len = 0;
        return;
    }
    default:
        return;
    }
}

static void on_chars(void *ctx, const xmlChar *ch, int len)
{
    struct hm_pm_parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (halted(p) || p->cap == E_OTHER)
        return;
    if (p->capbuf->len + (size_t)len > HM_PM_MAX_TEXT) {
        FAIL(p, "element text longer than %u bytes", HM_PM_MAX_TEXT);
        return;
    }
    hm_buf_append(p->capbuf, ch, (size_t)len);
}

/* Any DOCTYPE is refused before its internal subset is read: no entity can be declared,
 * so neither external entities (XXE) nor expansion bombs can exist. */
static void on_dtd(void *ctx, const xmlChar *name, const xmlChar *eid, const xmlChar *sid)
{
    struct hm_pm_parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    FAIL(p, "DTD refused");
    halted(p); /* now: the internal subset must not be parsed */
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pid,
                           const xmlChar *sid, xmlChar *content)
{
    struct hm_pm_parser *p = ((xmlParserCtxtPtr)ctx)->_private;
    FAIL(p, "entity declaration refused");
    halted(p);
}

static void on_xml_error(void *ctx, xmlErrorPtr e)
{
    xmlParserCtxtPtr c = ctx;
    struct hm_pm_parser *p = c ? c->_private : NULL;
    if (!p || !e || e->level < XML_ERR_ERROR)
        return;
    const char *msg = e->message ? e->message : "XML error";
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        n--;
    fail_at(p, (unsigned long)(e->line > 0 ? e->line : 0), HM_EBADPM, "%.*s", (int)n, msg);
}

static xmlSAXHandler sax_handler = {
    .internalSubset = on_dtd,
    .externalSubset = on_dtd,
    .entityDecl = on_entity_decl,
    .characters = on_chars,
    .cdataBlock = on_chars,
    .ignorableWhitespace = on_chars,
    .startElementNs = on_start,
    .endElementNs = on_end,
    .serror = on_xml_error,
    .initialized = XML_SAX2_MAGIC,
};

/* NONET: never fetch; no NOENT (no entity substitution), no DTDLOAD/DTDATTR, no HUGE. */
#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

struct hm_pm_parser *hm_pm_parser_create(void)
{
    /* libxml2's global state must be set up once before threads use it (its lazy
     * initialisation races; LeakSanitizer caught a doubly created mutex with two pipeline
     * threads). Idempotent; parsers are created on the control path, before the threads. */
    xmlInitParser();
    struct hm_pm_parser *p = hm_xcalloc(1, sizeof *p);
    p->max_bytes = HM_PM_DEFAULT_MAX_BYTES;
    p->ctxt = xmlCreatePushParserCtxt(&sax_handler, NULL, NULL, 0, NULL);
    if (!p->ctxt)
        goto fail;
    p->ctxt->_private = p;
    if (inflateInit2(&p->z, 15 + 16) != Z_OK)
        goto fail_ctxt;
    return p;

fail_ctxt:
    xmlFreeParserCtxt(p->ctxt);
fail:
    free(p);
    return NULL;
}

void hm_pm_parser_destroy(struct hm_pm_parser *p)
{
    if (!p)
        return;
    inflateEnd(&p->z);
    xmlFreeParserCtxt(p->ctxt);
    hm_buf_free(&p->text);
    hm_buf_free(&p->names);
    hm_buf_free(&p->vals);
    free(p);
}

void hm_pm_set_max_bytes(struct hm_pm_parser *p, uint64_t max_bytes)
{
    p->max_bytes = max_bytes;
}

int hm_pm_begin(struct hm_pm_parser *p, hm_pm_cb cb, void *arg)
{
    p->cb = cb;
    p->arg = arg;
    p->err = 0;
    p->errmsg[0] = 0;
    p->fmt = HM_PM_FMT_UNKNOWN;
    p->depth = 0;
    p->in_header = p->in_footer = p->root_done = p->stopped = false;
    p->cap = E_OTHER;
    hm_buf_reset(&p->text);
    p->version.len = p->vendor.len = p->sender.len = p->dn_prefix.len = p->me.len = 0;
    p->obj.len = p->sn.len = 0;
    p->begin = p->end = 0;
    p->have_begin = p->have_end = false;
    reset_block(p);
    p->npend = 0;
    p->group = 0;
    hm_buf_reset(&p->vals);
    p->nmagic = 0;
    p->sniffed = p->gz = p->z_end = false;
    memset(&p->sum, 0, sizeof p->sum);
    if (xmlCtxtResetPush(p->ctxt, NULL, 0, NULL, NULL) != 0)
        return fail_at(p, 0, HM_EBADPM, "libxml2 reset failed");
    p->ctxt->_private = p;
    xmlCtxtUseOptions(p->ctxt, XML_OPTS);
    if (intern_names(p) != 0)
        return fail_at(p, 0, HM_EBADPM, "libxml2 dictionary lookup failed");
    return 0;
}

/* libxml2 2.9 reports some input errors (encoding conversion) only through the per-thread
 * generic error function, which prints to stderr; the parse fails anyway, so they are
 * swallowed while we parse and the caller's handler is put back afterwards. */
static void quiet_generic(void *ctx, const char *msg, ...)
{
}

static int push_xml(struct hm_pm_parser *p, const unsigned char *d, size_t len, int last)
{
    xmlGenericErrorFunc saved = xmlGenericError;
    void *saved_ctx = xmlGenericErrorContext;
    int rc = 0;
    p->sum.bytes += len;
    if (p->sum.bytes > p->max_bytes)
        return fail_at(p, cur_line(p), HM_EBADPM, "file larger than %llu bytes",
                       (unsigned long long)p->max_bytes);
    xmlSetGenericErrorFunc(NULL, quiet_generic);
    do {
        size_t n = HM_MIN(len, (size_t)CHUNK);
        int xrc = xmlParseChunk(p->ctxt, (const char *)d, (int)n, last && n == len);
        if (p->err) {
            rc = p->err;
            break;
        }
        if (xrc != 0) {
            rc = fail_at(p, cur_line(p), HM_EBADPM, "XML error %d", xrc);
            break;
        }
        d += n;
        len -= n;
    } while (len);
    xmlSetGenericErrorFunc(saved_ctx, saved);
    return rc;
}

static int push_gz(struct hm_pm_parser *p, const unsigned char *d, size_t len)
{
    p->z.next_in = (unsigned char *)d;
    p->z.avail_in = (unsigned)len;
    for (;;) {
        if (p->z_end) {
            if (p->z.avail_in == 0)
                return 0;
            /* RFC 1952 allows concatenated members. */
            inflateReset(&p->z);
            p->z_end = false;
        }
        p->z.next_out = p->zout;
        p->z.avail_out = sizeof p->zout;
        int zrc = inflate(&p->z, Z_NO_FLUSH);
        size_t n = sizeof p->zout - p->z.avail_out;
        if (n) {
            int rc = push_xml(p, p->zout, n, 0);
            if (rc)
                return rc;
        }
        if (zrc == Z_STREAM_END)
            p->z_end = true;
        else if (zrc == Z_BUF_ERROR || (zrc == Z_OK && p->z.avail_in == 0 && p->z.avail_out))
            return 0;
        else if (zrc != Z_OK)
            return fail_at(p, 0, HM_EBADPM, "gzip: %s", p->z.msg ? p->z.msg : "bad data");
    }
}

static int push_raw(struct hm_pm_parser *p, const unsigned char *d, size_t len)
{
    if (!len)
        return 0;
    return p->gz ? push_gz(p, d, len) : push_xml(p, d, len, 0);
}

int hm_pm_feed(struct hm_pm_parser *p, const void *data, size_t len)
{
    const unsigned char *d = data;
    if (p->err)
        return p->err;
    if (!p->sniffed && p->nmagic == 0 && len >= 2) {
        /* the usual case: the magic is in this first piece, which goes to libxml2 whole
         * (pushing the 2 sniffed bytes on their own made libxml2 start with a small input
         * buffer and grow it, a realloc and copy per file) */
        p->sniffed = true;
        p->gz = d[0] == 0x1f && d[1] == 0x8b;
        p->sum.gzip = p->gz;
        if (p->gz && inflateReset(&p->z) != Z_OK)
            return fail_at(p, 0, HM_EBADPM, "gzip: reset failed");
        return push_raw(p, d, len);
    }
    if (!p->sniffed) {
        while (p->nmagic < 2 && len) {
            p->magic[p->nmagic++] = *d++;
            len--;
        }
        if (p->nmagic < 2)
            return 0;
        p->sniffed = true;
        p->gz = p->magic[0] == 0x1f && p->magic[1] == 0x8b;
        p->sum.gzip = p->gz;
        if (p->gz && inflateReset(&p->z) != Z_OK)
            return fail_at(p, 0, HM_EBADPM, "gzip: reset failed");
        int rc = push_raw(p, p->magic, 2);
        if (rc)
            return rc;
    }
    return push_raw(p, d, len);
}

int hm_pm_finish(struct hm_pm_parser *p, struct hm_pm_summary *sum)
{
    int rc = p->err;
    if (rc)
        goto out;
    if (!p->sniffed) {
        p->sniffed = true;
        rc = push_xml(p, p->magic, p->nmagic, 0);
        if (rc)
            goto out;
    }
    if (p->gz && !p->z_end) {
        rc = fail_at(p, 0, HM_EBADPM, "gzip: truncated stream");
        goto out;
    }
    rc = push_xml(p, (const unsigned char *)"", 0, 1);
    if (rc)
        goto out;
    if (!p->ctxt->wellFormed) {
        rc = fail_at(p, cur_line(p), HM_EBADPM, "not well-formed XML");
        goto out;
    }
    if (p->fmt == HM_PM_FMT_UNKNOWN || !p->root_done) {
        rc = fail_at(p, cur_line(p), HM_EBADPM, "no complete root element");
        goto out;
    }
out:
    if (sum) {
        *sum = p->sum;
        sum->file_format_version = fs(&p->version);
        sum->vendor = fs(&p->vendor);
        sum->sender = fs(&p->sender);
        sum->dn_prefix = fs(&p->dn_prefix);
        sum->begin = p->begin;
        sum->end = p->end;
    }
    return rc;
}

int hm_pm_parse_fd(struct hm_pm_parser *p, int fd, hm_pm_cb cb, void *arg,
                   struct hm_pm_summary *sum)
{
    int rc = hm_pm_begin(p, cb, arg);
    if (rc)
        return rc;
    for (;;) {
        ssize_t n = read(fd, p->inbuf, sizeof p->inbuf);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            return fail_at(p, cur_line(p), err, "read: %s", hm_strerror(err));
        }
        if (n == 0)
            break;
        rc = hm_pm_feed(p, p->inbuf, (size_t)n);
        if (rc)
            return rc;
    }
    return hm_pm_finish(p, sum);
}

int hm_pm_parse_buf(struct hm_pm_parser *p, const void *data, size_t len, hm_pm_cb cb,
                    void *arg, struct hm_pm_summary *sum)
{
    int rc = hm_pm_begin(p, cb, arg);
    if (rc)
        return rc;
    rc = hm_pm_feed(p, data, len);
    if (rc)
        return rc;
    return hm_pm_finish(p, sum);
}

const char *hm_pm_errmsg(const struct hm_pm_parser *p)
{
    return p->errmsg;
}
