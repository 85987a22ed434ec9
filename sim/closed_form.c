/* closed_form.c — the global bytes of every schedule in closed form, with no
 * simulation: exact for the given tiles, partial tiles and mask skipping
 * included. The simulated counts (without L2) must equal these exactly;
 * tests/test_sim_closed_form.c checks it over a grid. Also the compulsory
 * bytes, a lower bound for any exact schedule.
 *
 * The mask geometry is derived here from its definition, independently of
 * lib/fa2_tile.h: query row i (aligned to the end of the keys, offset
 * off = Nk - Nq) sees key j iff i + off - wl <= j <= i + off + wr, with wl
 * or wr = -1 for an unbounded side and wr = 0 when causal. Per sequence,
 * with E = d * es bytes a row, Hq query heads, Hkv key/value heads:
 *
 *   R(i)  key rows loaded by query block i: the key tiles of width Bc that
 *         the columns seen by its rows touch, clipped to Nk;
 *   Q(j)  query rows loaded for key block j: the query tiles of height Br
 *         that the rows seeing its columns touch, clipped to Nq.
 *
 * FA2 forward   read  Hq Nq E (Q) + 2 Hq E sum_i R(i) (K, V)
 *               write Hq Nq (E + 4) (O, LSE)
 * FA2 backward  read  2 Hq Nq E (O, dO: preprocess) + 2 Hkv Nk E (K, V)
 *                     + Hq sum_j Q(j) (2E + 8 + 4d) (Q, dO, LSE, D, dQaccum)
 *                     + Hq Nq 4d (dQaccum: postprocess)
 *               write Hq Nq (4 + 4d) (D, dQaccum cleared) + 2 Hkv Nk E
 *                     (dK, dV) + Hq 4d sum_j Q(j) (dQaccum) + Hq Nq E (dQ)
 * FA1 forward   read  2 Hq Nk E (K, V) + Hq sum_j Q(j) (2E + 8)
 *               write Hq Nq (E + 8) (initial O, l, m) + Hq sum_j Q(j) (E + 8)
 * FA1 backward  read  2 Hkv Nk E + Hq sum_j Q(j) (3E + 4d + 8) + Hq Nq 4d
 *               write Hq Nq 4d (dQ = 0) + 2 Hkv Nk E + Hq 4d sum_j Q(j)
 *                     + Hq Nq E (dQ)
 * Standard      with Tr = ceil(Nq/Br), Tc = ceil(Nk/Bc), N2 = Nq Nk es:
 *   forward     read  Hq (Tc Nq E + 2 Tr Nk E + 2 N2)   write Hq (2 N2 + Nq E)
 *   backward    read  Hq (3 Tc Nq E + 2 Tr Nk E + 5 N2) write Hq (2 N2 + Nq E)
 *                     + 2 Hkv Nk E
 * Decode      (KV cache, splits P, packed rows R = Nq g, g = Hq / Hkv, row
 *             blocks of Br packed rows, key tiles of Bc; per (key head, row
 *             block ib, split s), K(ib, s) = the key rows of chunk s of the
 *             tiles the block's queries see, clipped to Nk):
 *               append  read 2 Hkv Nnew E (k_new, v_new), write 2 Hkv Nnew E
 *               decode  read Hkv (P R E + 2 E sum_ib,s K(ib, s))
 *                       write Hkv R (E + 4) with P = 1, else Hkv P R (4d + 4)
 *               combine read Hq Nq P 4 (LSE partials) + 4d (the partials
 *                       whose chunk a query sees), write Hq Nq (E + 4)
 * Without masks R(i) = Nk and sum_j Q(j) = Tc Nq: FA2's forward reads
 * Nq E (1 + 2 Tr Nk / Nq) per head, Theta(N^2 d / Br); FA1's reads and
 * writes Theta(Tc N d) = Theta(N^2 d^2 / M) with Bc = M / 4d; standard's
 * Theta(N d + N^2) (doc/io-complexity.md). */
