/* test_sim_counts.c — the simulator's global-memory counts (no L2) are the
 * closed forms, exactly, tensor by tensor, over a grid of problems (odd
 * sizes, causal, windows, GQA, varlen), tilings (the defaults, odd tiles)
 * and every algorithm and pass; and the structural facts the papers state:
 * FA2's forward reads Q once and writes O once, its forward and backward
 * visit the same tiles, FA2 does fewer non-matmul FLOPs than FA1, FA1's
 * tiles follow Bc = ceil(M/4d), Br = min(Bc, d). */
#include "config.h"
#include "test_sim.h"
#include "../gpu/fwd_config.h"

static const fa2_sim_algo algos[] = {FA2_SIM_STANDARD, FA2_SIM_FA1, FA2_SIM_FA2};
static const fa2_sim_pass passes[] = {FA2_SIM_PASS_FWD, FA2_SIM_PASS_BWD,
                                      FA2_SIM_PASS_FWD_BWD};
/* (block_m, block_n): defaults, tile multiples, odd; and FA1 from a small M */
static const int tilings[][2] = {{0, 0}, {48, 80}, {37, 19}, {128, 32}};

static void check_closed_form(const fa2_sim_args *a, const char *what)
{
    const fa2_sim_device dev = tsim_h100();
    fa2_sim_result r;
    fa2_sim_counters cf;
    tsim_run(a, &dev, &r);
    ck_assert_int_eq(fa2_sim_closed_form(a, &dev, &cf), FA2_OK);
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        ck_assert_msg(r.total.tensor_read[t] == cf.tensor_read[t],
                      "%s: %s read: simulated %lld, closed form %lld", what,
                      fa2_sim_tensor_name((fa2_sim_tensor)t),
                      (long long)r.total.tensor_read[t], (long long)cf.tensor_read[t]);
        ck_assert_msg(r.total.tensor_written[t] == cf.tensor_written[t],
                      "%s: %s written: simulated %lld, closed form %lld", what,
                      fa2_sim_tensor_name((fa2_sim_tensor)t),
                      (long long)r.total.tensor_written[t],
                      (long long)cf.tensor_written[t]);
    }
    ck_assert_int_eq(r.total.global_read, cf.global_read);
    ck_assert_int_eq(r.total.global_written, cf.global_written);
    ck_assert_int_eq(r.closed_form_read, cf.global_read);
    ck_assert_int_eq(r.closed_form_written, cf.global_written);
    ck_assert_int_gt(r.total.global_read, 0);
}

START_TEST(global_bytes_equal_the_closed_forms_exactly)
{
    const sim_case *c = &tsim_cases[_i];
    for (int al = 0; al < 3; al++)
        for (int ps = 0; ps < 3; ps++)
            for (size_t t = 0; t < sizeof tilings / sizeof tilings[0]; t++) {
                fa2_sim_args a;
                tsim_args(&a, c, algos[al], passes[ps]);
                a.block_m = a.bwd_block_m = tilings[t][0];
                a.block_n = a.bwd_block_n = tilings[t][1];
                if (t == 3 && algos[al] == FA2_SIM_FA1) { /* M-derived tiles */
                    a.block_m = a.block_n = 0;
                    a.sram_bytes = 20000;
                }
                char what[160];
                snprintf(what, sizeof what, "%s, %s %s, tiles %dx%d", c->name,
                         fa2_sim_algo_name(algos[al]), fa2_sim_pass_name(passes[ps]),
                         a.block_m, a.block_n);
                check_closed_form(&a, what);
            }
}
END_TEST

/* The deterministic backward (second dQ accumulator, rotated walk, key
 * blocks launched in descending order) equals its closed form, and moves
 * exactly one more accumulator's worth of bytes each way than the default:
 * cleared by the preprocess, read by the postprocess; the main kernel's
 * adds and every other tensor are unchanged. With the L2 model on it runs
 * and requests the same bytes. */
START_TEST(deterministic_backward_adds_one_accumulator_each_way)
{
    const sim_case *c = &tsim_cases[_i];
    const fa2_sim_device dev = tsim_h100();
    fa2_sim_args a;
    tsim_args(&a, c, FA2_SIM_FA2, FA2_SIM_PASS_BWD);
    fa2_sim_result r0, r1, r2;
    tsim_run(&a, &dev, &r0);
    a.deterministic = 1;
    check_closed_form(&a, c->name);
    tsim_run(&a, &dev, &r1);
    int64_t rows = 0;
    if (c->cu_q)
        rows = c->cu_q[c->num_seqs];
    else
        rows = c->batch * c->nq;
    const int64_t acc = rows * c->hq * c->d * 4;
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        const int64_t extra = t == FA2_SIM_T_DQ_ACCUM ? acc : 0;
        ck_assert_msg(r1.total.tensor_read[t] == r0.total.tensor_read[t] + extra &&
                          r1.total.tensor_written[t] == r0.total.tensor_written[t] + extra,
                      "%s: %s moved %lld/%lld deterministic, %lld/%lld default",
                      c->name, fa2_sim_tensor_name(t),
                      (long long)r1.total.tensor_read[t],
                      (long long)r1.total.tensor_written[t],
                      (long long)r0.total.tensor_read[t],
                      (long long)r0.total.tensor_written[t]);
    }
    a.l2 = 1;
    tsim_run(&a, &dev, &r2);
    ck_assert_int_eq(r2.total.global_read, r1.total.global_read);
    ck_assert_int_eq(r2.total.global_written, r1.total.global_written);
}
END_TEST

