/* args.h — the one option parser of the fa2 subcommands. Each subcommand
 * describes its options in a table (name, kind, where the value goes,
 * range) and opt_parse does the rest: "--name VALUE" and "--name=VALUE",
 * -h/--help, and strict values: a value is accepted only if all of it
 * parses ("12x", "", " 3" and out-of-range numbers are refused, never
 * truncated or clamped). Integers may end in k (x 1024). */
#ifndef FA2_TOOLS_ARGS_H
#define FA2_TOOLS_ARGS_H

#include <stdint.h>

typedef enum opt_kind {
    OPT_FLAG,    /* no value: *(int *)out = value                          */
    OPT_INT,     /* int in [min, max]                                      */
    OPT_I64,     /* int64_t in [min, max]                                  */
    OPT_U64,     /* uint64_t, decimal or 0x hex                            */
    OPT_PAIR,    /* "A,B": int64_t out[2], each in [min, max]              */
    OPT_CHOICE,  /* one of choices: *(int *)out = its index                */
    OPT_CHOICES, /* "a,b": indices into (int *)out, *count of them         */
    OPT_I64S,    /* "1,2": int64_t list into out, *count of them           */
    OPT_STRING,  /* *(const char **)out = the value                        */
    OPT_CALL     /* call(out, value): 0 ok, else it printed why            */
} opt_kind;

#define OPT_LIST_MAX 16 /* entries of an OPT_CHOICES / OPT_I64S list */

typedef struct opt {
    const char *name; /* "--seqlen"                                         */
    opt_kind kind;
    void *out;
    int64_t min, max;           /* OPT_INT, OPT_I64, OPT_PAIR, OPT_I64S    */
    const char *const *choices; /* OPT_CHOICE(S): NULL-terminated          */
    int *count;                 /* OPT_CHOICES, OPT_I64S                   */
    int value;                  /* OPT_FLAG                                */
    int (*call)(void *out, const char *value);
} opt;

/* Table entries. */
#define OPT_FLAG_(n, p, v) {.name = n, .kind = OPT_FLAG, .out = p, .value = v}
#define OPT_INT_(n, p, lo, hi) \
    {.name = n, .kind = OPT_INT, .out = p, .min = lo, .max = hi}
#define OPT_I64_(n, p, lo, hi) \
    {.name = n, .kind = OPT_I64, .out = p, .min = lo, .max = hi}
#define OPT_U64_(n, p) {.name = n, .kind = OPT_U64, .out = p}
#define OPT_PAIR_(n, p, lo, hi) \
    {.name = n, .kind = OPT_PAIR, .out = p, .min = lo, .max = hi}
#define OPT_CHOICE_(n, p, c) {.name = n, .kind = OPT_CHOICE, .out = p, .choices = c}
#define OPT_CHOICES_(n, p, c, cnt) \
    {.name = n, .kind = OPT_CHOICES, .out = p, .choices = c, .count = cnt}
#define OPT_I64S_(n, p, lo, hi, cnt) \
    {.name = n, .kind = OPT_I64S, .out = p, .min = lo, .max = hi, .count = cnt}
#define OPT_STRING_(n, p) {.name = n, .kind = OPT_STRING, .out = p}
#define OPT_CALL_(n, p, fn) {.name = n, .kind = OPT_CALL, .out = p, .call = fn}
#define OPT_COUNT(table) ((int)(sizeof(table) / sizeof((table)[0])))

/* An OPT_CALL parser: a finite number >= 0 into *(float *)out, all of the
 * value parsed; prints why to stderr otherwise. */
int opt_nonneg_float(void *out, const char *value);

/* Parse argv against the table (n entries). Returns 0 when every argument
 * parsed, 1 when -h or --help was given (nothing else is reported), 2
 * after printing "PROG: what is wrong" and "PROG --help lists the options"
 * to stderr. */
int opt_parse(const char *prog, const opt *opts, int n, int argc, char **argv);

/* A whole decimal integer with an optional k (x 1024) suffix, in [min,
 * max]; on failure print "PROG: NAME: ..." to stderr and return -1. */
int opt_parse_i64(const char *prog, const char *name, const char *text,
                  int64_t min, int64_t max, int64_t *out);

#endif
