#ifndef HM_SOAP_H
#define HM_SOAP_H
/*
 * Zero-copy, namespace-aware pull tokenizer for SOAP/CWMP envelopes.
 *
 * hm_soap_init() binds a parser to an input buffer; each hm_soap_next() yields one token:
 * a start tag, an end tag, a run of character data, or the end of the document. Every
 * slice in a token (local name, namespace URI, attribute value, text) points into the
 * input buffer, or, only where an entity/character reference had to be decoded, into the
 * caller's scratch arena. Slices are valid while both the input and the arena live (the
 * arena: until it is reset). The parser allocates nothing.
 *
 * Namespaces are resolved by URI, never by prefix: a CPE may write soap-env, SOAP-ENV,
 * soapenv, soap_env or a default namespace declaration; each token carries the URI and an
 * interned id (enum hm_soap_ns) for the URIs CWMP uses. Element local names are interned
 * into enum hm_soap_name (proto/soap_names.h, generated from the cwmp XSDs).
 *
 * Refused: any DOCTYPE or ENTITY declaration (HM_EXMLDTD: no XXE, no entity expansion
 * bombs), unknown entity references, mismatched tags, bad attribute syntax, duplicate
 * attributes, unbound prefixes, non-whitespace text outside the root, a second root, an
 * unterminated document (HM_EBADXML); exceeded limits (HM_EXMLLIMIT). Comments and
 * processing instructions (including the XML declaration) are skipped. Only UTF-8 input
 * is supported (the XML declaration's encoding is not checked). Attribute values are not
 * whitespace-normalised. Once an error is returned, every later call returns it again.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/bug.h"
#include "core/err.h"
#include "core/slice.h"
#include "proto/soap_names.h"

/* Namespace URIs the CWMP layer cares about, interned at declaration time. */
enum hm_soap_ns {
    HM_NS_NONE = 0,  /* no namespace (unprefixed name, no default namespace) */
    HM_NS_OTHER,     /* some URI we do not know */
    HM_NS_SOAPENV,   /* http://schemas.xmlsoap.org/soap/envelope/ */
    HM_NS_SOAPENC,   /* http://schemas.xmlsoap.org/soap/encoding/ */
    HM_NS_XSD,       /* http://www.w3.org/2001/XMLSchema */
    HM_NS_XSI,       /* http://www.w3.org/2001/XMLSchema-instance */
    HM_NS_CWMP_1_0,  /* urn:dslforum-org:cwmp-1-0 */
    HM_NS_CWMP_1_1,
    HM_NS_CWMP_1_2,
    HM_NS_CWMP_1_3,  /* not defined by any BBF schema; accepted because some CPEs send it */
    HM_NS_CWMP_1_4,
};

static inline bool hm_soap_ns_is_cwmp(unsigned ns)
{
    return ns >= HM_NS_CWMP_1_0 && ns <= HM_NS_CWMP_1_4;
}

enum hm_soap_tok_type {
    HM_SOAP_EOF = 0, /* the root element has closed and only misc follows */
    HM_SOAP_START,   /* <name attrs...> (also the first half of <name/>) */
    HM_SOAP_END,     /* </name> (also the second half of <name/>) */
    HM_SOAP_TEXT,    /* character data or a CDATA section, never empty */
};

struct hm_soap_attr {
    struct hm_slice local;
    struct hm_slice uri; /* empty for unprefixed attributes */
    struct hm_slice value;
    uint8_t ns;          /* enum hm_soap_ns */
    uint16_t name;       /* enum hm_soap_name */
};

struct hm_soap_tok {
    uint8_t type;        /* enum hm_soap_tok_type */
    uint8_t ns;          /* START/END: enum hm_soap_ns of the element */
    uint16_t name;       /* START/END: enum hm_soap_name of the local name */
    uint16_t depth;      /* START/END: 1 for the root element; TEXT: depth of its parent */
    uint16_t nattr;      /* START: attributes other than xmlns declarations */
    struct hm_slice local;              /* START/END */
    struct hm_slice uri;                /* START/END: namespace URI, empty if none */
    struct hm_slice text;               /* TEXT */
    const struct hm_soap_attr *attrs;   /* START: valid until the next hm_soap_next() */
};

/* Caller-owned bump arena for decoded text and for the CWMP layer's arrays. Text grows
 * up from <base>, arrays down from <base + cap> (see proto/cwmp.h). Zeroed = no arena:
 * any input that needs decoding then fails with HM_EXMLLIMIT. */
