
/*
 * shuttle-builder: the platform's builder and the one writer of the
 * routing zone.  Commands dispatch from builder_commands[]: "serve", the
 * daemon (serve.c); "keys", the API keys file (keys.c); "zone", the
 * operators' and tests' tool to edit and print a zone; "limits", a
 * project's limits (tenant.c); "sandbox", a command in a project's
 * sandbox (sandbox_main.c); "stop --all", the builder and its loaders
 * stopped; "keep", the socket keeper serve starts (run/keeper.c).
 */


#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "backup.h"
#include "keeper.h"
#include "keys.h"
#include "proc.h"
#include "sandbox.h"
#include "tenant.h"
#include "serve.h"
#include "zone.h"


#define BUILDER_OK       0
#define BUILDER_FAILED   1
#define BUILDER_USAGE    2

#define BUILDER_ERRLEN   512

/* a running builder takes a resize request on a pass every 5 s */
#define BUILDER_RESIZE_WAIT_MS  15000


typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *summary;
} builder_command_t;


/* a "zone" command line, options parsed */
typedef struct {
    const char  *path;
    uint32_t     capacity;      /* --capacity, 0: the default */
    int          argc;          /* the verb's arguments */
    char       **argv;
} builder_zone_args_t;


typedef struct {
    const char  *name;
    int          min;           /* arguments after the verb */
    int          max;
    int        (*run)(builder_zone_args_t *a);
} builder_zone_verb_t;


typedef struct {
    char         name[SHUTTLE_ZONE_NAME_MAX + 1];
    unsigned     state;
    uint32_t     addr;          /* network byte order */
    uint16_t     port;
    uint64_t     deployment;
} builder_project_t;


typedef struct {
    builder_project_t  *elts;
    size_t              nelts;
    size_t              nalloc;
} builder_projects_t;


static void builder_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void builder_usage(FILE *f);
static void builder_zone_usage(FILE *f);
static int builder_zone(int argc, char **argv);
static int builder_zone_edit(builder_zone_args_t *a, uint32_t capacity,
    shuttle_zone_t *z);
static int builder_zone_list(builder_zone_args_t *a);
static int builder_zone_info(builder_zone_args_t *a);
static int builder_zone_set(builder_zone_args_t *a);
static int builder_zone_del(builder_zone_args_t *a);
static int builder_zone_load(builder_zone_args_t *a);
static int builder_zone_resize(builder_zone_args_t *a);
static int builder_zone_ask_resize(builder_zone_args_t *a, uint32_t capacity,
    const char *lock_err);
static int builder_parse_number(const char *s, uint64_t max, uint64_t *out);
static int builder_parse_capacity(const char *s, uint32_t *out);
static int builder_parse_project(char **field, int n, builder_project_t *p,
    char *err, size_t errlen);
static int builder_collect(const shuttle_zone_slot_t *slot, void *data);
static int builder_projects_add(builder_projects_t *a, builder_project_t *p);
static int builder_project_cmp(const void *one, const void *two);


static const builder_command_t  builder_commands[] = {
    { "serve", shuttle_serve_main, "run the builder daemon "
                                   "(shuttle-builder serve --help)" },
    { "keys", shuttle_keys_main, "add, list or delete API keys "
                                 "(shuttle-builder keys --help)" },
    { "routes", shuttle_api_routes_main, "the routes of the API on the "
                                         "socket, one \"METHOD PATH\" a "
                                         "line" },
    { "zone", builder_zone, "edit or print a routing zone "
                            "(shuttle-builder zone --help)" },
    { "limits", shuttle_limits_main, "a project's limits beside the "
                                     "defaults (shuttle-builder limits "
                                     "--help)" },
    { "backup", shuttle_backup_main, "copy the store while the builder "
                                     "runs (shuttle-builder backup "
                                     "--help)" },
    { "sandbox", shuttle_sandbox_main, "run a command in a project's "
                                       "sandbox (shuttle-builder sandbox "
                                       "--help)" },
    { "stop", shuttle_stop_main, "stop the builder AND its loaders: "
                                 "stop --all (a SIGTERM leaves the "
                                 "loaders serving)" },
    { "keep", shuttle_keeper_main, "the socket keeper serve starts "
                                   "(shuttle-builder keep --help)" },
    { NULL, NULL, NULL }
};