#include "config.h"
#include "sim.h"

#include <string.h>

typedef struct cf_seq {
    int64_t nq, nk, off, wl, wr;
} cf_seq;

static cf_seq cf_make(const sim_setup *S, int64_t b)
{
    const fa2_seq s = fa2_problem_seq(&S->p, b);
    cf_seq q;
    q.nq = s.seqlen_q;
    q.nk = s.seqlen_k;
    q.off = s.seqlen_k - s.seqlen_q;
    q.wl = S->p.window_left < 0 ? -1 : S->p.window_left;
    q.wr = S->p.causal ? 0 : (S->p.window_right < 0 ? -1 : S->p.window_right);
    return q;
}

/* Key columns [*c0, *c1) seen by some row of [r0, r1); empty: *c0 == *c1. */
static void cf_cols(const cf_seq *q, int64_t r0, int64_t r1, int64_t *c0,
                    int64_t *c1)
{
    int64_t lo = q->wl < 0 ? 0 : sim_max(0, r0 + q->off - q->wl);
    int64_t hi = q->wr < 0 ? q->nk : sim_min(q->nk, r1 + q->off + q->wr);
    if (r1 <= r0 || hi <= lo)
        lo = hi = 0;
    *c0 = lo;
    *c1 = hi;
}

/* Query rows [*r0, *r1) that see some column of [c0, c1). */
static void cf_rows(const cf_seq *q, int64_t c0, int64_t c1, int64_t *r0,
                    int64_t *r1)
{
    c1 = sim_min(c1, q->nk);
    int64_t lo = q->wr < 0 ? 0 : sim_max(0, c0 - q->wr - q->off);
    int64_t hi = q->wl < 0 ? q->nq : sim_min(q->nq, c1 + q->wl - q->off);
    if (c1 <= c0 || hi <= lo)
        lo = hi = 0;
    *r0 = lo;
    *r1 = hi;
}

/* The rows of the tiles of height h covering [lo, hi), clipped to n. */
static int64_t tiles_rows(int64_t lo, int64_t hi, int64_t h, int64_t n)
{
    if (hi <= lo)
        return 0;
    return sim_min(n, fa2_ceil_div(hi, h) * h) - lo / h * h;
}

/* sum_i R(i): key rows loaded over all query blocks (tiles bm x bn). */
static int64_t sum_R(const cf_seq *q, int64_t bm, int64_t bn)
{
    int64_t sum = 0;
    for (int64_t r0 = 0; r0 < q->nq; r0 += bm) {
        int64_t c0, c1;
        cf_cols(q, r0, sim_min(r0 + bm, q->nq), &c0, &c1);
        sum += tiles_rows(c0, c1, bn, q->nk);
    }
    return sum;
}

/* sum_j Q(j): query rows loaded over all key blocks. */
static int64_t sum_Q(const cf_seq *q, int64_t bm, int64_t bn)
{
    int64_t sum = 0;
    for (int64_t c0 = 0; c0 < q->nk; c0 += bn) {
        int64_t r0, r1;
        cf_rows(q, c0, c0 + bn, &r0, &r1);
        sum += tiles_rows(r0, r1, bm, q->nq);
    }
    return sum;
}

#define RD(t, x) (out->tensor_read[FA2_SIM_T_##t] += (x))
#define WR(t, x) (out->tensor_written[FA2_SIM_T_##t] += (x))

