/* hems-loadgen timeline and SVG plot (bench/loadgen_plot.h). Control path: malloc, stdio. */
#include "bench/loadgen_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

void hm_lg_timeline_add(struct hm_lg_timeline *tl, const struct hm_lg_point *p)
{
    if (tl->n == tl->cap) {
        tl->cap = tl->cap ? tl->cap * 2 : 256;
        tl->pts = hm_xrealloc(tl->pts, tl->cap * sizeof(*tl->pts));
    }
    tl->pts[tl->n++] = *p;
}

void hm_lg_timeline_free(struct hm_lg_timeline *tl)
{
    free(tl->pts);
    *tl = (struct hm_lg_timeline){0};
}

json_t *hm_lg_timeline_json(const struct hm_lg_timeline *tl)
{
    json_t *a = json_array();
    for (size_t i = 0; i < tl->n; i++) {
        const struct hm_lg_point *p = &tl->pts[i];
        json_t *o = json_pack("{s:f,s:I,s:I,s:I,s:I}", "t_s", p->t_s, "ok_per_s",
                              (json_int_t)p->ok_per_s, "fail_per_s", (json_int_t)p->fail_per_s,
                              "errors_per_s", (json_int_t)p->err_per_s, "p99_us",
                              (json_int_t)p->p99_us);
        if (p->server_cpu >= 0)
            json_object_set_new(o, "server_cpu_pct", json_real(p->server_cpu));
        if (p->server_rss_kb >= 0)
            json_object_set_new(o, "server_rss_kb", json_integer(p->server_rss_kb));
        json_array_append_new(a, o);
    }
    return a;
}

/* A "nice" axis maximum at or above <v> (1, 2, 5 x 10^k). */
static double nice_max(double v)
{
    if (v <= 0)
        return 1;
    double e = pow(10, floor(log10(v)));
    for (int i = 0; i < 3; i++) {
        static const double m[] = {1, 2, 5};
        if (m[i] * e >= v)
            return m[i] * e;
    }
    return 10 * e;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20)
                fputc(*s, f);
        }
    }
}

enum { W = 900, PANEL_H = 200, LEFT = 70, RIGHT = 20, TOP = 40, GAP = 50 };

struct series {
    const char *name, *color;
    double (*get)(const struct hm_lg_point *p);
};

static double g_ok(const struct hm_lg_point *p) { return (double)p->ok_per_s; }
static double g_fail(const struct hm_lg_point *p) { return (double)p->fail_per_s; }
static double g_err(const struct hm_lg_point *p) { return (double)p->err_per_s; }
static double g_p99(const struct hm_lg_point *p) { return (double)p->p99_us / 1000.0; }
static double g_cpu(const struct hm_lg_point *p) { return p->server_cpu; }

/* One panel: axes, grid, a polyline per series (points with a negative value skipped). */
static void panel(FILE *f, const struct hm_lg_timeline *tl, int y0, double tmax, const char *label,
                  const struct series *s, size_t ns)
{
    double vmax = 0;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < tl->n; i++)
            if (s[k].get(&tl->pts[i]) > vmax)
                vmax = s[k].get(&tl->pts[i]);
    vmax = nice_max(vmax);
    int pw = W - LEFT - RIGHT;
    fprintf(f, "<g font-family=\"sans-serif\" font-size=\"11\">\n");
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n",
            LEFT, y0, pw, PANEL_H);
    for (int g = 0; g <= 4; g++) {
        int y = y0 + PANEL_H - g * PANEL_H / 4;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", LEFT, y,
                LEFT + pw, y);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%g</text>\n", LEFT - 4, y + 4,
                vmax * g / 4);
    }
    for (int g = 0; g <= 5; g++) {
        int x = LEFT + g * pw / 5;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.*fs</text>\n", x,
                y0 + PANEL_H + 14, tmax < 30 ? 1 : 0, tmax * g / 5);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">", LEFT, y0 - 6);
    xml_text(f, label);
    fprintf(f, "</text>\n");
    int lx = LEFT + pw;
    for (size_t k = ns; k-- > 0;) {
        lx -= 10 + 7 * (int)strlen(s[k].name);
        fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", lx, y0 - 6, s[k].color,
                s[k].name);
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                s[k].color);
        for (size_t i = 0; i < tl->n; i++) {
            double v = s[k].get(&tl->pts[i]);
            if (v < 0)
                continue;
            fprintf(f, "%.1f,%.1f ", LEFT + tl->pts[i].t_s / tmax * pw,
                    y0 + PANEL_H - v / vmax * PANEL_H);
        }
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "</g>\n");
}

int hm_lg_plot_svg(const char *path, const struct hm_lg_timeline *tl, const char *title)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    double tmax = tl->n ? tl->pts[tl->n - 1].t_s : 1;
    if (tmax <= 0)
        tmax = 1;
    bool cpu = false;
    for (size_t i = 0; i < tl->n; i++)
        cpu |= tl->pts[i].server_cpu >= 0;
    int panels = cpu ? 3 : 2;
    int h = TOP + panels * (PANEL_H + GAP);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%d\" y=\"20\" font-family=\"sans-serif\" font-size=\"14\">",
            W, h, W, h, LEFT);
    xml_text(f, title);
    fprintf(f, "</text>\n");
    static const struct series rate[] = {{"completed/s", "#1f77b4", g_ok},
                                         {"failed/s", "#d62728", g_fail},
                                         {"errors/s", "#ff7f0e", g_err}};
    static const struct series lat[] = {{"p99 exchange (ms)", "#2ca02c", g_p99}};
    static const struct series srv[] = {{"server CPU (% of a core)", "#9467bd", g_cpu}};
    panel(f, tl, TOP + 10, tmax, "sessions per second", rate, 3);
    panel(f, tl, TOP + 10 + PANEL_H + GAP, tmax, "latency (worst worker, each second)", lat, 1);
    if (cpu)
        panel(f, tl, TOP + 10 + 2 * (PANEL_H + GAP), tmax, "server", srv, 1);
    fprintf(f, "</svg>\n");
    int r = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && r == 0)
        r = -errno;
    return r;
}