struct hm_soap_arena {
    char *base;
    size_t cap;
    size_t lo; /* bytes used from the bottom */
    size_t hi; /* bytes used from the top */
};

static inline void hm_soap_arena_init(struct hm_soap_arena *a, void *mem, size_t cap)
{
    a->base = mem;
    a->cap = cap;
    a->lo = 0;
    a->hi = 0;
}

static inline void hm_soap_arena_reset(struct hm_soap_arena *a)
{
    a->lo = 0;
    a->hi = 0;
}

/* Copies <n> bytes into the bottom of <a>; NULL when full. */
char *hm_soap_arena_put(struct hm_soap_arena *a, const char *p, size_t n);

struct hm_soap_limits {
    uint32_t max_depth;     /* element nesting; default 32 */
    uint32_t max_elements;  /* start tags per document; default 65536 */
    uint32_t max_name;      /* bytes in a qualified name; default 256 */
    uint32_t max_text;      /* bytes in one text run or attribute value; default 65536 */
};

#define HM_SOAP_MAX_DEPTH_CAP 64 /* compile-time bound of the element stack */
#define HM_SOAP_MAX_NSDECL 64    /* namespace declarations in scope at once */
#define HM_SOAP_MAX_ATTRS 16     /* attributes (incl. xmlns) on one element */

struct hm_soap_frame {
    struct hm_slice qname; /* as written, for end-tag matching */
    struct hm_slice local;
    struct hm_slice uri;
    uint16_t name;
    uint8_t ns;
    uint8_t nsdecl_base;   /* namespace stack height before this element */
};

struct hm_soap_nsdecl {
    struct hm_slice prefix; /* empty for a default declaration */
    struct hm_slice uri;
    uint8_t ns;
};

struct hm_soap_nscache {
    struct hm_slice prefix;
    const struct hm_soap_nsdecl *decl;
    uint32_t gen;
};

/* Parser state; embed it (about 5 KB), hm_soap_init() it, no destructor. */
struct hm_soap {
    const char *p, *end, *start;
    struct hm_soap_arena *arena;
    struct hm_soap_limits lim;
    int err;
    uint32_t nelem;
    uint16_t depth;
    uint8_t nns;
    uint32_t nsgen; /* changes whenever the declarations in scope change */
    struct hm_soap_nscache nscache[2];
    bool pending_end; /* an empty-element tag still owes its END token */
    bool seen_root;
    bool done;
    struct hm_soap_frame stack[HM_SOAP_MAX_DEPTH_CAP];
    struct hm_soap_nsdecl ns[HM_SOAP_MAX_NSDECL];
    struct hm_soap_attr attrs[HM_SOAP_MAX_ATTRS];
};

/* Binds <p> to <buf>[<len>]. <arena> may be NULL (then any entity reference fails);
 * <lim> may be NULL for the defaults; zero fields take their defaults too. Neither the
 * buffer nor the arena is copied: both must outlive every token. */
void hm_soap_init(struct hm_soap *p, const char *buf, size_t len, struct hm_soap_arena *arena,
                  const struct hm_soap_limits *lim);

/* Produces the next token into <tok>. Returns 0 on success (including HM_SOAP_EOF, after
 * which it keeps returning EOF), or HM_EBADXML / HM_EXMLDTD / HM_EXMLLIMIT. */
int hm_soap_next(struct hm_soap *p, struct hm_soap_tok *tok) HM_MUST_CHECK;

/* After a START token: reads the element's whole content as text up to and including its
 * END token. Several text pieces (text + CDATA) are joined in the arena. A child element
 * returns HM_EBADSOAP (structure, not syntax). On success <out> is the text (empty for
 * <a/>). */
int hm_soap_leaf_text(struct hm_soap *p, struct hm_slice *out) HM_MUST_CHECK;

/* After a START token: skips the element's content up to and including its END token. */
int hm_soap_skip(struct hm_soap *p) HM_MUST_CHECK;

/* The first attribute of <tok> with local name <name> (any namespace), or NULL. */
const struct hm_soap_attr *hm_soap_attr_find(const struct hm_soap_tok *tok, unsigned name);

/* Byte offset of the parser in the input (for error messages). */
static inline size_t hm_soap_offset(const struct hm_soap *p)
{
    return (size_t)(p->p - p->start);
}

/* Decodes the XML entity and character references in <in> into <a>; <in> without '&' is
 * returned as is. Returns 0, HM_EBADXML or HM_EXMLLIMIT. Exposed for tests. */
int hm_soap_decode(struct hm_soap_arena *a, struct hm_slice in, struct hm_slice *out);

#endif
