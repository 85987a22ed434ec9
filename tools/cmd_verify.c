/* cmd_verify.c — `fa2 verify [options] DIR`: check another implementation's
 * attention, saved as .npy files in DIR, against the float64 oracle and the
 * bound (lib/check/verify.c does the work; this parses and calls it). Exits 0
 * when every output passes, 1 when one fails, 2 on bad usage or files. */
#include "args.h"
#include "commands.h"
#include "fa2.h"
#include "fa2_verify.h"

#include <stdio.h>
#include <stdlib.h>

#define PROG "fa2 verify"

/* A whole real number ("nan" too, for --fill): 0, else a message and -1. */
static int parse_real(void *out, const char *text)
{
    char *end;
    *(double *)out = strtod(text, &end);
    if (end == text || *end) {
        fprintf(stderr, "fa2 verify: '%s' is not a number\n", text);
        return -1;
    }
    return 0;
}

static int usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: fa2 verify [--causal] [--window L,R] [--scale S] [--block M,N]\n"
            "                  [--dtype fp16|bf16] [--fill nan|VALUE] [--worst N] DIR\n"
            "DIR (the last argument) holds q.npy k.npy v.npy o.npy [lse dout dq dk dv\n"
            "cu_seqlens_q/_k].npy: float32, float16, ml_dtypes bfloat16, or uint16\n"
            "bits with --dtype.\n");
    return rc;
}

int fa2_cmd_verify(int argc, char **argv)
{
    static const char *const dts[] = {"fp16", "bf16", NULL};
    int causal = 0, dtc = -1; /* dtc: --dtype's index, -1 unset */
    int64_t window[2] = {-1, -1}, block[2] = {0, 0}, worst = 5;
    double scale = 0, fill = 0;
    const opt opts[] = {
        OPT_FLAG_("--causal", &causal, 1),
        OPT_PAIR_("--window", window, -1, INT32_MAX),
        OPT_CALL_("--scale", &scale, parse_real),
        OPT_PAIR_("--block", block, 1, 256),
        OPT_CHOICE_("--dtype", &dtc, dts),
        OPT_CALL_("--fill", &fill, parse_real),
        OPT_I64_("--worst", &worst, 0, 16),
    };
    /* the directory is the last argument; the table parses the rest */
    const char *dir = argc > 0 && argv[argc - 1][0] != '-' ? argv[argc - 1] : NULL;
    const int parsed = opt_parse(PROG, opts, OPT_COUNT(opts), dir ? argc - 1 : argc, argv);
    if (parsed)
        return parsed == 1 ? usage(0) : 2;
    const int dt16 = dtc < 0 ? 0 : dtc == 0 ? FA2_DTYPE_FP16 : FA2_DTYPE_BF16;
    if (!dir)
        return usage(2);
    const fa2_verify_opts vo = {causal, window[0], window[1], scale, block[0], block[1],
                                dt16, fill, (int)worst};
    return fa2_verify_dir(dir, &vo, stdout, stderr);
}
