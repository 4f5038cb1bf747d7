
/*
 * A tenant's limits as JSON (tenant.h).
 */


#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shuttle_zone.h>

#include "store.h"
#include "tenant.h"


#define LIMITS_DATA  "/var/lib/shuttle"


typedef struct {
    const char   *key;
    const char   *option;
    int           size;         /* a size: k, m and g suffixes */
    uint64_t      min;
    uint64_t      max;
} limits_field_t;


static const limits_field_t  limits_fields[] = {
    { "memory", "--memory", 1, 4ULL << 20, 1ULL << 40 },
    { "tasks", "--tasks", 0, 4, 1000000 },
    { "cpu", "--cpu", 0, 1, 10000 },
    { "nofile", "--nofile", 0, 16, 1048576 },
    { "file_size", "--file-size", 1, 1ULL << 20, 1ULL << 40 },
    { "disk", "--disk", 1, 1ULL << 20, 1ULL << 40 },
    { NULL, NULL, 0, 0, 0 }
};


static void
limits_set(shuttle_limits_t *l, const char *key, uint64_t v)
{
    if (strcmp(key, "memory") == 0) {
        l->memory = v;

    } else if (strcmp(key, "tasks") == 0) {
        l->tasks = (unsigned) v;

    } else if (strcmp(key, "cpu") == 0) {
        l->cpu = (unsigned) v;

    } else if (strcmp(key, "nofile") == 0) {
        l->nofile = (unsigned) v;

    } else if (strcmp(key, "file_size") == 0) {
        l->file_size = v;

    } else if (strcmp(key, "disk") == 0) {
        l->disk = v;
    }
}


static const limits_field_t *
limits_field(const char *key, int by_option)
{
    const limits_field_t  *f;

    for (f = limits_fields; f->key != NULL; f++) {
        if (strcmp(by_option ? f->option : f->key, key) == 0) {
            return f;
        }
    }

    return NULL;
}


int
shuttle_limits_merge(shuttle_limits_t *l, const char *json, char *err,
    size_t errlen)
{
    json_t                *o, *v;
    uint64_t               n;
    const char            *key;
    json_error_t           e;
    const limits_field_t  *f;

    o = json_loads(json, 0, &e);

    if (!json_is_object(o)) {
        snprintf(err, errlen, "limits: not a JSON object: %s", e.text);
        json_decref(o);
        return -1;
    }

    json_object_foreach(o, key, v) {
        f = limits_field(key, 0);

        if (f == NULL || !json_is_integer(v) || json_integer_value(v) < 0) {
            snprintf(err, errlen, "limits: \"%.32s\" is not a limit with a "
                     "number", key);
            json_decref(o);
            return -1;
        }

        n = (uint64_t) json_integer_value(v);

        if (n != 0 && (n < f->min || n > f->max)) {
            snprintf(err, errlen, "limits: %s %llu is out of %llu-%llu",
                     key, (unsigned long long) n,
                     (unsigned long long) f->min,
                     (unsigned long long) f->max);
            json_decref(o);
            return -1;
        }

        limits_set(l, key, n);
    }

    json_decref(o);

    return 0;
}


json_t *
shuttle_limits_json(const shuttle_limits_t *l)
{
    return json_pack("{s:I, s:i, s:i, s:i, s:I, s:I}",
                     "memory", (json_int_t) l->memory,
                     "tasks", (int) l->tasks,
                     "cpu", (int) l->cpu,
                     "nofile", (int) l->nofile,
                     "file_size", (json_int_t) l->file_size,
                     "disk", (json_int_t) l->disk);
}


int
shuttle_limits_option(json_t *o, const char *name, const char *value,
    char *err, size_t errlen)
{
    char                  *end;
    unsigned               shift;
    unsigned long long     n;
    const limits_field_t  *f;

    f = limits_field(name, 1);

    if (f == NULL) {
        snprintf(err, errlen, "unknown limit \"%s\"", name);
        return -1;
    }

    errno = 0;
    n = strtoull(value, &end, 10);
    shift = 0;

    if (f->size && (*end == 'k' || *end == 'K')) {
        shift = 10;
    } else if (f->size && (*end == 'm' || *end == 'M')) {
        shift = 20;
    } else if (f->size && (*end == 'g' || *end == 'G')) {
        shift = 30;
    }

    end += shift != 0;

    if (errno != 0 || end == value || *end != '\0' || value[0] == '-'
        || n > (f->max >> shift) || (n != 0 && (n << shift) < f->min))
    {
        snprintf(err, errlen, "%s \"%s\" is not %s from %llu to %llu, or 0 "
                 "for none", name, value, f->size ? "a size (k, m, g)"
                                                  : "a number",
                 (unsigned long long) f->min, (unsigned long long) f->max);
        return -1;
    }

    json_object_set_new(o, f->key, json_integer((json_int_t) (n << shift)));

    return 0;
}


static void
limits_usage(FILE *f)
{
    fputs(
"usage: shuttle-builder limits [--data DIR] NAME [LIMIT VALUE]... [--reset]\n"
"\n"
"Shows, or sets, the limits of project NAME that differ from the\n"
"builder's defaults (shuttle-builder serve --memory ...).  They are\n"
"kept in DIR/shuttle.db (" LIMITS_DATA ") and apply from the project's\n"
"next build or loader start (shuttle restart NAME, or a deploy).\n"
"\n"
"limits (0: none):\n"
"  --memory SIZE      RAM of the service, and of a build\n"
"  --tasks N          processes and threads\n"
"  --cpu WEIGHT       CPU share, 1-10000 (100: an equal share)\n"
"  --nofile N         open files of one process\n"
"  --file-size SIZE   bytes of one file written\n"
"  --disk SIZE        bytes of its SQLite data\n"
"  --reset            back to the defaults, all of them\n", f);
}


