/* teach_html.c — the teaching page of `fa2 trace --html FILE`. It runs the
 * tiled CPU mirror with a trace callback (the same callback `fa2 trace`
 * prints from, so every number on the page is the mirror's own), records
 * what each step did, and writes one HTML file with no outside references:
 * the data as a JavaScript literal and a small script that draws
 *
 *   - the grid of (query block, key block) tiles: visited in full, visited
 *     with an element mask (the boundary tiles), skipped; each visited tile
 *     numbered in the order the forward runs it; inside each boundary
 *     tile, which (row, key) pairs the mask removes;
 *   - for each query block, each row's running max m, sum l and rescale
 *     factor alpha after each key block, and the LSE it ends with;
 *   - the backward's order: key blocks outside, the query blocks each
 *     visits inside.
 *
 * tests/trace_html.sh renders it in headless Chromium and counts those
 * elements. */
#include "fa2_teach_html.h"

#include "fa2_cpu.h" /* fa2_tiled_fwd_traced, fa2_tiled_bwd_traced */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tile_rec {
    int64_t m_block, n_block, rows, cols, masked; /* masked: -inf entries */
    char *mask; /* masked > 0: rows x cols of '1' (masked) and '0'      */
} tile_rec;

typedef struct row_rec {
    int64_t m_block, n_block, row;
    float m, l, alpha;
} row_rec;

typedef struct page {
    tile_rec *fwd, *bwd;
    size_t n_fwd, n_bwd, cap_fwd, cap_bwd;
    row_rec *rows;
    size_t n_rows, cap_rows;
    float *lse;  /* [seqlen_q] */
    int failed;  /* out of memory while recording */
} page;

static void *grow(void *p, size_t *cap, size_t n, size_t size, int *failed)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 64;
    void *q = realloc(p, c * size);
    if (!q) {
        *failed = 1;
        return p;
    }
    *cap = c;
    return q;
}

static int masked_at(const fa2_trace_event *e, int64_t i, int64_t j)
{
    const float x = e->tile[i * e->row_stride + j * e->col_stride];
    return isinf(x) && x < 0;
}

/* The tile of a step; with_mask: keep which entries the mask removed. */
static tile_rec tile_of(const fa2_trace_event *e, int with_mask, int *failed)
{
    tile_rec t = {e->m_block, e->n_block, e->rows, e->cols, 0, NULL};
    for (int64_t i = 0; e->tile && i < e->rows; i++)
        for (int64_t j = 0; j < e->cols; j++)
            t.masked += masked_at(e, i, j);
    if (with_mask && t.masked > 0) {
        if (!(t.mask = malloc((size_t)(e->rows * e->cols) + 1))) {
            *failed = 1;
            return t;
        }
        for (int64_t i = 0; i < e->rows; i++)
            for (int64_t j = 0; j < e->cols; j++)
                t.mask[i * e->cols + j] = masked_at(e, i, j) ? '1' : '0';
        t.mask[e->rows * e->cols] = '\0';
    }
    return t;
}

static void on_step(void *user, const fa2_trace_event *e)
{
    page *p = user;
    if (p->failed)
        return;
    switch (e->kind) {
    case FA2_TRACE_FWD_S:
        p->fwd = grow(p->fwd, &p->cap_fwd, p->n_fwd, sizeof *p->fwd, &p->failed);
        if (!p->failed)
            p->fwd[p->n_fwd++] = tile_of(e, 1, &p->failed);
        break;
    case FA2_TRACE_FWD_P:
        for (int64_t i = 0; i < e->rows; i++) {
            p->rows = grow(p->rows, &p->cap_rows, p->n_rows, sizeof *p->rows, &p->failed);
            if (p->failed)
                return;
            p->rows[p->n_rows++] = (row_rec){e->m_block, e->n_block, e->row_lo + i,
                                             e->state[i].m, e->state[i].l, e->alpha[i]};
        }
        break;
    case FA2_TRACE_FWD_OUT:
        for (int64_t i = 0; i < e->rows; i++)
            p->lse[e->row_lo + i] = e->vec[i];
        break;
    case FA2_TRACE_BWD_P: /* P recomputed from LSE: the tile the backward visits */
        p->bwd = grow(p->bwd, &p->cap_bwd, p->n_bwd, sizeof *p->bwd, &p->failed);
        if (!p->failed) {
            p->bwd[p->n_bwd] = tile_of(e, 0, &p->failed);
            p->bwd[p->n_bwd++].masked = 0; /* P holds zeros, not -inf */
        }
        break;
    default:
        break;
    }
}

