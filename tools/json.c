/* json.c — a flat JSON object writer (see json.h). One line per object, so
 * that results of many runs can be appended to one file (JSON Lines). */
#include "config.h"
#include "json.h"

#include <inttypes.h>
#include <math.h>

static void write_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", (unsigned)*p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void key(json_writer *w, const char *k)
{
    if (w->count++)
        fputs(", ", w->f);
    write_escaped(w->f, k);
    fputs(": ", w->f);
}

void json_begin(json_writer *w, FILE *f)
{
    w->f = f;
    w->count = 0;
    fputc('{', f);
}

void json_string(json_writer *w, const char *k, const char *value)
{
    key(w, k);
    if (value)
        write_escaped(w->f, value);
    else
        fputs("null", w->f);
}

void json_int(json_writer *w, const char *k, int64_t value)
{
    key(w, k);
    fprintf(w->f, "%" PRId64, value);
}

void json_uint(json_writer *w, const char *k, uint64_t value)
{
    key(w, k);
    fprintf(w->f, "%" PRIu64, value);
}

void json_number(json_writer *w, const char *k, double value)
{
    key(w, k);
    if (isfinite(value))
        fprintf(w->f, "%.9g", value);
    else
        fputs("null", w->f);
}

void json_bool(json_writer *w, const char *k, int value)
{
    key(w, k);
    fputs(value ? "true" : "false", w->f);
}

void json_null(json_writer *w, const char *k)
{
    key(w, k);
    fputs("null", w->f);
}

void json_int_array(json_writer *w, const char *k, const int32_t *v, int64_t n)
{
    key(w, k);
    fputc('[', w->f);
    for (int64_t i = 0; i < n; i++)
        fprintf(w->f, "%s%" PRId32, i ? ", " : "", v[i]);
    fputc(']', w->f);
}

void json_end(json_writer *w)
{
    fputs("}\n", w->f);
    fflush(w->f);
}