static const builder_zone_verb_t  builder_zone_verbs[] = {
    { "list",   0, 0, builder_zone_list },
    { "info",   0, 0, builder_zone_info },
    { "set",    3, 4, builder_zone_set },
    { "del",    1, 1, builder_zone_del },
    { "load",   1, 1, builder_zone_load },
    { "resize", 1, 1, builder_zone_resize },
    { NULL, 0, 0, NULL }
};


int
main(int argc, char **argv)
{
    const builder_command_t  *cmd;

    if (argc < 2) {
        builder_usage(stderr);
        return BUILDER_USAGE;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        builder_usage(stdout);
        return BUILDER_OK;
    }

    for (cmd = builder_commands; cmd->name != NULL; cmd++) {
        if (strcmp(argv[1], cmd->name) == 0) {
            return cmd->run(argc - 2, argv + 2);
        }
    }

    builder_error("unknown command \"%s\" (see shuttle-builder --help)",
                  argv[1]);

    return BUILDER_USAGE;
}


static void
builder_usage(FILE *f)
{
    const builder_command_t  *cmd;

    fprintf(f, "usage: shuttle-builder COMMAND [ARGS]\n\ncommands:\n");

    for (cmd = builder_commands; cmd->name != NULL; cmd++) {
        fprintf(f, "  %-8s %s\n", cmd->name, cmd->summary);
    }
}


static void
builder_zone_usage(FILE *f)
{
    fputs(
"usage: shuttle-builder zone [--capacity N] PATH VERB [ARGS]\n"
"\n"
"Prints or edits the routing zone at PATH.  An edit creates the zone when\n"
"it is missing.  While a running shuttle-builder owns the zone, set, del\n"
"and load fail, and a resize is asked of that builder, which does it.\n"
"\n"
"verbs:\n"
"  list              the live projects sorted by name, one a line:\n"
"                    NAME STATE ADDR:PORT DEPLOYMENT\n"
"  info              the zone header: generation, nslots, capacity, live,\n"
"                    tombstones, size (bytes), created_ms\n"
"  set NAME ADDR:PORT STATE [DEPLOYMENT]\n"
"                    adds or updates a project\n"
"  del NAME          removes a project\n"
"  load FILE         sets a project for each line of FILE ('-': stdin),\n"
"                    NAME ADDR:PORT STATE [DEPLOYMENT], under one lock;\n"
"                    blank and '#' lines are skipped; a bad line is\n"
"                    reported with its number and nothing is applied\n"
"  resize CAPACITY   writes a new generation of the zone for CAPACITY\n"
"                    projects, leaving deleted entries behind; nginx\n"
"                    maps it on its next request.  While a builder runs,\n"
"                    it does it on its next pass (within 5 s), asked\n"
"                    through PATH.resize\n"
"\n"
"  NAME        a DNS label: 1..63 of a-z 0-9 '-', no '-' at either end\n"
"  ADDR:PORT   an IPv4 address and a port 1..65535; port 0 (no upstream\n"
"              yet) is allowed in every state but running\n"
"  STATE       queued building loading running failed idle stopped\n"
"  DEPLOYMENT  the deployment id, a decimal number (default 0)\n"
"\n"
"options:\n"
"  --capacity N  projects a zone created by this command holds,\n"
"                1..16777216 (default 50000); an existing zone keeps its\n"
"                own: see resize\n"
"\n"
"exit status: 0 done, 1 failed, 2 usage error\n", f);
}


