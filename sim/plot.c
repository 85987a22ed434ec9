/* plot.c — a finished sweep (sweep.h) as a table, and as a figure: its
 * numbers as a gnuplot data file, one block per series, and a gnuplot
 * script that draws them as an SVG. Rendering is the caller's (fa2 sim
 * runs gnuplot). */
#include "config.h"
#include "sweep.h"

#include <stdio.h>

static long long global_bytes(const fa2_sim_counters *c)
{
    return (long long)(c->global_read + c->global_written);
}

static long long dram_bytes(const fa2_sim_counters *c)
{
    return (long long)(c->dram_read + c->dram_written);
}

void sim_sweep_plot(sim_sweep_kind kind, const fa2_sim_args *base,
                    const fa2_sim_device *dev, const sim_sweep_row *rows, int n,
                    FILE *fd, FILE *fg, const char *dat_name, const char *gp_name,
                    const char *svg_name, const char *plot_arg)
{
    /* the device's name goes into double-quoted gnuplot strings */
    fa2_sim_device named = *dev;
    for (char *c = named.name; *c; c++)
        if (*c == '"' || *c == '\\')
            *c = '\'';
    dev = &named;
    fprintf(fd, "# fa2 sim --sweep %s (%s, %s, %s): one block per series, two "
                "blank lines apart\n", sim_sweep_names[kind], fa2_sim_pass_name(base->pass),
            dev->name, fa2_dtype_name(base->dtype));
    fprintf(fg, "# fa2 sim --sweep %s --plot %s; to render it again, run gnuplot "
                "%s in this file's directory\n", sim_sweep_names[kind], plot_arg, gp_name);
    fprintf(fg, "set terminal svg size 960,%d dynamic font 'Helvetica,12' background "
                "'white'\nset output '%s'\nset logscale xy\nset grid\n"
                "set key top left\nset format y '%%.0e'\n",
            kind == SIM_SWEEP_PAPER ? 760 : 520, svg_name);
    if (kind == SIM_SWEEP_SRAM) {
        fprintf(fd, "# M_bytes global_bytes (fa1 block, fa2 block) and the "
                    "reference 12 N^2 d^2 es^2 / M\n");
        int block = 0;
        for (int algo = FA2_SIM_FA1; algo <= FA2_SIM_FA2; algo++) {
            fprintf(fd, "%s# %s\n", block++ ? "\n\n" : "", algo == FA2_SIM_FA1 ? "fa1" : "fa2");
            for (int i = 0; i < n; i++)
                if ((int)rows[i].a.algo == algo)
                    fprintf(fd, "%lld %lld\n", (long long)rows[i].a.sram_bytes,
                            global_bytes(&rows[i].r.total));
        }
        const sim_sweep_row *w = &rows[0];
        const double nq = (double)w->a.seqlen_q, d = (double)w->a.head_dim;
        const double es = (double)fa2_dtype_size(w->a.dtype);
        const double c = 12.0 * nq * nq * d * d * es * es * (double)w->a.heads_q *
                         (double)w->a.batch;
        fprintf(fg, "set title \"HBM (global) bytes vs SRAM size M (%s), N = %lld, "
                    "d = %lld, %s\"\n",
                fa2_sim_pass_name(base->pass), (long long)w->a.seqlen_q,
                (long long)w->a.head_dim, fa2_dtype_name(w->a.dtype));
        fprintf(fg, "set xlabel 'SRAM size M (bytes)'\nset ylabel 'global bytes'\n"
                    "set key top right\nset xrange [%g:%g]\n",
                (double)rows[0].a.sram_bytes / 1.25,
                (double)rows[n - 1].a.sram_bytes * 1.25);
        fprintf(fg, "plot '%s' index 0 with linespoints lw 2 pt 7 title "
                    "'FlashAttention (Bc = M/4d, Br = min(Bc, d))', \\\n"
                    "     '%s' index 1 with linespoints lw 2 pt 5 title "
                    "'FlashAttention-2 (Br = Bc = M/4d)', \\\n"
                    "     %.6g / x with lines dt 2 lc rgb 'black' title "
                    "'12 N^2 d^2 es^2 / M (slope -1)'\n",
                dat_name, dat_name, c);
    } else {
        static const char *const colour[] = {"#d62728", "#1f77b4", "#2ca02c"};
        const int paper = kind == SIM_SWEEP_PAPER;
        fprintf(fd, "# seqlen global_bytes dram_bytes; blocks: for each panel "
                    "(head dim, causal) the algorithms standard, fa1, fa2\n");
        int block = 0;
        const int panels = paper ? 4 : 1;
        for (int pnl = 0; pnl < panels; pnl++)
            for (int algo = 0; algo < 3; algo++) {
                fprintf(fd, "%s# panel %d %s\n", block++ ? "\n\n" : "", pnl,
                        fa2_sim_algo_name((fa2_sim_algo)algo));
                for (int i = 0; i < n; i++) {
                    const int rp = paper ? (rows[i].a.head_dim == 128) * 2 +
                                               (rows[i].a.causal != 0)
                                         : 0;
                    if (rp == pnl && (int)rows[i].a.algo == algo)
                        fprintf(fd, "%lld %lld %lld\n", (long long)rows[i].a.seqlen_q,
                                global_bytes(&rows[i].r.total),
                                dram_bytes(&rows[i].r.total));
                }
            }
        if (paper)
            fprintf(fg, "set multiplot layout 2,2 title \"HBM bytes (%s) on the FA2 "
                        "paper's grid, %s\\nsolid: global (requested)%s\"\n",
                    fa2_sim_pass_name(base->pass), dev->name,
                    base->l2 ? ", dashed: DRAM (after L2)" : "");
        else
            fprintf(fg, "set title \"HBM bytes vs sequence length (%s), batch "
                        "%lld, %lld head%s, d = %lld, %s\\nsolid: global (requested)%s\"\n",
                    fa2_sim_pass_name(base->pass), (long long)rows[0].a.batch,
                    (long long)rows[0].a.heads_q, rows[0].a.heads_q == 1 ? "" : "s",
                    (long long)rows[0].a.head_dim,
                    dev->name, base->l2 ? ", dashed: DRAM (after L2)" : "");
        fprintf(fg, "set xlabel 'sequence length'\nset ylabel 'bytes'\n"
                    "set logscale x 2\n");
        for (int pnl = 0; pnl < panels; pnl++) {
            if (paper)
                fprintf(fg, "set title 'head dim %d, %s'\n", pnl / 2 ? 128 : 64,
                        pnl % 2 ? "causal" : "not causal");
            fprintf(fg, "plot ");
            for (int algo = 0; algo < 3; algo++) {
                const int idx = pnl * 3 + algo;
                const char *name = algo == 0 ? "standard" : algo == 1 ? "FlashAttention"
                                                                      : "FlashAttention-2";
                fprintf(fg, "%s'%s' index %d using 1:2 with linespoints lw 2 pt 7 lc "
                            "rgb '%s' title '%s'",
                        algo ? ", \\\n     " : "", dat_name, idx, colour[algo],
                        name);
                if (base->l2)
                    fprintf(fg, ", \\\n     '%s' index %d using 1:3 with linespoints "
                                "lw 2 dt 2 pt 6 lc rgb '%s' notitle",
                            dat_name, idx, colour[algo]);
            }
            fprintf(fg, "\n");
        }
        if (paper)
            fprintf(fg, "unset multiplot\n");
    }
}

