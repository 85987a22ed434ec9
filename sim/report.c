/* report.c — a simulation result as text, JSON or CSV, into the caller's
 * buffer (the library prints nothing itself). */
#include "config.h"
#include "sim.h"

#include "fa2_writer.h"

#include <stdio.h>

static double mb(int64_t bytes) { return (double)bytes / 1e6; }

static void put_problem_text(fa2_writer *o, const fa2_sim_args *a)
{
    if (a->cu_seqlens_q)
        fa2_put(o, "problem: %lld sequences (varlen) x heads %lld/%lld x d %lld",
            (long long)a->num_seqs, (long long)a->heads_q, (long long)a->heads_kv,
            (long long)a->head_dim);
    else
        fa2_put(o, "problem: batch %lld x heads %lld/%lld x seqlen %lld/%lld x d %lld",
            (long long)a->batch, (long long)a->heads_q, (long long)a->heads_kv,
            (long long)a->seqlen_q, (long long)a->seqlen_k, (long long)a->head_dim);
    fa2_put(o, ", %s%s", fa2_dtype_name(a->dtype), a->causal ? ", causal" : "");
    if (a->window_left >= 0 || a->window_right >= 0)
        fa2_put(o, ", window (%lld, %lld)", (long long)a->window_left,
            (long long)a->window_right);
    fa2_put(o, "\n");
}

