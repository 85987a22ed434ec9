/*
 * test_modifiers.c — softcap, ALiBi, attention sinks and dropout
 * (lib/fa2_score.h, lib/fa2_philox.h), specified by their properties:
 *
 *   - Philox 4x32-10 gives Random123's published known answers;
 *   - dropout keeps a fraction within 4 standard deviations of 1 - p over
 *     10^6 elements, and its pattern (the dropout_mask output) is the same
 *     in the oracle, standard attention and the tiled mirror for several
 *     tilings and thread counts, and equals kept & visible by definition;
 *   - the float64 oracle's gradients (dq, dk, dv and dsinks) are the
 *     derivatives of its forward (central finite differences) for every
 *     modifier, with the dropout pattern fixed by the seed;
 *   - with every modifier, combined with causal / window / GQA / varlen,
 *     the tiled mirror stays within the doc/design.md bound of the oracle
 *     (2 x standard attention's error + floor), forward and backward, and
 *     dsinks agrees with the oracle's;
 *   - non-finite inputs still propagate (NaN in, NaN out) with softcap and
 *     sinks;
 *   - bad modifier arguments get a status and a sentence.
 */
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the modifiers of one test problem ---------------------------------- */

typedef struct mods {
    float softcap;
    int alibi;  /* 0 off, 1 slopes [Hq], 2 slopes [B, Hq] */
    int sinks;
    float dropout_p;
} mods;

typedef struct mod_data {
    float slopes[TL_MAX_SEQS * 16];
    float sinks[16];
    float dsinks[16];
} mod_data;

/* ALiBi's slopes for n heads: 2^(-8 k / n), k = 1 .. n (the paper's
 * geometric sequence), varied per sequence for [B, Hq]. */
static void mods_apply(fa2_fwd_args *a, const mods *m, mod_data *d, int64_t hq,
                       tl_rng *r)
{
    ck_assert(hq <= 16);
    a->softcap = m->softcap;
    if (m->alibi) {
        for (int64_t b = 0; b < TL_MAX_SEQS; b++)
            for (int64_t h = 0; h < hq; h++)
                d->slopes[b * hq + h] =
                    (float)(pow(2.0, -8.0 * (double)(h + 1) / (double)hq) *
                            (m->alibi == 2 ? 1.0 + 0.25 * (double)b : 1.0));
        a->alibi_slopes = d->slopes;
        a->alibi_batch_stride = m->alibi == 2 ? hq : 0;
    }
    if (m->sinks) {
        for (int64_t h = 0; h < hq; h++) /* multiples of 2^-6: exact +- 2^-10 */
            d->sinks[h] = (float)(round(tl_normal(r) * 64.0) / 64.0);
        a->sinks = d->sinks;
    }
    a->dropout_p = m->dropout_p;
    a->dropout_seed = 0x1234567890abcdefull ^ tl_u64(r);
    a->dropout_offset = tl_u64(r) & 0xffffffffffull;
}

static void describe(const mods *m, char *buf, size_t n)
{
    snprintf(buf, n, "softcap %g alibi %d sinks %d dropout %g", (double)m->softcap,
             m->alibi, m->sinks, (double)m->dropout_p);
}

/* ---- Philox ---------------------------------------------------------------- */

START_TEST(test_philox_gives_random123s_known_answers)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
        fa2_philox_ctr c = {{kat[t].ctr[0], kat[t].ctr[1], kat[t].ctr[2],
                             kat[t].ctr[3]}};
        const fa2_philox_ctr o = fa2_philox4x32_10(c, kat[t].key[0], kat[t].key[1]);
        for (int w = 0; w < 4; w++)
            ck_assert_msg(o.v[w] == kat[t].out[w], "vector %zu word %d: %08x, "
                          "expected %08x", t, w, o.v[w], kat[t].out[w]);
    }
}
END_TEST

/* The decision of (bh, i, j) is 16-bit half (j & 1) (0: low) of word
 * (j & 7) / 2 of the counter (j >> 3, i, bh, offset) under key (seed,
 * seed >> 32 + offset >> 32), dropped iff below round(p 2^16): the layout
 * doc/algorithm.md documents, checked against a direct Philox call. */
START_TEST(test_dropout_decision_is_the_documented_half_word)
{
    const fa2_dropout d = fa2_dropout_make(0.375, 0x0123456789abcdefull,
                                           0x500000007ull);
    ck_assert_uint_eq(d.threshold, 0x6000u << 16);
    ck_assert_uint_eq(d.key0, 0x89abcdefu);
    ck_assert_uint_eq(d.key1, 0x01234567u + 5u);
    int dropped = 0;
    for (int64_t j = 0; j < 256; j++) {
        fa2_philox_ctr c = {{(uint32_t)(j >> 3), 9u, 13u, 7u}};
        const fa2_philox_ctr o = fa2_philox4x32_10(c, 0x89abcdefu, 0x0123456cu);
        const uint32_t half = (o.v[(j & 7) >> 1] >> (16 * (j & 1))) & 0xffffu;
        ck_assert_int_eq(fa2_dropout_keep(&d, 13, 9, j), half >= 0x6000u);
        dropped += half < 0x6000u;
    }
    ck_assert(dropped > 0 && dropped < 256); /* both outcomes were tested */
    /* the threshold rounds p 2^16 to nearest and stays below 2^16; below
     * 2^-17 nothing is dropped and dropout is off */
    ck_assert_uint_eq(fa2_dropout_make(0.1, 1, 2).threshold, 6554u << 16);
    ck_assert_uint_eq(fa2_dropout_make(0.9999999, 1, 2).threshold, 65535u << 16);
    ck_assert(fa2_dropout_make(1.0 / 65536.0, 1, 2).enabled);
    ck_assert(!fa2_dropout_make(1.0 / 262144.0, 1, 2).enabled);
    ck_assert_float_eq(fa2_dropout_make(1.0 / 262144.0, 1, 2).scale, 1.0f);
    ck_assert_float_eq(fa2_dropout_make(0.5, 1, 2).scale, 2.0f);
    ck_assert(!fa2_dropout_make(0.0, 1, 2).enabled);
}
END_TEST