/* The L2 model changes DRAM bytes, never what the kernels request. */
START_TEST(global_bytes_do_not_depend_on_the_l2_model)
{
    const sim_case *c = &tsim_cases[_i];
    const fa2_sim_device dev = tsim_h100();
    for (int al = 0; al < 3; al++) {
        fa2_sim_args a;
        fa2_sim_result r0, r1;
        tsim_args(&a, c, algos[al], FA2_SIM_PASS_FWD_BWD);
        tsim_run(&a, &dev, &r0);
        a.l2 = 1;
        a.order = FA2_SIM_ORDER_BLOCK_MAJOR;
        tsim_run(&a, &dev, &r1);
        ck_assert_int_eq(r0.total.global_read, r1.total.global_read);
        ck_assert_int_eq(r0.total.global_written, r1.total.global_written);
        ck_assert_int_eq(r0.total.smem_read, r1.total.smem_read);
        ck_assert_int_eq(r0.total.flops_matmul, r1.total.flops_matmul);
        ck_assert_int_eq(r0.total.flops_other, r1.total.flops_other);
        ck_assert_int_eq(r0.total.dram_read, 0);
    }
}
END_TEST

/* Independent of the closed-form code: the textbook count of FA2's forward
 * without a mask, B Hq (N d es + 2 ceil(N/Br) N d es) read, B Hq N (d es +
 * 4) written. */
START_TEST(unmasked_fa2_forward_matches_the_textbook_count)
{
    static const int64_t ns[] = {1, 63, 64, 65, 1000, 4096};
    const fa2_sim_device dev = tsim_h100();
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        fa2_sim_args a;
        fa2_sim_result r;
        fa2_sim_args_init(&a);
        a.l2 = 0;
        a.batch = 3;
        a.heads_q = a.heads_kv = 5;
        a.seqlen_q = a.seqlen_k = ns[k];
        a.head_dim = 128;
        a.block_m = 128;
        a.block_n = 64;
        tsim_run(&a, &dev, &r);
        const int64_t n = ns[k], E = 128 * 2, tr = (n + 127) / 128;
        ck_assert_int_eq(r.total.global_read, 15 * (n * E + 2 * tr * n * E));
        ck_assert_int_eq(r.total.global_written, 15 * n * (E + 4));
        ck_assert_int_eq(r.num_launches, 1);
        ck_assert_int_eq(r.launch[0].grid, 15 * tr);
    }
}
END_TEST

START_TEST(fa2_forward_reads_q_once_and_writes_o_and_lse_once)
{
    const sim_case *c = &tsim_cases[_i];
    const fa2_sim_device dev = tsim_h100();
    fa2_sim_args a;
    fa2_sim_result r;
    tsim_args(&a, c, FA2_SIM_FA2, FA2_SIM_PASS_FWD);
    tsim_run(&a, &dev, &r);
    int64_t rows = 0; /* query rows over all sequences and heads */
    if (c->cu_q)
        rows = c->cu_q[c->num_seqs] * c->hq;
    else
        rows = c->batch * c->nq * c->hq;
    const int64_t E = c->d * (int64_t)fa2_dtype_size(c->dtype);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_Q], rows * E);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_O], rows * E);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_LSE], rows * 4);
    ck_assert_int_eq(r.total.global_written, rows * (E + 4)); /* nothing else */
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_O], 0);
}
END_TEST

/* With the same tiles, the backward (key blocks outer, fa2_bwd_q_blocks)
 * must visit exactly the tile pairs the forward (query blocks outer,
 * fa2_fwd_kv_blocks) does: 10 r c d matmul FLOPs a pair against 4 r c d. */
