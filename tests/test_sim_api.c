/* test_sim_api.c — the simulator's warp partitioning (FA2's split-Q moves
 * fewer shared-memory bytes than FA1's split-K), its device profiles, its
 * reports, and its answer to bad input: a status and a sentence, never a
 * crash. */
#include "config.h"
#include "test_sim.h"

#include <stdlib.h>

/* (block_m, block_n, warps): the kernels' tilings and a few others with
 * block_n <= block_m (see sim/warps.c for when split-K could win). */
static const int shapes[][3] = {{128, 64, 4}, {128, 128, 4}, {128, 32, 8},
                                {64, 64, 4},  {48, 80, 4},   {128, 64, 8},
                                {16, 16, 2},  {96, 40, 2}};

/* Except where a query tile has far fewer rows than a key tile (decoding,
 * one query row: there split-K wins, which is why Flash-Decoding splits
 * the keys); the grid's "one query row" case checks that side. */
START_TEST(split_q_moves_fewer_shared_memory_bytes_than_split_k)
{
    const sim_case *c = &tsim_cases[_i];
    const int decoding = c->nq == 1;
    const fa2_sim_device dev = tsim_h100();
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        fa2_sim_args a;
        fa2_sim_result q, kk;
        tsim_args(&a, c, FA2_SIM_FA2, FA2_SIM_PASS_FWD);
        a.block_m = shapes[k][0];
        a.block_n = shapes[k][1];
        a.warps = shapes[k][2];
        a.partition = FA2_SIM_SPLIT_Q;
        tsim_run(&a, &dev, &q);
        a.partition = FA2_SIM_SPLIT_K;
        tsim_run(&a, &dev, &kk);
        const int64_t sq = q.total.smem_read + q.total.smem_written;
        const int64_t sk = kk.total.smem_read + kk.total.smem_written;
        ck_assert_msg(decoding ? sk < sq : sq < sk,
                      "%s, %dx%d, %d warps: split-Q %lld, split-K %lld", c->name,
                      shapes[k][0], shapes[k][1], shapes[k][2], (long long)sq,
                      (long long)sk);
        /* the partition is on-chip only */
        ck_assert_int_eq(q.total.global_read, kk.total.global_read);
        ck_assert_int_eq(q.total.flops_matmul, kk.total.flops_matmul);
        /* the reduction is the difference: W r (d + 2) floats written per
         * visited tile; some tile was visited */
        ck_assert_int_gt(kk.total.smem_written, q.total.smem_written);
    }
    /* FA1 (split-K, by default) against FA2 (split-Q) on the same tiles */
    fa2_sim_args a;
    fa2_sim_result r1, r2;
    tsim_args(&a, c, FA2_SIM_FA1, FA2_SIM_PASS_FWD);
    a.block_m = 128;
    a.block_n = 64;
    a.warps = 4;
    tsim_run(&a, &dev, &r1);
    a.algo = FA2_SIM_FA2;
    tsim_run(&a, &dev, &r2);
    if (!decoding)
        ck_assert_int_lt(r2.total.smem_read + r2.total.smem_written,
                         r1.total.smem_read + r1.total.smem_written);
}
END_TEST

START_TEST(builtin_profiles_carry_the_datasheet_numbers)
{
    fa2_sim_device d;
    ck_assert_int_eq(fa2_sim_device_builtin("h100", &d), FA2_OK);
    ck_assert_int_eq(d.sms, 132);
    ck_assert_int_eq(d.l2_bytes, 50 << 20);
    ck_assert_int_eq(d.smem_per_sm, 228 << 10);
    ck_assert_double_eq_tol(d.hbm_gbps, 3350, 1e-9);
    ck_assert_int_eq(fa2_sim_device_builtin("A100-SXM4-80GB", &d), FA2_OK);
    ck_assert_int_eq(d.sms, 108);
    ck_assert_int_eq(d.l2_bytes, 40 << 20);
    ck_assert_double_eq_tol(d.matmul_tflops, 312, 1e-9);
    ck_assert_int_eq(fa2_sim_device_builtin("H200", &d), FA2_OK);
    ck_assert_double_eq_tol(d.hbm_gbps, 4800, 1e-9);
    ck_assert_int_eq(d.l2_bytes, 60 << 20);
    ck_assert_int_eq(fa2_sim_device_check(&d), FA2_OK);
    ck_assert_int_eq(fa2_sim_device_builtin("v100", &d), FA2_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(fa2_last_error(), "v100") != NULL);
}
END_TEST