/* ---- the score functions ---------------------------------------------------- */

/* fa2_score.h on its own: ALiBi is bottom-right aligned; softcap bounds
 * finite logits by the cap and turns an infinite or NaN score into NaN
 * (the non-finite contract), never into +-cap; the backward's combined
 * form gives the very bits of the two separate functions. */
START_TEST(test_score_functions_follow_their_definitions)
{
    const fa2_score_mod a = fa2_score_mod_make(0.5f, 0.0f, 1, 0.25f, 3, 5);
    ck_assert_float_eq(fa2_alibi_distance(&a, 0, 2), 0.0f); /* row 0's diagonal */
    ck_assert_float_eq(fa2_alibi_distance(&a, 0, 0), 2.0f);
    ck_assert_float_eq(fa2_alibi_distance(&a, 2, 4), 0.0f);
    ck_assert_float_eq(fa2_alibi_distance(&a, 1, 4), 1.0f);
    ck_assert_float_eq(fa2_score_logit(&a, 2.0f, 0, 0), 2.0f * 0.5f - 0.25f * 2.0f);
    ck_assert_float_eq(fa2_score_logit(&a, 3.0f, 0, 1), fmaf(-0.25f, 1.0f, 1.5f));
    const fa2_score_mod c = fa2_score_mod_make(1.0f, 4.0f, 0, 0.0f, 4, 4);
    ck_assert(isnan(fa2_score_logit(&c, INFINITY, 0, 0)));
    ck_assert(isnan(fa2_score_logit(&c, -INFINITY, 0, 0)));
    ck_assert(isnan(fa2_score_logit(&c, NAN, 0, 0)));
    ck_assert_float_eq(fa2_score_logit(&c, 1e30f, 0, 0), 4.0f);
    ck_assert_float_eq(fa2_score_logit(&c, -1e30f, 0, 0), -4.0f);
    ck_assert(fabsf(fa2_score_logit(&c, 0.5f, 0, 0) - 4.0f * tanhf(0.125f)) <= 1e-6f);
    /* tanh as 1 - 2 / (1 + e^(2y)): within a few ulp of the cap of the true
     * value over the whole curve, odd to that accuracy, saturating exactly */
    for (int k = -4000; k <= 4000; k++) {
        const double x = k * 0.01;
        const float u = fa2_score_logit(&c, (float)x, 0, 0);
        const double want = 4.0 * tanh((double)(float)x / 4.0);
        ck_assert_msg(fabs(u - want) <= 4.0 * 4.0 * 0x1p-24, "softcap(%g) = %.9g, tanh "
                      "gives %.9g", x, (double)u, want);
        ck_assert(fabsf(u + fa2_score_logit(&c, (float)-x, 0, 0)) <= 4.0f * 4.0f * 0x1p-24f);
        float g;
        (void)fa2_score_logit_grad(&c, (float)x, 0, 0, &g);
        const double tt = tanh((double)(float)x / 4.0);
        ck_assert(fabs(g - (1.0 - tt * tt)) <= 8.0 * 0x1p-24);
    }
    ck_assert_float_eq(fa2_score_logit(&c, 1e3f, 0, 0), 4.0f);
    ck_assert_float_eq(fa2_score_logit(&c, -1e3f, 0, 0), -4.0f);
    ck_assert(isnan(fa2_score_logit_f64(&c, INFINITY, 0, 0)));
    const fa2_score_mod both = fa2_score_mod_make(0.125f, 3.0f, 1, 0.5f, 7, 9);
    for (int k = -200; k <= 200; k++) {
        const float x = (float)k * 0.37f;
        for (int64_t i = 0; i < 7; i += 3) {
            float g;
            const float u = fa2_score_logit_grad(&both, x, i, 5, &g);
            const float u1 = fa2_score_logit(&both, x, i, 5);
            const float g1 = fa2_score_grad(&both, x);
            ck_assert_msg(memcmp(&u, &u1, 4) == 0 && memcmp(&g, &g1, 4) == 0,
                          "x = %g: combined (%a, %a) vs separate (%a, %a)",
                          (double)x, (double)u, (double)g, (double)u1, (double)g1);
            ck_assert(g >= 0.0f && g <= 1.0f && fabsf(u + 0.5f * fabsf((float)(i + 2 - 5)))
                                                    <= 3.0f + 1e-5f);
        }
    }
    /* a sink of -inf is no sink; a NaN sink makes the row state NaN */
    const fa2_row_state none = fa2_row_state_init_sink(-INFINITY, FA2_LOG2E_F);
    ck_assert(none.m == -INFINITY && none.l == 0.0f);
    ck_assert(isnan(fa2_row_state_init_sink(NAN, FA2_LOG2E_F).l));
    ck_assert(isnan(fa2_row_state_init_sink(INFINITY, FA2_LOG2E_F).l));
    ck_assert(fabsf(fa2_row_state_init_sink(1.5f, FA2_LOG2E_F).l - 1.0f) < 1e-6f);
    /* the softmax's units: scores (slope and sink over the scale) without
     * softcap, logits with it or where slope / scale passes 2^100 */
    fa2_score_mod su = fa2_score_mod_make(0.125f, 0.0f, 1, 0.5f, 7, 9);
    fa2_score_mod_units(&su, 0.125f * FA2_LOG2E_F, 1, 3.0f);
    ck_assert(!su.logits && su.slope_u == 4.0f && su.sink_u == 24.0f &&
              su.lse_scale == 0.125f && su.c == 0.125f * FA2_LOG2E_F);
    ck_assert_float_eq(fa2_score_logit(&su, 2.0f, 0, 0), fmaf(-4.0f, 0.0f + 2.0f, 2.0f));
    fa2_score_mod big = fa2_score_mod_make(0x1p-40f, 0.0f, 1, 0x1p70f, 7, 9);
    fa2_score_mod_units(&big, 0x1p-40f * FA2_LOG2E_F, 0, 0.0f);
    ck_assert(big.logits && big.slope_u == 0x1p70f && big.c == FA2_LOG2E_F);
    fa2_score_mod capped = fa2_score_mod_make(0.125f, 5.0f, 1, 0.5f, 7, 9);
    fa2_score_mod_units(&capped, 0.125f * FA2_LOG2E_F, 1, 3.0f);
    ck_assert(capped.logits && capped.slope_u == 0.5f && capped.sink_u == 3.0f);
}
END_TEST