/* A float as a JavaScript literal. */
static void js_num(FILE *f, double x)
{
    if (isnan(x))
        fputs("NaN", f);
    else if (isinf(x))
        fputs(x > 0 ? "Infinity" : "-Infinity", f);
    else
        fprintf(f, "%.6g", x);
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>FlashAttention-2, tile by tile (fa2 trace)</title>\n<style>\n"
    "body{font:15px/1.45 sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}\n"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}\n"
    "td,th{border:1px solid #bbb;padding:.2em .45em;text-align:center;font:12px monospace}\n"
    "td.tile{width:3.2em;height:2.2em;font-weight:bold}\n"
    ".visited{background:#7fbf7f}.masked{background:#f2c36b}.skipped{background:#eee;color:#aaa}\n"
    ".legend span{display:inline-block;padding:.1em .6em;margin-right:.6em;border:1px solid #bbb}\n"
    "td.rescaled{background:#fde0dc}\n"
    "figure.masktile{display:inline-block;margin:0 1.5em 1em 0}\n"
    "figure.masktile td{width:1em;height:1em;padding:0}td.in{background:#7fbf7f}td.out{background:#ccc}\n"
    "</style>\n</head>\n<body>\n"
    "<h1>FlashAttention-2, tile by tile</h1>\n"
    "<p id=\"problem\"></p>\n"
    "<p>Every number here comes from fa2's tiled CPU mirror (cpu/tiled_fwd.c, "
    "cpu/tiled_bwd.c), which runs the GPU kernel's loops in the same order with "
    "the same rounding points, through the trace callback <code>fa2 trace</code> "
    "prints from.</p>\n"
    "<h2>1. Which tiles the forward visits</h2>\n"
    "<p>Rows are query blocks (B<sub>r</sub> rows each), columns key blocks "
    "(B<sub>c</sub> keys each). A query block loops over the key blocks its mask "
    "leaves visible; a number is the step at which the forward visits that tile. "
    "Boundary tiles need an element mask; tiles no row of the block can see are "
    "never loaded.</p>\n"
    "<p class=\"legend\"><span class=\"visited\">visited</span>"
    "<span class=\"masked\">visited, masked</span><span class=\"skipped\">skipped</span></p>\n"
    "<div id=\"grid\"></div>\n"
    "<h3>Inside the boundary tiles</h3>\n"
    "<p>Each masked tile below shows which (query row, key) pairs its mask "
    "removes (grey, score set to -inf before the softmax) and which it keeps.</p>\n"
    "<div id=\"masks\"></div>\n"
    "<h2>2. The online softmax of each row</h2>\n"
    "<p>Each query row keeps its running maximum m of the scores seen so far and "
    "the sum l of their exponentials. When a key block raises m, everything "
    "accumulated so far is multiplied by alpha = exp(m<sub>old</sub> - "
    "m<sub>new</sub>) (shaded); at the end O = acc / l and LSE = m + log l "
    "(in the mirror's scaled units).</p>\n"
    "<div id=\"rows\"></div>\n"
    "<h2>3. The backward's order</h2>\n"
    "<p>The backward turns the loops around: each key block stays resident "
    "while the query blocks that see it pass by, so dK and dV are finished "
    "block by block and dQ is summed across key blocks.</p>\n"
    "<div id=\"bwd-grid\"></div>\n<ol id=\"bwd-order\"></ol>\n";

