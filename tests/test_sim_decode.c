/*
 * test_sim_decode.c — the simulator's decode schedule (FA2_SIM_DECODE,
 * sim/sched_decode.c): the forward over a KV cache with the query heads of
 * a group packed as one tile's rows, split-KV partials and their combine,
 * paged caches, the append. Properties: the simulated counts equal the
 * closed forms tensor by tensor (no L2); K and V are read once per
 * (sequence, key head, split) whatever the GQA group; the partial O / LSE
 * round trip is exactly what the splits imply; paging changes no byte;
 * the default split count is the shared heuristic over the device's SMs;
 * the predicted time is at least the DRAM bytes over the HBM bandwidth;
 * the fixed costs (launch overhead, per-block cost, dependent DRAM and L2
 * round trips) add what the model says and nothing else.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "fa2.h"
#include "fa2_kvcache.h"
#include "kvcache_params.h" /* the decode kernels' tiling (plain C) */

static fa2_sim_device h200(void)
{
    fa2_sim_device dev;
    ck_assert_int_eq(fa2_sim_device_builtin("h200", &dev), FA2_OK);
    return dev;
}

static void decode_args(fa2_sim_args *a, int64_t batch, int64_t hq, int64_t hkv,
                        int64_t nq, int64_t nk)
{
    fa2_sim_args_init(a);
    a->algo = FA2_SIM_DECODE;
    a->dtype = FA2_DTYPE_BF16;
    a->batch = batch;
    a->heads_q = hq;
    a->heads_kv = hkv;
    a->seqlen_q = nq;
    a->seqlen_k = nk;
    a->head_dim = 128;
    a->l2 = 0;
}

static fa2_sim_result run(const fa2_sim_args *a)
{
    const fa2_sim_device dev = h200();
    static fa2_sim_result r; /* large */
    const fa2_status st = fa2_sim_run(a, &dev, &r);
    ck_assert_msg(st == FA2_OK, "%s", fa2_last_error());
    return r;
}

static fa2_sim_result run_on(const fa2_sim_args *a, const fa2_sim_device *dev);

/* A grid: masks, Nq, GQA, pages, splits, appends. */
static const struct {
    int64_t batch, hq, hkv, nq, nk;
    int causal;
    int64_t wl, wr, page, nnew;
    int splits;
} grid[] = {
    {1, 32, 8, 1, 8192, 1, -1, -1, 0, 0, 0},
    {2, 32, 8, 4, 8000, 1, -1, -1, 16, 4, 0},
    {1, 8, 1, 8, 5000, 0, 300, 0, 64, 0, 7},
    {3, 32, 32, 16, 777, 1, -1, -1, 256, 16, 3},
    {1, 16, 2, 3, 100, 0, -1, 2, 0, 1, 16},
    {4, 4, 4, 1, 1, 1, -1, -1, 16, 1, 2},
    {1, 64, 8, 12, 4096, 1, 100, -1, 32, 12, 5}, /* 96 packed rows: 2 row blocks */
};
#define N_GRID ((int)(sizeof grid / sizeof grid[0]))

static void grid_args(fa2_sim_args *a, int i)
{
    decode_args(a, grid[i].batch, grid[i].hq, grid[i].hkv, grid[i].nq, grid[i].nk);
    a->causal = grid[i].causal;
    a->window_left = grid[i].wl;
    a->window_right = grid[i].wr;
    a->page_size = grid[i].page;
    a->seqlen_new = grid[i].nnew;
    a->num_splits = grid[i].splits;
}