/* The kernels' float form of the ALiBi distance (a base converted once,
 * offsets added in float) is fa2_alibi_distance's value wherever
 * fa2_alibi_f32_exact says so, up to the edge at 2^24; past it the two
 * part, and the guard says no. */
START_TEST(test_alibi_float_distance_is_exact_where_the_guard_allows)
{
    const int64_t reach = 128;
    const int64_t bases[] = {0, 1, -1, 5000, -5000, (1 << 24) - reach - 1,
                             -(1 << 24) + reach + 1, (1 << 23) + 12345};
    const fa2_score_mod a = fa2_score_mod_make(1.0f, 0.0f, 1, 0.5f, 4, 4); /* Nk = Nq */
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        ck_assert(fa2_alibi_f32_exact(bases[b], reach));
        for (int64_t k = -reach; k <= reach; k++) {
            /* base = i - j at the first element; the element is k further */
            const float want = fa2_alibi_distance(&a, bases[b] + k, 0);
            const float got = fa2_alibi_distance_f32((float)bases[b], (float)k);
            ck_assert_msg(got == want, "base %lld, k %lld: %.1f vs %.1f", (long long)bases[b],
                          (long long)k, (double)got, (double)want);
        }
    }
    /* at and past the edge the guard refuses, and has to: a base of
     * 2^24 + 1 is no float, and its float form is one off */
    ck_assert(!fa2_alibi_f32_exact((1 << 24) - reach, reach));
    ck_assert(!fa2_alibi_f32_exact(-(1 << 24) + reach, reach));
    ck_assert(!fa2_alibi_f32_exact((1 << 24) + 1, reach));
    ck_assert(fa2_alibi_distance_f32((float)((1 << 24) + 1), 1.0f) !=
              fa2_alibi_distance(&a, (1 << 24) + 2, 0));
}
END_TEST

/* ---- the dropout pattern ------------------------------------------------- */

static uint8_t *run_mask(tl_problem *p, fa2_backend b, int64_t n)
{
    uint8_t *mask = malloc((size_t)n);
    ck_assert(mask);
    memset(mask, 0xAA, (size_t)n); /* every byte must be written */
    p->args.dropout_mask = mask;
    tl_problem_run_ok(p, b);
    p->args.dropout_mask = NULL;
    return mask;
}

START_TEST(test_dropout_keeps_one_minus_p_within_four_sigma_over_a_million)
{
    static const float ps[] = {0.1f, 0.5f, 0.83f};
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.heads_q = s.heads_kv = 4;
    s.seqlen_q = s.seqlen_k = 500; /* 4 x 500 x 500 = 10^6 elements */
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    mods m = {.dropout_p = ps[_i]};
    mod_data md;
    mods_apply(&p.args, &m, &md, s.heads_q, &r);
    const int64_t n = 4 * 500 * 500;
    uint8_t *mask = run_mask(&p, FA2_BACKEND_CPU_TILED, n);
    int64_t kept = 0;
    for (int64_t x = 0; x < n; x++) {
        TL_CHECK(mask[x] <= 1, "mask byte %lld is %d", (long long)x, mask[x]);
        kept += mask[x];
    }
    const double q = 1.0 - (double)ps[_i], sd = sqrt((double)n * q * (1.0 - q));
    ck_assert_msg(fabs((double)kept - (double)n * q) <= 4.0 * sd,
                  "p = %g: kept %lld of %lld, expected %.0f +- 4 x %.1f",
                  (double)ps[_i], (long long)kept, (long long)n, (double)n * q, sd);
    free(mask);
    tl_problem_free(&p);
}
END_TEST

