/* test_sim_ring.c — the simulator's ring attention model (sim/ring.c):
 * its link bytes against their closed forms, its step times against the
 * chunk pairs it names, the overlap rule (a step takes max(compute, link)),
 * and bad input refused with a sentence. */
#include "config.h"
#include "sim.h"

#include <check.h>
#include <math.h>
#include <string.h>

static fa2_sim_args problem(int64_t batch, int64_t hq, int64_t hkv, int64_t n,
                            int64_t d, int causal, fa2_dtype dt)
{
    fa2_sim_args a;
    fa2_sim_args_init(&a);
    a.batch = batch;
    a.heads_q = hq;
    a.heads_kv = hkv;
    a.seqlen_q = a.seqlen_k = n;
    a.head_dim = d;
    a.causal = causal;
    a.dtype = dt;
    return a;
}

static double pass_ms(fa2_sim_args a, const fa2_sim_device *dev, fa2_sim_pass p,
                      int64_t nq, int64_t nk, int causal)
{
    fa2_sim_result r;
    a.pass = p;
    a.seqlen_q = nq;
    a.seqlen_k = nk;
    a.causal = causal;
    ck_assert_int_eq(fa2_sim_run(&a, dev, &r), FA2_OK);
    return r.time_ms;
}

static void close_to(double got, double want, const char *what)
{
    ck_assert_msg(fabs(got - want) <= 1e-9 * fabs(want) + 1e-12,
                  "%s: %.12g, closed form %.12g", what, got, want);
}

/* (world, causal, GQA heads, dtype) over both links */
START_TEST(link_bytes_and_step_times_follow_the_closed_forms)
{
    static const int worlds[] = {2, 3, 4, 8};
    const int world = worlds[_i % 4], causal = (_i / 4) % 2;
    const int pcie = _i / 8;
    const int64_t batch = 2, hq = 8, hkv = 2, n = 2 * 8 * 3 * 16, d = 64;
    const fa2_dtype dt = causal ? FA2_DTYPE_BF16 : FA2_DTYPE_FP16;
    fa2_sim_args a = problem(batch, hq, hkv, n, d, causal, dt);
    fa2_sim_device dev;
    sim_link link;
    ck_assert_int_eq(fa2_sim_device_builtin("h100", &dev), FA2_OK);
    ck_assert_int_eq(sim_link_builtin(pcie ? "pcie5" : "nvlink4", &link), FA2_OK);
    ck_assert(link.bytes_per_s == (pcie ? 64e9 : 450e9));
    sim_ring_result r;
    ck_assert_int_eq(sim_ring_run(&a, &dev, &link, world, &r), FA2_OK);
    const int64_t share = n / world;
    /* K and V of a share: 2 B (N/R) Hkv d es; dK, dV in float32 */
    ck_assert_int_eq(r.kv_bytes, 2 * batch * share * hkv * d * 2);
    ck_assert_int_eq(r.dkv_bytes, 2 * batch * share * hkv * d * 4);
    ck_assert_int_eq(r.fwd.link_bytes, r.kv_bytes);
    ck_assert_int_eq(r.bwd.link_bytes, r.kv_bytes + r.dkv_bytes);
    /* R - 1 K/V transfers; the backward adds R dK/dV hops (home again) */
    ck_assert_int_eq(r.fwd.sent_bytes, (world - 1) * r.kv_bytes);
    ck_assert_int_eq(r.bwd.sent_bytes, (world - 1) * r.kv_bytes + world * r.dkv_bytes);
    for (int b = 0; b < 2; b++) {
        const sim_ring_pass *p = b ? &r.bwd : &r.fwd;
        const fa2_sim_pass pass = b ? FA2_SIM_PASS_BWD : FA2_SIM_PASS_FWD;
        close_to(p->link_ms, 1e3 * (double)p->link_bytes / link.bytes_per_s, "link");
        /* step 0: the own share (causal: masked); later steps: the whole
         * pair, or under the zig-zag causal mask half of it, unmasked */
        close_to(p->diag_ms, pass_ms(a, &dev, pass, share, share, causal), "step 0");
        close_to(p->step_ms, pass_ms(a, &dev, pass, share, causal ? share / 2 : share, 0),
                 "step");
        close_to(p->one_gpu_ms, pass_ms(a, &dev, pass, n, n, causal), "one GPU");
        double want = fmax(p->diag_ms, p->link_ms) +
                      (world - 2) * fmax(p->step_ms, p->link_ms) + p->step_ms;
        if (b)
            want += 1e3 * (double)r.dkv_bytes / link.bytes_per_s;
        close_to(p->ring_ms, want, "ring pass");
        close_to(p->speedup, p->one_gpu_ms / p->ring_ms, "speedup");
        ck_assert_int_eq(p->link_bound, p->link_ms > p->step_ms);
    }
}
END_TEST

/* The ring pays off against one GPU on NVLink at a long sequence, and a
 * slow link makes a short one link-bound. */
START_TEST(a_long_sequence_pays_on_nvlink_and_a_slow_link_binds)
{
    fa2_sim_args a = problem(1, 8, 8, 8192, 128, 1, FA2_DTYPE_FP16);
    fa2_sim_device dev;
    sim_link nv, slow;
    ck_assert_int_eq(fa2_sim_device_builtin("h100", &dev), FA2_OK);
    ck_assert_int_eq(sim_link_builtin("nvlink4", &nv), FA2_OK);
    sim_ring_result r;
    ck_assert_int_eq(sim_ring_run(&a, &dev, &nv, 4, &r), FA2_OK);
    ck_assert_msg(r.fwd.speedup > 1.0 && r.fwd.speedup <= 4.0 + 1e-9,
                  "fwd speedup %g", r.fwd.speedup);
    ck_assert(r.bwd.speedup > 1.0);
    slow = nv;
    slow.bytes_per_s = 1e9;
    ck_assert_int_eq(sim_ring_run(&a, &dev, &slow, 4, &r), FA2_OK);
    ck_assert(r.fwd.link_bound && r.fwd.speedup < 1.0);
}
END_TEST

START_TEST(bad_rings_get_a_status_and_a_sentence)
{
    fa2_sim_args a = problem(1, 2, 2, 100, 64, 0, FA2_DTYPE_FP16);
    fa2_sim_device dev;
    sim_link link;
    sim_ring_result r;
    ck_assert_int_eq(fa2_sim_device_builtin("h100", &dev), FA2_OK);
    ck_assert_int_eq(sim_link_builtin("nvlink4", &link), FA2_OK);
    ck_assert_int_eq(sim_ring_run(&a, &dev, &link, 8, &r), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(fa2_last_error(), "multiple of 2 x 8"));
    ck_assert_int_eq(sim_ring_run(&a, &dev, &link, 1, &r), FA2_ERR_INVALID_ARGUMENT);
    a.seqlen_k = 50;
    ck_assert_int_eq(sim_ring_run(&a, &dev, &link, 2, &r), FA2_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(sim_link_builtin("carrier-pigeon", &link), FA2_ERR_INVALID_ARGUMENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sim_ring");
    TCase *tc = tcase_create("ring");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, link_bytes_and_step_times_follow_the_closed_forms, 0, 16);
    tcase_add_test(tc, a_long_sequence_pays_on_nvlink_and_a_slow_link_binds);
    tcase_add_test(tc, bad_rings_get_a_status_and_a_sentence);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