static void text(fa2_writer *o, const fa2_sim_args *a, const fa2_sim_device *dev,
                 const fa2_sim_result *r)
{
    fa2_put(o, "fa2 sim: %s %s on %s (L2 model %s, %s launch order)\n",
        fa2_sim_algo_name(a->algo), fa2_sim_pass_name(a->pass), dev->name,
        a->l2 ? "on" : "off", fa2_sim_order_name(a->order));
    put_problem_text(o, a);
    fa2_put(o, "\n%-20s %9s %7s %6s %10s %10s", "launch", "grid", "tile", "blk/SM",
        "global rd", "global wr");
    if (a->l2)
        fa2_put(o, " %10s %10s", "DRAM rd", "DRAM wr");
    fa2_put(o, " %10s %10s %9s %9s %9s\n", "smem rd", "smem wr", "GF mma", "GF other",
        "time ms");
    fa2_put(o, "%-20s %9s %7s %6s %10s %10s", "", "blocks", "", "", "MB", "MB");
    if (a->l2)
        fa2_put(o, " %10s %10s", "MB", "MB");
    fa2_put(o, " %10s %10s\n", "MB", "MB");
    for (int k = 0; k <= r->num_launches; k++) {
        const int tot = k == r->num_launches;
        const fa2_sim_counters *c = tot ? &r->total : &r->launch[k].c;
        char tile[24] = "", bps[16] = "";
        if (!tot) {
            const fa2_sim_launch *L = &r->launch[k];
            if (L->block_n > 0)
                snprintf(tile, sizeof tile, "%dx%d", L->block_m, L->block_n);
            else
                snprintf(tile, sizeof tile, "%d", L->block_m);
            snprintf(bps, sizeof bps, "%d%s", L->blocks_per_sm, L->fits ? "" : "!");
        }
        char grid[24] = "";
        if (!tot)
            snprintf(grid, sizeof grid, "%lld", (long long)r->launch[k].grid);
        fa2_put(o, "%-20s %9s %7s %6s %10.2f %10.2f", tot ? "total" : r->launch[k].name,
            grid, tile, bps, mb(c->global_read), mb(c->global_written));
        if (a->l2)
            fa2_put(o, " %10.2f %10.2f", mb(c->dram_read), mb(c->dram_written));
        fa2_put(o, " %10.2f %10.2f %9.2f %9.3f %9.4f\n", mb(c->smem_read),
            mb(c->smem_written), (double)c->flops_matmul / 1e9,
            (double)c->flops_other / 1e9, tot ? r->time_ms : r->launch[k].time_ms);
    }
    for (int k = 0; k < r->num_launches; k++)
        if (!r->launch[k].fits) {
            fa2_put(o, "(!: the modelled shared-memory footprint is above the device's "
                   "%lld bytes a block)\n", (long long)dev->smem_per_block);
            break;
        }
    const int match = r->closed_form_read == r->total.global_read &&
                      r->closed_form_written == r->total.global_written;
    fa2_put(o, "\nclosed form, global bytes: read %lld, written %lld (%s the simulation)\n",
        (long long)r->closed_form_read, (long long)r->closed_form_written,
        match ? "equal to" : "DIFFERENT FROM");
    fa2_put(o, "compulsory bytes: read %lld, written %lld; global / compulsory = %.2f\n",
        (long long)r->compulsory_read, (long long)r->compulsory_written,
        (double)(r->total.global_read + r->total.global_written) /
            (double)sim_max(1, r->compulsory_read + r->compulsory_written));
    if (a->l2) {
        const int64_t acc = r->l2_hits + r->l2_misses;
        fa2_put(o, "L2: %lld tile reads, %.1f%% hits; DRAM / global = %.3f\n",
            (long long)acc, acc ? 100.0 * (double)r->l2_hits / (double)acc : 0.0,
            (double)(r->total.dram_read + r->total.dram_written) /
                (double)sim_max(1, r->total.global_read + r->total.global_written));
    }
    fa2_put(o, "global MB by tensor (read/written):");
    int col = 0;
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        if (!r->total.tensor_read[t] && !r->total.tensor_written[t])
            continue;
        fa2_put(o, "%s %s %.2f/%.2f", col++ % 6 ? "," : "\n ", fa2_sim_tensor_name((fa2_sim_tensor)t),
            mb(r->total.tensor_read[t]), mb(r->total.tensor_written[t]));
    }
    fa2_put(o, "\npredicted (roofline): %.4f ms, %.1f TFLOP/s (%.4g FLOPs by the paper's "
           "count)\n", r->time_ms, r->tflops, r->flops_paper);
    fa2_put(o, "per launch, ms: launch overhead + max(max(memory, compute) + fill, "
           "latency) (%s: "
           "launch_us %g, block_us %g, dram_latency_ns %g, l2_latency_ns %g, "
           "smem_latency_ns %g, tile_step_ns %g)\n",
        dev->name, dev->launch_us, dev->block_us, dev->dram_latency_ns,
        dev->l2_latency_ns, dev->smem_latency_ns, dev->tile_step_ns);
    for (int k = 0; k < r->num_launches; k++) {
        const fa2_sim_launch *L = &r->launch[k];
        fa2_put(o, "  %-20s %.4f + max(max(%.4f, %.4f) + %.4f, %.4f)\n", L->name,
            L->launch_ms, L->memory_ms, L->compute_ms, L->fill_ms, L->latency_ms);
    }
}

static void json_counters(fa2_writer *o, const fa2_sim_counters *c, int l2,
                          const char *indent)
{
    fa2_put(o, "%s\"global_bytes_read\": %lld,\n", indent, (long long)c->global_read);
    fa2_put(o, "%s\"global_bytes_written\": %lld,\n", indent, (long long)c->global_written);
    if (l2) {
        fa2_put(o, "%s\"dram_bytes\": %lld,\n", indent,
            (long long)(c->dram_read + c->dram_written));
        fa2_put(o, "%s\"dram_bytes_read\": %lld,\n", indent, (long long)c->dram_read);
        fa2_put(o, "%s\"dram_bytes_written\": %lld,\n", indent, (long long)c->dram_written);
    }
    fa2_put(o, "%s\"smem_bytes_read\": %lld,\n", indent, (long long)c->smem_read);
    fa2_put(o, "%s\"smem_bytes_written\": %lld,\n", indent, (long long)c->smem_written);
    fa2_put(o, "%s\"flops_matmul\": %lld,\n", indent, (long long)c->flops_matmul);
    fa2_put(o, "%s\"flops_other\": %lld,\n", indent, (long long)c->flops_other);
    fa2_put(o, "%s\"sfu_ops\": %lld", indent, (long long)c->sfu_ops);
}