/* A device of arch >= 90 runs the warp-specialised forward: the sim takes
 * its tiles (gpu/fwd_config.h's FA2_FWD90_* table) and lets its pipes
 * overlap, so its compute time is at least the busiest pipe's and less
 * than their sum; at arch 80 the same launch adds them. The global bytes
 * follow the tiles only, as the kernel's counters do. */
START_TEST(a_hopper_profile_models_the_warp_specialised_forward)
{
    static const int dims[][4] = {/* d, block_m, block_n, warps */
                                  {64, 192, 128, 12},
                                  {128, 128, 128, 8},
                                  {256, 128, 64, 8}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        fa2_sim_device dev;
        ck_assert_int_eq(fa2_sim_device_builtin("h200", &dev), FA2_OK);
        ck_assert_int_eq(dev.arch, 90);
        fa2_sim_args a;
        fa2_sim_args_init(&a);
        a.algo = FA2_SIM_FA2;
        a.pass = FA2_SIM_PASS_FWD;
        a.dtype = FA2_DTYPE_BF16;
        a.batch = 2;
        a.seqlen_q = a.seqlen_k = 2048;
        a.heads_q = a.heads_kv = 4;
        a.head_dim = dims[i][0];
        fa2_tile_config t;
        ck_assert_int_eq(fa2_sim_tiles(&a, &dev, FA2_SIM_PASS_FWD, &t), FA2_OK);
        ck_assert_int_eq(t.block_m, dims[i][1]);
        ck_assert_int_eq(t.block_n, dims[i][2]);
        ck_assert_int_eq(t.warps, dims[i][3]);
        static fa2_sim_result ws, fa2;
        tsim_run(&a, &dev, &ws);
        ck_assert_int_eq(fa2_sim_device_set(&dev, "arch", "80"), FA2_OK);
        a.block_m = t.block_m; /* the same tiles, the pipes added */
        a.block_n = t.block_n;
        a.warps = t.warps;
        tsim_run(&a, &dev, &fa2);
        ck_assert_int_eq(ws.total.global_read, fa2.total.global_read);
        ck_assert_int_eq(ws.total.flops_matmul, fa2.total.flops_matmul);
        const fa2_sim_counters *c = &ws.launch[0].c;
        const double mm_ms = 1e3 * (double)c->flops_matmul / (dev.matmul_tflops * 1e12);
        const double cuda_ms =
            1e3 * ((double)(c->flops_other - c->sfu_ops) / (dev.fp32_tflops * 1e12) +
                   (double)c->sfu_ops / (dev.sfu_tops * 1e12));
        const double busiest = mm_ms > cuda_ms ? mm_ms : cuda_ms;
        ck_assert_msg(ws.launch[0].compute_ms >= busiest * (1 - 1e-9) &&
                          ws.launch[0].compute_ms < fa2.launch[0].compute_ms,
                      "d %d: overlapped %.4f ms, busiest pipe %.4f, added %.4f",
                      dims[i][0], ws.launch[0].compute_ms, busiest,
                      fa2.launch[0].compute_ms);
    }
}
END_TEST

/* The score modifiers and dropout add sim/flops.c's per-element counts to
 * flops_other and sfu_ops (per S element visited: softcap 8 / 12 with 2
 * special-function ops, ALiBi 3 / 4, dropout 8.5 / 10.5, forward /
 * backward, and the backward's mask on every element, +1, with any of
 * them; a sink nothing) and leave every byte as it was. */