START_TEST(simulated_counts_equal_the_closed_forms_tensor_by_tensor)
{
    fa2_sim_args a;
    grid_args(&a, _i);
    const fa2_sim_device dev = h200();
    const fa2_sim_result r = run(&a);
    fa2_sim_counters cf;
    ck_assert_int_eq(fa2_sim_closed_form(&a, &dev, &cf), FA2_OK);
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        ck_assert_msg(r.total.tensor_read[t] == cf.tensor_read[t],
                      "case %d tensor %s read: simulated %lld, closed form %lld", _i,
                      fa2_sim_tensor_name((fa2_sim_tensor)t),
                      (long long)r.total.tensor_read[t], (long long)cf.tensor_read[t]);
        ck_assert_msg(r.total.tensor_written[t] == cf.tensor_written[t],
                      "case %d tensor %s written: simulated %lld, closed form %lld",
                      _i, fa2_sim_tensor_name((fa2_sim_tensor)t),
                      (long long)r.total.tensor_written[t],
                      (long long)cf.tensor_written[t]);
    }
    ck_assert(r.total.global_read >= r.compulsory_read);
    ck_assert(r.total.global_written >= r.compulsory_written);
}
END_TEST

/* One query, no mask: K and V bytes are the cache once per key head,
 * whatever the split count and however many query heads share a key head. */
START_TEST(kv_is_read_once_per_key_head_whatever_the_group_and_the_splits)
{
    const int64_t nk = 8192, E = 128 * 2;
    for (int64_t hq = 8; hq <= 64; hq *= 2)
        for (int splits = 1; splits <= 16; splits *= 4) {
            fa2_sim_args a;
            decode_args(&a, 2, hq, 8, 1, nk);
            a.num_splits = splits;
            const fa2_sim_result r = run(&a);
            ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_K], 2 * 8 * nk * E);
            ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_V], 2 * 8 * nk * E);
        }
}
END_TEST

/* The split-KV round trip: each split of each (sequence, key head) writes
 * a float32 partial O (4 d bytes) and LSE (4) per packed row; the combine
 * reads every LSE partial, and here (no mask) every O partial, and writes
 * O and LSE once. One split: no partials at all. */
START_TEST(the_partial_round_trip_is_what_the_splits_imply)
{
    fa2_sim_args a;
    decode_args(&a, 1, 32, 8, 2, 8192);
    a.num_splits = 6;
    fa2_sim_result r = run(&a);
    const int64_t rows = 8 * 2 * 4; /* key heads x packed rows */
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_O_PARTIAL], 6 * rows * 4 * 128);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_LSE_PARTIAL], 6 * rows * 4);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_O_PARTIAL], 6 * rows * 4 * 128);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_LSE_PARTIAL], 6 * rows * 4);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_O], 32 * 2 * 128 * 2);
    ck_assert_int_eq(r.num_launches, 2);
    a.num_splits = 1;
    r = run(&a);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_O_PARTIAL], 0);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_LSE_PARTIAL], 0);
    ck_assert_int_eq(r.num_launches, 1);
}
END_TEST

/* The combine reads every split's partial O, seen or not, in the same
 * memory trip as the partial LSEs (gpu/kvcache_kernel.cuh): with a window
 * of 100 keys and 8 splits over 8k keys a query sees at most
 * ceil(101 / block_n) + 1 chunks, and still all 8 partial Os are read. */
START_TEST(the_combine_reads_every_partial_in_one_trip)
{
    fa2_sim_args a;
    decode_args(&a, 1, 8, 8, 1, 8192);
    a.window_left = 100;
    a.num_splits = 8;
    const fa2_sim_result r = run(&a);
    const int64_t per = 4 * 128; /* bytes of one partial O row */
    const int64_t tiles = fa2_ceil_div(101, FA2_KVC_BLOCK_N(128)) + 1;
    ck_assert(tiles < 8);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_O_PARTIAL], 8 * 8 * per);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_LSE_PARTIAL], 8 * 8 * 4);
}
END_TEST

/* Pages move no byte: the same counts for every page size. */
START_TEST(paging_changes_no_count)
{
    fa2_sim_args a;
    decode_args(&a, 2, 32, 8, 4, 4096);
    a.causal = 1;
    a.seqlen_new = 4;
    const fa2_sim_result c = run(&a);
    for (int64_t page = 16; page <= 256; page *= 4) {
        a.page_size = page;
        const fa2_sim_result p = run(&a);
        ck_assert_int_eq(p.total.global_read, c.total.global_read);
        ck_assert_int_eq(p.total.global_written, c.total.global_written);
    }
}
END_TEST