static void json(fa2_writer *o, const fa2_sim_args *a, const fa2_sim_device *dev,
                 const fa2_sim_result *r)
{
    fa2_put(o, "{\n  \"algo\": \"%s\",\n  \"pass\": \"%s\",\n  \"device\": ",
        fa2_sim_algo_name(a->algo), fa2_sim_pass_name(a->pass));
    fa2_put_json_string(o, dev->name); /* a profile file may name it anything */
    fa2_put(o, ",\n");
    fa2_put(o, "  \"dtype\": \"%s\",\n  \"batch\": %lld,\n  \"num_seqs\": %lld,\n"
           "  \"heads_q\": %lld,\n  \"heads_kv\": %lld,\n",
        fa2_dtype_name(a->dtype), (long long)a->batch,
        (long long)(a->cu_seqlens_q ? a->num_seqs : a->batch), (long long)a->heads_q,
        (long long)a->heads_kv);
    if (!a->cu_seqlens_q)
        fa2_put(o, "  \"seqlen_q\": %lld,\n  \"seqlen_k\": %lld,\n", (long long)a->seqlen_q,
            (long long)a->seqlen_k);
    fa2_put(o, "  \"head_dim\": %lld,\n  \"causal\": %s,\n  \"window_left\": %lld,\n"
           "  \"window_right\": %lld,\n  \"l2\": %s,\n  \"order\": \"%s\",\n",
        (long long)a->head_dim, a->causal ? "true" : "false",
        (long long)a->window_left, (long long)a->window_right,
        a->l2 ? "true" : "false", fa2_sim_order_name(a->order));
    json_counters(o, &r->total, a->l2, "  ");
    fa2_put(o, ",\n  \"closed_form_global_bytes\": %lld,\n",
        (long long)(r->closed_form_read + r->closed_form_written));
    fa2_put(o, "  \"closed_form_global_bytes_read\": %lld,\n", (long long)r->closed_form_read);
    fa2_put(o, "  \"closed_form_global_bytes_written\": %lld,\n",
        (long long)r->closed_form_written);
    fa2_put(o, "  \"compulsory_bytes_read\": %lld,\n  \"compulsory_bytes_written\": %lld,\n",
        (long long)r->compulsory_read, (long long)r->compulsory_written);
    if (a->l2)
        fa2_put(o, "  \"l2_hits\": %lld,\n  \"l2_misses\": %lld,\n", (long long)r->l2_hits,
            (long long)r->l2_misses);
    fa2_put(o, "  \"flops_paper\": %.17g,\n  \"predicted_time_ms\": %.9g,\n"
           "  \"predicted_tflops\": %.9g,\n",
        r->flops_paper, r->time_ms, r->tflops);
    fa2_put(o, "  \"tensors\": {");
    int first = 1;
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        if (!r->total.tensor_read[t] && !r->total.tensor_written[t])
            continue;
        fa2_put(o, "%s\n    \"%s\": {\"read\": %lld, \"written\": %lld}", first ? "" : ",",
            fa2_sim_tensor_name((fa2_sim_tensor)t), (long long)r->total.tensor_read[t],
            (long long)r->total.tensor_written[t]);
        first = 0;
    }
    fa2_put(o, "\n  },\n  \"launches\": [");
    for (int k = 0; k < r->num_launches; k++) {
        const fa2_sim_launch *L = &r->launch[k];
        fa2_put(o, "%s\n    {\n      \"name\": \"%s\",\n      \"grid\": %lld,\n"
               "      \"warps\": %d,\n      \"block_m\": %d,\n      \"block_n\": %d,\n"
               "      \"smem_per_block\": %lld,\n      \"blocks_per_sm\": %d,\n"
               "      \"fits\": %s,\n",
            k ? "," : "", L->name, (long long)L->grid, L->warps, L->block_m,
            L->block_n, (long long)L->smem_per_block, L->blocks_per_sm,
            L->fits ? "true" : "false");
        json_counters(o, &L->c, a->l2, "      ");
        fa2_put(o, ",\n      \"memory_ms\": %.9g,\n      \"compute_ms\": %.9g,\n"
               "      \"fill_ms\": %.9g,\n"
               "      \"latency_ms\": %.9g,\n      \"launch_ms\": %.9g,\n"
               "      \"predicted_time_ms\": %.9g\n    }",
            L->memory_ms, L->compute_ms, L->fill_ms, L->latency_ms, L->launch_ms,
            L->time_ms);
    }
    fa2_put(o, "\n  ]\n}\n");
}