void sim_sweep_print(FILE *f, sim_sweep_kind kind, const fa2_sim_args *base,
                     const fa2_sim_device *dev, const sim_sweep_row *rows, int n)
{
    fprintf(f, "fa2 sim --sweep %s: %s on %s, %s, L2 model %s\n", sim_sweep_names[kind],
           fa2_sim_pass_name(base->pass), dev->name, fa2_dtype_name(base->dtype),
           base->l2 ? "on" : "off");
    if (kind == SIM_SWEEP_SRAM) {
        fprintf(f, "%8s %5s  %-4s %7s %7s %12s %12s %10s\n", "M bytes", "d", "algo", "Br",
               "Bc", "global MB", "12N2d2es2/M", "ratio");
        for (int i = 0; i < n; i++) {
            const sim_sweep_row *w = &rows[i];
            const double nq = (double)w->a.seqlen_q, d = (double)w->a.head_dim;
            const double es = (double)fa2_dtype_size(w->a.dtype);
            const double ref = 12.0 * nq * nq * d * d * es * es /
                               (double)w->a.sram_bytes * (double)w->a.heads_q *
                               (double)w->a.batch;
            fprintf(f, "%8lld %5lld  %-4s %7d %7d %12.2f %12.2f %10.3f\n",
                   (long long)w->a.sram_bytes, (long long)w->a.head_dim,
                   fa2_sim_algo_name(w->a.algo), w->t.block_m, w->t.block_n,
                   (double)global_bytes(&w->r.total) / 1e6, ref / 1e6,
                   (double)global_bytes(&w->r.total) / ref);
        }
    } else {
        fprintf(f, "%4s %6s %7s %5s %5s  %-8s %10s %10s %7s %10s %9s %8s\n", "d", "causal",
               "seqlen", "batch", "heads", "algo", "global GB", "DRAM GB", "L2 hit",
               "smem GB", "time ms", "TFLOP/s");
        for (int i = 0; i < n; i++) {
            const sim_sweep_row *w = &rows[i];
            const int64_t acc = w->r.l2_hits + w->r.l2_misses;
            char dram[16] = "-", hit[16] = "-";
            if (w->a.l2) {
                snprintf(dram, sizeof dram, "%.3f", (double)dram_bytes(&w->r.total) / 1e9);
                snprintf(hit, sizeof hit, "%.1f%%",
                         acc ? 100.0 * (double)w->r.l2_hits / (double)acc : 0.0);
            }
            fprintf(f, "%4lld %6s %7lld %5lld %5lld  %-8s %10.3f %10s %7s %10.3f %9.3f %8.1f\n",
                   (long long)w->a.head_dim, w->a.causal ? "yes" : "no",
                   (long long)w->a.seqlen_q, (long long)w->a.batch,
                   (long long)w->a.heads_q, fa2_sim_algo_name(w->a.algo),
                   (double)global_bytes(&w->r.total) / 1e9, dram, hit,
                   (double)(w->r.total.smem_read + w->r.total.smem_written) / 1e9,
                   w->r.time_ms, w->r.tflops);
        }
    }
}
