/* run_opts.c — the options of `fa2 run` (see run_opts.h and doc/fa2.1). */
#include "config.h"
#include "run_opts.h"
#include "args.h"

#include <string.h>

#define PROG "fa2 run"
#define MAX_SIZE ((int64_t)INT32_MAX) /* any one size; products are checked */
#define MAX_THREADS 1024              /* what the library accepts */

const char *const run_pass_names[RUN_PASS_COUNT] = {"fwd", "bwd", "fwd+bwd"};

/* in the order of the enums: the index is the value (auto: the last) */
static const char *const dtype_names[] = {"fp32", "fp16", "bf16", NULL};
static const char *const backend_names[] = {"oracle", "standard", "tiled",
                                            "cuda", "auto", NULL};
static const char *const pass_names[] = {"fwd", "bwd", "fwd+bwd", NULL};

void run_usage(FILE *f)
{
    fputs(
"usage: fa2 run [OPTIONS]\n"
"\n"
"Run one attention problem with random (seeded, normal) inputs, time it and\n"
"optionally check it against the float64 oracle. The default problem is\n"
"fp16, batch 1, 8 heads, seqlen 2048, head dim 64, causal, on the best\n"
"backend; options change only what they name. With no options at all the\n"
"check is on too.\n"
"\n"
"problem:\n"
"  --dtype fp32|fp16|bf16   element type (default fp16)\n"
"  --batch N                sequences (default 1)\n"
"  --seqlen N               query length per sequence (default 2048)\n"
"  --seqlen-k N             key/value length (default: --seqlen)\n"
"  --heads N                query heads (default 8)\n"
"  --heads-kv N             key/value heads, dividing --heads (GQA/MQA;\n"
"                           default: --heads)\n"
"  --head-dim N             a multiple of 8 from 8 to 256 (default 64)\n"
"  --causal                 causal mask, bottom-right aligned (the default)\n"
"  --no-causal              no causal mask\n"
"  --window L,R             sliding window: keys L left, R right of the\n"
"                           diagonal; -1 = unbounded (default -1,-1);\n"
"                           R > 0 needs --no-causal\n"
"  --varlen                 random lengths summing to batch*seqlen, packed\n"
"                           with cu_seqlens (batch >= 4: one empty and one\n"
"                           length-1 sequence among them)\n"
"  --seed N                 random inputs, dO, lengths, sinks and the\n"
"                           dropout seed (default 1)\n"
"  --softcap CAP            logit soft-capping: s -> CAP tanh(s / CAP)\n"
"  --alibi                  ALiBi biases, slopes 2^(-8k/heads), k = 1..heads\n"
"  --sinks                  one random N(0, 1) sink logit per query head\n"
"  --dropout P              dropout on P with probability P in [0, 1)\n"
"\n"
"run:\n"
"  --backend oracle|standard|tiled|cuda|auto\n"
"                           default auto: cuda if it runs the pass here,\n"
"                           else tiled\n"
"  --pass fwd|bwd|fwd+bwd   the pass to run and time (default fwd); bwd\n"
"                           runs the forward first, untimed, for o and lse\n"
"  --kvcache                forward through fa2_fwd_kvcache: k and v as a\n"
"                           full contiguous KV cache, q its last tokens (the\n"
"                           same attention: --check applies); fixed lengths,\n"
"                           no modifiers\n"
"  --deterministic          backward: dQ summed in a fixed order, results\n"
"                           bit-identical from run to run\n"
"  --threads N              CPU worker threads (default: online CPUs)\n"
"  --check                  compare with the float64 oracle; PASS if the max\n"
"                           error is <= 2x standard attention's in the same\n"
"                           dtype (+ a tiny floor), for each output checked:\n"
"                           O and LSE (fwd), dQ, dK, dV (bwd), all five\n"
"                           (fwd+bwd)\n"
"  --json                   print one JSON object instead of the report\n"
"  -h, --help               this text\n"
"\n"
"exit status: 0 ok, 1 check failed or library error, 2 bad usage\n", f);
}

void run_opts_default(run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->spec.dtype = FA2_DTYPE_FP16;
    o->spec.batch = 1;
    o->spec.seqlen_q = 2048;
    o->spec.seqlen_k = 0; /* 0: same as seqlen_q */
    o->spec.heads_q = 8;
    o->spec.heads_kv = 0; /* 0: same as heads_q */
    o->spec.head_dim = 64;
    o->spec.causal = 1;
    o->spec.window_left = -1;
    o->spec.window_right = -1;
    o->spec.varlen = 0;
    o->spec.seed = 1;
    o->backend = RUN_BACKEND_AUTO;
    o->pass = RUN_PASS_FWD;
    o->deterministic = 0;
    o->threads = fa2_default_num_threads();
}