/* The append launch reads the new rows and writes them into the cache. */
START_TEST(the_append_reads_the_new_rows_and_writes_them_into_the_cache)
{
    fa2_sim_args a;
    decode_args(&a, 3, 32, 8, 4, 1000);
    a.seqlen_new = 4;
    const fa2_sim_result r = run(&a);
    const int64_t bytes = 3 * 8 * 4 * 128 * 2;
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_K_NEW], bytes);
    ck_assert_int_eq(r.total.tensor_read[FA2_SIM_T_V_NEW], bytes);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_K], bytes);
    ck_assert_int_eq(r.total.tensor_written[FA2_SIM_T_V], bytes);
    ck_assert_str_eq(r.launch[0].name, "kvcache_append");
}
END_TEST

/* num_splits 0: the GPU's split rule over the device's SMs (so the
 * simulator, the kernels' launch and the mirror agree), the workers
 * capped as the launch caps them. */
START_TEST(the_default_split_count_is_the_gpus_rule_on_the_devices_sms)
{
    const fa2_sim_device dev = h200();
    for (int64_t batch = 1; batch <= 64; batch *= 4) {
        fa2_sim_args a;
        decode_args(&a, batch, 32, 8, 1, 16384);
        const fa2_sim_result r = run(&a);
        /* the kernels' launch (gpu/kvcache_launch.cu): SMs x blocks per
         * SM, at most the blocks whose K/V tiles make
         * FA2_KVCACHE_GPU_KV_BYTES_PER_SM (four at head dim 128) */
        const int64_t smem = FA2_KVC_SMEM_BYTES(128, 1);
        const int64_t per_sm = dev.smem_per_sm / (smem + 1024);
        const int64_t tile = 2 * FA2_KVC_BLOCK_N(128) * 128 * 2;
        const int64_t cap = FA2_KVCACHE_GPU_KV_BYTES_PER_SM / tile;
        ck_assert_int_eq(cap, 4);
        const int64_t capped = per_sm < cap ? per_sm : cap;
        ck_assert_int_eq(fa2_kvcache_gpu_workers(dev.sms, per_sm, FA2_KVC_BLOCK_N(128), 128),
                         dev.sms * capped);
        /* the same bytes at the other kernel head dims: 8 blocks at 64, 2 at
         * 256 (fewer when shared memory holds fewer) */
        ck_assert_int_eq(fa2_kvcache_gpu_workers(dev.sms, 13, 32, 64), dev.sms * 8);
        ck_assert_int_eq(fa2_kvcache_gpu_workers(dev.sms, 3, 32, 256), dev.sms * 2);
        ck_assert_int_eq(fa2_kvcache_gpu_workers(dev.sms, 1, 32, 256), dev.sms);
        const int s = fa2_kvcache_gpu_splits(batch, 8, 4, 16384, fa2_kvcache_block_m(4),
                                             FA2_KVC_BLOCK_N(128), dev.sms, per_sm, 128);
        ck_assert_int_eq(r.launch[0].grid, batch * 8 * s);
        ck_assert_int_eq(r.num_launches, s > 1 ? 2 : 1);
    }
}
END_TEST

/* The predicted time is at least DRAM bytes over the HBM bandwidth; with
 * a warp's tile step shorter than the bytes' share (here 0), a long
 * decode is memory-bound: within 10% of it. (With the H200's measured
 * step, 3 us a tile, batch 8 at 32k keys is bound by its blocks' tile
 * steps at the profile's nominal 4.8 TB/s: the kernel streams K and V
 * one warp a block.) */