START_TEST(test_dropout_pattern_is_the_same_in_every_backend_tiling_and_thread_count)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.dtype = FA2_DTYPE_BF16;
    s.head_dim = 16;
    s.heads_q = 4, s.heads_kv = _i == 1 ? 1 : 2;
    s.causal = _i == 2;
    if (_i == 0) {
        s.window_left = 9, s.window_right = 5;
    }
    if (_i == 1) { /* varlen */
        s.num_seqs = 3;
        const int64_t lq[3] = {37, 1, 70}, lk[3] = {50, 3, 61};
        for (int b = 0; b < 3; b++)
            s.lens_q[b] = lq[b], s.lens_k[b] = lk[b];
    } else {
        s.batch = 2, s.seqlen_q = 53, s.seqlen_k = 77;
    }
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    mods m = {.dropout_p = 0.3f, .softcap = _i == 2 ? 5.0f : 0.0f};
    mod_data md;
    mods_apply(&p.args, &m, &md, s.heads_q, &r);
    const int64_t nseq = s.num_seqs ? s.num_seqs : s.batch;
    const int64_t mq = s.num_seqs ? 70 : s.seqlen_q, mk = s.num_seqs ? 61 : s.seqlen_k;
    const int64_t n = nseq * s.heads_q * mq * mk;

    uint8_t *ref = run_mask(&p, FA2_BACKEND_CPU_ORACLE, n);
    /* by definition: kept and visible */
    int64_t kept = 0;
    for (int64_t b = 0; b < nseq; b++) {
        const int64_t nq = s.num_seqs ? s.lens_q[b] : s.seqlen_q;
        const int64_t nk = s.num_seqs ? s.lens_k[b] : s.seqlen_k;
        const fa2_mask vm = fa2_mask_make(nq, nk, s.causal, s.window_left,
                                          s.window_right);
        const fa2_dropout d = fa2_dropout_make(0.3f, p.args.dropout_seed,
                                               p.args.dropout_offset);
        for (int64_t h = 0; h < s.heads_q; h++)
            for (int64_t i = 0; i < mq; i++)
                for (int64_t j = 0; j < mk; j++) {
                    const int want = i < nq && j < nk && fa2_mask_visible(&vm, i, j) &&
                                     fa2_dropout_keep(&d, b * s.heads_q + h, i, j);
                    const uint8_t got = ref[((b * s.heads_q + h) * mq + i) * mk + j];
                    TL_CHECK(got == want, "oracle mask (%lld,%lld,%lld,%lld) = %d, "
                             "expected %d", (long long)b, (long long)h, (long long)i,
                             (long long)j, got, want);
                    kept += got;
                }
    }
    ck_assert_msg(kept > n / 10, "only %lld of %lld kept: the test sees too little",
                  (long long)kept, (long long)n);
    uint8_t *st = run_mask(&p, FA2_BACKEND_CPU_STANDARD, n);
    ck_assert_msg(memcmp(st, ref, (size_t)n) == 0, "standard's dropout pattern "
                  "differs from the oracle's on %s", p.desc);
    free(st);
    static const int tilings[][3] = {{0, 0, 1}, {16, 16, 2}, {32, 8, 3},
                                     {7, 5, 2}, {64, 128, 1}, {1, 1, 3}};
    for (size_t t = 0; t < sizeof tilings / sizeof tilings[0]; t++) {
        p.args.block_m = tilings[t][0], p.args.block_n = tilings[t][1];
        p.args.num_threads = tilings[t][2];
        uint8_t *ti = run_mask(&p, FA2_BACKEND_CPU_TILED, n);
        ck_assert_msg(memcmp(ti, ref, (size_t)n) == 0, "tiled %dx%d, %d threads: "
                      "dropout pattern differs from the oracle's on %s",
                      tilings[t][0], tilings[t][1], tilings[t][2], p.desc);
        free(ti);
    }
    free(ref);
    tl_problem_free(&p);
}
END_TEST

/* ---- a backward problem ---------------------------------------------------- */

typedef struct bwd_problem {
    tl_problem f;
    tl_tensor dout, dq, dk, dv;
    fa2_bwd_args args;
    mod_data md;
    double *dq64, *dk64, *dv64, dsinks64[16];
} bwd_problem;

static void bwd_init(bwd_problem *p, const tl_spec *s, const mods *m, tl_rng *r,
                     int quantised)
{
    memset(p, 0, sizeof *p);
    tl_problem_init(&p->f, s, r);
    mods_apply(&p->f.args, m, &p->md, s->heads_q, r);
    const int64_t *qs = p->f.q.t.shape, *ks = p->f.k.t.shape;
    tl_tensor_alloc(&p->dout, s->dtype, 4, qs, s->layout);
    tl_tensor_alloc(&p->dq, s->dtype, 4, qs, s->out_layout);
    tl_tensor_alloc(&p->dk, s->dtype, 4, ks, s->out_layout);
    tl_tensor_alloc(&p->dv, s->dtype, 4, ks, s->out_layout);
    tl_tensor_fill_normal(&p->dout, r, 1.0);
    if (quantised) { /* multiples of 2^-6: x +- 2^-10 exact in float32 */
        tl_tensor *xs[3] = {&p->f.q, &p->f.k, &p->f.v};
        int64_t idx[4];
        for (int t = 0; t < 3; t++)
            for (int64_t i = 0; i < tl_numel(xs[t]); i++) {
                tl_unflatten(xs[t], i, idx);
                const double v = round(tl_get(xs[t], idx) * 64.0) / 64.0;
                tl_set(xs[t], idx, v == 0.0 ? 0x1p-6 : v);
            }
    }
    tl_problem_run_ok(&p->f, FA2_BACKEND_CPU_ORACLE);
    fa2_bwd_args *a = &p->args;
    const fa2_fwd_args *f = &p->f.args;
    fa2_bwd_args_init(a);
    a->q = f->q, a->k = f->k, a->v = f->v, a->o = f->o, a->lse = f->lse;
    a->dout = p->dout.t;
    a->dq = p->dq.t, a->dk = p->dk.t, a->dv = p->dv.t;
    a->softmax_scale = f->softmax_scale;
    a->causal = f->causal;
    a->window_left = f->window_left, a->window_right = f->window_right;
    a->cu_seqlens_q = f->cu_seqlens_q, a->cu_seqlens_k = f->cu_seqlens_k;
    a->num_seqs = f->num_seqs;
    a->max_seqlen_q = f->max_seqlen_q, a->max_seqlen_k = f->max_seqlen_k;
    a->block_m = f->block_m, a->block_n = f->block_n;
    a->num_threads = f->num_threads;
    a->softcap = f->softcap;
    a->alibi_slopes = f->alibi_slopes, a->alibi_batch_stride = f->alibi_batch_stride;
    a->sinks = f->sinks;
    a->dsinks = f->sinks ? p->md.dsinks : NULL;
    a->dropout_p = f->dropout_p;
    a->dropout_seed = f->dropout_seed, a->dropout_offset = f->dropout_offset;
}

