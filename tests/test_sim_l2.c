/* test_sim_l2.c — the L2 model: DRAM bytes never exceed the global bytes
 * the kernels request and never fall below the compulsory bytes (each
 * needed input read once, each output written once), over a grid of
 * problems, algorithms, passes, cache sizes and launch orders; the limits
 * (no cache: DRAM = global; an unbounded one: DRAM = compulsory); and what
 * happens on an H100: K/V re-reads of the concurrent blocks of one head hit
 * L2, and launching block-major instead loses that. */
#include "config.h"
#include "test_sim.h"

static const fa2_sim_algo algos[] = {FA2_SIM_STANDARD, FA2_SIM_FA1, FA2_SIM_FA2};
static const fa2_sim_pass passes[] = {FA2_SIM_PASS_FWD, FA2_SIM_PASS_BWD,
                                      FA2_SIM_PASS_FWD_BWD};

/* A small GPU so that the grid's problems run in several waves and evict. */
static fa2_sim_device small_gpu(int64_t l2_bytes)
{
    fa2_sim_device dev = tsim_h100();
    ck_assert_int_eq(fa2_sim_device_set(&dev, "sms", "3"), FA2_OK);
    dev.l2_bytes = l2_bytes;
    return dev;
}

START_TEST(dram_bytes_lie_between_compulsory_and_global)
{
    static const int64_t l2s[] = {16 << 10, 256 << 10, 50 << 20};
    const sim_case *c = &tsim_cases[_i];
    for (size_t k = 0; k < sizeof l2s / sizeof l2s[0]; k++)
        for (int al = 0; al < 3; al++)
            for (int ps = 0; ps < 3; ps++)
                for (int order = 0; order < 2; order++) {
                    const fa2_sim_device dev = small_gpu(l2s[k]);
                    fa2_sim_args a;
                    fa2_sim_result r;
                    tsim_args(&a, c, algos[al], passes[ps]);
                    a.l2 = 1;
                    a.order = (fa2_sim_order)order;
                    a.block_m = a.bwd_block_m = 32;
                    a.block_n = a.bwd_block_n = 48;
                    tsim_run(&a, &dev, &r);
                    const fa2_sim_counters *t = &r.total;
                    ck_assert_msg(t->dram_read <= t->global_read &&
                                      t->dram_written <= t->global_written &&
                                      t->dram_read >= r.compulsory_read &&
                                      t->dram_written >= r.compulsory_written,
                                  "%s, %s %s, L2 %lld, order %d: DRAM %lld/%lld, "
                                  "global %lld/%lld, compulsory %lld/%lld",
                                  c->name, fa2_sim_algo_name(algos[al]),
                                  fa2_sim_pass_name(passes[ps]), (long long)l2s[k],
                                  order, (long long)t->dram_read,
                                  (long long)t->dram_written, (long long)t->global_read,
                                  (long long)t->global_written,
                                  (long long)r.compulsory_read,
                                  (long long)r.compulsory_written);
                    ck_assert_int_gt(r.compulsory_written, 0);
                    /* per launch too */
                    for (int L = 0; L < r.num_launches; L++) {
                        ck_assert_int_le(r.launch[L].c.dram_read,
                                         r.launch[L].c.global_read);
                        ck_assert_int_le(r.launch[L].c.dram_written,
                                         r.launch[L].c.global_written);
                    }
                }
}
END_TEST

START_TEST(without_a_cache_every_byte_goes_to_dram)
{
    const sim_case *c = &tsim_cases[_i];
    const fa2_sim_device dev = small_gpu(0);
    for (int al = 0; al < 3; al++) {
        fa2_sim_args a;
        fa2_sim_result r;
        tsim_args(&a, c, algos[al], FA2_SIM_PASS_FWD_BWD);
        a.l2 = 1;
        tsim_run(&a, &dev, &r);
        ck_assert_int_eq(r.total.dram_read, r.total.global_read);
        ck_assert_int_eq(r.total.dram_written, r.total.global_written);
        ck_assert_int_eq(r.l2_hits, 0);
    }
}
END_TEST

/* With a cache larger than everything, each byte crosses DRAM once: FA2's
 * forward reads Q, K, V and writes O, LSE exactly once; its backward reads
 * its inputs once and writes its outputs plus the D and dQaccum workspace
 * once. */
START_TEST(an_unbounded_cache_moves_each_byte_once)
{
    const fa2_sim_device dev = small_gpu((int64_t)1 << 40);
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_sim_args_init(&a);
    a.batch = 2;
    a.heads_q = 6;
    a.heads_kv = 2;
    a.seqlen_q = 333;
    a.seqlen_k = 555;
    a.head_dim = 64;
    tsim_run(&a, &dev, &r);
    const int64_t E = 128, q = 2 * 6 * 333, k = 2 * 2 * 555;
    ck_assert_int_eq(r.total.dram_read, q * E + 2 * k * E);
    ck_assert_int_eq(r.total.dram_written, q * (E + 4));
    ck_assert_int_eq(r.total.dram_read, r.compulsory_read);
    ck_assert_int_eq(r.total.dram_written, r.compulsory_written);

    a.pass = FA2_SIM_PASS_BWD;
    tsim_run(&a, &dev, &r);
    ck_assert_int_eq(r.total.dram_read, r.compulsory_read);
    ck_assert_int_eq(r.total.dram_read, q * (3 * E + 4) + 2 * k * E); /* Q dO O LSE K V */
    ck_assert_int_eq(r.total.dram_written, q * E + 2 * k * E + q * (4 + 4 * 64));
}
END_TEST