static void
builder_error(const char *fmt, ...)
{
    va_list  args;

    fputs("shuttle-builder: ", stderr);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


/* shuttle-builder zone [--capacity N] PATH VERB [ARGS] */

static int
builder_zone(int argc, char **argv)
{
    int                         i, npos;
    char                       *arg, *value, *pos[2];
    builder_zone_args_t         a;
    const builder_zone_verb_t  *verb;

    memset(&a, 0, sizeof(builder_zone_args_t));
    npos = 0;

    for (i = 0; i < argc && npos < 2; i++) {
        arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            builder_zone_usage(stdout);
            return BUILDER_OK;
        }

        if (strcmp(arg, "--") == 0) {
            for (i++; i < argc && npos < 2; i++) {
                pos[npos++] = argv[i];
            }

            break;
        }

        if (strncmp(arg, "--capacity", 10) == 0
            && (arg[10] == '\0' || arg[10] == '='))
        {
            if (arg[10] == '=') {
                value = arg + 11;

            } else if (i + 1 < argc) {
                value = argv[++i];

            } else {
                builder_error("zone: --capacity needs a number");
                return BUILDER_USAGE;
            }

            if (builder_parse_capacity(value, &a.capacity) != 0) {
                builder_error("zone: --capacity \"%s\" is not a number in "
                              "1..%u", value, SHUTTLE_ZONE_CAPACITY_MAX);
                return BUILDER_USAGE;
            }

            continue;
        }

        if (arg[0] == '-' && arg[1] != '\0') {
            builder_error("zone: unknown option \"%s\" (see shuttle-builder "
                          "zone --help)", arg);
            return BUILDER_USAGE;
        }

        pos[npos++] = arg;
    }

    if (npos < 2) {
        builder_zone_usage(stderr);
        return BUILDER_USAGE;
    }

    a.path = pos[0];
    a.argc = argc - i;
    a.argv = argv + i;

    for (verb = builder_zone_verbs; verb->name != NULL; verb++) {
        if (strcmp(pos[1], verb->name) == 0) {
            break;
        }
    }

    if (verb->name == NULL) {
        builder_error("zone: unknown verb \"%s\" (see shuttle-builder zone "
                      "--help)", pos[1]);
        return BUILDER_USAGE;
    }

    if (a.argc < verb->min || a.argc > verb->max) {
        builder_error("zone %s: wrong number of arguments (see "
                      "shuttle-builder zone --help)", verb->name);
        return BUILDER_USAGE;
    }

    return verb->run(&a);
}


/* opens the zone, creating it with capacity, and takes the writer lock */

static int
builder_zone_edit(builder_zone_args_t *a, uint32_t capacity,
    shuttle_zone_t *z)
{
    char   err[BUILDER_ERRLEN], cmd[256];
    pid_t  owner;

    if (shuttle_zone_open(z, a->path, capacity, err, sizeof(err)) != 0) {
        builder_error("%s", err);
        return -1;
    }

    if (shuttle_zone_lock(z, 0, err, sizeof(err)) != 0) {
        owner = shuttle_proc_lock_owner(a->path);

        if (owner > 0) {
            if (shuttle_proc_cmdline(owner, cmd, sizeof(cmd)) != 0) {
                strcpy(cmd, "?");
            }

            builder_error("zone %s is in use by a running builder, pid %d "
                          "(%s): it alone writes the zone while it runs; "
                          "stop it first", a->path, (int) owner, cmd);

        } else {
            builder_error("%s", err);
        }

        shuttle_zone_close(z);
        return -1;
    }

    return 0;
}


static int
builder_collect(const shuttle_zone_slot_t *slot, void *data)
{
    builder_projects_t  *all;
    builder_project_t    p;

    all = data;

    if (slot->name_len > SHUTTLE_ZONE_NAME_MAX) {
        /* a damaged slot: lookups cannot match it either */
        return 0;
    }

    memset(&p, 0, sizeof(builder_project_t));
    memcpy(p.name, slot->name, slot->name_len);
    p.state = slot->state;
    p.addr = slot->addr;
    p.port = slot->port;
    p.deployment = slot->deployment;

    return builder_projects_add(all, &p);
}


static int
builder_zone_list(builder_zone_args_t *a)
{
    long                 torn;
    char                 err[BUILDER_ERRLEN], addr[INET_ADDRSTRLEN];
    size_t               i;
    shuttle_zone_t       z;
    builder_project_t   *p;
    builder_projects_t   all;

    if (shuttle_zone_open_ro(&z, a->path, err, sizeof(err)) != 0) {
        builder_error("%s", err);
        return BUILDER_FAILED;
    }

    memset(&all, 0, sizeof(builder_projects_t));

    torn = shuttle_zone_each(&z, builder_collect, &all);

    shuttle_zone_close(&z);

    if (torn == -1) {
        builder_error("zone %s: %s", a->path, strerror(ENOMEM));
        free(all.elts);
        return BUILDER_FAILED;
    }

    if (torn > 0) {
        builder_error("zone %s: %ld torn slots (a writer is at them or died "
                      "there) not listed", a->path, torn);
    }

    qsort(all.elts, all.nelts, sizeof(builder_project_t), builder_project_cmp);

    for (i = 0; i < all.nelts; i++) {
        p = &all.elts[i];

        if (inet_ntop(AF_INET, &p->addr, addr, sizeof(addr)) == NULL) {
            strcpy(addr, "?");
        }

        printf("%s %s %s:%u %llu\n", p->name,
               shuttle_zone_state_name(p->state), addr, (unsigned) p->port,
               (unsigned long long) p->deployment);
    }

    free(all.elts);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        builder_error("zone %s: list: writing to stdout: %s", a->path,
                      strerror(errno));
        return BUILDER_FAILED;
    }

    return BUILDER_OK;
}