static void bwd_free(bwd_problem *p)
{
    tl_problem_free(&p->f);
    tl_tensor_free(&p->dout);
    tl_tensor_free(&p->dq);
    tl_tensor_free(&p->dk);
    tl_tensor_free(&p->dv);
    free(p->dq64), free(p->dk64), free(p->dv64);
}

static void bwd_oracle(bwd_problem *p)
{
    if (p->dq64)
        return;
    p->dq64 = malloc(sizeof(double) * (size_t)(tl_numel(&p->dq) + 1));
    p->dk64 = malloc(sizeof(double) * (size_t)(tl_numel(&p->dk) + 1));
    p->dv64 = malloc(sizeof(double) * (size_t)(tl_numel(&p->dv) + 1));
    ck_assert(p->dq64 && p->dk64 && p->dv64);
    const fa2_status st = fa2_oracle_bwd_f64_sinks(&p->args, p->dq64, p->dk64,
                                                   p->dv64, p->dsinks64);
    ck_assert_msg(st == FA2_OK, "oracle bwd: %s (%s) on %s", fa2_status_str(st),
                  fa2_last_error(), p->f.desc);
}

/* ---- the oracle's gradients are the derivatives of its forward ------------ */

static double loss(bwd_problem *p, double *o64)
{
    ck_assert(fa2_oracle_fwd_f64(&p->f.args, o64, NULL) == FA2_OK);
    int64_t idx[4];
    double l = 0.0;
    for (int64_t i = 0; i < tl_numel(&p->dout); i++) {
        tl_unflatten(&p->dout, i, idx);
        l += tl_get(&p->dout, idx) * o64[i];
    }
    return l;
}

static void check_fd_tensor(bwd_problem *p, tl_tensor *x, const double *grad,
                            const char *name, tl_rng *r, const char *what)
{
    const double h = 0x1p-10;
    double *o64 = malloc(sizeof(double) * (size_t)tl_numel(&p->f.o));
    ck_assert(o64);
    int64_t idx[4];
    for (int trial = 0; trial < 6; trial++) {
        const int64_t i = tl_range(r, 0, tl_numel(x) - 1);
        tl_unflatten(x, i, idx);
        const double x0 = tl_get(x, idx);
        tl_set(x, idx, x0 + h);
        const double lp = loss(p, o64);
        tl_set(x, idx, x0 - h);
        const double lm = loss(p, o64);
        tl_set(x, idx, x0);
        const double fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - grad[i]) <= 1e-5 + 1e-4 * fabs(grad[i]),
                      "d%s[%lld]: oracle %.9g, finite differences %.9g with %s on %s",
                      name, (long long)i, grad[i], fd, what, p->f.desc);
    }
    free(o64);
}

static const mods fd_mods[] = {
    {.softcap = 2.5f},
    {.alibi = 1},
    {.alibi = 2},
    {.sinks = 1},
    {.dropout_p = 0.25f},
    {.softcap = 1.5f, .alibi = 1, .sinks = 1, .dropout_p = 0.4f},
};
enum { FD_MODS = sizeof fd_mods / sizeof fd_mods[0] };

START_TEST(test_oracle_gradients_are_the_derivatives_of_the_forward_with_modifiers)
{
    static const struct {
        int causal;
        int64_t wl, wr, nq, nk, hq, hkv;
    } shapes[] = {
        {0, -1, -1, 5, 7, 2, 1},
        {1, -1, -1, 9, 4, 2, 2}, /* causal, Nq > Nk: rows that see nothing */
        {0, 3, 1, 7, 9, 2, 1},
    };
    const mods *m = &fd_mods[_i % FD_MODS];
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.head_dim = 8;
    s.q_sigma = 3.0; /* large scores: softcap's curve matters */
    const int c = _i / FD_MODS;
    s.causal = shapes[c].causal;
    s.window_left = shapes[c].wl, s.window_right = shapes[c].wr;
    s.seqlen_q = shapes[c].nq, s.seqlen_k = shapes[c].nk;
    s.heads_q = shapes[c].hq, s.heads_kv = shapes[c].hkv;
    bwd_problem p;
    bwd_init(&p, &s, m, &r, 1);
    char what[128];
    describe(m, what, sizeof what);
    bwd_oracle(&p);
    check_fd_tensor(&p, &p.f.q, p.dq64, "q", &r, what);
    check_fd_tensor(&p, &p.f.k, p.dk64, "k", &r, what);
    check_fd_tensor(&p, &p.f.v, p.dv64, "v", &r, what);
    if (m->sinks) {
        double *o64 = malloc(sizeof(double) * (size_t)tl_numel(&p.f.o));
        ck_assert(o64);
        for (int64_t h = 0; h < s.heads_q; h++) {
            const float x0 = p.md.sinks[h];
            p.md.sinks[h] = x0 + 0x1p-10f;
            const double lp = loss(&p, o64);
            p.md.sinks[h] = x0 - 0x1p-10f;
            const double lm = loss(&p, o64);
            p.md.sinks[h] = x0;
            const double fd = (lp - lm) / 0x1p-9;
            ck_assert_msg(fabs(fd - p.dsinks64[h]) <= 1e-5 + 1e-4 * fabs(fd),
                          "dsinks[%lld]: oracle %.9g, finite differences %.9g with "
                          "%s on %s", (long long)h, p.dsinks64[h], fd, what, p.f.desc);
            ck_assert_msg(fabs(fd) > 1e-6, "dsinks[%lld] = %g: the test checks "
                          "nothing", (long long)h, fd);
        }
        free(o64);
    }
    bwd_free(&p);
}
END_TEST

