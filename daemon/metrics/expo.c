/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writer of the Prometheus text format (expo.h): the buffer grows through
 * util/vec.h; escaping follows the format's rules for HELP text and label
 * values.
 */
#include "expo.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/vec.h"

void sbm_out_put(struct sbm_out *o, const char *s, size_t n)
{
    /* Out of memory once: the response is dropped anyway. */
    if (o->oom)
        return;
    if (SB_VEC_RESERVE(o->p, o->cap, o->len, n + 1, 4096) < 0) {
        o->oom = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

void sbm_out_fmt(struct sbm_out *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* Every caller's line is short; a longer one would be a bug. */
    if (n < 0 || (size_t)n >= sizeof(line)) {
        o->oom = 1;
        return;
    }
    sbm_out_put(o, line, (size_t)n);
}

/* Append @p v with backslash, line feed and, if @p quote, double quote
 * escaped. */
static void expo_escape(struct sbm_out *o, const char *v, int quote)
{
    size_t run = 0;

    for (; v[run] != '\0'; v += run + 1, run = 0) {
        while (v[run] != '\0' && v[run] != '\\' && v[run] != '\n' && (!quote || v[run] != '"'))
            run++;
        sbm_out_put(o, v, run);
        if (v[run] == '\0')
            return;
        sbm_out_put(o, v[run] == '\n' ? "\\n" : v[run] == '"' ? "\\\"" : "\\\\", 2);
    }
}

void sbm_out_label(struct sbm_out *o, const char *v)
{
    expo_escape(o, v, 1);
}

void sbm_out_family(struct sbm_out *o, const char *name, const char *type, const char *help)
{
    sbm_out_fmt(o, "# HELP %s ", name);
    expo_escape(o, help, 0);
    sbm_out_fmt(o, "\n# TYPE %s %s\n", name, type);
}

void sbm_out_free(struct sbm_out *o)
{
    free(o->p);
    *o = (struct sbm_out){0};
}