static int
builder_zone_info(builder_zone_args_t *a)
{
    char                    err[BUILDER_ERRLEN];
    shuttle_zone_t          z;
    shuttle_zone_header_t  *hdr;

    if (shuttle_zone_open_ro(&z, a->path, err, sizeof(err)) != 0) {
        builder_error("%s", err);
        return BUILDER_FAILED;
    }

    hdr = z.hdr;

    printf("generation %llu\n"
           "nslots %u\n"
           "capacity %u\n"
           "live %u\n"
           "tombstones %u\n"
           "size %zu\n"
           "created_ms %lld\n",
           (unsigned long long) hdr->generation, hdr->nslots, hdr->capacity,
           hdr->live, hdr->tombstones, z.size, (long long) hdr->created_ms);

    shuttle_zone_close(&z);

    return BUILDER_OK;
}


static int
builder_zone_set(builder_zone_args_t *a)
{
    int                rc;
    char               err[BUILDER_ERRLEN];
    shuttle_zone_t     z;
    builder_project_t  p;

    if (builder_parse_project(a->argv, a->argc, &p, err, sizeof(err)) != 0) {
        builder_error("zone %s set: %s", a->path, err);
        return BUILDER_USAGE;
    }

    if (builder_zone_edit(a, a->capacity, &z) != 0) {
        return BUILDER_FAILED;
    }

    rc = BUILDER_OK;

    if (shuttle_zone_set(&z, p.name, p.state, p.addr, p.port, p.deployment,
                         err, sizeof(err))
        != 0)
    {
        builder_error("%s", err);
        rc = BUILDER_FAILED;
    }

    shuttle_zone_close(&z);

    return rc;
}


static int
builder_zone_del(builder_zone_args_t *a)
{
    int             rc;
    char            err[BUILDER_ERRLEN];
    shuttle_zone_t  z;

    if (builder_zone_edit(a, a->capacity, &z) != 0) {
        return BUILDER_FAILED;
    }

    rc = BUILDER_OK;

    if (shuttle_zone_del(&z, a->argv[0], err, sizeof(err)) != 0) {
        builder_error("%s", err);
        rc = BUILDER_FAILED;
    }

    shuttle_zone_close(&z);

    return rc;
}


/*
 * All lines are parsed, and the capacity checked under the lock, before
 * the first is applied: a bad file changes nothing.
 */

