/*
 * fa2_score.h — the score modifiers (logit soft-capping, ALiBi, attention
 * sinks) written once: the float64 oracle, the tiled CPU mirror, standard
 * attention and the CUDA kernels all call these functions
 * (doc/algorithm.md, "Score modifiers").
 *
 * Plain attention runs the online softmax on the raw dot products x = q.k
 * with the scale folded into exp2 (c = scale log2 e, fa2_tile.h). With a
 * modifier on, the scores are first turned into logits u in natural units,
 * by one fixed rounding sequence, and the same softmax then runs on u with
 * c = log2 e and LSE = m + ln l:
 *
 *   e = exp2(x * k)        with softcap, k = 2 log2(e) scale / cap
 *                          (k rounded once)
 *   r = 1 / (1 + e)
 *   u = fma(-2 cap, r, fma(x, 0, cap))     = cap tanh(x scale / cap)
 *   u = x * scale          without softcap
 *   u = fma(-slope, |i + Nk - Nq - j|, u)  with ALiBi (bottom-right aligned)
 *   masked (i, j): u = -inf                (after the two above)
 *
 * A sink is a per-head logit that joins every row's softmax denominator
 * and has no value row: the row state starts as if a key with logit `sink`
 * had been seen (fa2_row_state_init_sink).
 *
 * tanh is taken on scale * x, never on the log2-scaled value: the softcap
 * curve is defined on logits. It is evaluated as tanh(y) = 1 - 2 / (1 +
 * e^(2y)): one exp2 and one reciprocal, which a GPU runs as two
 * special-function instructions (ex2.approx, rcp.approx, each within a
 * few float32 ulp of exp2f and of 1 / d here), against the ~20
 * instructions of a library tanhf; its absolute error stays a few ulp of
 * the cap, which is what the softmax sees. A score x that is +-inf or NaN
 * gives u = NaN (fma(x, 0, cap) is NaN there and cap otherwise), so an inf
 * in q or k, or an overflowing dot product, still makes the row NaN as
 * without softcap (section 5), instead of being squashed to +-cap; a
 * finite x whose e overflows gives r = 0 and u = cap, tanh's limit.
 */
#ifndef FA2_SCORE_H
#define FA2_SCORE_H

#include <math.h>
#include <stdint.h>

#include "fa2_tile.h"

#define FA2_LOG2E_F 1.44269504088896340736f

/* The modifiers of one (sequence, head). */
typedef struct fa2_score_mod {
    float scale;          /* softmax scale                                  */
    float softcap;        /* cap; 0: no soft-capping                        */
    float softcap_k;      /* 2 log2(e) scale / cap, rounded once            */
    float softcap_m2;     /* -2 cap (exact)                                 */
    float slope;          /* ALiBi slope of this (sequence, head)           */
    int alibi;            /* ALiBi on                                       */
    int64_t diag_offset;  /* Nk - Nq: row i's diagonal column               */
    /* the units the softmax runs in (fa2_score_mod_units): */
    int logits;           /* 1: logits u (natural units), 0: scores x / ... */
    float c;              /* exp2's factor: log2 e, or scale log2 e         */
    float lse_scale;      /* LSE = m lse_scale + ln l: 1, or scale          */
    float slope_u;        /* ALiBi's slope in those units                   */
    float sink_u;         /* the sink in those units (with a sink)          */
} fa2_score_mod;

FA2_HD static inline fa2_score_mod fa2_score_mod_make(float scale, float softcap,
                                                      int alibi, float slope,
                                                      int64_t seqlen_q,
                                                      int64_t seqlen_k)
{
    fa2_score_mod s;
    s.scale = scale;
    s.softcap = softcap;
    s.softcap_k = softcap > 0.0f
                      ? (float)(2.0 * 1.44269504088896340736 * (double)scale / (double)softcap)
                      : 0.0f;
    s.softcap_m2 = -2.0f * softcap;
    s.slope = alibi ? slope : 0.0f;
    s.alibi = alibi;
    s.diag_offset = seqlen_k - seqlen_q;
    s.logits = 1;
    s.c = FA2_LOG2E_F;
    s.lse_scale = 1.0f;
    s.slope_u = s.slope;
    s.sink_u = 0.0f;
    return s;
}

/* The units the forward's softmax runs in (the tiled mirror's and the
 * kernels'; the backward recomputes P in natural units). Without
 * softcap it runs on the raw scores, as plain attention does (exp2's
 * factor c = scale log2 e, so no multiply by the scale per element), and
 * ALiBi's slope and the sink are converted once: slope / scale and
 * sink / scale, each rounded once from float64; the logit is then
 *   x_ij - (slope / scale) |i' - j|       (one FFMA, fa2_score_alibi)
 * and scale times it is the logit of section 7.1 up to rounding. With
 * softcap (tanh needs the scaled score) it runs on logits u (c = log2 e).
 * So does a head whose slope / scale or sink / scale would exceed 2^100
 * in magnitude (where x - slope' d could overflow where u does not); the
 * choice is per (sequence, head) and the same in the mirror and the
 * kernels (both call this). scale_log2: plain attention's c, the
 * problem's. Without any modifier this gives plain attention's units. */