static const char page_script[] =
    "<script>\n"
    "function el(tag, cls, text){const e=document.createElement(tag);"
    "if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}\n"
    "function fmt(x){return Number.isFinite(x)?x.toPrecision(4):String(x);}\n"
    "function grid(tiles, id){\n"
    "  const t=el('table');t.id=id+'-table';const h=el('tr');h.appendChild(el('th','', 'i \\\\ j'));\n"
    "  for(let j=0;j<D.nBlocks;j++)h.appendChild(el('th','', 'key '+j));t.appendChild(h);\n"
    "  for(let i=0;i<D.mBlocks;i++){const r=el('tr');r.appendChild(el('th','', 'query '+i));\n"
    "    for(let j=0;j<D.nBlocks;j++){const s=tiles.findIndex(x=>x[0]==i&&x[1]==j);\n"
    "      const c=s<0?el('td','tile skipped',''):el('td','tile '+(tiles[s][2]>0?'masked':'visited'),String(s+1));\n"
    "      c.dataset.m=i;c.dataset.n=j;r.appendChild(c);}\n"
    "    t.appendChild(r);}\n"
    "  document.getElementById(id).appendChild(t);}\n"
    "document.getElementById('problem').textContent='seqlen_q '+D.seqlenQ+', seqlen_k '+D.seqlenK+"
    "', tiles '+D.blockM+' x '+D.blockN+' (Br x Bc), causal '+(D.causal?'yes':'no')+"
    "', window '+D.window[0]+','+D.window[1]+'; fp32, one head.';\n"
    "grid(D.fwd,'grid');\n"
    "const masks=document.getElementById('masks');\n"
    "D.fwd.filter(t=>t[2]>0).forEach(t=>{const fig=el('figure','masktile');\n"
    "  fig.appendChild(el('figcaption','', 'query block '+t[0]+', key block '+t[1]));\n"
    "  const tb=el('table');const cols=t[3];\n"
    "  for(let r=0;r*cols<t[4].length;r++){const tr=el('tr');\n"
    "    tr.appendChild(el('th','', String(t[0]*D.blockM+r)));\n"
    "    for(let c=0;c<cols;c++)tr.appendChild(el('td',t[4][r*cols+c]=='1'?'out':'in',''));\n"
    "    tb.appendChild(tr);}\n"
    "  fig.appendChild(tb);masks.appendChild(fig);});\n"
    "const rowsDiv=document.getElementById('rows');\n"
    "for(let i=0;i<D.mBlocks;i++){\n"
    "  const steps=[...new Set(D.rows.filter(r=>r[0]==i).map(r=>r[1]))];\n"
    "  const sec=el('section','qblock');sec.appendChild(el('h3','', 'query block '+i));\n"
    "  const t=el('table','rowstate');const h=el('tr');h.appendChild(el('th','', 'row'));\n"
    "  for(const j of steps)h.appendChild(el('th','', 'after key block '+j+': m, l, alpha'));\n"
    "  h.appendChild(el('th','', 'LSE'));t.appendChild(h);\n"
    "  const rowIds=[...new Set(D.rows.filter(r=>r[0]==i).map(r=>r[2]))];\n"
    "  for(const q of rowIds){const tr=el('tr');tr.appendChild(el('th','', String(q)));\n"
    "    for(const j of steps){const r=D.rows.find(x=>x[0]==i&&x[1]==j&&x[2]==q);\n"
    "      const td=el('td',r&&r[5]<1&&r[5]>0?'rescaled':'',r?fmt(r[3])+', '+fmt(r[4])+', '+fmt(r[5]):'');tr.appendChild(td);}\n"
    "    tr.appendChild(el('td','lse',fmt(D.lse[q])));t.appendChild(tr);}\n"
    "  sec.appendChild(t);rowsDiv.appendChild(sec);}\n"
    "grid(D.bwd,'bwd-grid');\n"
    "const ol=document.getElementById('bwd-order');\n"
    "D.bwd.forEach(b=>ol.appendChild(el('li','bwd-step','key block '+b[1]+' resident: query block '+b[0])));\n"
    "</script>\n</body>\n</html>\n";