static void cf_fa2(const sim_setup *S, const cf_seq *q, fa2_sim_counters *out)
{
    const int64_t Hq = S->p.heads_q, Hkv = S->p.heads_kv, E = S->E;
    const int64_t d4 = 4 * S->p.head_dim;
    if (S->pass & FA2_SIM_PASS_FWD) {
        const int64_t kv = sum_R(q, S->fwd.bm, S->fwd.bn);
        RD(Q, Hq * q->nq * E);
        RD(K, Hq * E * kv);
        RD(V, Hq * E * kv);
        WR(O, Hq * q->nq * E);
        WR(LSE, Hq * q->nq * 4);
    }
    if (S->pass & FA2_SIM_PASS_BWD) {
        const int64_t qr = sum_Q(q, S->bwd.bm, S->bwd.bn);
        const int64_t accs = S->det ? 2 : 1; /* deterministic: two accumulators */
        RD(O, Hq * q->nq * E); /* preprocess */
        RD(DO, Hq * q->nq * E);
        WR(D, Hq * q->nq * 4);
        WR(DQ_ACCUM, accs * Hq * q->nq * d4);
        RD(K, Hkv * q->nk * E); /* main */
        RD(V, Hkv * q->nk * E);
        WR(DK, Hkv * q->nk * E);
        WR(DV, Hkv * q->nk * E);
        RD(Q, Hq * E * qr);
        RD(DO, Hq * E * qr);
        RD(LSE, Hq * 4 * qr);
        RD(D, Hq * 4 * qr);
        RD(DQ_ACCUM, Hq * d4 * qr);
        WR(DQ_ACCUM, Hq * d4 * qr);
        RD(DQ_ACCUM, accs * Hq * q->nq * d4); /* postprocess */
        WR(DQ, Hq * q->nq * E);
    }
}

static void cf_fa1(const sim_setup *S, const cf_seq *q, fa2_sim_counters *out)
{
    const int64_t Hq = S->p.heads_q, Hkv = S->p.heads_kv, E = S->E;
    const int64_t d4 = 4 * S->p.head_dim;
    const int64_t qr = sum_Q(q, S->fwd.bm, S->fwd.bn);
    if (S->pass & FA2_SIM_PASS_FWD) {
        WR(O, Hq * q->nq * E); /* initialisation */
        WR(L, Hq * q->nq * 4);
        WR(M, Hq * q->nq * 4);
        RD(K, Hq * q->nk * E);
        RD(V, Hq * q->nk * E);
        RD(Q, Hq * E * qr);
        RD(O, Hq * E * qr);
        WR(O, Hq * E * qr);
        RD(L, Hq * 4 * qr);
        RD(M, Hq * 4 * qr);
        WR(L, Hq * 4 * qr);
        WR(M, Hq * 4 * qr);
    }
    if (S->pass & FA2_SIM_PASS_BWD) {
        WR(DQ_ACCUM, Hq * q->nq * d4); /* initialisation */
        RD(K, Hkv * q->nk * E);
        RD(V, Hkv * q->nk * E);
        WR(DK, Hkv * q->nk * E);
        WR(DV, Hkv * q->nk * E);
        RD(Q, Hq * E * qr);
        RD(O, Hq * E * qr);
        RD(DO, Hq * E * qr);
        RD(L, Hq * 4 * qr);
        RD(M, Hq * 4 * qr);
        RD(DQ_ACCUM, Hq * d4 * qr);
        WR(DQ_ACCUM, Hq * d4 * qr);
        RD(DQ_ACCUM, Hq * q->nq * d4); /* conversion */
        WR(DQ, Hq * q->nq * E);
    }
}