START_TEST(score_modifiers_add_their_per_element_work_and_no_bytes)
{
    fa2_sim_device dev;
    ck_assert_int_eq(fa2_sim_device_builtin("h200", &dev), FA2_OK);
    for (int bwd = 0; bwd < 2; bwd++) {
        fa2_sim_args a;
        fa2_sim_args_init(&a);
        a.pass = bwd ? FA2_SIM_PASS_BWD : FA2_SIM_PASS_FWD;
        a.dtype = FA2_DTYPE_BF16;
        a.batch = 2;
        a.heads_q = a.heads_kv = 4;
        a.seqlen_q = a.seqlen_k = 512;
        a.head_dim = 64;
        static fa2_sim_result plain, mod;
        tsim_run(&a, &dev, &plain);
        /* S elements visited: the matmul FLOPs per element are 4 d / 10 d */
        const int64_t e = plain.total.flops_matmul / ((bwd ? 10 : 4) * a.head_dim);
        const struct {
            float softcap;
            int alibi, sinks;
            float dropout;
            int64_t other2[2], sfu; /* twice the per-element ops, fwd / bwd */
        } cases[] = {{30.0f, 0, 0, 0.0f, {16, 26}, 2},
                     {0.0f, 1, 0, 0.0f, {6, 10}, 0},
                     {0.0f, 0, 1, 0.0f, {0, 0}, 0},
                     {0.0f, 0, 0, 0.1f, {17, 23}, 0},
                     {5.0f, 1, 1, 0.2f, {39, 55}, 2}};
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            a.softcap = cases[k].softcap;
            a.alibi = cases[k].alibi;
            a.sinks = cases[k].sinks;
            a.dropout_p = cases[k].dropout;
            tsim_run(&a, &dev, &mod);
            ck_assert_int_eq(mod.total.flops_other - plain.total.flops_other,
                             cases[k].other2[bwd] * e / 2);
            ck_assert_int_eq(mod.total.sfu_ops - plain.total.sfu_ops, cases[k].sfu * e);
            ck_assert_int_eq(mod.total.flops_matmul, plain.total.flops_matmul);
            ck_assert_int_eq(mod.total.global_read, plain.total.global_read);
            ck_assert_int_eq(mod.total.global_written, plain.total.global_written);
            ck_assert(mod.time_ms >= plain.time_ms);
        }
        a.softcap = -1.0f;
        ck_assert_int_eq(fa2_sim_run(&a, &dev, &mod), FA2_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(fa2_last_error(), "softcap"));
        a.softcap = 0.0f;
        a.dropout_p = 1.0f;
        ck_assert_int_eq(fa2_sim_run(&a, &dev, &mod), FA2_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(fa2_last_error(), "dropout_p"));
    }
}
END_TEST

START_TEST(a_profile_file_overrides_a_base)
{
    fa2_sim_device d;
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(fa2_sim_device_parse(&d, "# my GPU\n"
                                              "base = a100\n"
                                              "  name = tiny  \n"
                                              "l2_bytes = 6M   # six MiB\n"
                                              "\n"
                                              "hbm_gbps=1000.5\n"),
                     FA2_OK);
    ck_assert_str_eq(d.name, "tiny");
    ck_assert_int_eq(d.sms, 108);
    ck_assert_int_eq(d.l2_bytes, 6 << 20);
    ck_assert_double_eq_tol(d.hbm_gbps, 1000.5, 1e-12);
    ck_assert_int_eq(fa2_sim_device_parse(&d, "sms = 4\nwarp_size = 32\n"),
                     FA2_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(fa2_last_error(), "line 2") != NULL);
    ck_assert(strstr(fa2_last_error(), "warp_size") != NULL);
    ck_assert_int_eq(fa2_sim_device_parse(&d, "sms 4\n"), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_sim_device_set(&d, "hbm_gbps", "-1"), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_sim_device_set(&d, "sms", "12x"), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_sim_device_set(&d, "sms", "0"), FA2_OK);
    ck_assert_int_eq(fa2_sim_device_check(&d), FA2_ERR_INVALID_ARGUMENT);
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_sim_args_init(&a);
    a.seqlen_q = a.seqlen_k = 64;
    ck_assert_int_eq(fa2_sim_run(&a, &d, &r), FA2_ERR_INVALID_ARGUMENT);
}
END_TEST