int
shuttle_limits_main(int argc, char **argv)
{
    int               i, rc, reset, set;
    char              json[1024], err[512], db[4096], *text;
    json_t           *o, *old, *v;
    shuttle_limits_t  check;
    shuttle_store_t  *st;
    const char       *data, *name, *key;

    data = LIMITS_DATA;
    name = NULL;
    reset = 0;
    set = 0;

    o = json_object();
    if (o == NULL) {
        return 1;
    }

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            limits_usage(stdout);
            json_decref(o);
            return 0;
        }

        if (strcmp(argv[i], "--reset") == 0) {
            reset = 1;
            continue;
        }

        if (argv[i][0] != '-') {
            if (name != NULL) {
                fprintf(stderr, "shuttle-builder limits: one project at a "
                        "time\n");
                json_decref(o);
                return 2;
            }

            name = argv[i];
            continue;
        }

        if (i + 1 == argc) {
            fprintf(stderr, "shuttle-builder limits: %s needs a value\n",
                    argv[i]);
            json_decref(o);
            return 2;
        }

        if (strcmp(argv[i], "--data") == 0) {
            data = argv[++i];
            continue;
        }

        if (shuttle_limits_option(o, argv[i], argv[i + 1], err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "shuttle-builder limits: %s\n", err);
            json_decref(o);
            return 2;
        }

        set = 1;
        i++;
    }

    if (name == NULL || !shuttle_valid_name(name, strlen(name))) {
        fprintf(stderr, "shuttle-builder limits: give a project's name (a "
                "DNS label)\n");
        limits_usage(stderr);
        json_decref(o);
        return 2;
    }

    snprintf(db, sizeof(db), "%s/shuttle.db", data);

    st = shuttle_store_open(db, data, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "shuttle-builder limits: %s\n", err);
        json_decref(o);
        return 1;
    }

    rc = 0;

    if (reset || set) {
        /* the new ones over those it had, unless --reset */

        old = NULL;

        if (!reset
            && shuttle_store_limits_get(st, name, json, sizeof(json)) == 0)
        {
            old = json_loads(json, 0, NULL);
        }

        if (json_is_object(old)) {
            json_object_foreach(o, key, v) {
                json_object_set(old, key, v);
            }

            json_decref(o);
            o = old;

        } else {
            json_decref(old);
        }

        text = json_object_size(o) ? json_dumps(o, JSON_COMPACT) : NULL;

        memset(&check, 0, sizeof(check));

        if ((text != NULL
             && shuttle_limits_merge(&check, text, err, sizeof(err)) != 0)
            || shuttle_store_limits_set(st, name, text, err, sizeof(err))
               != 0)
        {
            fprintf(stderr, "shuttle-builder limits: %s: %s\n", name, err);
            rc = 1;
        }

        free(text);
    }

    if (rc == 0) {
        if (shuttle_store_limits_get(st, name, json, sizeof(json)) == 0) {
            printf("%s %s\n", name, json);

        } else {
            printf("%s: the builder's defaults\n", name);
        }
    }

    json_decref(o);
    shuttle_store_close(st);

    return rc;
}


/*
 * "15m", "2s", "500ms", "1.5h", "1d", a bare number of seconds; "0",
 * "never" and "off" are 0.  Up to a year.
 */
int
shuttle_duration_parse(const char *s, int64_t *ms)
{
    char    *end;
    double   n, unit;

    if (strcmp(s, "never") == 0 || strcmp(s, "off") == 0) {
        *ms = 0;
        return 0;
    }

    if (*s < '0' || *s > '9') {
        return -1;
    }

    errno = 0;
    n = strtod(s, &end);

    if (errno != 0 || end == s) {
        return -1;
    }

    if (strcmp(end, "ms") == 0) {
        unit = 1;

    } else if (*end == '\0' || strcmp(end, "s") == 0) {
        unit = 1000;

    } else if (strcmp(end, "m") == 0) {
        unit = 60 * 1000;

    } else if (strcmp(end, "h") == 0) {
        unit = 3600 * 1000;

    } else if (strcmp(end, "d") == 0) {
        unit = 86400 * 1000;

    } else {
        return -1;
    }

    n *= unit;

    if (!(n >= 0 && n <= 365.0 * 86400 * 1000)) {
        return -1;
    }

    *ms = (int64_t) n;

    return 0;
}


/* ms as "15m", "2s", "1.5s", "500ms"; 0 is "never" */
void
shuttle_duration_text(int64_t ms, char *buf, size_t size)
{
    if (ms == 0) {
        snprintf(buf, size, "never");

    } else if (ms % 86400000 == 0) {
        snprintf(buf, size, "%lldd", (long long) (ms / 86400000));

    } else if (ms % 3600000 == 0) {
        snprintf(buf, size, "%lldh", (long long) (ms / 3600000));

    } else if (ms % 60000 == 0) {
        snprintf(buf, size, "%lldm", (long long) (ms / 60000));

    } else if (ms % 1000 == 0) {
        snprintf(buf, size, "%llds", (long long) (ms / 1000));

    } else if (ms > 1000) {
        snprintf(buf, size, "%gs", (double) ms / 1000);

    } else {
        snprintf(buf, size, "%lldms", (long long) ms);
    }
}