START_TEST(the_predicted_time_is_bound_by_hbm_bandwidth)
{
    fa2_sim_device dev = h200();
    fa2_sim_args a;
    decode_args(&a, 8, 32, 8, 1, 32768);
    a.l2 = 1;
    fa2_sim_result r = run_on(&a, &dev);
    double bytes = (double)(r.total.dram_read + r.total.dram_written);
    ck_assert(r.time_ms >= bytes / (dev.hbm_gbps * 1e9) * 1e3 * 0.999);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "tile_step_ns", "0"), FA2_OK);
    r = run_on(&a, &dev);
    bytes = (double)(r.total.dram_read + r.total.dram_written);
    const double floor_ms = bytes / (dev.hbm_gbps * 1e9) * 1e3;
    ck_assert(r.time_ms >= floor_ms * 0.999);
    ck_assert(r.time_ms <= floor_ms * 1.1);
}
END_TEST

/* ---- fixed costs (doc/io-complexity.md section 12, "Fixed costs") -------- */

/* The h200 profile with the fixed costs given (the tile step 0 unless
 * a test sets it: most tests look at one term at a time). */
static fa2_sim_device with_costs(double launch_us, double block_us, double dram_ns,
                                 double l2_ns)
{
    fa2_sim_device dev = h200();
    const char *keys[] = {"launch_us", "block_us", "dram_latency_ns", "l2_latency_ns",
                          "smem_latency_ns", "tile_step_ns"};
    const double vals[] = {launch_us, block_us, dram_ns, l2_ns, 0, 0};
    for (int i = 0; i < 6; i++) {
        char v[32];
        snprintf(v, sizeof v, "%g", vals[i]);
        ck_assert_int_eq(fa2_sim_device_set(&dev, keys[i], v), FA2_OK);
    }
    ck_assert_int_eq(fa2_sim_device_check(&dev), FA2_OK);
    return dev;
}

static fa2_sim_result run_on(const fa2_sim_args *a, const fa2_sim_device *dev)
{
    static fa2_sim_result r;
    const fa2_status st = fa2_sim_run(a, dev, &r);
    ck_assert_msg(st == FA2_OK, "%s", fa2_last_error());
    return r;
}

/* Zero fixed costs: each launch takes max(memory, compute), the roofline
 * the model had before them, and no latency or launch time is reported. */
START_TEST(zero_fixed_costs_give_the_plain_roofline)
{
    const fa2_sim_device dev = with_costs(0, 0, 0, 0);
    fa2_sim_args a;
    grid_args(&a, _i);
    a.l2 = _i % 2;
    const fa2_sim_result r = run_on(&a, &dev);
    double sum = 0;
    for (int k = 0; k < r.num_launches; k++) {
        const fa2_sim_launch *L = &r.launch[k];
        ck_assert(L->latency_ms == 0 && L->launch_ms == 0);
        const double roof = L->memory_ms > L->compute_ms ? L->memory_ms : L->compute_ms;
        ck_assert(L->time_ms == roof);
        sum += roof;
    }
    ck_assert_double_eq_tol(r.time_ms, sum, 1e-12 * sum);
}
END_TEST

/* The launch overhead is paid once per launch, on top of everything
 * else, except by the combine on an sm_90 device (a programmatic
 * dependent of the decode launch, scheduled under its tail): append +
 * decode + combine take 3 x launch_us more on an sm_80 profile, 2 x on
 * the H200's. */
START_TEST(each_launch_adds_exactly_the_launch_overhead)
{
    fa2_sim_args a;
    decode_args(&a, 2, 32, 8, 4, 5000);
    a.seqlen_new = 4;
    a.num_splits = 5;
    a.l2 = 1;
    for (int arch = 80; arch <= 90; arch += 10) {
        fa2_sim_device d0 = with_costs(0, 0.5, 600, 200);
        fa2_sim_device d1 = with_costs(7.5, 0.5, 600, 200);
        d0.arch = d1.arch = arch;
        const fa2_sim_result r0 = run_on(&a, &d0), r1 = run_on(&a, &d1);
        ck_assert_int_eq(r1.num_launches, 3);
        ck_assert_str_eq(r1.launch[2].name, "fa2_decode_combine");
        for (int k = 0; k < 3; k++) {
            const double paid = k == 2 && arch >= 90 ? 0.0 : 7.5e-3;
            ck_assert_double_eq_tol(r1.launch[k].time_ms - r0.launch[k].time_ms, paid, 1e-12);
            ck_assert_double_eq_tol(r1.launch[k].launch_ms, paid, 1e-15);
        }
        ck_assert_double_eq_tol(r1.time_ms - r0.time_ms, (arch >= 90 ? 2 : 3) * 7.5e-3,
                                1e-12);
    }
}
END_TEST