static int
builder_zone_load(builder_zone_args_t *a)
{
    int                  rc, n;
    FILE                *f;
    char                *line, *field[4], *save, *tok;
    char                 err[BUILDER_ERRLEN];
    size_t               i, cap, lineno, fresh;
    const char          *file;
    shuttle_zone_t       z;
    builder_project_t    p, *sorted;
    builder_projects_t   all;
    shuttle_zone_slot_t  slot;

    file = strcmp(a->argv[0], "-") == 0 ? "stdin" : a->argv[0];
    f = strcmp(a->argv[0], "-") == 0 ? stdin : fopen(file, "r");

    if (f == NULL) {
        builder_error("zone %s load: %s: %s", a->path, file, strerror(errno));
        return BUILDER_FAILED;
    }

    memset(&all, 0, sizeof(builder_projects_t));
    line = NULL;
    cap = 0;
    lineno = 0;
    rc = BUILDER_OK;

    while (getline(&line, &cap, f) != -1) {
        lineno++;

        n = 0;

        for (tok = strtok_r(line, " \t\r\n", &save);
             tok != NULL;
             tok = strtok_r(NULL, " \t\r\n", &save))
        {
            if (n < 4) {
                field[n] = tok;
            }

            n++;
        }

        if (n == 0 || field[0][0] == '#') {
            continue;
        }

        if (n < 3 || n > 4) {
            builder_error("%s:%zu: %d field%s, expected NAME ADDR:PORT "
                          "STATE [DEPLOYMENT]", file, lineno, n,
                          n == 1 ? "" : "s");
            rc = BUILDER_FAILED;
            goto done;
        }

        if (builder_parse_project(field, n, &p, err, sizeof(err)) != 0) {
            builder_error("%s:%zu: %s", file, lineno, err);
            rc = BUILDER_FAILED;
            goto done;
        }

        if (builder_projects_add(&all, &p) != 0) {
            builder_error("zone %s load: %s", a->path, strerror(ENOMEM));
            rc = BUILDER_FAILED;
            goto done;
        }
    }

    if (ferror(f)) {
        builder_error("zone %s load: reading %s: %s", a->path, file,
                      strerror(errno));
        rc = BUILDER_FAILED;
        goto done;
    }

    if (builder_zone_edit(a, a->capacity, &z) != 0) {
        rc = BUILDER_FAILED;
        goto done;
    }

    /* names new to the zone, each counted once however often it appears */

    sorted = malloc((all.nelts + 1) * sizeof(builder_project_t));

    if (sorted == NULL) {
        builder_error("zone %s load: %s", a->path, strerror(ENOMEM));
        rc = BUILDER_FAILED;
        goto close;
    }

    memcpy(sorted, all.elts, all.nelts * sizeof(builder_project_t));
    qsort(sorted, all.nelts, sizeof(builder_project_t), builder_project_cmp);

    fresh = 0;

    for (i = 0; i < all.nelts; i++) {
        if (i > 0 && strcmp(sorted[i].name, sorted[i - 1].name) == 0) {
            continue;
        }

        if (shuttle_zone_get(&z, sorted[i].name, &slot) != SHUTTLE_ZONE_FOUND)
        {
            fresh++;
        }
    }

    free(sorted);

    if (z.hdr->live + fresh > z.hdr->capacity) {
        builder_error("zone %s load: %zu new projects do not fit: the zone "
                      "holds %u of %u (resize it)", a->path, fresh,
                      z.hdr->live, z.hdr->capacity);
        rc = BUILDER_FAILED;
        goto close;
    }

    for (i = 0; i < all.nelts; i++) {
        p = all.elts[i];

        if (shuttle_zone_set(&z, p.name, p.state, p.addr, p.port,
                             p.deployment, err, sizeof(err))
            != 0)
        {
            builder_error("%s (%zu of %zu projects applied)", err, i,
                          all.nelts);
            rc = BUILDER_FAILED;
            break;
        }
    }

close:

    shuttle_zone_close(&z);

done:

    if (f != stdin) {
        (void) fclose(f);
    }

    free(line);
    free(all.elts);

    return rc;
}


static int
builder_zone_resize(builder_zone_args_t *a)
{
    int             rc;
    char            err[BUILDER_ERRLEN];
    uint32_t        capacity;
    shuttle_zone_t  z;

    if (builder_parse_capacity(a->argv[0], &capacity) != 0) {
        builder_error("zone %s resize: capacity \"%s\" is not a number in "
                      "1..%u", a->path, a->argv[0],
                      SHUTTLE_ZONE_CAPACITY_MAX);
        return BUILDER_USAGE;
    }

    if (shuttle_zone_open(&z, a->path, capacity, err, sizeof(err)) != 0) {
        builder_error("%s", err);
        return BUILDER_FAILED;
    }

    if (shuttle_zone_lock(&z, 0, err, sizeof(err)) != 0) {
        shuttle_zone_close(&z);
        return builder_zone_ask_resize(a, capacity, err);
    }

    rc = BUILDER_OK;

    if (!z.created
        && shuttle_zone_rebuild(&z, capacity, err, sizeof(err)) != 0)
    {
        builder_error("%s", err);
        rc = BUILDER_FAILED;
    }

    shuttle_zone_close(&z);

    return rc;
}


/*
 * The zone's writer is a running builder: it alone may replace the zone,
 * so it is asked to, and this waits for its answer.
 */