START_TEST(forward_and_backward_visit_the_same_tiles)
{
    const sim_case *c = &tsim_cases[_i];
    const fa2_sim_device dev = tsim_h100();
    for (size_t t = 1; t < sizeof tilings / sizeof tilings[0]; t++) {
        fa2_sim_args a;
        fa2_sim_result f, b, f1;
        tsim_args(&a, c, FA2_SIM_FA2, FA2_SIM_PASS_FWD);
        a.block_m = a.bwd_block_m = tilings[t][0];
        a.block_n = a.bwd_block_n = tilings[t][1];
        tsim_run(&a, &dev, &f);
        a.pass = FA2_SIM_PASS_BWD;
        tsim_run(&a, &dev, &b);
        ck_assert_int_eq(2 * b.total.flops_matmul, 5 * f.total.flops_matmul);
        /* FA1's key-outer forward visits them too */
        a.algo = FA2_SIM_FA1;
        a.pass = FA2_SIM_PASS_FWD;
        tsim_run(&a, &dev, &f1);
        ck_assert_int_eq(f1.total.flops_matmul, f.total.flops_matmul);
        ck_assert_int_gt(f.total.flops_matmul, 0);
    }
}
END_TEST

/* FA2 paper section 3.1.1: no per-step rescale of O by diag(l)^-1 in the
 * forward. (In the backward FA2 pays for D once per row up front, which a
 * problem with one visited tile per row does not earn back.) */
START_TEST(fa2_forward_does_fewer_non_matmul_flops_than_fa1)
{
    const sim_case *c = &tsim_cases[_i];
    const fa2_sim_device dev = tsim_h100();
    {
        fa2_sim_args a;
        fa2_sim_result r1, r2;
        tsim_args(&a, c, FA2_SIM_FA1, FA2_SIM_PASS_FWD);
        a.block_m = a.bwd_block_m = 64;
        a.block_n = a.bwd_block_n = 64;
        tsim_run(&a, &dev, &r1);
        a.algo = FA2_SIM_FA2;
        tsim_run(&a, &dev, &r2);
        ck_assert_int_lt(r2.total.flops_other, r1.total.flops_other);
        ck_assert_int_eq(r2.total.flops_matmul, r1.total.flops_matmul);
    }
}
END_TEST

START_TEST(fa1_tiles_follow_the_papers_rule)
{
    static const int64_t srams[] = {16384, 100000, 232448};
    static const int64_t dims[] = {32, 64, 128, 256};
    const fa2_sim_device dev = tsim_h100();
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++) {
            fa2_sim_args a;
            fa2_tile_config t;
            fa2_sim_args_init(&a);
            a.algo = FA2_SIM_FA1;
            a.seqlen_q = a.seqlen_k = 100;
            a.head_dim = dims[j];
            a.sram_bytes = srams[i];
            ck_assert_int_eq(fa2_sim_tiles(&a, &dev, FA2_SIM_PASS_FWD, &t), FA2_OK);
            const int64_t m = srams[i] / 2; /* fp16 elements */
            const int64_t bc = (m + 4 * dims[j] - 1) / (4 * dims[j]);
            ck_assert_int_eq(t.block_n, bc);
            ck_assert_int_eq(t.block_m, bc < dims[j] ? bc : dims[j]);
        }
}
END_TEST

/* The sm_90 forward at head dim 64 runs two consumer warpgroups (128-row
 * tiles) on causal problems of at most FA2_FWD90_NC2_CAUSAL_MAX_SEQLEN
 * query rows and three (192) otherwise; other head dims run two always
 * (gpu/fwd_config.h fa2_fwd90_consumers_for). The simulator's tiles
 * follow, so its counts stay the kernel's. */
START_TEST(short_causal_problems_at_head_dim_64_take_128_row_tiles)
{
    const fa2_sim_device dev = tsim_h100();
    static const struct {
        int64_t d, n;
        int causal, block_m;
    } cases[] = {
        {64, 1024, 1, 128}, {64, 512, 1, 128}, {64, 1025, 1, 192}, {64, 4096, 1, 192},
        {64, 1024, 0, 192}, {48, 1000, 1, 128}, {128, 1024, 1, 128}, {128, 1024, 0, 128},
        {256, 512, 1, 128},
    };
    ck_assert_int_eq(FA2_FWD90_NC2_CAUSAL_MAX_SEQLEN, 1024);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fa2_sim_args a;
        fa2_tile_config t;
        fa2_sim_args_init(&a);
        a.seqlen_q = a.seqlen_k = cases[i].n;
        a.head_dim = cases[i].d;
        a.causal = cases[i].causal;
        ck_assert_int_eq(fa2_sim_tiles(&a, &dev, FA2_SIM_PASS_FWD, &t), FA2_OK);
        ck_assert_msg(t.block_m == cases[i].block_m, "d %lld n %lld causal %d: block_m %d",
                      (long long)cases[i].d, (long long)cases[i].n, cases[i].causal,
                      t.block_m);
        ck_assert_int_eq(t.warps, t.block_m / 16);
        ck_assert_int_eq(fa2_fwd90_consumers_for(fa2_fwd90_kernel_head_dim((int)cases[i].d),
                                                 cases[i].causal, cases[i].n),
                         cases[i].block_m / 64);
    }
}
END_TEST