/* A decode block waits one DRAM round trip for Q and its first K/V tile,
 * then one per further tile (double buffering requests tile j + 1 when
 * tile j is in), plus the per-block cost: one block over 10 tiles takes
 * block_us + 10 DRAM latencies; over one tile or none (an empty chunk),
 * one. */
START_TEST(a_decode_block_waits_one_dram_latency_per_tile)
{
    const int64_t bn = FA2_KVC_BLOCK_N(128);
    fa2_sim_args a;
    decode_args(&a, 1, 8, 1, 1, 10 * bn);
    a.num_splits = 1;
    const fa2_sim_device dev = with_costs(0, 0.25, 1000, 0);
    fa2_sim_result r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].grid, 1);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (0.25 + 10 * 1.0) * 1e-3, 1e-12);
    /* one block over 10 tiles is latency bound: 20 tiles of bytes take
     * ~2 ns at 4.8 TB/s, 10 round trips 10 us */
    ck_assert(r.launch[0].time_ms == r.launch[0].latency_ms);
    /* 16 chunks of 10 tiles: one tile each or none (6 empty): one trip */
    a.num_splits = 16;
    r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].grid, 16);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (0.25 + 1.0) * 1e-3, 1e-12);
}
END_TEST

/* The blocks resident on an SM wait at the same time: a grid of 2 x slots
 * + 1 equal blocks (slots = SMs x blocks per SM) takes three of their
 * latencies, not (2 x slots + 1) / SMs of them. */
START_TEST(latencies_overlap_across_the_resident_blocks)
{
    const fa2_sim_device dev = with_costs(0, 0, 1000, 0);
    fa2_sim_args a;
    decode_args(&a, 1, 1, 1, 1, 4 * FA2_KVC_BLOCK_N(128));
    a.num_splits = 1;
    const int64_t slots = (int64_t)dev.sms * run_on(&a, &dev).launch[0].blocks_per_sm;
    ck_assert(slots > dev.sms);
    /* batch x key heads = 2 slots + 1 blocks, one per (sequence, key head) */
    const int64_t blocks = 2 * slots + 1;
    int64_t hkv = 1;
    for (int64_t h = 2; h <= 16; h++)
        if (blocks % h == 0)
            hkv = h;
    decode_args(&a, blocks / hkv, hkv, hkv, 1, 4 * FA2_KVC_BLOCK_N(128));
    a.num_splits = 1;
    const fa2_sim_result r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].grid, blocks);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, 3 * 4 * 1e-3, 1e-12);
}
END_TEST

/* The combine's block (one row) waits one L2 round trip (its partial
 * LSEs and every part, all in flight at once) and then, on chip, one
 * shared-memory step a split (the LSE terms and the columns summed over
 * the splits in split order, without a branch per split): L2 + S steps. */
START_TEST(the_combine_waits_one_l2_trip_and_sums_the_splits_in_order)
{
    fa2_sim_device dev = with_costs(0, 0, 0, 100);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "smem_latency_ns", "10"), FA2_OK);
    for (int splits = 2; splits <= 32; splits *= 4) {
        fa2_sim_args a;
        decode_args(&a, 2, 32, 8, 1, 8192);
        a.num_splits = splits;
        const fa2_sim_result r = run_on(&a, &dev);
        ck_assert_str_eq(r.launch[1].name, "fa2_decode_combine");
        ck_assert_int_eq(r.launch[1].grid, 2 * 32); /* one block a row */
        ck_assert_double_eq_tol(r.launch[1].latency_ms,
                                (100e-6 + splits * 10e-6), 1e-12);
    }
}
END_TEST