static int
builder_zone_ask_resize(builder_zone_args_t *a, uint32_t capacity,
    const char *lock_err)
{
    char   err[BUILDER_ERRLEN], cmd[256];
    pid_t  owner;

    owner = shuttle_proc_lock_owner(a->path);

    if (owner <= 0) {
        builder_error("%s", lock_err);
        return BUILDER_FAILED;
    }

    if (shuttle_proc_cmdline(owner, cmd, sizeof(cmd)) != 0) {
        strcpy(cmd, "?");
    }

    if (shuttle_zone_ask_resize(a->path, capacity, BUILDER_RESIZE_WAIT_MS,
                                err, sizeof(err))
        != 0)
    {
        builder_error("zone %s resize %u: asked of the running builder, "
                      "pid %d (%s): %s", a->path, capacity, (int) owner,
                      cmd, err);
        return BUILDER_FAILED;
    }

    return BUILDER_OK;
}


/* decimal digits only: no sign, no spaces, no base prefixes */

static int
builder_parse_number(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t  n;

    if (*s == '\0') {
        return -1;
    }

    for (n = 0; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || n > (max - (uint64_t) (*s - '0')) / 10) {
            return -1;
        }

        n = n * 10 + (uint64_t) (*s - '0');
    }

    *out = n;

    return 0;
}


static int
builder_parse_capacity(const char *s, uint32_t *out)
{
    uint64_t  n;

    if (builder_parse_number(s, SHUTTLE_ZONE_CAPACITY_MAX, &n) != 0
        || n == 0)
    {
        return -1;
    }

    *out = (uint32_t) n;

    return 0;
}


/* NAME ADDR:PORT STATE [DEPLOYMENT] */

static int
builder_parse_project(char **field, int n, builder_project_t *p, char *err,
    size_t errlen)
{
    char      addr[INET_ADDRSTRLEN], *colon;
    size_t    len;
    unsigned  state;
    uint64_t  port;

    memset(p, 0, sizeof(builder_project_t));

    len = strlen(field[0]);

    if (!shuttle_valid_name(field[0], len)) {
        snprintf(err, errlen, "project name \"%s\" is not a DNS label "
                 "(1..63 of a-z, 0-9, '-', no '-' at either end)", field[0]);
        return -1;
    }

    memcpy(p->name, field[0], len);

    colon = strrchr(field[1], ':');

    if (colon == NULL || (size_t) (colon - field[1]) >= sizeof(addr)) {
        snprintf(err, errlen, "project %s: \"%s\" is not ADDR:PORT",
                 p->name, field[1]);
        return -1;
    }

    memcpy(addr, field[1], colon - field[1]);
    addr[colon - field[1]] = '\0';

    if (inet_pton(AF_INET, addr, &p->addr) != 1) {
        snprintf(err, errlen, "project %s: \"%s\" is not an IPv4 address",
                 p->name, addr);
        return -1;
    }

    if (builder_parse_number(colon + 1, 65535, &port) != 0) {
        snprintf(err, errlen, "project %s: port \"%s\" is not a number in "
                 "0..65535", p->name, colon + 1);
        return -1;
    }

    p->port = (uint16_t) port;

    for (state = 1; state <= SHUTTLE_STATE_MAX; state++) {
        if (strcmp(field[2], shuttle_zone_state_name(state)) == 0) {
            break;
        }
    }

    if (state > SHUTTLE_STATE_MAX) {
        snprintf(err, errlen, "project %s: state \"%s\" is not one of queued "
                 "building loading running failed idle stopped", p->name,
                 field[2]);
        return -1;
    }

    p->state = state;

    if (state == SHUTTLE_STATE_RUNNING && p->port == 0) {
        snprintf(err, errlen, "project %s: running needs a port, not 0",
                 p->name);
        return -1;
    }

    if (n > 3 && builder_parse_number(field[3], UINT64_MAX, &p->deployment)
                 != 0)
    {
        snprintf(err, errlen, "project %s: deployment \"%s\" is not a "
                 "decimal number", p->name, field[3]);
        return -1;
    }

    return 0;
}


static int
builder_projects_add(builder_projects_t *a, builder_project_t *p)
{
    size_t              n;
    builder_project_t  *elts;

    if (a->nelts == a->nalloc) {
        n = a->nalloc ? a->nalloc * 2 : 64;
        elts = realloc(a->elts, n * sizeof(builder_project_t));

        if (elts == NULL) {
            return -1;
        }

        a->elts = elts;
        a->nalloc = n;
    }

    a->elts[a->nelts++] = *p;

    return 0;
}


static int
builder_project_cmp(const void *one, const void *two)
{
    const builder_project_t  *a, *b;

    a = one;
    b = two;

    return strcmp(a->name, b->name);
}
