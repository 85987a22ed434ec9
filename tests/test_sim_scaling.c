/* test_sim_scaling.c — the asymptotic IO complexities of the papers, as
 * fitted log-log slopes of the simulated global bytes (no L2):
 *   standard attention   Theta(N d + N^2)      slope 2 in N
 *   FlashAttention(-2)   Theta(N^2 d^2 / M)    slope 2 in N, -1 in M, 2 in d
 * each within 0.05. The ranges are where the leading term dominates (the
 * lower-order N d terms bend a slope by about Br/N or 1/Tc). */
#include "config.h"
#include "test_sim.h"

enum { NPTS = 5 };

static void fill(fa2_sim_args *a, fa2_sim_algo algo, fa2_sim_pass pass, int64_t n,
                 int64_t d)
{
    fa2_sim_args_init(a);
    a->l2 = 0;
    a->algo = algo;
    a->pass = pass;
    a->seqlen_q = a->seqlen_k = n;
    a->head_dim = d;
}

static double slope_in_n(fa2_sim_algo algo, fa2_sim_pass pass, int causal,
                         int64_t n0, int64_t sram)
{
    const fa2_sim_device dev = tsim_h100();
    double x[NPTS], y[NPTS];
    for (int i = 0; i < NPTS; i++) {
        fa2_sim_args a;
        fa2_sim_result r;
        fill(&a, algo, pass, n0 << i, 64);
        a.causal = causal;
        a.sram_bytes = sram;
        tsim_run(&a, &dev, &r);
        x[i] = (double)(n0 << i);
        y[i] = (double)tsim_global(&r);
    }
    const double s = tsim_slope(x, y, NPTS);
    printf("%s %s causal %d: slope in N %.4f (N = %lld .. %lld)\n",
           fa2_sim_algo_name(algo), fa2_sim_pass_name(pass), causal, s,
           (long long)n0, (long long)(n0 << (NPTS - 1)));
    return s;
}

START_TEST(standard_attention_bytes_grow_as_n_squared)
{
    for (int pass = 0; pass < 2; pass++)
        for (int causal = 0; causal < 2; causal++) {
            const double s = slope_in_n(FA2_SIM_STANDARD, pass ? FA2_SIM_PASS_BWD
                                                                : FA2_SIM_PASS_FWD,
                                        causal, 2048, 0);
            ck_assert_msg(fabs(s - 2.0) <= 0.05, "standard %s causal %d: slope %.4f",
                          pass ? "bwd" : "fwd", causal, s);
        }
}
END_TEST

START_TEST(flashattention_bytes_grow_as_n_squared)
{
    static const fa2_sim_algo algos[] = {FA2_SIM_FA1, FA2_SIM_FA2};
    for (int al = 0; al < 2; al++)
        for (int pass = 0; pass < 2; pass++)
            for (int causal = 0; causal < 2; causal++) {
                /* FA1's linear terms (O, l, m initialised, K and V once)
                 * weigh more: from 16k; FA2's from 8k */
                const double s =
                    slope_in_n(algos[al], pass ? FA2_SIM_PASS_BWD : FA2_SIM_PASS_FWD,
                               causal, algos[al] == FA2_SIM_FA1 ? 16384 : 8192, 0);
                ck_assert_msg(fabs(s - 2.0) <= 0.05, "%s %s causal %d: slope %.4f",
                              fa2_sim_algo_name(algos[al]), pass ? "bwd" : "fwd",
                              causal, s);
            }
}
END_TEST

/* Theta(N^2 d^2 / M): at N = 64k, M from 32 KB to 512 KB (Bc = 64 .. 1024
 * for d = 64), tiles from M (FA1's rule; FA2 with Br = Bc). */
