/* proto/soap: the zero-copy namespace-aware tokenizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hm_check.h"
#include "proto/soap.h"

static char mem[65536];
static struct hm_soap_arena arena;

static bool sl_eq(struct hm_slice s, const char *c)
{
    return s.len == strlen(c) && (s.len == 0 || memcmp(s.ptr, c, s.len) == 0);
}

/* Runs the tokenizer to the end; returns 0 or the first error. */
static int run(const char *doc, const struct hm_soap_limits *lim, unsigned *nstart)
{
    struct hm_soap p;
    struct hm_soap_tok t;
    hm_soap_arena_init(&arena, mem, sizeof(mem));
    hm_soap_init(&p, doc, strlen(doc), &arena, lim);
    unsigned n = 0;
    for (;;) {
        int err = hm_soap_next(&p, &t);
        if (err)
            return err;
        if (t.type == HM_SOAP_EOF)
            break;
        n += t.type == HM_SOAP_START;
    }
    if (nstart)
        *nstart = n;
    return 0;
}

START_TEST(prefixes_differ_uris_match)
{
    static const char *docs[] = {
        "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Body><cwmp:Inform/></soap-env:Body>"
        "</soap-env:Envelope>",
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<SOAP-ENV:Body><x:Inform xmlns:x=\"urn:dslforum-org:cwmp-1-0\"/></SOAP-ENV:Body>"
        "</SOAP-ENV:Envelope>",
        "<soap_env:Envelope xmlns:soap_env='http://schemas.xmlsoap.org/soap/envelope/'>"
        "<soap_env:Body><Inform xmlns='urn:dslforum-org:cwmp-1-0'></Inform></soap_env:Body>"
        "</soap_env:Envelope>",
        ("<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>"
         "<soapenv:Inform xmlns:soapenv=\"urn:dslforum-org:cwmp-1-0\"/></Body></Envelope>"),
    };
    for (size_t i = 0; i < HM_ARRAY_SIZE(docs); i++) {
        struct hm_soap p;
        struct hm_soap_tok t;
        hm_soap_init(&p, docs[i], strlen(docs[i]), NULL, NULL);
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(t.type, HM_SOAP_START);
        ck_assert_int_eq(t.ns, HM_NS_SOAPENV);
        ck_assert_int_eq(t.name, HM_N_Envelope);
        ck_assert_int_eq(t.depth, 1);
        ck_assert(sl_eq(t.uri, "http://schemas.xmlsoap.org/soap/envelope/"));
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(t.ns, HM_NS_SOAPENV);
        ck_assert_int_eq(t.name, HM_N_Body);
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(t.type, HM_SOAP_START);
        ck_assert_int_eq(t.ns, HM_NS_CWMP_1_0);
        ck_assert_int_eq(t.name, HM_N_Inform);
        ck_assert(sl_eq(t.local, "Inform"));
        /* zero copy: the local name points into the input */
        ck_assert(t.local.ptr > docs[i] && t.local.ptr < docs[i] + strlen(docs[i]));
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(t.type, HM_SOAP_END);
        ck_assert_int_eq(t.name, HM_N_Inform);
        ck_assert_int_eq(t.depth, 3);
        ck_assert_int_eq(hm_soap_skip(&p), 0); /* rest of Body */
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(t.type, HM_SOAP_END);
        ck_assert_int_eq(t.name, HM_N_Envelope);
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(t.type, HM_SOAP_EOF);
    }
}
END_TEST