static void cf_std(const sim_setup *S, const cf_seq *q, fa2_sim_counters *out)
{
    const int64_t Hq = S->p.heads_q, Hkv = S->p.heads_kv, E = S->E;
    const int64_t tr = fa2_num_blocks(q->nq, S->fwd.bm);
    const int64_t tc = fa2_num_blocks(q->nk, S->fwd.bn);
    const int64_t n2 = q->nq * q->nk * S->es;
    if (S->pass & FA2_SIM_PASS_FWD) {
        RD(Q, Hq * tc * q->nq * E); /* S = Q K^T */
        RD(K, Hq * tr * q->nk * E);
        WR(S, Hq * n2);
        RD(S, Hq * n2); /* softmax */
        WR(P, Hq * n2);
        RD(P, Hq * n2); /* O = P V */
        RD(V, Hq * tr * q->nk * E);
        WR(O, Hq * q->nq * E);
    }
    if (S->pass & FA2_SIM_PASS_BWD) {
        RD(P, Hq * n2); /* dV = P^T dO */
        RD(DO, Hq * tc * q->nq * E);
        WR(DV, Hkv * q->nk * E);
        RD(DO, Hq * tc * q->nq * E); /* dP = dO V^T */
        RD(V, Hq * tr * q->nk * E);
        WR(DP, Hq * n2);
        RD(P, Hq * n2); /* dS */
        RD(DP, Hq * n2);
        WR(DS, Hq * n2);
        RD(DS, Hq * n2); /* dQ = dS K */
        RD(K, Hq * tr * q->nk * E);
        WR(DQ, Hq * q->nq * E);
        RD(DS, Hq * n2); /* dK = dS^T Q */
        RD(Q, Hq * tc * q->nq * E);
        WR(DK, Hkv * q->nk * E);
    }
}

/* Decode: the chunk of split s of the tiles [t0, t1): ceil(n / P) tiles. */
static void cf_chunk(int64_t t0, int64_t t1, int64_t P, int64_t s, int64_t *c0,
                     int64_t *c1)
{
    const int64_t per = t1 > t0 ? fa2_ceil_div(t1 - t0, P) : 0;
    *c0 = sim_min(t1, t0 + s * per);
    *c1 = sim_min(t1, t0 + (s + 1) * per);
}

static void cf_decode(const sim_setup *S, const cf_seq *q, fa2_sim_counters *out)
{
    const int64_t Hq = S->p.heads_q, Hkv = S->p.heads_kv, E = S->E, g = S->group;
    const int64_t d = S->p.head_dim, P = S->dec.splits, R = q->nq * g;
    const int64_t bm = S->fwd.bm, bn = S->fwd.bn, n_new = S->dec.seqlen_new;
    RD(K_NEW, Hkv * n_new * E);
    RD(V_NEW, Hkv * n_new * E);
    WR(K, Hkv * n_new * E);
    WR(V, Hkv * n_new * E);
    RD(Q, Hkv * R * E * P); /* every split's block loads its Q tile */
    int64_t kv_rows = 0;
    for (int64_t r0 = 0; r0 < R; r0 += bm) {
        const int64_t r1 = sim_min(r0 + bm, R);
        int64_t col0, col1; /* the keys the block's queries see, as tiles */
        cf_cols(q, r0 / g, (r1 - 1) / g + 1, &col0, &col1);
        const int64_t t0 = col0 / bn, t1 = col1 > col0 ? fa2_ceil_div(col1, bn) : t0;
        for (int64_t s = 0; s < P; s++) {
            int64_t k0, k1;
            cf_chunk(t0, t1, P, s, &k0, &k1);
            if (k1 > k0)
                kv_rows += sim_min(q->nk, k1 * bn) - k0 * bn;
        }
    }
    RD(K, Hkv * kv_rows * E);
    RD(V, Hkv * kv_rows * E);
    if (P == 1) {
        WR(O, Hkv * R * E);
        WR(LSE, Hkv * R * 4);
        return;
    }
    WR(O_PARTIAL, Hkv * P * R * 4 * d);
    WR(LSE_PARTIAL, Hkv * P * R * 4);
    RD(LSE_PARTIAL, Hq * q->nq * P * 4);
    RD(O_PARTIAL, Hkv * P * R * 4 * d); /* every part, seen or not (the combine) */
    WR(O, Hq * q->nq * E);
    WR(LSE, Hq * q->nq * 4);
}