/* Each bad argument: its status, a sentence, nothing written. */
START_TEST(bad_input_returns_a_status_and_a_sentence)
{
    const fa2_sim_device dev = tsim_h100();
    fa2_sim_result r;
    fa2_sim_args good;
    fa2_sim_args_init(&good);
    good.seqlen_q = good.seqlen_k = 100;
    ck_assert_int_eq(fa2_sim_run(&good, &dev, &r), FA2_OK);
    ck_assert_str_eq(fa2_last_error(), "");
    ck_assert_int_eq(fa2_sim_run(NULL, &dev, &r), FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_sim_run(&good, NULL, &r), FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_sim_run(&good, &dev, NULL), FA2_ERR_NULL_POINTER);

    static const int32_t cu_bad0[] = {1, 5}, cu_dec[] = {0, 5, 3}, cu_ok[] = {0, 5, 9};
    struct {
        const char *what;
        fa2_status expect;
        fa2_sim_args a;
    } bad[32];
    int n = 0;
#define BAD(st, field, value)                                                   \
    do {                                                                        \
        bad[n].what = #field " = " #value;                                      \
        bad[n].expect = st;                                                     \
        bad[n].a = good;                                                        \
        bad[n].a.field = value;                                                 \
        n++;                                                                    \
    } while (0)
    BAD(FA2_ERR_INVALID_ARGUMENT, algo, (fa2_sim_algo)7);
    BAD(FA2_ERR_INVALID_ARGUMENT, pass, (fa2_sim_pass)0);
    BAD(FA2_ERR_DTYPE, dtype, (fa2_dtype)9);
    BAD(FA2_ERR_HEAD_DIM, head_dim, 12);
    BAD(FA2_ERR_HEAD_DIM, head_dim, 512);
    BAD(FA2_ERR_SHAPE, heads_kv, 3);
    BAD(FA2_ERR_SHAPE, heads_q, 0);
    BAD(FA2_ERR_SHAPE, batch, 0);
    BAD(FA2_ERR_SHAPE, seqlen_q, 0);
    BAD(FA2_ERR_SHAPE, seqlen_k, -5);
    BAD(FA2_ERR_INVALID_ARGUMENT, window_left, -2);
    BAD(FA2_ERR_INVALID_ARGUMENT, block_m, -1);
    BAD(FA2_ERR_INVALID_ARGUMENT, block_n, 1 << 20);
    BAD(FA2_ERR_INVALID_ARGUMENT, warps, 33);
    BAD(FA2_ERR_INVALID_ARGUMENT, sram_bytes, -1);
    BAD(FA2_ERR_INVALID_ARGUMENT, sram_bytes, 1); /* no tile fits in 1 byte */
    BAD(FA2_ERR_INVALID_ARGUMENT, sram_bytes, 4 * 64 * 2 - 1); /* just short */
    BAD(FA2_ERR_INVALID_ARGUMENT, partition, (fa2_sim_partition)5);
    BAD(FA2_ERR_INVALID_ARGUMENT, order, (fa2_sim_order)2);
    BAD(FA2_ERR_INVALID_ARGUMENT, regs_per_thread, 300);
    BAD(FA2_ERR_NULL_POINTER, cu_seqlens_q, cu_ok); /* cu_seqlens_k missing */
    BAD(FA2_ERR_SHAPE, seqlen_q, (int64_t)1 << 40);
    for (int i = 0; i < n; i++) {
        memset(&r, 0x5a, sizeof r);
        const fa2_status st = fa2_sim_run(&bad[i].a, &dev, &r);
        ck_assert_msg(st == bad[i].expect, "%s: got %s, expected %s", bad[i].what,
                      fa2_status_str(st), fa2_status_str(bad[i].expect));
        ck_assert_msg(strlen(fa2_last_error()) > 10, "%s: no sentence", bad[i].what);
        fa2_sim_counters cf;
        ck_assert_int_eq(fa2_sim_closed_form(&bad[i].a, &dev, &cf), bad[i].expect);
    }
    /* variable lengths */
    fa2_sim_args a = good;
    a.cu_seqlens_q = cu_bad0;
    a.cu_seqlens_k = cu_bad0;
    a.num_seqs = 1;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_SEQLENS);
    a.cu_seqlens_q = a.cu_seqlens_k = cu_dec;
    a.num_seqs = 2;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_SEQLENS);
    ck_assert(strstr(fa2_last_error(), "non-decreasing") != NULL);
    a.cu_seqlens_q = a.cu_seqlens_k = cu_ok;
    a.num_seqs = 0;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_SEQLENS);
    a.num_seqs = 2;
    a.batch = 2;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_SHAPE);
    a.batch = 1;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_OK);
    /* the smallest M that holds a row each of Q, K, V and O: 1 x 1 tiles */
    a = good;
    a.sram_bytes = 4 * 64 * 2;
    a.algo = FA2_SIM_FA1;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_OK);
    ck_assert_int_eq(r.launch[0].block_n, 1);

    int64_t rd, wr;
    ck_assert_int_eq(fa2_sim_compulsory(&good, NULL, &wr), FA2_ERR_NULL_POINTER);
    ck_assert_int_eq(fa2_sim_compulsory(&good, &rd, &wr), FA2_OK);
    fa2_tile_config t;
    ck_assert_int_eq(fa2_sim_tiles(&good, &dev, FA2_SIM_PASS_FWD_BWD, &t),
                     FA2_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(fa2_sim_algo_name((fa2_sim_algo)9), "?");
    ck_assert_str_eq(fa2_sim_tensor_name(FA2_SIM_TENSOR_COUNT), "?");
    ck_assert_str_eq(fa2_sim_tensor_name(FA2_SIM_T_DQ_ACCUM), "dq_accum");
}
END_TEST