#define CSV_HEADER                                                              \
    "algo,pass,device,dtype,batch,heads_q,heads_kv,seqlen_q,seqlen_k,head_dim,"  \
    "causal,window_left,window_right,l2,global_bytes_read,global_bytes_written," \
    "dram_bytes,smem_bytes_read,smem_bytes_written,flops_matmul,flops_other,"   \
    "closed_form_global_bytes,compulsory_bytes,predicted_time_ms,"             \
    "predicted_tflops\n"

static void csv(fa2_writer *o, const fa2_sim_args *a, const fa2_sim_device *dev,
                const fa2_sim_result *r)
{
    const fa2_sim_counters *c = &r->total;
    fa2_put(o, "%s,%s,", fa2_sim_algo_name(a->algo), fa2_sim_pass_name(a->pass));
    fa2_put_csv_field(o, dev->name); /* quoted if it holds ',' or '"' */
    fa2_put(o, ",%s,%lld,%lld,%lld,%lld,%lld,%lld,%d,%lld,%lld,%d,",
        fa2_dtype_name(a->dtype), (long long)(a->cu_seqlens_q ? a->num_seqs : a->batch),
        (long long)a->heads_q, (long long)a->heads_kv,
        (long long)(a->cu_seqlens_q ? 0 : a->seqlen_q),
        (long long)(a->cu_seqlens_q ? 0 : a->seqlen_k), (long long)a->head_dim,
        a->causal != 0, (long long)a->window_left, (long long)a->window_right,
        a->l2 != 0);
    fa2_put(o, "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%.9g,%.9g\n",
        (long long)c->global_read, (long long)c->global_written,
        (long long)(a->l2 ? c->dram_read + c->dram_written : 0),
        (long long)c->smem_read, (long long)c->smem_written,
        (long long)c->flops_matmul, (long long)c->flops_other,
        (long long)(r->closed_form_read + r->closed_form_written),
        (long long)(r->compulsory_read + r->compulsory_written), r->time_ms, r->tflops);
}

fa2_status fa2_sim_format(const fa2_sim_args *args, const fa2_sim_device *dev,
                          const fa2_sim_result *res, fa2_sim_format_kind kind,
                          char *buf, size_t size, size_t *needed)
{
    if ((!buf && size) || (kind != FA2_SIM_FORMAT_CSV_HEADER && (!args || !dev || !res)))
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL",
                        !buf && size ? "buf" : !args ? "args" : !dev ? "dev" : "res");
    fa2_writer o;
    fa2_writer_buffer(&o, buf, size);
    switch (kind) {
    case FA2_SIM_FORMAT_TEXT: text(&o, args, dev, res); break;
    case FA2_SIM_FORMAT_JSON: json(&o, args, dev, res); break;
    case FA2_SIM_FORMAT_CSV: csv(&o, args, dev, res); break;
    case FA2_SIM_FORMAT_CSV_HEADER: fa2_put(&o, "%s", CSV_HEADER); break;
    default:
        return fa2_fail(FA2_ERR_INVALID_ARGUMENT, "kind is %d, expected one of "
                        "FA2_SIM_FORMAT_TEXT .. FA2_SIM_FORMAT_CSV_HEADER", (int)kind);
    }
    if (needed)
        *needed = o.len;
    fa2_clear_error();
    return FA2_OK;
}