static int usage_error(void)
{
    fputs("usage: " PROG " [OPTIONS]   (" PROG " --help lists them)\n", stderr);
    return 2;
}

/* Relations between options, once all are read. */
static int check_combination(run_opts *o)
{
    problem_spec *s = &o->spec;
    char why[200];
    if (s->seqlen_k == 0)
        s->seqlen_k = s->seqlen_q;
    if (s->heads_kv == 0)
        s->heads_kv = s->heads_q;
    if (s->head_dim % 8 != 0 || s->head_dim > 256) {
        fprintf(stderr, PROG ": --head-dim: %lld is not a multiple of 8 from 8 "
                "to 256\n", (long long)s->head_dim);
        return -1;
    }
    if (s->heads_q % s->heads_kv != 0) {
        fprintf(stderr, PROG ": --heads %lld is not a multiple of --heads-kv "
                "%lld\n", (long long)s->heads_q, (long long)s->heads_kv);
        return -1;
    }
    if (problem_spec_check(s, why, sizeof why) != 0) {
        fprintf(stderr, PROG ": %s\n", why);
        return -1;
    }
    if (s->dropout_p >= 1.0f) {
        fprintf(stderr, PROG ": --dropout %g is not a probability in [0, 1)\n",
                (double)s->dropout_p);
        return -1;
    }
    if (o->kvcache && (o->pass != RUN_PASS_FWD || s->varlen || s->softcap > 0.0f ||
                       s->alibi || s->sinks || s->dropout_p > 0.0f)) {
        fprintf(stderr, PROG ": --kvcache runs the forward over fixed lengths "
                "without score modifiers or dropout\n");
        return -1;
    }
    if (s->causal && s->window_right > 0) {
        /* causal would silently cut the window's right side to 0 */
        fprintf(stderr, PROG ": --window %lld,%lld opens %lld keys right of "
                "the diagonal, which the causal mask (the default) hides; add "
                "--no-causal, or give R = 0\n", (long long)s->window_left,
                (long long)s->window_right, (long long)s->window_right);
        return -1;
    }
    return 0;
}

int run_opts_parse(run_opts *o, int argc, char **argv)
{
    problem_spec *s = &o->spec;
    int dtype, pass;
    int64_t window[2];
    run_opts_default(o);
    window[0] = s->window_left;
    window[1] = s->window_right;
    dtype = (int)s->dtype;
    pass = (int)o->pass;
    if (argc == 0) /* the embedded default problem, checked */
        o->check = 1;
    const opt opts[] = {
        OPT_CHOICE_("--dtype", &dtype, dtype_names),
        OPT_I64_("--batch", &s->batch, 1, MAX_SIZE),
        OPT_I64_("--seqlen", &s->seqlen_q, 1, MAX_SIZE),
        OPT_I64_("--seqlen-k", &s->seqlen_k, 1, MAX_SIZE),
        OPT_I64_("--heads", &s->heads_q, 1, MAX_SIZE),
        OPT_I64_("--heads-kv", &s->heads_kv, 1, MAX_SIZE),
        OPT_I64_("--head-dim", &s->head_dim, 1, MAX_SIZE),
        OPT_FLAG_("--causal", &s->causal, 1),
        OPT_FLAG_("--no-causal", &s->causal, 0),
        OPT_PAIR_("--window", window, -1, MAX_SIZE),
        OPT_FLAG_("--varlen", &s->varlen, 1),
        OPT_U64_("--seed", &s->seed),
        OPT_CALL_("--softcap", &s->softcap, opt_nonneg_float),
        OPT_FLAG_("--alibi", &s->alibi, 1),
        OPT_FLAG_("--sinks", &s->sinks, 1),
        OPT_CALL_("--dropout", &s->dropout_p, opt_nonneg_float),
        OPT_CHOICE_("--backend", &o->backend, backend_names),
        OPT_CHOICE_("--pass", &pass, pass_names),
        OPT_FLAG_("--deterministic", &o->deterministic, 1),
        OPT_FLAG_("--kvcache", &o->kvcache, 1),
        OPT_INT_("--threads", &o->threads, 1, MAX_THREADS),
        OPT_FLAG_("--check", &o->check, 1),
        OPT_FLAG_("--json", &o->json, 1),
    };
    const int rc = opt_parse(PROG, opts, OPT_COUNT(opts), argc, argv);
    if (rc == 1)
        o->help = 1;
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    s->dtype = (fa2_dtype)dtype;
    s->window_left = window[0];
    s->window_right = window[1];
    o->pass = (run_pass)pass;
    if (o->backend == 4)
        o->backend = RUN_BACKEND_AUTO;
    if (check_combination(o) != 0)
        return usage_error();
    return 0;
}