/* ---- tiled and standard against the oracle ---------------------------------- */

static double grad_err(const tl_tensor *x, const double *ref, const char *name,
                       const char *who, const char *desc)
{
    int64_t idx[4];
    double e = 0.0;
    for (int64_t i = 0; i < tl_numel(x); i++) {
        tl_unflatten(x, i, idx);
        const double v = tl_get(x, idx);
        TL_CHECK(isfinite(v), "%s: %s[%lld] = %g on %s", who, name, (long long)i, v,
                 desc);
        const double d = fabs(v - ref[i]);
        e = d > e ? d : e;
    }
    TL_CHECK(tl_outside_touched(x) == 0, "%s wrote outside %s on %s", who, name, desc);
    return e;
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

static const fa2_dtype grid_dtypes[] = {FA2_DTYPE_FP32, FA2_DTYPE_FP16,
                                        FA2_DTYPE_BF16};
enum { GRID_CASES = 72 };

static void grid_case(int i, tl_rng *r, tl_spec *s, mods *m)
{
    tl_spec_init(s);
    s->dtype = grid_dtypes[i % 3];
    s->head_dim = (i / 3) % 2 ? 64 : 32;
    const int mask = (i / 6) % 4; /* none, causal, window, causal+window */
    s->causal = mask == 1 || mask == 3;
    if (mask >= 2)
        s->window_left = tl_range(r, 0, 20), s->window_right = tl_range(r, 0, 9);
    s->heads_q = 4;
    s->heads_kv = (i / 2) % 3 == 0 ? 4 : (i / 2) % 3 == 1 ? 2 : 1;
    s->q_sigma = 1.0 + (double)(i % 4);
    if (i % 4 == 3) {
        s->num_seqs = 3;
        const int64_t lq[3] = {1, tl_range(r, 2, 60), tl_range(r, 60, 120)};
        const int64_t lk[3] = {tl_range(r, 0, 4), tl_range(r, 2, 80),
                               tl_range(r, 50, 130)};
        for (int b = 0; b < 3; b++)
            s->lens_q[b] = lq[b], s->lens_k[b] = lk[b];
    } else {
        s->batch = 1 + i % 2;
        s->seqlen_q = tl_range(r, 40, 130);
        s->seqlen_k = i % 3 == 0 ? s->seqlen_q : tl_range(r, 30, 140);
    }
    if (i % 5 == 2)
        s->block_m = 16, s->block_n = 24;
    /* each modifier alone, then all of them */
    static const mods grid_mods[] = {
        {.softcap = 4.0f}, {.alibi = 1}, {.alibi = 2}, {.sinks = 1},
        {.dropout_p = 0.2f}, {.softcap = 8.0f, .alibi = 2, .sinks = 1,
                              .dropout_p = 0.1f}};
    *m = grid_mods[i % 6];
}

/* What float32 arithmetic alone moves the FA2 form of dsinks[h] by:
 * dsink = -sum_i P_sink,i D_i with P_sink,i = exp2(sink log2 e - LSE_i
 * log2 e) from the stored LSE, D_i = dO_i . O_i, and the rows' terms added
 * in float. Each term carries a relative rounding of a few u32 plus that of
 * the exponent's argument, about u32 (|LSE_i| + |sink|) log2 e; the sum
 * cancels (dsinks is often far smaller than the sum of |terms|), so the
 * floor is taken on the terms' magnitude. Standard attention forms P_sink
 * and D its own way (its error is no cover for these, and it varies with
 * OpenBLAS's summation order: FA2_TEST_SEED=699894103780 once failed on
 * the old floor alone, 64 u (|dsinks| + 1)). */
static double dsink_rounding_floor(const bwd_problem *p, int64_t h)
{
    const double u32 = 0x1p-24, log2e = 1.4426950408889634;
    const tl_tensor *o = &p->f.o, *dout = &p->dout, *lse = &p->f.lse;
    const int64_t *sh = o->t.shape; /* [B, rows, Hq, d] */
    const double sink = p->f.args.sinks[h];
    double floor = 0.0;
    for (int64_t b = 0; b < sh[0]; b++)
        for (int64_t i = 0; i < sh[1]; i++) {
            const int64_t li[3] = {b, h, i};
            const double L = tl_get(lse, li), ps = exp(sink - L);
            if (!isfinite(ps))
                continue;
            double D = 0.0;
            for (int64_t c = 0; c < sh[3]; c++) {
                const int64_t oi[4] = {b, i, h, c};
                D += tl_get(dout, oi) * tl_get(o, oi);
            }
            floor += ps * fabs(D) * (8.0 + (fabs(L) + fabs(sink)) * log2e);
        }
    return u32 * floor;
}

START_TEST(test_tiled_and_standard_meet_the_bound_with_modifiers)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    mods m;
    grid_case(_i, &r, &s, &m);
    char what[128], who[200];
    describe(&m, what, sizeof what);
    bwd_problem p;
    bwd_init(&p, &s, &m, &r, 0);

    /* forward: O and LSE */
    tl_problem *f = &p.f;
    tl_err std_err, tiled_err;
    tl_problem_run_ok(f, FA2_BACKEND_CPU_STANDARD);
    tl_measure(f, &std_err);
    snprintf(who, sizeof who, "standard (%s)", what);
    tl_check_written(f, &std_err, who);
    tl_problem_run_ok(f, FA2_BACKEND_CPU_TILED);
    tl_measure(f, &tiled_err);
    snprintf(who, sizeof who, "tiled (%s)", what);
    tl_check_written(f, &tiled_err, who);
    tl_check_bound(f, &tiled_err, &std_err, who);
    tl_problem_run_ok(f, FA2_BACKEND_CPU_ORACLE); /* the backward's o, lse */

    /* backward: dq, dk, dv, dsinks */
    bwd_oracle(&p);
    ck_assert_msg(fa2_bwd(&p.args, FA2_BACKEND_CPU_STANDARD) == FA2_OK,
                  "standard: %s", fa2_last_error());
    double ref[3] = {grad_err(&p.dq, p.dq64, "dq", "standard", p.f.desc),
                     grad_err(&p.dk, p.dk64, "dk", "standard", p.f.desc),
                     grad_err(&p.dv, p.dv64, "dv", "standard", p.f.desc)};
    float std_dsinks[16];
    memcpy(std_dsinks, p.md.dsinks, sizeof std_dsinks);
    p.args.deterministic = _i % 2;
    tl_tensor_poison(&p.dq), tl_tensor_poison(&p.dk), tl_tensor_poison(&p.dv);
    ck_assert_msg(fa2_bwd(&p.args, FA2_BACKEND_CPU_TILED) == FA2_OK, "tiled: %s",
                  fa2_last_error());
    const double got[3] = {grad_err(&p.dq, p.dq64, "dq", "tiled", p.f.desc),
                           grad_err(&p.dk, p.dk64, "dk", "tiled", p.f.desc),
                           grad_err(&p.dv, p.dv64, "dv", "tiled", p.f.desc)};
    const double mag[3] = {max_abs(p.dq64, tl_numel(&p.dq)),
                           max_abs(p.dk64, tl_numel(&p.dk)),
                           max_abs(p.dv64, tl_numel(&p.dv))};
    const double all = fmax(mag[0], fmax(mag[1], mag[2]));
    /* FA2 takes D = rowsum(dO o O) from the rounded o, standard attention
     * from its own P and dP: where standard is exact (a row seeing one
     * key), FA2's error is that of o's rounding, which dropout's 1/(1-p)
     * makes visible. That part is measured with the rounded-O oracle and
     * allowed like standard's error. */
    double *g_ro[3];
    const int64_t n_g[3] = {tl_numel(&p.dq), tl_numel(&p.dk), tl_numel(&p.dv)};
    for (int g = 0; g < 3; g++)
        ck_assert((g_ro[g] = malloc(sizeof(double) * (size_t)(n_g[g] + 1))) != NULL);
    ck_assert_int_eq(fa2_oracle_bwd_f64_rounded_o(&p.args, g_ro[0], g_ro[1], g_ro[2]),
                     FA2_OK);
    const double *exact[3] = {p.dq64, p.dk64, p.dv64};
    for (int g = 0; g < 3; g++) {
        for (int64_t e = 0; e < n_g[g]; e++)
            ref[g] = fmax(ref[g], fabs(g_ro[g][e] - exact[g][e]));
        free(g_ro[g]);
    }
    const double u = tl_unit_roundoff(s.dtype);
    static const char *const names[3] = {"dq", "dk", "dv"};
    for (int g = 0; g < 3; g++) {
        /* the floor of tests/test_bwd.c's bound */
        const double fl = tl_floor_o(s.dtype) + u * mag[g] +
                          (s.dtype == FA2_DTYPE_FP32 ? 128.0 * u * all : 0.0);
        ck_assert_msg(got[g] <= 2 * ref[g] + fl, "tiled %s error %.3g > 2 x "
                      "max(standard's, rounded o's) %.3g + %.3g with %s on %s", names[g], got[g],
                      ref[g], fl, what, p.f.desc);
    }
    for (int64_t h = 0; m.sinks && h < s.heads_q; h++) {
        const double e_t = fabs(p.md.dsinks[h] - p.dsinks64[h]);
        const double e_s = fabs(std_dsinks[h] - p.dsinks64[h]);
        const double fl = 64.0 * u * (fabs(p.dsinks64[h]) + 1.0) +
                          dsink_rounding_floor(&p, h);
        ck_assert_msg(e_t <= 2 * e_s + fl, "dsinks[%lld]: tiled %.6g, standard "
                      "%.6g, oracle %.6g with %s on %s", (long long)h,
                      (double)p.md.dsinks[h], (double)std_dsinks[h], p.dsinks64[h],
                      what, p.f.desc);
    }
    bwd_free(&p);
}
END_TEST