/* The combine is the decode launch's programmatic dependent: on an sm_90
 * profile the blocks of its first wave are dispatched and run their
 * prologue under the decode's tail, so its latency span is exactly
 * block_us shorter than on an sm_80 profile (every slot starts that much
 * early; later waves pay it), and one wave takes only L2 + S steps. */
START_TEST(a_programmatic_combine_hides_its_first_waves_block_us)
{
    for (int batch = 2; batch <= 128; batch *= 64) { /* one wave; several */
        fa2_sim_args a;
        decode_args(&a, batch, 32, 8, 1, 8192);
        a.num_splits = 8;
        double lat[2];
        for (int arch = 80; arch <= 90; arch += 10) {
            fa2_sim_device dev = with_costs(0, 0.5, 0, 100);
            ck_assert_int_eq(fa2_sim_device_set(&dev, "smem_latency_ns", "10"), FA2_OK);
            dev.arch = arch;
            const fa2_sim_result r = run_on(&a, &dev);
            ck_assert_str_eq(r.launch[1].name, "fa2_decode_combine");
            ck_assert(r.launch[1].fill_ms == 0); /* no tile steps */
            const int64_t slots = (int64_t)dev.sms * r.launch[1].blocks_per_sm;
            ck_assert(batch == 2 ? r.launch[1].grid <= slots : r.launch[1].grid > slots);
            lat[arch == 90] = r.launch[1].latency_ms;
            if (arch == 90 && batch == 2)
                ck_assert_double_eq_tol(lat[1], 100e-6 + 8 * 10e-6, 1e-12);
        }
        ck_assert_double_eq_tol(lat[0] - lat[1], 0.5e-3, 1e-12);
    }
}
END_TEST

/* A launch whose blocks stream tiles moves its bytes only during their
 * tile steps: its bytes' bound starts after the first blocks' block_us and
 * first DRAM round trip (the fill), so a memory-bound decode takes launch
 * + bytes / bandwidth + fill. The fill is part of each streaming block's
 * chain, so a latency-bound launch does not change (the tests above). */
START_TEST(a_streaming_launch_pays_its_fill_on_top_of_its_bytes)
{
    const fa2_sim_device dev = with_costs(1.5, 2.0, 600, 0); /* tile step 0 */
    fa2_sim_args a;
    decode_args(&a, 8, 32, 8, 1, 32768);
    a.num_splits = 1;
    const fa2_sim_result r = run_on(&a, &dev);
    const fa2_sim_launch *L = &r.launch[0];
    ck_assert_double_eq_tol(L->fill_ms, (2.0 + 0.6) * 1e-3, 1e-12);
    ck_assert(L->memory_ms > L->latency_ms && L->memory_ms > L->compute_ms);
    ck_assert_double_eq_tol(L->time_ms, 1.5e-3 + L->memory_ms + L->fill_ms, 1e-12);
    /* no fixed costs, no fill */
    const fa2_sim_device none = with_costs(0, 0, 0, 0);
    ck_assert(run_on(&a, &none).launch[0].fill_ms == 0);
}
END_TEST

/* A decode block's tile steps: the first tile arrives with Q (one DRAM
 * trip), then each step takes the longer of the tile step and the next
 * tile's round trip, and the last one computes: block_us + DRAM +
 * T x step when the step is the longer; the step scales with the head dim. */
START_TEST(a_decode_block_takes_a_tile_step_per_tile)
{
    const int64_t bn = FA2_KVC_BLOCK_N(128);
    fa2_sim_device dev = with_costs(0, 0.5, 600, 0);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "tile_step_ns", "2000"), FA2_OK);
    fa2_sim_args a;
    decode_args(&a, 1, 8, 1, 1, 10 * bn);
    a.num_splits = 1;
    fa2_sim_result r = run_on(&a, &dev);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (0.5 + 0.6 + 10 * 2.0) * 1e-3, 1e-12);
    a.head_dim = 64; /* the kernel's 64: half the step */
    r = run_on(&a, &dev);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (0.5 + 0.6 + 10 * 1.0) * 1e-3, 1e-12);
    /* a step shorter than the round trip waits for the next tile */
    ck_assert_int_eq(fa2_sim_device_set(&dev, "tile_step_ns", "100"), FA2_OK);
    a.head_dim = 128;
    r = run_on(&a, &dev);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (0.5 + 0.6 + 9 * 0.6 + 0.1) * 1e-3,
                            1e-12);
}
END_TEST