#define FA2_SCORE_UNITS_MAX 0x1p100f
FA2_HD static inline void fa2_score_mod_units(fa2_score_mod *s, float scale_log2,
                                              int has_sink, float sink)
{
    s->sink_u = sink;
    if (s->softcap > 0.0f)
        return;
    /* compared in float64, then rounded: a quotient past float's range
     * never reaches a float conversion */
    const double slope_x = (double)s->slope / (double)s->scale;
    const double sink_x = (double)sink / (double)s->scale;
    if (s->alibi && fabs(slope_x) > (double)FA2_SCORE_UNITS_MAX)
        return;
    if (has_sink && isfinite(sink) && fabs(sink_x) > (double)FA2_SCORE_UNITS_MAX)
        return;
    s->logits = 0;
    s->c = scale_log2;
    s->lse_scale = s->scale;
    s->slope_u = (float)slope_x;
    s->sink_u = (float)sink_x;
}

/* Does the forward turn a tile's raw scores into something else before
 * the softmax (softcap, ALiBi, or a head in natural units)? A sink alone
 * in score units does not: it only starts the row state. */
FA2_HD static inline int fa2_score_mod_transforms(const fa2_score_mod *s)
{
    return s->softcap > 0.0f || s->alibi || s->logits;
}

/* |i' - j|, i' = i + Nk - Nq: the ALiBi distance, exact in float below 2^24. */
FA2_HD static inline float fa2_alibi_distance(const fa2_score_mod *s, int64_t i,
                                              int64_t j)
{
    const int64_t dist = i + s->diag_offset - j;
    return (float)(dist < 0 ? -dist : dist);
}

/* The same distance in float arithmetic, as the CUDA kernels form it for a
 * register fragment: base = i + Nk - Nq - j at the fragment's first
 * element (converted once), k the element's offset from it (columns count
 * -1, rows +1). Every integer below 2^24 is a float and so is a sum of two
 * of them below 2^24, so this is fa2_alibi_distance's value exactly while
 * fa2_alibi_f32_exact(base, reach) holds, reach = the largest |k|. */
FA2_HD static inline int fa2_alibi_f32_exact(int64_t base, int64_t reach)
{
    return base > -(1 << 24) + reach && base < (1 << 24) - reach;
}
FA2_HD static inline float fa2_alibi_distance_f32(float base, float k)
{
    return fabsf(base + k);
}

/* 1 / d for d >= 1 (or +inf): the GPU's approximate reciprocal
 * (rcp.approx.ftz, within 1 ulp; 1 / inf = 0), the CPU's division. */
#if defined(__CUDA_ARCH__)
#define FA2_RCP_GE1(d) __fdividef(1.0f, (d))
#else
#define FA2_RCP_GE1(d) (1.0f / (d))
#endif

/* The three steps of a logit, each rounded as below; fa2_score_logit
 * composes them, and the CUDA kernels compose the same calls with the
 * branches resolved per tile (the maths lives here once). */

/* r = 1 / (1 + e^(2y)), y = x scale / cap: tanh(y) = 1 - 2 r */
FA2_HD static inline float fa2_softcap_r(const fa2_score_mod *s, float x)
{
    return FA2_RCP_GE1(1.0f + exp2f(FA2_MUL_RN(x, s->softcap_k)));
}

/* cap tanh(x scale / cap) from r, or NaN where x is +-inf or NaN */
FA2_HD static inline float fa2_softcap_u(const fa2_score_mod *s, float x, float r)
{
    return fmaf(s->softcap_m2, r, fmaf(x, 0.0f, s->softcap));
}

/* cap tanh(x scale / cap), or NaN where x is +-inf or NaN */
FA2_HD static inline float fa2_score_softcap(const fa2_score_mod *s, float x)
{
    return fa2_softcap_u(s, x, fa2_softcap_r(s, x));
}

/* du / d(scale x) = 1 - tanh(y)^2 from r: t = 1 - 2 r */
FA2_HD static inline float fa2_softcap_grad(float r)
{
    const float t = fmaf(-2.0f, r, 1.0f);
    return 1.0f - FA2_MUL_RN(t, t);
}

/* x scale: the logit without soft-capping (in score units: x itself) */
FA2_HD static inline float fa2_score_scaled(const fa2_score_mod *s, float x)
{
    return s->logits ? FA2_MUL_RN(x, s->scale) : x;
}