static void write_page(FILE *f, const page *p, const fa2_fwd_args *a)
{
    const int64_t nq = a->q.shape[1], nk = a->k.shape[1];
    fputs(page_head, f);
    fprintf(f, "<script>\nconst D={seqlenQ:%lld,seqlenK:%lld,blockM:%d,blockN:%d,"
            "mBlocks:%lld,nBlocks:%lld,causal:%d,window:[%lld,%lld],\n",
            (long long)nq, (long long)nk, a->block_m, a->block_n,
            (long long)((nq + a->block_m - 1) / a->block_m),
            (long long)((nk + a->block_n - 1) / a->block_n), a->causal,
            (long long)a->window_left, (long long)a->window_right);
    const tile_rec *lists[2] = {p->fwd, p->bwd};
    const size_t counts[2] = {p->n_fwd, p->n_bwd};
    for (int w = 0; w < 2; w++) {
        fprintf(f, "%s:[", w ? "bwd" : "fwd");
        for (size_t i = 0; i < counts[w]; i++)
            fprintf(f, "%s[%lld,%lld,%lld,%lld,\"%s\"]", i ? "," : "",
                    (long long)lists[w][i].m_block, (long long)lists[w][i].n_block,
                    (long long)lists[w][i].masked, (long long)lists[w][i].cols,
                    lists[w][i].mask ? lists[w][i].mask : "");
        fputs("],\n", f);
    }
    fputs("rows:[", f);
    for (size_t i = 0; i < p->n_rows; i++) {
        const row_rec *r = &p->rows[i];
        fprintf(f, "%s[%lld,%lld,%lld,", i ? "," : "", (long long)r->m_block,
                (long long)r->n_block, (long long)r->row);
        js_num(f, r->m), fputc(',', f), js_num(f, r->l), fputc(',', f), js_num(f, r->alpha);
        fputc(']', f);
    }
    fputs("],\nlse:[", f);
    for (int64_t i = 0; i < nq; i++)
        fputs(i ? "," : "", f), js_num(f, p->lse[i]);
    fputs("]};\n</script>\n", f);
    fputs(page_script, f);
}

int trace_html_write(const char *path, const fa2_fwd_args *a, float *dout,
                     float *dq, float *dk, float *dv)
{
    page p = {0};
    int rc = 1;
    p.lse = calloc((size_t)a->q.shape[1] + 1, sizeof(float));
    fa2_status s = p.lse ? fa2_tiled_fwd_traced(a, on_step, &p) : FA2_ERR_OUT_OF_MEMORY;
    fa2_bwd_args g;
    fa2_bwd_args_init(&g);
    g.q = a->q, g.k = a->k, g.v = a->v, g.o = a->o, g.lse = a->lse;
    g.dout = a->o, g.dout.data = dout;
    g.dq = a->q, g.dq.data = dq;
    g.dk = a->k, g.dk.data = dk;
    g.dv = a->v, g.dv.data = dv;
    g.softmax_scale = a->softmax_scale, g.causal = a->causal;
    g.window_left = a->window_left, g.window_right = a->window_right;
    g.block_m = a->block_m, g.block_n = a->block_n, g.deterministic = 1;
    if (s == FA2_OK)
        s = fa2_tiled_bwd_traced(&g, on_step, &p);
    if (s == FA2_OK && p.failed)
        s = FA2_ERR_OUT_OF_MEMORY;
    if (s != FA2_OK) {
        fprintf(stderr, "fa2 trace: %s: %s\n", fa2_status_str(s), fa2_last_error());
        goto done;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "fa2 trace: cannot write %s\n", path);
        goto done;
    }
    write_page(f, &p, a);
    if (fclose(f) != 0) {
        fprintf(stderr, "fa2 trace: writing %s failed\n", path);
        goto done;
    }
    printf("fa2 trace: wrote %s (%zu forward tiles, %zu backward tiles)\n", path,
           p.n_fwd, p.n_bwd);
    rc = 0;
done:
    for (size_t i = 0; i < p.n_fwd; i++)
        free(p.fwd[i].mask);
    free(p.fwd), free(p.bwd), free(p.rows), free(p.lse);
    return rc;
}
