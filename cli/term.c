
/*
 * Terminal output: colors (on a terminal, never with NO_COLOR), tables,
 * times and sizes for people, and the small buffer and JSON helpers the
 * commands share.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"


int
cli_color_for(int fd)
{
    const char  *env;

    env = getenv("NO_COLOR");
    if (env != NULL && env[0] != '\0') {
        return 0;
    }

    env = getenv("TERM");
    if (env != NULL && strcmp(env, "dumb") == 0) {
        return 0;
    }

    return isatty(fd);
}


const char *
cli_c(int on, const char *code)
{
    return on ? code : "";
}


const char *
cli_state_color(const char *state)
{
    if (state == NULL) {
        return "\033[2m";
    }

    if (strcmp(state, "running") == 0) {
        return "\033[32m";
    }

    if (strcmp(state, "idle") == 0) {
        return "\033[36m";
    }

    if (strcmp(state, "failed") == 0 || strcmp(state, "crashed") == 0) {
        return "\033[31m";
    }

    if (!cli_state_settled(state)) {
        return "\033[33m";
    }

    return "\033[2m";
}


/* a deployment in this state will not change by itself any more */

int
cli_state_settled(const char *state)
{
    static const char  *settled[] = {
        "running", "failed", "stopped", "superseded", "crashed", "deleted",
        NULL
    };
    const char        **s;

    for (s = settled; *s; s++) {
        if (strcmp(*s, state) == 0) {
            return 1;
        }
    }

    return 0;
}


/* "2024-11-24T10:00:00Z" (fractions allowed) as "3 min ago" */

void
cli_ago(const char *iso, char *buf, size_t size)
{
    long long   d;
    struct tm   tm;
    const char *end;

    if (iso == NULL) {
        snprintf(buf, size, "-");
        return;
    }

    memset(&tm, 0, sizeof(tm));
    end = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);

    if (end == NULL) {
        snprintf(buf, size, "%s", iso);
        return;
    }

    d = (long long) (time(NULL) - timegm(&tm));

    if (d < 2) {
        snprintf(buf, size, "just now");

    } else if (d < 120) {
        snprintf(buf, size, "%lld s ago", d);

    } else if (d < 2 * 3600) {
        snprintf(buf, size, "%lld min ago", d / 60);

    } else if (d < 2 * 86400) {
        snprintf(buf, size, "%lld h ago", d / 3600);

    } else {
        snprintf(buf, size, "%lld days ago", d / 86400);
    }
}


/* milliseconds (a JSON integer, or null) for people */

void
cli_ms(json_t *ms, char *buf, size_t size)
{
    long long  v;

    if (!json_is_integer(ms)) {
        snprintf(buf, size, "-");
        return;
    }

    v = json_integer_value(ms);

    if (v < 1000) {
        snprintf(buf, size, "%lld ms", v);

    } else {
        snprintf(buf, size, "%.1f s", v / 1000.0);
    }
}


void
cli_size(size_t n, char *buf, size_t size)
{
    if (n < 1000) {
        snprintf(buf, size, "%zu B", n);

    } else if (n < 1000 * 1000) {
        snprintf(buf, size, "%.1f kB", n / 1000.0);

    } else {
        snprintf(buf, size, "%.1f MB", n / 1000000.0);
    }
}


int
cli_buf_add(cli_buf_t *b, const void *data, size_t len)
{
    char    *p;
    size_t   cap;

    if (b->len + len + 1 > b->cap) {
        cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            return -1;
        }

        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}


void
cli_buf_free(cli_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


void
cli_print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}


/*
 * A string of the API's, shown to a terminal: a control byte in it (ESC,
 * CR, DEL; a reason's \n and a \t are kept) is replaced by \xNN first,
 * in the JSON value itself, so that an older builder's raw reasons or a
 * tenant's bytes in them cannot drive the terminal.
 */

const char *
cli_str(json_t *obj, const char *key, const char *dflt)
{
    char           *buf;
    size_t          i, n, len;
    json_t         *v;
    const char     *s;
    unsigned char   c;

    v = json_object_get(obj, key);

    if (!json_is_string(v)) {
        return dflt;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f
            || (c == 0xc2 && i + 1 < len
                && (unsigned char) s[i + 1] >= 0x80
                && (unsigned char) s[i + 1] < 0xa0))
        {
            break;
        }
    }

    if (i == len) {
        return s;
    }

    buf = malloc(len * 4 + 1);
    if (buf == NULL) {
        return dflt;
    }

    for (i = 0, n = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            n += sprintf(buf + n, "\\x%02x", c);

        } else if (c == 0xc2 && i + 1 < len
                   && (unsigned char) s[i + 1] >= 0x80
                   && (unsigned char) s[i + 1] < 0xa0)
        {
            /* a C1 control, which terminals obey too */
            n += sprintf(buf + n, "\\xc2\\x%02x", (unsigned char) s[++i]);

        } else {
            buf[n++] = (char) c;
        }
    }

    buf[n] = '\0';

    (void) json_string_setn(v, buf, n);
    free(buf);

    return json_string_value(v);
}


long long
cli_int(json_t *obj, const char *key, long long dflt)
{
    json_t  *v;

    v = json_object_get(obj, key);

    return json_is_integer(v) ? json_integer_value(v) : dflt;
}


/* a table: rows of cells, printed in columns as wide as their widest */

int
cli_table_row(cli_table_t *t, const char **cells, const char **colors)
{
    size_t        i, n;
    char        **c;
    const char  **k;

    n = (t->nrows + 1) * t->ncols;

    c = realloc(t->cells, n * sizeof(char *));
    if (c == NULL) {
        return -1;
    }
    t->cells = c;

    k = realloc(t->colors, n * sizeof(char *));
    if (k == NULL) {
        return -1;
    }
    t->colors = k;

    for (i = 0; i < t->ncols; i++) {
        c[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "-");
        k[t->nrows * t->ncols + i] = colors ? colors[i] : NULL;
    }

    t->nrows++;

    return 0;
}


void
cli_table_print(cli_table_t *t, int color)
{
    int           pad;
    size_t        r, i, w[16];
    const char   *cell, *k;

    memset(w, 0, sizeof(w));

    for (r = 0; r < t->nrows; r++) {
        for (i = 0; i < t->ncols && i < 16; i++) {
            cell = t->cells[r * t->ncols + i];
            if (cell && strlen(cell) > w[i]) {
                w[i] = strlen(cell);
            }
        }
    }

    for (r = 0; r < t->nrows; r++) {
        for (i = 0; i < t->ncols && i < 16; i++) {
            cell = t->cells[r * t->ncols + i];
            cell = cell ? cell : "";
            k = t->colors[r * t->ncols + i];

            if (r == 0 && color) {
                k = "\033[1m";
            }

            pad = (i + 1 < t->ncols) ? (int) (w[i] - strlen(cell) + 2) : 0;

            printf("%s%s%s%*s", (color && k) ? k : "", cell,
                   (color && k) ? "\033[0m" : "", pad, "");
        }

        putchar('\n');
    }
}


void
cli_table_free(cli_table_t *t)
{
    size_t  i;

    for (i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }

    free(t->cells);
    free(t->colors);
    t->cells = NULL;
    t->colors = NULL;
    t->nrows = 0;
}


/*
 * The deployment serving a project: "deployment" in the API's contract,
 * "current" in the builder's first version; -1 when none.
 */

long long
cli_serving(json_t *project)
{
    json_t  *v;

    v = json_object_get(project, "deployment");

    if (!json_is_integer(v)) {
        v = json_object_get(project, "current");
    }

    return json_is_integer(v) ? json_integer_value(v) : -1;
}