/* u - slope |i' - j| in one rounding (an FFMA), given the distance as
 * fa2_alibi_distance forms it; the slope in the softmax's units */
FA2_HD static inline float fa2_score_alibi(const fa2_score_mod *s, float u, float dist)
{
    return fmaf(-s->slope_u, dist, u);
}

/* The logit u of raw dot product x at (row i, column j), float32. */
FA2_HD static inline float fa2_score_logit(const fa2_score_mod *s, float x,
                                           int64_t i, int64_t j)
{
    float u = s->softcap > 0.0f ? fa2_score_softcap(s, x) : fa2_score_scaled(s, x);
    if (s->alibi)
        u = fa2_score_alibi(s, u, fa2_alibi_distance(s, i, j));
    return u;
}

/* du / d(scale x) at x: 1 - tanh(y)^2 with softcap, else 1. The backward
 * multiplies dS by it; the scale itself is applied to dQ and dK at the
 * end, as without modifiers. ALiBi's bias does not depend on x. */
FA2_HD static inline float fa2_score_grad(const fa2_score_mod *s, float x)
{
    if (s->softcap > 0.0f)
        return fa2_softcap_grad(fa2_softcap_r(s, x));
    return 1.0f;
}

/* The logit and du / d(scale x) together, r formed once, with ALiBi's
 * distance given (fa2_alibi_distance's value; read only with ALiBi on):
 * for kernels that have the distance at hand more cheaply than from the
 * 64-bit indices. */
FA2_HD static inline float fa2_score_logit_grad_dist(const fa2_score_mod *s, float x,
                                                     float dist, float *grad)
{
    float u;
    if (s->softcap > 0.0f) {
        const float r = fa2_softcap_r(s, x);
        u = fa2_softcap_u(s, x, r);
        *grad = fa2_softcap_grad(r);
    } else {
        u = fa2_score_scaled(s, x);
        *grad = 1.0f;
    }
    if (s->alibi)
        u = fa2_score_alibi(s, u, dist);
    return u;
}

/* The logit and du / d(scale x) together, r formed once: the same values
 * as fa2_score_logit and fa2_score_grad (the backward's form). */
FA2_HD static inline float fa2_score_logit_grad(const fa2_score_mod *s, float x,
                                                int64_t i, int64_t j, float *grad)
{
    return fa2_score_logit_grad_dist(s, x, s->alibi ? fa2_alibi_distance(s, i, j) : 0.0f,
                                     grad);
}

/* The definition in float64, for the oracle: the same formula without the
 * float32 roundings (scale and cap are taken as given, in double). */
FA2_HD static inline double fa2_score_logit_f64(const fa2_score_mod *s, double x,
                                                int64_t i, int64_t j)
{
    double u;
    if (s->softcap > 0.0f) {
        const double y = x * (double)s->scale / (double)s->softcap;
        u = (double)s->softcap * tanh(y) + (y - y);
    } else {
        u = x * (double)s->scale;
    }
    if (s->alibi) {
        const int64_t dist = i + s->diag_offset - j;
        u -= (double)s->slope * (double)(dist < 0 ? -dist : dist);
    }
    return u;
}

/* du / dx in float64 (scale included). */
FA2_HD static inline double fa2_score_grad_f64(const fa2_score_mod *s, double x)
{
    if (s->softcap > 0.0f) {
        const double t = tanh(x * (double)s->scale / (double)s->softcap);
        return (double)s->scale * (1.0 - t * t);
    }
    return (double)s->scale;
}

/* ---- sinks ---------------------------------------------------------------- */

/* A row's online-softmax state before any key, with a sink `sink` in the
 * softmax's units (fa2_score_mod's sink_u, c): m = sink and l = its
 * weight relative to the rounded max, exactly as a key's would be. A -inf
 * sink is no sink (m = -inf, l = 0); a NaN or +inf sink makes l NaN, so
 * the row is NaN. */
FA2_HD static inline fa2_row_state fa2_row_state_init_sink(float sink, float c)
{
    fa2_row_state st;
    st.m = sink;
    st.l = exp2f(fa2_softmax_arg(sink, c, fa2_softmax_max_scaled(sink, c)));
    return st;
}

/* The sink's probability in the backward, from the row's LSE in log2 units
 * (fa2_bwd_lse_scaled): P_sink = exp(sink - LSE). The sink's gradient is
 * dsink = - sum over rows of P_sink D, D = rowsum(dO o O). */
FA2_HD static inline float fa2_sink_p(float sink, float lse2)
{
    return fa2_bwd_p(sink, FA2_LOG2E_F, lse2);
}

#endif /* FA2_SCORE_H */