/* ---- non-finite inputs ------------------------------------------------------- */

/* With softcap the capped score of an inf or NaN input is NaN, not +-cap:
 * a NaN in q row 3 makes O row 3 and LSE row 3 NaN and nothing else; an
 * inf in k row 5 makes every row that sees key 5 NaN; a NaN sink makes its
 * whole head NaN. The same in every CPU backend. */
START_TEST(test_nonfinite_inputs_propagate_with_modifiers)
{
    static const fa2_backend backends[] = {FA2_BACKEND_CPU_ORACLE,
                                           FA2_BACKEND_CPU_STANDARD,
                                           FA2_BACKEND_CPU_TILED};
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.head_dim = 16, s.heads_q = 2, s.heads_kv = 1;
    s.seqlen_q = 12, s.seqlen_k = 12;
    s.causal = 1;
    s.block_m = 4, s.block_n = 4;
    tl_problem p;
    tl_problem_init(&p, &s, &r);
    mods m = {.softcap = 3.0f, .alibi = 1, .sinks = 1, .dropout_p = 0.2f};
    mod_data md;
    mods_apply(&p.args, &m, &md, s.heads_q, &r);
    int64_t idx[4] = {0, 0, 0, 0};
    if (_i == 0) { /* NaN in q[row 3, head 0] */
        idx[1] = 3;
        tl_set(&p.q, idx, NAN);
    } else if (_i == 1) { /* +inf in k[row 5] */
        idx[1] = 5;
        tl_set(&p.k, idx, INFINITY);
    } else { /* a NaN sink for head 1 */
        md.sinks[1] = NAN;
    }
    for (size_t b = 0; b < 3; b++) {
        tl_problem_run_ok(&p, backends[b]);
        for (int64_t h = 0; h < 2; h++)
            for (int64_t i = 0; i < 12; i++) {
                const int want_nan = _i == 0 ? (i == 3 && h == 0)
                                   : _i == 1 ? i >= 5 : h == 1;
                const int64_t li[3] = {0, h, i};
                const double lse = tl_get(&p.lse, li);
                ck_assert_msg((isnan(lse) != 0) == want_nan, "%s: lse[h %lld, row %lld] "
                              "= %g, case %d", fa2_backend_name(backends[b]),
                              (long long)h, (long long)i, lse, _i);
                for (int64_t c = 0; c < 16; c++) {
                    const int64_t oi[4] = {0, i, h, c};
                    const double o = tl_get(&p.o, oi);
                    if (want_nan)
                        ck_assert_msg(isnan(o), "%s: o[%lld,%lld,%lld] = %g, expected "
                                      "NaN (case %d)", fa2_backend_name(backends[b]),
                                      (long long)i, (long long)h, (long long)c, o, _i);
                }
            }
    }
    tl_problem_free(&p);
}
END_TEST

