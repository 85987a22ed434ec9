/* args.c — strict parsing of option values (see args.h). */
#include "config.h"
#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void arg_cursor_init(arg_cursor *c, const char *prog, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->argc = argc;
    c->argv = argv;
    c->i = -1;
    c->prog = prog;
}

int arg_next(arg_cursor *c)
{
    if (++c->i >= c->argc)
        return 0;
    const char *arg = c->argv[c->i];
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    c->value = NULL;
    c->name = arg;
    if (eq) {
        size_t n = (size_t)(eq - arg);
        if (n >= sizeof c->name_buf)
            n = sizeof c->name_buf - 1; /* too long to be an option anyway */
        memcpy(c->name_buf, arg, n);
        c->name_buf[n] = '\0';
        c->name = c->name_buf;
        c->value = eq + 1;
    }
    return 1;
}

int arg_has_inline_value(const arg_cursor *c) { return c->value != NULL; }

const char *arg_value(arg_cursor *c)
{
    if (c->value)
        return c->value;
    if (c->i + 1 >= c->argc) {
        fprintf(stderr, "%s: %s needs a value\n", c->prog, c->name);
        return NULL;
    }
    return c->argv[++c->i];
}

/* Leading whitespace and '+' are refused: strtoll would accept them. */
static int plain_number_start(const char *s, int allow_minus)
{
    if (*s == '-' && allow_minus)
        s++;
    return *s >= '0' && *s <= '9';
}

int arg_parse_i64(const arg_cursor *c, const char *text, int64_t min,
                  int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;
    errno = 0;
    if (!plain_number_start(text, 1) ||
        (v = strtoll(text, &end, 10), errno != 0) || *end != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not an integer%s\n", c->prog, c->name,
                text, errno == ERANGE ? " in range" : "");
        return -1;
    }
    if (v < min || v > max) {
        fprintf(stderr, "%s: %s: %lld is out of range (expected %" PRId64
                " .. %" PRId64 ")\n", c->prog, c->name, v, min, max);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int arg_parse_u64(const arg_cursor *c, const char *text, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;
    errno = 0;
    if (!plain_number_start(text, 0) ||
        (v = strtoull(text, &end, 0), errno != 0) || *end != '\0') {
        fprintf(stderr, "%s: %s: '%s' is not a non-negative integer that fits "
                "in 64 bits\n", c->prog, c->name, text);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int arg_parse_i64_pair(const arg_cursor *c, const char *text, int64_t min,
                       int64_t max, int64_t *a, int64_t *b)
{
    const char *comma = strchr(text, ',');
    char first[32];
    if (!comma || (size_t)(comma - text) >= sizeof first) {
        fprintf(stderr, "%s: %s: '%s' is not a pair A,B of integers\n", c->prog,
                c->name, text);
        return -1;
    }
    memcpy(first, text, (size_t)(comma - text));
    first[comma - text] = '\0';
    if (arg_parse_i64(c, first, min, max, a) != 0 ||
        arg_parse_i64(c, comma + 1, min, max, b) != 0)
        return -1;
    return 0;
}

int arg_parse_choice(const arg_cursor *c, const char *text,
                     const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    fprintf(stderr, "%s: %s: '%s' is not one of", c->prog, c->name, text);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fputc('\n', stderr);
    return -1;
}