START_TEST(scoping_and_attributes)
{
    const char *doc = "<?xml version=\"1.0\"?><!-- c --><a xmlns=\"urn:x\" xmlns:p=\"urn:dslforum-org:cwmp-1-2\">"
                      "<b xmlns=\"\" p:mustUnderstand = '1' arrayType=\"x[2]\"/>"
                      "<p:c><p:ID xmlns:p=\"http://www.w3.org/2001/XMLSchema-instance\"/></p:c>"
                      "<d/></a><?pi tail?>\n";
    struct hm_soap p;
    struct hm_soap_tok t;
    hm_soap_init(&p, doc, strlen(doc), NULL, NULL);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.ns, HM_NS_OTHER);
    ck_assert(sl_eq(t.uri, "urn:x"));
    ck_assert_int_eq(t.nattr, 0); /* xmlns declarations are not attributes */
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert(sl_eq(t.local, "b"));
    ck_assert_int_eq(t.ns, HM_NS_NONE); /* xmlns="" undeclares the default */
    ck_assert_int_eq(t.nattr, 2);
    const struct hm_soap_attr *mu = hm_soap_attr_find(&t, HM_N_mustUnderstand);
    ck_assert_ptr_nonnull(mu);
    ck_assert_int_eq(mu->ns, HM_NS_CWMP_1_2);
    ck_assert(sl_eq(mu->value, "1"));
    const struct hm_soap_attr *at = hm_soap_attr_find(&t, HM_N_arrayType);
    ck_assert_int_eq(at->ns, HM_NS_NONE); /* unprefixed attributes have no namespace */
    ck_assert(sl_eq(at->value, "x[2]"));
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.type, HM_SOAP_END);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.ns, HM_NS_CWMP_1_2);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.ns, HM_NS_XSI); /* inner redeclaration of p wins */
    ck_assert_int_eq(t.name, HM_N_ID);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0); /* </p:ID> */
    ck_assert_int_eq(hm_soap_next(&p, &t), 0); /* </p:c>: p is back to cwmp */
    ck_assert_int_eq(t.ns, HM_NS_CWMP_1_2);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert(sl_eq(t.local, "d"));
    ck_assert_int_eq(t.ns, HM_NS_OTHER);
    ck_assert_int_eq(t.name, HM_N_UNKNOWN);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.type, HM_SOAP_END);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.type, HM_SOAP_EOF);
    ck_assert_int_eq(hm_soap_next(&p, &t), 0);
    ck_assert_int_eq(t.type, HM_SOAP_EOF);
}
END_TEST

static int leaf_of(const char *doc, struct hm_slice *out, struct hm_soap_arena *a)
{
    static struct hm_soap p;
    struct hm_soap_tok t;
    hm_soap_init(&p, doc, strlen(doc), a, NULL);
    int err = hm_soap_next(&p, &t);
    return err ? err : hm_soap_leaf_text(&p, out);
}