START_TEST(reports_have_the_documented_keys_and_respect_the_buffer)
{
    const fa2_sim_device dev = tsim_h100();
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_sim_args_init(&a);
    a.pass = FA2_SIM_PASS_FWD_BWD;
    a.seqlen_q = a.seqlen_k = 500;
    a.causal = 1;
    tsim_run(&a, &dev, &r);
    size_t need = 0;
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_JSON, NULL, 0, &need),
                     FA2_OK);
    char *buf = malloc(need + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_JSON, buf, need + 1,
                                    NULL), FA2_OK);
    ck_assert_uint_eq(strlen(buf), need);
    static const char *const keys[] = {
        "\"algo\": \"fa2\"", "\"pass\": \"fwd+bwd\"", "\"global_bytes_read\"",
        "\"global_bytes_written\"", "\"dram_bytes\"", "\"smem_bytes_read\"",
        "\"smem_bytes_written\"", "\"flops_matmul\"", "\"flops_other\"",
        "\"closed_form_global_bytes\"", "\"predicted_time_ms\"",
        "\"predicted_tflops\"", "\"launches\"", "\"fa2_bwd_preprocess\""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        ck_assert_msg(strstr(buf, keys[k]) != NULL, "JSON lacks %s", keys[k]);
    char key[64];
    snprintf(key, sizeof key, "\"global_bytes_read\": %lld,",
             (long long)r.total.global_read);
    ck_assert(strstr(buf, key) != NULL);
    /* a short buffer gets a terminated prefix and the full length */
    char small[32];
    size_t need2 = 0;
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_JSON, small,
                                    sizeof small, &need2), FA2_OK);
    ck_assert_uint_eq(need2, need);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert(strncmp(small, buf, sizeof small - 1) == 0);
    free(buf);
    /* CSV: a header and a row with as many fields */
    char h[1024], row[1024];
    ck_assert_int_eq(fa2_sim_format(NULL, NULL, NULL, FA2_SIM_FORMAT_CSV_HEADER, h,
                                    sizeof h, NULL), FA2_OK);
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_CSV, row, sizeof row,
                                    NULL), FA2_OK);
    int ch = 0, cr = 0;
    for (const char *p = h; *p; p++)
        ch += *p == ',';
    for (const char *p = row; *p; p++)
        cr += *p == ',';
    ck_assert_int_eq(ch, cr);
    ck_assert(ch >= 20);
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_TEXT, row, sizeof row,
                                    NULL), FA2_OK);
    ck_assert(strstr(row, "fa2_bwd") != NULL);
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, (fa2_sim_format_kind)7, row,
                                    sizeof row, NULL), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_sim_format(&a, &dev, NULL, FA2_SIM_FORMAT_TEXT, row,
                                    sizeof row, NULL), FA2_ERR_NULL_POINTER);
}
END_TEST