/* Key warps as the kernels choose them (fa2_kvcache_gpu_key_warps): one
 * new token of a GQA group over 40960 keys, one sequence's 8 key heads,
 * take four warps a block, which walk the chunk's tiles side by side (a
 * quarter of the tile steps) and merge their partials in four
 * shared-memory steps. One key warp where they were measured no faster:
 * under 32768 keys, head dim 256 (the stages do not fit), MHA, 4 queries,
 * pages of 16 keys, as many pairs as SMs. */
START_TEST(few_long_slices_take_four_key_warps_and_a_quarter_of_the_tile_steps)
{
    const int64_t bn = FA2_KVC_BLOCK_N(128), tiles = 40960 / bn;
    fa2_sim_device dev = with_costs(0, 0, 0, 0);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "tile_step_ns", "2000"), FA2_OK);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "smem_latency_ns", "100"), FA2_OK);
    const int64_t sms = dev.sms;
    fa2_sim_args a;
    decode_args(&a, 1, 32, 8, 1, 40960);
    a.num_splits = 1;
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 8, 1, 4, 40960, 0, 128, sms), 4);
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 8, 1, 4, 40960, 64, 128, sms), 4);
    fa2_sim_result r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].warps, 4);
    ck_assert_int_eq(r.launch[0].smem_per_block, FA2_KVC_SMEM_BYTES_BN(128, 1, bn, 4));
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (tiles / 4 * 2.0 + 4 * 0.1) * 1e-3,
                            1e-12);
    /* 32736 keys: one key warp, every tile a step */
    a.seqlen_k = 32768 - bn;
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 8, 1, 4, a.seqlen_k, 0, 128, sms), 1);
    r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].warps, 1);
    ck_assert_double_eq_tol(r.launch[0].latency_ms, (a.seqlen_k / bn) * 2.0 * 1e-3, 1e-12);
    /* head dim 256 (twice the step): one key warp */
    a.seqlen_k = 40960;
    a.head_dim = 256;
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 8, 1, 4, 40960, 0, 256, sms), 1);
    r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].warps, 1);
    ck_assert_double_eq_tol(r.launch[0].latency_ms,
                            (40960 / FA2_KVC_BLOCK_N(256)) * 4.0 * 1e-3, 1e-12);
    /* pages of 16 keys in the simulator too */
    a.head_dim = 128;
    a.page_size = 16;
    r = run_on(&a, &dev);
    ck_assert_int_eq(r.launch[0].warps, 1);
    /* the rule's other one-warp cases */
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 8, 1, 4, 40960, 16, 128, sms), 1);
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 32, 1, 1, 40960, 0, 128, sms), 1);
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(1, 8, 4, 4, 40960, 0, 128, sms), 1);
    ck_assert_int_eq(fa2_kvcache_gpu_key_warps(sms / 8 + 1, 8, 1, 4, 40960, 0, 128, sms), 1);
}
END_TEST

START_TEST(fixed_costs_are_device_keys_and_refuse_bad_values)
{
    fa2_sim_device dev = h200();
    ck_assert(dev.launch_us > 0 && dev.dram_latency_ns > 0 && dev.l2_latency_ns > 0);
    ck_assert_int_eq(fa2_sim_device_parse(&dev, "launch_us = 3.25\nl2_latency_ns=150\n"),
                     FA2_OK);
    ck_assert(dev.launch_us == 3.25 && dev.l2_latency_ns == 150);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "block_us", "-1"), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(fa2_sim_device_set(&dev, "dram_latency_ns", "nan"),
                     FA2_ERR_INVALID_ARGUMENT);
    dev.launch_us = -1;
    ck_assert_int_eq(fa2_sim_device_check(&dev), FA2_ERR_INVALID_ARGUMENT);
}
END_TEST