START_TEST(entities_and_cdata)
{
    struct hm_slice s;
    hm_soap_arena_init(&arena, mem, sizeof(mem));
    const char *plain = "<v>plain text</v>";
    ck_assert_int_eq(leaf_of(plain, &s, &arena), 0);
    ck_assert(sl_eq(s, "plain text"));
    ck_assert_ptr_eq(s.ptr, plain + 3); /* no decoding needed: no copy */
    ck_assert_uint_eq(arena.lo, 0);

    ck_assert_int_eq(leaf_of("<v>a&lt;b&gt;c&amp;d&quot;e&apos;f&#65;&#x42;&#xe9;&#x20AC;&#x1F600;</v>",
                             &s, &arena),
                     0);
    ck_assert(sl_eq(s, "a<b>c&d\"e'fAB\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    ck_assert_int_eq(leaf_of("<v><![CDATA[<x>&amp;]]></v>", &s, &arena), 0);
    ck_assert(sl_eq(s, "<x>&amp;"));
    ck_assert_int_eq(leaf_of("<v>x&amp;y<![CDATA[<z>]]>w&lt;<!-- c -->q</v>", &s, &arena), 0);
    ck_assert(sl_eq(s, "x&y<z>w<q"));
    ck_assert_int_eq(leaf_of("<v/>", &s, &arena), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(leaf_of("<v a='&lt;&#x26;'>1</v>", &s, &arena), 0);
    ck_assert_int_eq(leaf_of("<v><w/></v>", &s, &arena), HM_EBADSOAP);
    /* the <a>text</a> fast path: exact end tag only, anything else takes the general path */
    ck_assert_int_eq(leaf_of("<v>a</vx>", &s, &arena), HM_EBADXML);
    ck_assert_int_eq(leaf_of("<v>a</v", &s, &arena), HM_EBADXML);
    ck_assert_int_eq(leaf_of("<v>abc", &s, &arena), HM_EBADXML);
    ck_assert_int_eq(leaf_of("<v>a</v >", &s, &arena), 0);
    ck_assert(sl_eq(s, "a"));
    ck_assert_int_eq(leaf_of("<p:v xmlns:p='u'>xy</p:v>", &s, &arena), 0);
    ck_assert(sl_eq(s, "xy"));
    {
        /* a declaration on a leaf goes out of scope with it */
        const char *doc = "<r><v xmlns:q='u'>x</v><q:w/></r>";
        struct hm_soap p;
        struct hm_soap_tok t;
        hm_soap_init(&p, doc, strlen(doc), &arena, NULL);
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(hm_soap_next(&p, &t), 0);
        ck_assert_int_eq(hm_soap_leaf_text(&p, &s), 0);
        ck_assert(sl_eq(s, "x"));
        ck_assert_int_eq(p.depth, 1);
        ck_assert_int_eq(hm_soap_next(&p, &t), HM_EBADXML);
    }

    static const char *bad[] = {"<v>&foo;</v>", "<v>&#0;</v>", "<v>&#x110000;</v>",
                                "<v>&#xD800;</v>", "<v>&amp</v>", "<v>&#;</v>", "<v>&#x;</v>",
                                "<v>&lt ;</v>", "<v>&#1a;</v>"};
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++)
        ck_assert_msg(leaf_of(bad[i], &s, &arena) == HM_EBADXML, "%s", bad[i]);
    /* without an arena a reference is a limit, not a crash */
    ck_assert_int_eq(leaf_of("<v>&lt;</v>", &s, NULL), HM_EXMLLIMIT);
    struct hm_soap_arena tiny;
    char tm[4];
    hm_soap_arena_init(&tiny, tm, sizeof(tm));
    ck_assert_int_eq(leaf_of("<v>&lt;&lt;&lt;&lt;&lt;</v>", &s, &tiny), HM_EXMLLIMIT);
}
END_TEST

START_TEST(dtd_refused)
{
    ck_assert_int_eq(run("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>", NULL, NULL), HM_EXMLDTD);
    ck_assert_int_eq(run("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                         "<!ENTITY lol2 \"&lol;&lol;\">]><lolz>&lol2;</lolz>",
                         NULL, NULL),
                     HM_EXMLDTD);
    ck_assert_int_eq(run("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>", NULL, NULL),
                     HM_EXMLDTD);
    ck_assert_int_eq(run("<x><!ENTITY a \"b\"></x>", NULL, NULL), HM_EXMLDTD);
}
END_TEST

START_TEST(limits)
{
    char doc[8192];
    size_t n = 0;
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<a%d>", i);
    for (int i = 31; i >= 0; i--)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "</a%d>", i);
    ck_assert_int_eq(run(doc, NULL, NULL), 0);
    n = 0;
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<a>");
    ck_assert_int_eq(run(doc, NULL, NULL), HM_EXMLLIMIT);
    struct hm_soap_limits lim = {.max_depth = 4};
    ck_assert_int_eq(run("<a><b><c><d/></c></b></a>", &lim, NULL), 0);
    ck_assert_int_eq(run("<a><b><c><d><e/></d></c></b></a>", &lim, NULL), HM_EXMLLIMIT);
    lim = (struct hm_soap_limits){.max_elements = 3};
    unsigned cnt;
    ck_assert_int_eq(run("<a><b/><c/></a>", &lim, &cnt), 0);
    ck_assert_uint_eq(cnt, 3);
    ck_assert_int_eq(run("<a><b/><c/><d/></a>", &lim, NULL), HM_EXMLLIMIT);
    lim = (struct hm_soap_limits){.max_name = 4};
    ck_assert_int_eq(run("<abcd/>", &lim, NULL), 0);
    ck_assert_int_eq(run("<abcde/>", &lim, NULL), HM_EXMLLIMIT);
    lim = (struct hm_soap_limits){.max_text = 4};
    ck_assert_int_eq(run("<a>1234</a>", &lim, NULL), 0);
    ck_assert_int_eq(run("<a>12345</a>", &lim, NULL), HM_EXMLLIMIT);
    ck_assert_int_eq(run("<a b='12345'/>", &lim, NULL), HM_EXMLLIMIT);
    n = (size_t)snprintf(doc, sizeof(doc), "<a");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, " a%d='1'", i);
    snprintf(doc + n, sizeof(doc) - n, "/>");
    ck_assert_int_eq(run(doc, NULL, NULL), HM_EXMLLIMIT);
    n = 0;
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<a xmlns:p%d='u' xmlns:q%d='v'>", i, i);
    ck_assert_int_eq(run(doc, NULL, NULL), HM_EBADXML); /* 60 decls fit; truncated */
    n = 0;
    for (int i = 0; i < 22; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                              "<a xmlns:p%d='u' xmlns:q%d='v' xmlns:r%d='w'>", i, i, i);
    ck_assert_int_eq(run(doc, NULL, NULL), HM_EXMLLIMIT);
}
END_TEST