/* A profile may be named anything (a file's name line): a '"', a ',' or a
 * backslash in it stays inside its JSON string and its CSV field. */
START_TEST(a_device_name_with_quotes_and_commas_keeps_json_and_csv_valid)
{
    fa2_sim_device dev = tsim_h100();
    snprintf(dev.name, sizeof dev.name, "%s", "My \"GPU\", v2\\x");
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_sim_args_init(&a);
    a.seqlen_q = a.seqlen_k = 256;
    tsim_run(&a, &dev, &r);
    static char buf[1 << 16];
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_JSON, buf,
                                    sizeof buf, NULL), FA2_OK);
    ck_assert_msg(strstr(buf, "\"device\": \"My \\\"GPU\\\", v2\\\\x\",\n") != NULL,
                  "JSON: %s", buf);
    char h[1024], row[1024];
    ck_assert_int_eq(fa2_sim_format(NULL, NULL, NULL, FA2_SIM_FORMAT_CSV_HEADER, h,
                                    sizeof h, NULL), FA2_OK);
    ck_assert_int_eq(fa2_sim_format(&a, &dev, &r, FA2_SIM_FORMAT_CSV, row,
                                    sizeof row, NULL), FA2_OK);
    /* RFC 4180: quoted, inner quotes doubled; outside quotes the commas
     * separate as many fields as the header has */
    ck_assert_msg(strstr(row, ",\"My \"\"GPU\"\", v2\\x\",") != NULL, "CSV: %s", row);
    int ch = 0, cr = 0, quoted = 0;
    for (const char *p = h; *p; p++)
        ch += *p == ',';
    for (const char *p = row; *p; p++) {
        quoted ^= *p == '"';
        cr += *p == ',' && !quoted;
    }
    ck_assert_int_eq(ch, cr);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_api");
    TCase *tw = tcase_create("warps");
    tcase_set_timeout(tw, 120);
    tcase_add_loop_test(tw, split_q_moves_fewer_shared_memory_bytes_than_split_k, 0,
                        TSIM_NCASES);
    suite_add_tcase(s, tw);
    TCase *ta = tcase_create("api");
    tcase_add_test(ta, builtin_profiles_carry_the_datasheet_numbers);
    tcase_add_test(ta, a_profile_file_overrides_a_base);
    tcase_add_test(ta, a_hopper_profile_models_the_warp_specialised_forward);
    tcase_add_test(ta, score_modifiers_add_their_per_element_work_and_no_bytes);
    tcase_add_test(ta, bad_input_returns_a_status_and_a_sentence);
    tcase_add_test(ta, reports_have_the_documented_keys_and_respect_the_buffer);
    tcase_add_test(ta, a_device_name_with_quotes_and_commas_keeps_json_and_csv_valid);
    suite_add_tcase(s, ta);
    return tsim_run_suite(s);
}