START_TEST(flashattention_bytes_fall_as_one_over_sram)
{
    static const fa2_sim_algo algos[] = {FA2_SIM_FA1, FA2_SIM_FA2};
    const fa2_sim_device dev = tsim_h100();
    for (int al = 0; al < 2; al++)
        for (int pass = 0; pass < 2; pass++) {
            double x[NPTS], y[NPTS];
            for (int i = 0; i < NPTS; i++) {
                fa2_sim_args a;
                fa2_sim_result r;
                fill(&a, algos[al], pass ? FA2_SIM_PASS_BWD : FA2_SIM_PASS_FWD, 65536, 64);
                a.sram_bytes = (int64_t)32768 << i;
                tsim_run(&a, &dev, &r);
                x[i] = (double)a.sram_bytes;
                y[i] = (double)tsim_global(&r);
            }
            const double s = tsim_slope(x, y, NPTS);
            printf("%s %s: slope in M %.4f\n", fa2_sim_algo_name(algos[al]),
                   pass ? "bwd" : "fwd", s);
            ck_assert_msg(fabs(s + 1.0) <= 0.05, "%s %s: slope in M %.4f",
                          fa2_sim_algo_name(algos[al]), pass ? "bwd" : "fwd", s);
        }
}
END_TEST

/* ... and as d^2 at fixed M (d = 64 .. 256 at M = 512 KB, N = 64k; FA1's
 * Bc = M / 4d >= d keeps Br = d). FA1's fp32 row statistics add an N^2 d / M
 * term (16 bytes a row against 6 d es), which bends its slope by ~0.02. */
START_TEST(flashattention_bytes_grow_as_d_squared_at_fixed_sram)
{
    static const fa2_sim_algo algos[] = {FA2_SIM_FA1, FA2_SIM_FA2};
    const fa2_sim_device dev = tsim_h100();
    for (int al = 0; al < 2; al++) {
        double x[3], y[3];
        for (int i = 0; i < 3; i++) {
            fa2_sim_args a;
            fa2_sim_result r;
            fill(&a, algos[al], FA2_SIM_PASS_FWD, 65536, 64 << i);
            a.sram_bytes = 512 << 10;
            tsim_run(&a, &dev, &r);
            x[i] = (double)(64 << i);
            y[i] = (double)tsim_global(&r);
        }
        const double s = tsim_slope(x, y, 3);
        printf("%s fwd: slope in d %.4f\n", fa2_sim_algo_name(algos[al]), s);
        ck_assert_msg(fabs(s - 2.0) <= 0.05, "%s fwd: slope in d %.4f",
                      fa2_sim_algo_name(algos[al]), s);
    }
}
END_TEST

/* Both FlashAttentions request fewer global bytes than standard attention
 * (forward and backward, d = 64, N = 1k .. 8k). */
START_TEST(flashattention_moves_fewer_hbm_bytes_than_standard)
{
    const fa2_sim_device dev = tsim_h100();
    for (int64_t n = 1024; n <= 8192; n *= 2) {
        fa2_sim_args a;
        fa2_sim_result rs, r1, r2;
        fill(&a, FA2_SIM_STANDARD, FA2_SIM_PASS_FWD_BWD, n, 64);
        a.heads_q = a.heads_kv = 4;
        tsim_run(&a, &dev, &rs);
        a.algo = FA2_SIM_FA1;
        tsim_run(&a, &dev, &r1);
        a.algo = FA2_SIM_FA2;
        tsim_run(&a, &dev, &r2);
        ck_assert_int_lt(tsim_global(&r2), tsim_global(&rs));
        ck_assert_int_lt(tsim_global(&r1), tsim_global(&rs));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_scaling");
    TCase *tc = tcase_create("slopes");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, standard_attention_bytes_grow_as_n_squared);
    tcase_add_test(tc, flashattention_bytes_grow_as_n_squared);
    tcase_add_test(tc, flashattention_bytes_fall_as_one_over_sram);
    tcase_add_test(tc, flashattention_bytes_grow_as_d_squared_at_fixed_sram);
    tcase_add_test(tc, flashattention_moves_fewer_hbm_bytes_than_standard);
    suite_add_tcase(s, tc);
    return tsim_run_suite(s);
}
