/*
 * fa2_philox.h — the counter-based generator dropout draws from: Philox
 * 4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011), and fa2's rule for which of its output words decides
 * whether element (sequence b, head h, row i, column j) is kept.
 *
 * A counter-based generator is a pure function of (key, counter): any
 * thread, tile or device that needs element (b, h, i, j)'s decision
 * computes it from those indices alone, so the pattern cannot depend on the
 * tiling, the thread count or the device, and the backward recomputes it
 * instead of storing it. Everything is `static inline` and compiles as C11
 * and as CUDA (FA2_HD, from fa2_tile.h).
 */
#ifndef FA2_PHILOX_H
#define FA2_PHILOX_H

#include <stdint.h>

#include "fa2_tile.h"

/* The round constants (multipliers) and the key schedule's increments
 * (Weyl sequence: the golden ratio and sqrt(3) - 1, in 32-bit fixed point),
 * as in the paper. */
#define FA2_PHILOX_M0 0xD2511F53u
#define FA2_PHILOX_M1 0xCD9E8D57u
#define FA2_PHILOX_W0 0x9E3779B9u
#define FA2_PHILOX_W1 0xBB67AE85u

typedef struct fa2_philox_ctr {
    uint32_t v[4];
} fa2_philox_ctr;

/* One round: two 32x32->64 multiplies; the high halves are mixed with the
 * other two words and the key, and the words change places. */
FA2_HD static inline fa2_philox_ctr fa2_philox_round(fa2_philox_ctr c,
                                                     uint32_t k0, uint32_t k1)
{
    const uint64_t p0 = (uint64_t)FA2_PHILOX_M0 * c.v[0];
    const uint64_t p1 = (uint64_t)FA2_PHILOX_M1 * c.v[2];
    fa2_philox_ctr r;
    r.v[0] = (uint32_t)(p1 >> 32) ^ c.v[1] ^ k0;
    r.v[1] = (uint32_t)p1;
    r.v[2] = (uint32_t)(p0 >> 32) ^ c.v[3] ^ k1;
    r.v[3] = (uint32_t)p0;
    return r;
}

/* Philox 4x32 with 10 rounds: the key advances by (W0, W1) between rounds. */
FA2_HD static inline fa2_philox_ctr fa2_philox4x32_10(fa2_philox_ctr c,
                                                      uint32_t k0, uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += FA2_PHILOX_W0;
            k1 += FA2_PHILOX_W1;
        }
        c = fa2_philox_round(c, k0, k1);
    }
    return c;
}

/* ---- dropout's use of it (doc/algorithm.md, "Dropout") ------------------ */

/* Everything a dropout decision needs, fixed for one call. */
typedef struct fa2_dropout {
    uint32_t key0, key1;   /* seed's low and high 32 bits                   */
    uint32_t offset_lo;    /* offset's low 32 bits: counter word 3          */
    uint32_t threshold;    /* T << 16: a 16-bit draw h is dropped iff       */
                           /* (h << 16) < threshold, i.e. h < T             */
    float scale;           /* 1 / (1 - p), rounded once to float           */
    int enabled;           /* T > 0                                         */
} fa2_dropout;

/* The parameters of one call: seed and offset as the caller gave them, p
 * in [0, 1). A decision is one 16-bit half of a Philox word (eight per
 * call), dropped iff below T = round(p 2^16) (at most 65535), so P(drop) =
 * T / 2^16 is within 2^-17 of p; p < 2^-17 gives T = 0, no element
 * dropped, and dropout counts as off. The scale is the caller's 1 / (1 - p)
 * (the expectation is then off by at most 2^-17 / (1 - p) relative, far
 * below a bf16 or fp16 ulp). The offset's high 32 bits are added to the
 * key's high word, so a 64-bit offset changes the whole stream. */
FA2_HD static inline fa2_dropout fa2_dropout_make(double p, uint64_t seed,
                                                  uint64_t offset)
{
    fa2_dropout d;
    const double t = p * 65536.0 + 0.5;
    const uint32_t T = t >= 65535.0 ? 65535u : t > 0.0 ? (uint32_t)t : 0u;
    d.enabled = T > 0;
    d.threshold = T << 16;
    d.scale = d.enabled ? (float)(1.0 / (1.0 - p)) : 1.0f;
    d.key0 = (uint32_t)seed;
    d.key1 = (uint32_t)(seed >> 32) + (uint32_t)(offset >> 32);
    d.offset_lo = (uint32_t)offset;
    return d;
}

/* The counter of the group of eight columns j = 8 g .. 8 g + 7 of row i of
 * head h of sequence b: (g, i, b * heads_q + h, offset_lo). Rows and
 * columns count within the sequence (varlen: from its first token). */
FA2_HD static inline fa2_philox_ctr fa2_dropout_ctr(const fa2_dropout *d,
                                                    int64_t bh, int64_t i,
                                                    int64_t j)
{
    fa2_philox_ctr c;
    c.v[0] = (uint32_t)(j >> 3);
    c.v[1] = (uint32_t)i;
    c.v[2] = (uint32_t)bh;
    c.v[3] = d->offset_lo;
    return c;
}

/* The four words of column group j >> 3. */
FA2_HD static inline fa2_philox_ctr fa2_dropout_words(const fa2_dropout *d,
                                                      int64_t bh, int64_t i,
                                                      int64_t j)
{
    return fa2_philox4x32_10(fa2_dropout_ctr(d, bh, i, j), d->key0, d->key1);
}

/* The eight decisions of one group as bits: bit k (1 = kept) is column
 * 8 g + k, decided by the low half of word k / 2 for even k and by its
 * high half for odd k. */
FA2_HD static inline uint32_t fa2_dropout_keep8(const fa2_dropout *d, fa2_philox_ctr w)
{
    uint32_t kept = 0;
    for (int k = 0; k < 4; k++) {
        kept |= (uint32_t)((w.v[k] << 16) >= d->threshold) << (2 * k);
        kept |= (uint32_t)(w.v[k] >= d->threshold) << (2 * k + 1);
    }
    return kept;
}

/* Is element (bh = b * heads_q + h, row i, column j) kept? 1 or 0. */
FA2_HD static inline int fa2_dropout_keep(const fa2_dropout *d, int64_t bh,
                                          int64_t i, int64_t j)
{
    return (int)(fa2_dropout_keep8(d, fa2_dropout_words(d, bh, i, j)) >> (j & 7)) & 1;
}

/* The factor the end of the row multiplies the accumulator by: 1 / l, and
 * with dropout (1 / l) * (1 / (1 - p)), the product rounded once. The
 * kept P enter the accumulator unscaled (round(P) or 0). */
FA2_HD static inline float fa2_dropout_out_scale(const fa2_dropout *d,
                                                 float inv_l)
{
    return d->enabled ? FA2_MUL_RN(inv_l, d->scale) : inv_l;
}

#endif /* FA2_PHILOX_H */