/* ---- bad arguments ------------------------------------------------------------ */

START_TEST(test_bad_modifier_arguments_get_a_status_and_a_sentence)
{
    tl_rng r;
    TL_RNG(&r);
    tl_spec s;
    tl_spec_init(&s);
    s.heads_q = 4, s.heads_kv = 2, s.seqlen_q = 8, s.seqlen_k = 8;
    bwd_problem p;
    mods none = {0};
    bwd_init(&p, &s, &none, &r, 0);
    fa2_fwd_args *a = &p.f.args;
    const fa2_fwd_args good = *a;
    static const struct {
        float softcap, dropout_p;
        int64_t stride;
        const char *mentions;
    } bad[] = {
        {-1.0f, 0.0f, 0, "softcap"}, {NAN, 0.0f, 0, "softcap"},
        {INFINITY, 0.0f, 0, "softcap"}, {0.0f, 1.0f, 0, "dropout_p"},
        {0.0f, -0.25f, 0, "dropout_p"}, {0.0f, NAN, 0, "dropout_p"},
        {0.0f, 0.0f, 3, "alibi_batch_stride"}, {0.0f, 0.0f, -4, "alibi_batch_stride"},
    };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        *a = good;
        a->softcap = bad[t].softcap;
        a->dropout_p = bad[t].dropout_p;
        a->alibi_slopes = p.md.slopes;
        a->alibi_batch_stride = bad[t].stride;
        for (fa2_backend b = FA2_BACKEND_CPU_ORACLE; b <= FA2_BACKEND_CPU_TILED; b++) {
            const fa2_status st = fa2_fwd(a, b);
            ck_assert_msg(st == FA2_ERR_INVALID_ARGUMENT, "case %zu on %s: %s",
                          t, fa2_backend_name(b), fa2_status_str(st));
            ck_assert_msg(tl_error_mentions(bad[t].mentions), "case %zu: \"%s\" does "
                          "not name %s", t, fa2_last_error(), bad[t].mentions);
        }
    }
    *a = good;
    /* the backward: sinks need dsinks, dsinks need sinks */
    p.args.sinks = p.md.sinks;
    p.args.dsinks = NULL;
    ck_assert_int_eq(fa2_bwd(&p.args, FA2_BACKEND_CPU_TILED), FA2_ERR_NULL_POINTER);
    ck_assert(tl_error_mentions("dsinks"));
    p.args.sinks = NULL;
    p.args.dsinks = p.md.dsinks;
    ck_assert_int_eq(fa2_bwd(&p.args, FA2_BACKEND_CPU_TILED), FA2_ERR_INVALID_ARGUMENT);
    ck_assert(tl_error_mentions("sinks"));
    p.args.dsinks = NULL;
    p.args.softcap = -2.0f;
    ck_assert_int_eq(fa2_bwd(&p.args, FA2_BACKEND_CPU_STANDARD),
                     FA2_ERR_INVALID_ARGUMENT);
    ck_assert(tl_error_mentions("softcap"));
    bwd_free(&p);
}
END_TEST

static Suite *mods_suite(void)
{
    Suite *s = suite_create("modifiers");
    TCase *t = tcase_create("philox");
    tcase_add_test(t, test_philox_gives_random123s_known_answers);
    tcase_add_test(t, test_dropout_decision_is_the_documented_half_word);
    tcase_add_test(t, test_score_functions_follow_their_definitions);
    tcase_add_test(t, test_alibi_float_distance_is_exact_where_the_guard_allows);
    suite_add_tcase(s, t);
    t = tcase_create("dropout");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, test_dropout_keeps_one_minus_p_within_four_sigma_over_a_million,
                        0, 3);
    tcase_add_loop_test(t,
                        test_dropout_pattern_is_the_same_in_every_backend_tiling_and_thread_count,
                        0, 3);
    suite_add_tcase(s, t);
    t = tcase_create("gradients");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t,
                        test_oracle_gradients_are_the_derivatives_of_the_forward_with_modifiers,
                        0, 3 * FD_MODS);
    suite_add_tcase(s, t);
    t = tcase_create("grid");
    tcase_set_timeout(t, 300);
    tcase_add_loop_test(t, test_tiled_and_standard_meet_the_bound_with_modifiers, 0,
                        GRID_CASES);
    suite_add_tcase(s, t);
    t = tcase_create("contract");
    tcase_add_loop_test(t, test_nonfinite_inputs_propagate_with_modifiers, 0, 3);
    tcase_add_test(t, test_bad_modifier_arguments_get_a_status_and_a_sentence);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tl_run_suite(mods_suite()); }