fa2_status fa2_sim_closed_form(const fa2_sim_args *args, const fa2_sim_device *dev,
                               fa2_sim_counters *out)
{
    if (!out)
        return fa2_fail(FA2_ERR_NULL_POINTER, "out is NULL");
    sim_setup S;
    const fa2_status st = sim_setup_make(args, dev, &S);
    if (st != FA2_OK)
        return st;
    memset(out, 0, sizeof *out);
    for (int64_t b = 0; b < S.p.num_seqs; b++) {
        const cf_seq q = cf_make(&S, b);
        switch (S.algo) {
        case FA2_SIM_FA2: cf_fa2(&S, &q, out); break;
        case FA2_SIM_FA1: cf_fa1(&S, &q, out); break;
        case FA2_SIM_STANDARD: cf_std(&S, &q, out); break;
        case FA2_SIM_DECODE: cf_decode(&S, &q, out); break;
        }
    }
    for (int t = 0; t < FA2_SIM_TENSOR_COUNT; t++) {
        out->global_read += out->tensor_read[t];
        out->global_written += out->tensor_written[t];
    }
    return FA2_OK;
}

/* ---- compulsory bytes -------------------------------------------------------- */

fa2_status fa2_sim_compulsory(const fa2_sim_args *args, int64_t *read,
                              int64_t *written)
{
    if (!read || !written)
        return fa2_fail(FA2_ERR_NULL_POINTER, "%s is NULL", read ? "written" : "read");
    fa2_sim_device dev;
    fa2_sim_device_builtin("h100", &dev); /* tiles do not matter here */
    sim_setup S;
    const fa2_status st = sim_setup_make(args, &dev, &S);
    if (st != FA2_OK)
        return st;
    const int64_t Hq = S.p.heads_q, Hkv = S.p.heads_kv, E = S.E, es = S.es;
    int64_t rd = 0, wr = 0;
    for (int64_t b = 0; b < S.p.num_seqs; b++) {
        const cf_seq q = cf_make(&S, b);
        /* rows that see a key, the keys some row sees (one interval: both
         * ends of a row's window grow with the row), visible pairs */
        int64_t vr = 0, vp = 0, first = -1, last = 0;
        for (int64_t i = 0; i < q.nq; i++) {
            int64_t c0, c1;
            cf_cols(&q, i, i + 1, &c0, &c1);
            if (c1 > c0) {
                vr++;
                vp += c1 - c0;
                if (first < 0)
                    first = c0;
                last = c1;
            }
        }
        const int64_t vc = first < 0 ? 0 : last - first;
        int64_t fwd_out = Hq * q.nq * E; /* O, and what the backward needs */
        int64_t bwd_in = Hq * vr * E;    /* O */
        switch (S.algo) {
        case FA2_SIM_DECODE: /* and the append: new rows read, then written */
            fwd_out += Hq * q.nq * 4 + 2 * Hkv * S.dec.seqlen_new * E;
            rd += 2 * Hkv * S.dec.seqlen_new * E;
            break;
        case FA2_SIM_FA2:
            fwd_out += Hq * q.nq * 4;
            bwd_in += Hq * vr * 4;
            break;
        case FA2_SIM_FA1:
            fwd_out += Hq * q.nq * 8;
            bwd_in += Hq * vr * 8;
            break;
        case FA2_SIM_STANDARD:
            fwd_out += Hq * vp * es;
            bwd_in = Hq * vp * es; /* P, not O */
            break;
        }
        const int64_t qkv = Hq * vr * E + 2 * Hkv * vc * E;
        const int64_t grads = Hq * q.nq * E + 2 * Hkv * q.nk * E;
        switch (S.pass) {
        case FA2_SIM_PASS_FWD:
            rd += qkv;
            wr += fwd_out;
            break;
        case FA2_SIM_PASS_BWD:
            rd += qkv + Hq * vr * E /* dO */ + bwd_in;
            wr += grads;
            break;
        case FA2_SIM_PASS_FWD_BWD:
            rd += qkv + Hq * vr * E;
            wr += fwd_out + grads;
            break;
        }
    }
    *read = rd;
    *written = wr;
    fa2_clear_error();
    return FA2_OK;
}
