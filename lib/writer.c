/* writer.c — text output with escaping (see fa2_writer.h). */
#include "config.h"
#include "fa2_writer.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

void fa2_writer_file(fa2_writer *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
}

void fa2_writer_buffer(fa2_writer *w, char *buf, size_t size)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->size = size;
    if (size)
        buf[0] = '\0';
}

void fa2_put(fa2_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n;
    if (w->f) {
        n = vfprintf(w->f, fmt, ap);
    } else {
        char *at = w->len < w->size ? w->buf + w->len : NULL;
        n = vsnprintf(at, at ? w->size - w->len : 0, fmt, ap);
    }
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n;
}

void fa2_put_json_string(fa2_writer *w, const char *s)
{
    fa2_put(w, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fa2_put(w, "\\\""); break;
        case '\\': fa2_put(w, "\\\\"); break;
        case '\n': fa2_put(w, "\\n"); break;
        case '\r': fa2_put(w, "\\r"); break;
        case '\t': fa2_put(w, "\\t"); break;
        default:
            if (*p < 0x20)
                fa2_put(w, "\\u%04x", (unsigned)*p);
            else
                fa2_put(w, "%c", *p);
        }
    }
    fa2_put(w, "\"");
}

void fa2_put_csv_field(fa2_writer *w, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fa2_put(w, "%s", s);
        return;
    }
    fa2_put(w, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fa2_put(w, "\"");
        fa2_put(w, "%c", *p);
    }
    fa2_put(w, "\"");
}

static void key(fa2_writer *w, const char *k)
{
    if (w->count++)
        fa2_put(w, ", ");
    fa2_put_json_string(w, k);
    fa2_put(w, ": ");
}

void fa2_json_begin(fa2_writer *w)
{
    w->count = 0;
    fa2_put(w, "{");
}

void fa2_json_string(fa2_writer *w, const char *k, const char *value)
{
    key(w, k);
    if (value)
        fa2_put_json_string(w, value);
    else
        fa2_put(w, "null");
}

void fa2_json_int(fa2_writer *w, const char *k, int64_t value)
{
    key(w, k);
    fa2_put(w, "%" PRId64, value);
}

void fa2_json_uint(fa2_writer *w, const char *k, uint64_t value)
{
    key(w, k);
    fa2_put(w, "%" PRIu64, value);
}

void fa2_json_number(fa2_writer *w, const char *k, double value)
{
    key(w, k);
    if (isfinite(value))
        fa2_put(w, "%.9g", value);
    else
        fa2_put(w, "null");
}

void fa2_json_bool(fa2_writer *w, const char *k, int value)
{
    key(w, k);
    fa2_put(w, value ? "true" : "false");
}

void fa2_json_null(fa2_writer *w, const char *k)
{
    key(w, k);
    fa2_put(w, "null");
}

void fa2_json_int_array(fa2_writer *w, const char *k, const int32_t *v, int64_t n)
{
    key(w, k);
    fa2_put(w, "[");
    for (int64_t i = 0; i < n; i++)
        fa2_put(w, "%s%" PRId32, i ? ", " : "", v[i]);
    fa2_put(w, "]");
}

void fa2_json_end(fa2_writer *w)
{
    fa2_put(w, "}\n");
    if (w->f)
        fflush(w->f);
}