/* FA2's forward on an H100: 16 heads of 8k tokens, d = 128. Each K/V tile
 * is requested by the 64 query blocks of its head, most of them resident at
 * once, so nearly all of the 2 x 64 x (K + V) requests hit L2. */
START_TEST(concurrent_blocks_of_one_head_share_kv_in_l2)
{
    fa2_sim_device dev = tsim_h100();
    dev.arch = 80; /* the mma.sync kernel's tiles: 96 KB, 2 blocks an SM */
    fa2_sim_args a;
    fa2_sim_result r;
    fa2_sim_args_init(&a);
    a.heads_q = a.heads_kv = 16;
    a.seqlen_q = a.seqlen_k = 8192;
    a.head_dim = 128;
    tsim_run(&a, &dev, &r);
    const int64_t kv_global = r.total.tensor_read[FA2_SIM_T_K] +
                              r.total.tensor_read[FA2_SIM_T_V];
    ck_assert_int_lt(r.total.dram_read * 10, kv_global);
    ck_assert_int_lt(10 * (r.total.dram_read + r.total.dram_written), tsim_global(&r));
    ck_assert_int_gt(r.l2_hits, 9 * r.l2_misses);
    ck_assert_int_eq(r.launch[0].blocks_per_sm, 2); /* 96 KB of smem a block */
}
END_TEST

/* Block-major order puts the same query block of 128 different heads side
 * by side: the K/V of all of them (256 MB) do not fit in 50 MB, so every
 * wave re-reads them from DRAM. */
START_TEST(block_major_launch_order_rereads_kv_from_dram)
{
    const fa2_sim_device dev = tsim_h100();
    fa2_sim_args a;
    fa2_sim_result head, block;
    fa2_sim_args_init(&a);
    a.batch = 4;
    a.heads_q = a.heads_kv = 32;
    a.seqlen_q = a.seqlen_k = 4096;
    a.head_dim = 128;
    tsim_run(&a, &dev, &head);
    a.order = FA2_SIM_ORDER_BLOCK_MAJOR;
    tsim_run(&a, &dev, &block);
    ck_assert_int_eq(tsim_global(&head), tsim_global(&block));
    ck_assert_int_gt(block.total.dram_read, 4 * head.total.dram_read);
    ck_assert(block.launch[0].memory_ms > 4 * head.launch[0].memory_ms);
}
END_TEST

/* Occupancy from the footprint: FA2's forward at d = 128 holds Q and a
 * double-buffered K/V, 96 KB (gpu/fwd_config.h), so 2 blocks per SM on an
 * H100 and 1 on an A100; FA1's few blocks (one per head) leave SMs idle. */
START_TEST(occupancy_and_parallelism_shape_the_time)
{
    fa2_sim_device h100 = tsim_h100(), a100;
    h100.arch = 80; /* the mma.sync kernel on both (the sm_90 one: 1 block) */
    ck_assert_int_eq(fa2_sim_device_builtin("a100", &a100), FA2_OK);
    fa2_sim_args a;
    fa2_sim_result r, r1;
    fa2_sim_args_init(&a);
    a.l2 = 0;
    a.heads_q = a.heads_kv = 16;
    a.seqlen_q = a.seqlen_k = 16384;
    a.head_dim = 128;
    tsim_run(&a, &h100, &r);
    ck_assert_int_eq(r.launch[0].smem_per_block, 98304);
    ck_assert_int_eq(r.launch[0].blocks_per_sm, 2);
    tsim_run(&a, &a100, &r1);
    ck_assert_int_eq(r1.launch[0].blocks_per_sm, 1);
    /* 16 FA1 blocks on 132 SMs: compute takes >= 132/16 x longer than at
     * the device-wide rate */
    a.algo = FA2_SIM_FA1;
    tsim_run(&a, &h100, &r1);
    ck_assert_int_eq(r1.launch[0].grid, 16);
    ck_assert_int_gt(r1.time_ms, 5.0 * r.time_ms);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_l2");
    TCase *tc = tcase_create("bounds");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, dram_bytes_lie_between_compulsory_and_global, 0, TSIM_NCASES);
    tcase_add_loop_test(tc, without_a_cache_every_byte_goes_to_dram, 0, TSIM_NCASES);
    tcase_add_test(tc, an_unbounded_cache_moves_each_byte_once);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("h100");
    tcase_set_timeout(th, 300);
    tcase_add_test(th, concurrent_blocks_of_one_head_share_kv_in_l2);
    tcase_add_test(th, block_major_launch_order_rereads_kv_from_dram);
    tcase_add_test(th, occupancy_and_parallelism_shape_the_time);
    suite_add_tcase(s, th);
    return tsim_run_suite(s);
}
