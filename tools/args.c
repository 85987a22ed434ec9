/* args.c — the option parser of every subcommand (see args.h). */
#include "config.h"
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Leading whitespace and '+' are refused: strtoll would accept them. */
static int plain_number_start(const char *s, int allow_minus)
{
    if (*s == '-' && allow_minus)
        s++;
    return *s >= '0' && *s <= '9';
}

int opt_parse_i64(const char *prog, const char *name, const char *text,
                  int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v = 0;
    errno = 0;
    int ok = plain_number_start(text, 1) &&
             (v = strtoll(text, &end, 10), errno == 0);
    if (ok && (*end == 'k' || *end == 'K')) {
        if (v > INT64_MAX / 1024 || v < INT64_MIN / 1024)
            errno = ERANGE, ok = 0;
        v *= 1024;
        end++;
    }
    if (!ok || *end != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not an integer%s\n", prog, name, text,
                errno == ERANGE ? " in range" : "");
        return -1;
    }
    if (v < min || v > max) {
        fprintf(stderr, "%s: %s: %lld is out of range (expected %" PRId64
                " .. %" PRId64 ")\n", prog, name, v, min, max);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int parse_u64(const char *prog, const char *name, const char *text,
                     uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;
    errno = 0;
    if (!plain_number_start(text, 0) ||
        (v = strtoull(text, &end, 0), errno != 0) || *end != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not a non-negative integer that fits "
                "in 64 bits\n", prog, name, text);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static int parse_choice(const char *prog, const opt *o, const char *text)
{
    for (int i = 0; o->choices[i]; i++)
        if (strcmp(text, o->choices[i]) == 0)
            return i;
    fprintf(stderr, "%s: %s: '%s' is not one of", prog, o->name, text);
    for (int i = 0; o->choices[i]; i++)
        fprintf(stderr, "%s %s", i ? "," : "", o->choices[i]);
    fputc('\n', stderr);
    return -1;
}

/* "a,b,c": each item through parse_choice or opt_parse_i64. */
static int parse_list(const char *prog, const opt *o, const char *text)
{
    char buf[512];
    int n = 0;
    if (strlen(text) >= sizeof buf || !*text || text[strlen(text) - 1] == ',') {
        fprintf(stderr, "%s: %s: '%s' is not a list A,B,..\n", prog, o->name, text);
        return -1;
    }
    strcpy(buf, text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == OPT_LIST_MAX) {
            fprintf(stderr, "%s: %s: more than %d entries\n", prog, o->name,
                    OPT_LIST_MAX);
            return -1;
        }
        if (o->kind == OPT_CHOICES) {
            const int k = parse_choice(prog, o, tok);
            if (k < 0)
                return -1;
            ((int *)o->out)[n++] = k;
        } else if (opt_parse_i64(prog, o->name, tok, o->min, o->max,
                                 (int64_t *)o->out + n++)) {
            return -1;
        }
    }
    *o->count = n;
    return 0;
}

static int parse_pair(const char *prog, const opt *o, const char *text)
{
    const char *comma = strchr(text, ',');
    char first[32];
    int64_t *out = o->out;
    if (!comma || (size_t)(comma - text) >= sizeof first) {
        fprintf(stderr, "%s: %s: '%s' is not a pair A,B of integers\n", prog,
                o->name, text);
        return -1;
    }
    memcpy(first, text, (size_t)(comma - text));
    first[comma - text] = '\0';
    return opt_parse_i64(prog, o->name, first, o->min, o->max, &out[0]) ||
                   opt_parse_i64(prog, o->name, comma + 1, o->min, o->max, &out[1])
               ? -1
               : 0;
}

/* The value of one option; 0 ok, -1 bad (message printed). */
static int take(const char *prog, const opt *o, const char *v)
{
    int64_t x;
    int k;
    switch (o->kind) {
    case OPT_FLAG:
        *(int *)o->out = o->value;
        return 0;
    case OPT_INT:
        if (opt_parse_i64(prog, o->name, v, o->min, o->max, &x))
            return -1;
        *(int *)o->out = (int)x;
        return 0;
    case OPT_I64:
        return opt_parse_i64(prog, o->name, v, o->min, o->max, o->out);
    case OPT_U64:
        return parse_u64(prog, o->name, v, o->out);
    case OPT_PAIR:
        return parse_pair(prog, o, v);
    case OPT_CHOICE:
        if ((k = parse_choice(prog, o, v)) < 0)
            return -1;
        *(int *)o->out = k;
        return 0;
    case OPT_CHOICES:
    case OPT_I64S:
        return parse_list(prog, o, v);
    case OPT_STRING:
        *(const char **)o->out = v;
        return 0;
    case OPT_CALL:
        return o->call(o->out, v) ? -1 : 0;
    }
    return -1;
}

int opt_nonneg_float(void *out, const char *value)
{
    char *end = NULL;
    errno = 0;
    const double x = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(x) || x < 0.0 || x > FLT_MAX) {
        fprintf(stderr, "fa2: '%s' is not a finite number >= 0\n", value);
        return -1;
    }
    *(float *)out = (float)x;
    return 0;
}

static int usage_error(const char *prog)
{
    fprintf(stderr, "%s --help lists the options\n", prog);
    return 2;
}

int opt_parse(const char *prog, const opt *opts, int n, int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        const size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const opt *o = NULL;
        for (int k = 0; k < n && !o; k++)
            if (strlen(opts[k].name) == len && !strncmp(arg, opts[k].name, len))
                o = &opts[k];
        if (!o) {
            fprintf(stderr, arg[0] == '-' ? "%s: unknown option '%s'\n"
                                          : "%s: unexpected argument '%s'\n",
                    prog, arg);
            return usage_error(prog);
        }
        if (o->kind == OPT_FLAG && eq) {
            fprintf(stderr, "%s: %s takes no value\n", prog, o->name);
            return usage_error(prog);
        }
        if (o->kind != OPT_FLAG) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                fprintf(stderr, "%s: %s needs a value\n", prog, o->name);
                return usage_error(prog);
            }
        }
        if (take(prog, o, value))
            return usage_error(prog);
    }
    return 0;
}