/* Every byte the launches store reaches DRAM once with the L2 model on
 * (no line is stored twice; dirty lines are written back), also when the
 * combine's blocks of four rows cut a (sequence, head)'s 16 queries. */
START_TEST(with_l2_every_stored_byte_reaches_dram_once)
{
    for (int64_t nq = 1; nq <= 16; nq *= 4) {
        fa2_sim_args a;
        decode_args(&a, 2, 32, 8, nq, 4096);
        a.causal = 1;
        a.num_splits = 6;
        a.l2 = 1;
        const fa2_sim_result r = run(&a);
        ck_assert_int_eq(r.total.dram_written, r.total.global_written);
    }
}
END_TEST

START_TEST(bad_decode_arguments_are_refused)
{
    const fa2_sim_device dev = h200();
    fa2_sim_result r;
    fa2_sim_args a;
    decode_args(&a, 1, 8, 8, 1, 100);
    a.page_size = 24;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_BLOCK_TABLE);
    decode_args(&a, 1, 8, 8, 1, 100);
    a.seqlen_new = 101;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_CACHE_SEQLENS);
    decode_args(&a, 1, 8, 8, 1, 100);
    a.num_splits = 129;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_INVALID_ARGUMENT);
    decode_args(&a, 1, 8, 8, 1, 100);
    a.pass = FA2_SIM_PASS_BWD;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_INVALID_ARGUMENT);
    decode_args(&a, 1, 8, 8, 1, 100);
    a.cache_capacity = 50;
    ck_assert_int_eq(fa2_sim_run(&a, &dev, &r), FA2_ERR_CACHE_SEQLENS);
    ck_assert_str_eq(fa2_sim_algo_name(FA2_SIM_DECODE), "decode");
    ck_assert_str_eq(fa2_sim_tensor_name(FA2_SIM_T_O_PARTIAL), "o_partial");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_decode");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, simulated_counts_equal_the_closed_forms_tensor_by_tensor, 0,
                        N_GRID);
    tcase_add_test(tc, kv_is_read_once_per_key_head_whatever_the_group_and_the_splits);
    tcase_add_test(tc, the_partial_round_trip_is_what_the_splits_imply);
    tcase_add_test(tc, the_combine_reads_every_partial_in_one_trip);
    tcase_add_test(tc, paging_changes_no_count);
    tcase_add_test(tc, the_append_reads_the_new_rows_and_writes_them_into_the_cache);
    tcase_add_test(tc, the_default_split_count_is_the_gpus_rule_on_the_devices_sms);
    tcase_add_test(tc, the_predicted_time_is_bound_by_hbm_bandwidth);
    tcase_add_test(tc, bad_decode_arguments_are_refused);
    tcase_add_test(tc, with_l2_every_stored_byte_reaches_dram_once);
    tcase_add_loop_test(tc, zero_fixed_costs_give_the_plain_roofline, 0, N_GRID);
    tcase_add_test(tc, each_launch_adds_exactly_the_launch_overhead);
    tcase_add_test(tc, a_decode_block_waits_one_dram_latency_per_tile);
    tcase_add_test(tc, latencies_overlap_across_the_resident_blocks);
    tcase_add_test(tc, the_combine_waits_one_l2_trip_and_sums_the_splits_in_order);
    tcase_add_test(tc, a_decode_block_takes_a_tile_step_per_tile);
    tcase_add_test(tc, a_programmatic_combine_hides_its_first_waves_block_us);
    tcase_add_test(tc, a_streaming_launch_pays_its_fill_on_top_of_its_bytes);
    tcase_add_test(tc, few_long_slices_take_four_key_warps_and_a_quarter_of_the_tile_steps);
    tcase_add_test(tc, fixed_costs_are_device_keys_and_refuse_bad_values);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