START_TEST(malformed)
{
    static const char *bad[] = {
        "", "   ", "<a>", "<a></b>", "<a><b></a></b>", "</a>", "<a b=1/>", "<a b='1\"/>",
        "<a b='1' b='2'/>", "<a p:b='1' q:b='2' xmlns:p='u' xmlns:q='u'/>", "<p:a/>",
        "<a/><b/>", "x<a/>", "<a/>x", "<a b='1'c='2'/>", "<a b/>", "<a b='<'/>", "<1a/>",
        "<a:/>", "<:a/>", "<a:b:c/>", "<a xmlns:p=''/>", "<a><!-- x </a>", "<a><![CDATA[x</a>",
        "<a><?pi </a>", "<a><!x></a>", "<![CDATA[x]]><a/>", "<a></a", "<a/", "<", "<a>< b/></a>",
        "<a></ a>", "<a b='1' / >",
    };
    for (size_t i = 0; i < HM_ARRAY_SIZE(bad); i++)
        ck_assert_msg(run(bad[i], NULL, NULL) == HM_EBADXML, "'%s' -> %d", bad[i],
                      run(bad[i], NULL, NULL));
    static const char *good[] = {
        "<a></a >", "<a b = \"1\" />", "<a\n\tb='1'\r\n/>", "\xef\xbb\xbf<a/>",
        "<a>\xc3\xa9\xe2\x82\xac</a>", "<a>]]></a>", "<x:a xmlns:x='u'></x:a>",
        "<a xml:lang='en'/>",
    };
    for (size_t i = 0; i < HM_ARRAY_SIZE(good); i++)
        ck_assert_msg(run(good[i], NULL, NULL) == 0, "'%s'", good[i]);
}
END_TEST

/* Every prefix of a valid envelope must fail cleanly (ASan checks the reads). */
START_TEST(truncation_everywhere)
{
    const char *doc =
        "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\""
        " xmlns:c=\"urn:dslforum-org:cwmp-1-0\"><s:Header><c:ID s:mustUnderstand=\"1\">x&amp;y"
        "</c:ID></s:Header><s:Body><c:Inform><a><![CDATA[q]]></a><!-- c --></c:Inform></s:Body>"
        "</s:Envelope>";
    size_t n = strlen(doc);
    for (size_t i = 0; i < n; i++) {
        char *cut = malloc(i ? i : 1);
        memcpy(cut, doc, i);
        struct hm_soap p;
        struct hm_soap_tok t;
        hm_soap_arena_init(&arena, mem, sizeof(mem));
        hm_soap_init(&p, cut, i, &arena, NULL);
        int err;
        do
            err = hm_soap_next(&p, &t);
        while (!err && t.type != HM_SOAP_EOF);
        ck_assert_msg(err == HM_EBADXML, "prefix %zu -> %d", i, err);
        ck_assert_int_eq(hm_soap_next(&p, &t), err); /* errors are sticky */
        free(cut);
    }
    ck_assert_int_eq(run(doc, NULL, NULL), 0);
}
END_TEST

START_TEST(names_interned)
{
    ck_assert_int_eq(hm_soap_name_lookup("Inform", 6), HM_N_Inform);
    ck_assert_int_eq(hm_soap_name_lookup("ParameterValueStruct", 20), HM_N_ParameterValueStruct);
    ck_assert_int_eq(hm_soap_name_lookup("ID", 2), HM_N_ID);
    ck_assert_int_eq(hm_soap_name_lookup("UseCWMPVersion", 14), HM_N_UseCWMPVersion);
    ck_assert_int_eq(hm_soap_name_lookup("inform", 6), HM_N_UNKNOWN);
    ck_assert_int_eq(hm_soap_name_lookup("Informs", 7), HM_N_UNKNOWN);
    ck_assert_int_eq(hm_soap_name_lookup("", 0), HM_N_UNKNOWN);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("soap");
    TCase *tc = tcase_create("soap");
    tcase_add_test(tc, prefixes_differ_uris_match);
    tcase_add_test(tc, scoping_and_attributes);
    tcase_add_test(tc, entities_and_cdata);
    tcase_add_test(tc, dtd_refused);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, truncation_everywhere);
    tcase_add_test(tc, names_interned);
    suite_add_tcase(s, tc);
    return s;
}

HM_TEST_MAIN(suite)