/* The defaults are the CUDA forward kernel's tiling (gpu/fwd_config.h). */
START_TEST(fa2_default_tiles_are_the_kernels)
{
    static const int64_t dims[] = {8, 32, 40, 64, 96, 128, 160, 200, 256};
    const fa2_sim_device dev = tsim_h100();
    for (size_t j = 0; j < sizeof dims / sizeof dims[0]; j++) {
        fa2_sim_args a;
        fa2_tile_config t, k;
        fa2_sim_args_init(&a);
        a.seqlen_q = a.seqlen_k = 100;
        a.head_dim = dims[j];
        ck_assert_int_eq(fa2_sim_tiles(&a, &dev, FA2_SIM_PASS_FWD, &t), FA2_OK);
        /* the H100 profile (arch 90) runs the sm_90 kernel: its table,
         * which the CUDA backend reports on such a device too */
        const int h9 = fa2_fwd90_kernel_head_dim((int)dims[j]);
        ck_assert_int_eq(t.block_m, 64 * FA2_FWD90_CONSUMERS(h9));
        ck_assert_int_eq(t.block_n, FA2_FWD90_BLOCK_N(h9));
        ck_assert_int_eq(t.warps, 4 * FA2_FWD90_CONSUMERS(h9));
        (void)k;
        /* a profile of arch 80 runs the mma.sync kernel: its table */
        fa2_sim_device a100;
        ck_assert_int_eq(fa2_sim_device_builtin("a100", &a100), FA2_OK);
        ck_assert_int_eq(fa2_sim_tiles(&a, &a100, FA2_SIM_PASS_FWD, &t), FA2_OK);
        const int hd = fa2_fwd_kernel_head_dim((int)dims[j]);
        ck_assert_int_eq(t.block_m, FA2_FWD_BLOCK_M(hd));
        ck_assert_int_eq(t.block_n, FA2_FWD_BLOCK_N(hd));
        ck_assert_int_eq(t.warps, FA2_FWD_WARPS(hd));
    }
}
END_TEST

START_TEST(paper_flops_are_4_nq_nk_d_heads_halved_when_causal)
{
    const fa2_sim_device dev = tsim_h100();
    for (int causal = 0; causal < 2; causal++)
        for (int ps = 0; ps < 3; ps++) {
            fa2_sim_args a;
            fa2_sim_result r;
            fa2_sim_args_init(&a);
            a.l2 = 0;
            a.pass = passes[ps];
            a.batch = 2;
            a.heads_q = 6;
            a.heads_kv = 3;
            a.seqlen_q = 300;
            a.seqlen_k = 500;
            a.head_dim = 64;
            a.causal = causal;
            tsim_run(&a, &dev, &r);
            const double f = 4.0 * 300 * 500 * 64 * 6 * 2 * (causal ? 0.5 : 1.0);
            const double mult = ps == 0 ? 1.0 : ps == 1 ? 2.5 : 3.5;
            ck_assert_double_eq_tol(r.flops_paper, f * mult, 1e-6 * f);
            ck_assert(r.time_ms > 0 && r.tflops > 0);
            ck_assert_double_eq_tol(r.tflops, r.flops_paper / (r.time_ms * 1e9),
                                    1e-9 * r.tflops);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_counts");
    TCase *tc = tcase_create("closed_forms");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, global_bytes_equal_the_closed_forms_exactly, 0, TSIM_NCASES);
    tcase_add_loop_test(tc, global_bytes_do_not_depend_on_the_l2_model, 0, TSIM_NCASES);
    tcase_add_loop_test(tc, deterministic_backward_adds_one_accumulator_each_way, 0,
                        TSIM_NCASES);
    tcase_add_test(tc, unmasked_fa2_forward_matches_the_textbook_count);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("structure");
    tcase_set_timeout(ts, 120);
    tcase_add_loop_test(ts, fa2_forward_reads_q_once_and_writes_o_and_lse_once, 0,
                        TSIM_NCASES);
    tcase_add_loop_test(ts, forward_and_backward_visit_the_same_tiles, 0, TSIM_NCASES);
    tcase_add_loop_test(ts, fa2_forward_does_fewer_non_matmul_flops_than_fa1, 0, TSIM_NCASES);
    tcase_add_test(ts, fa1_tiles_follow_the_papers_rule);
    tcase_add_test(ts, fa2_default_tiles_are_the_kernels);
    tcase_add_test(ts, short_causal_problems_at_head_dim_64_take_128_row_tiles);
    tcase_add_test(ts, paper_flops_are_4_nq_nk_d_heads_halved_when_causal);
    suite_add_tcase(s, ts);
    return tsim_run_suite(s);
}
