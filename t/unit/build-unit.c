
/*
 * Unit tests of the build step (builder/build.c), in TAP.  Each case
 * writes a small project NAME into a mkdtemp directory under /tmp, builds
 * it with shuttle_build() into NAME.so with its log in NAME.log, and
 * checks the result, the message and the log.  The include directory is
 * a fake one whose shuttle.h defines FAKE_SDK; the tree's real SDK
 * header is tried as well once it exists.  Processes a build starts
 * write their pid to a file, so that the test can see them gone.
 */


#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "build.h"
#include "extract.h"
#include "fsafe.h"


#define ERRLEN    1024
#define LOGMAX    (256 * 1024)
#define THREADS   4


typedef struct {
    const char    *name;
    const char    *include_dir;
    int            log_fd;       /* -2: NAME.log */
    unsigned       timeout_ms;
    volatile int  *cancel;
} build_case_t;


typedef struct {
    char  name[32];
    int   rc;
    int   value;
    char  err[ERRLEN];
} build_thread_t;


static char  tmpdir[] = "/tmp/build-unit.XXXXXX";
static char  base[256];          /* tmpdir, resolved */
static char  incdir[PATH_MAX];   /* the fake SDK */
static char  err[ERRLEN];

#define TAP_LAST_ERROR  err
#include "tap.h"


static char *tpath(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));


static void
skip(const char *what, const char *why)
{
    printf("ok %d - %s # skip %s\n", ++tap_n, what, why);
    fflush(stdout);
}


/* a path under the test directory; a few may be used at once */

static char *
tpath(const char *fmt, ...)
{
    int          n;
    static int   i;
    va_list      args;
    static char  bufs[8][PATH_MAX];

    i = (i + 1) % 8;
    n = snprintf(bufs[i], sizeof(bufs[i]), "%s/", base);

    va_start(args, fmt);
    vsnprintf(bufs[i] + n, sizeof(bufs[i]) - n, fmt, args);
    va_end(args);

    return bufs[i];
}


static int
exists(const char *path)
{
    struct stat  st;

    return lstat(path, &st) == 0;
}


static void
spit(const char *path, const char *text)
{
    FILE  *f;

    f = fopen(path, "w");

    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        printf("Bail out! writing %s: %s\n", path, strerror(errno));
        exit(1);
    }
}


/* the file's content as a string, or "" when it cannot be read */

static char *
slurp(const char *path)
{
    int          fd;
    size_t       len;
    ssize_t      n;
    static char  buf[LOGMAX];

    len = 0;
    fd = open(path, O_RDONLY);

    if (fd != -1) {
        while (len < sizeof(buf) - 1
               && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        {
            len += n;
        }

        close(fd);
    }

    buf[len] = '\0';

    return buf;
}


static int
has(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}


/*
 * project(NAME, FILE, CONTENT, ..., NULL) writes a project from scratch;
 * a FILE may be one directory deep (src/, include/).
 */

static void
project(const char *name, ...)
{
    char        *slash, dir[PATH_MAX];
    va_list      args;
    const char  *file, *text;

    shuttle_rmtree(NULL, tpath("%s", name));

    if (mkdir(tpath("%s", name), 0755) == -1) {
        printf("Bail out! mkdir %s: %s\n", name, strerror(errno));
        exit(1);
    }

    va_start(args, name);

    while ((file = va_arg(args, const char *)) != NULL) {
        text = va_arg(args, const char *);
        slash = strchr(file, '/');

        if (slash != NULL) {
            snprintf(dir, sizeof(dir), "%s/%.*s", tpath("%s", name),
                     (int) (slash - file), file);
            mkdir(dir, 0755);
        }

        spit(tpath("%s/%s", name, file), text);
    }

    va_end(args);
}


static int
build_case(const build_case_t *c)
{
    int                   fd, rc;
    shuttle_build_opts_t  o;

    fd = c->log_fd;

    if (fd == -2) {
        fd = open(tpath("%s.log", c->name),
                  O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);

        if (fd == -1) {
            printf("Bail out! %s.log: %s\n", c->name, strerror(errno));
            exit(1);
        }
    }

    memset(&o, 0, sizeof(o));
    o.src_dir = tpath("%s", c->name);
    o.out = tpath("%s.so", c->name);
    o.include_dir = c->include_dir ? c->include_dir : incdir;
    o.log_fd = fd;
    o.timeout_ms = c->timeout_ms;
    o.cancel = c->cancel;

    err[0] = '\0';
    rc = shuttle_build(&o, err, sizeof(err));

    if (c->log_fd == -2) {
        close(fd);
    }

    return rc;
}


static int
build(const char *name)
{
    build_case_t  c = { name, NULL, -2, 0, NULL };

    return build_case(&c);
}


static char *
log_of(const char *name)
{
    return slurp(tpath("%s.log", name));
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
sleep_ms(unsigned ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000;
    nanosleep(&ts, NULL);
}


/* an ELF shared object (ET_DYN) of our class */

static int
is_elf_so(const char *path)
{
    int         fd;
    ssize_t     n;
    Elf64_Ehdr  eh;

    fd = open(path, O_RDONLY | O_NOFOLLOW);

    if (fd == -1) {
        return 0;
    }

    n = read(fd, &eh, sizeof(eh));
    close(fd);

    return n == sizeof(eh) && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0
           && eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_type == ET_DYN;
}


/* whether the object's dynamic section needs a library named prefix* */

static int
needs(const char *path, const char *prefix)
{
    int          found;
    char        *data;
    size_t       i, j, size;
    FILE        *f;
    long         len;
    Elf64_Dyn   *dyn;
    Elf64_Ehdr  *eh;
    Elf64_Shdr  *sh, *str;

    f = fopen(path, "r");

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0) {
        if (f != NULL) {
            fclose(f);
        }

        return 0;
    }

    size = (size_t) len;
    data = malloc(size);
    rewind(f);

    if (data == NULL || fread(data, 1, size, f) != size
        || size < sizeof(Elf64_Ehdr))
    {
        free(data);
        fclose(f);
        return 0;
    }

    fclose(f);

    found = 0;
    eh = (Elf64_Ehdr *) data;

    if (eh->e_shoff + (size_t) eh->e_shnum * sizeof(Elf64_Shdr) > size) {
        free(data);
        return 0;
    }

    sh = (Elf64_Shdr *) (data + eh->e_shoff);

    for (i = 0; i < eh->e_shnum && !found; i++) {
        if (sh[i].sh_type != SHT_DYNAMIC || sh[i].sh_link >= eh->e_shnum) {
            continue;
        }

        str = &sh[sh[i].sh_link];
        dyn = (Elf64_Dyn *) (data + sh[i].sh_offset);

        for (j = 0; j < sh[i].sh_size / sizeof(Elf64_Dyn); j++) {
            if (dyn[j].d_tag == DT_NEEDED
                && str->sh_offset + dyn[j].d_un.d_val < size
                && strncmp(data + str->sh_offset + dyn[j].d_un.d_val,
                           prefix, strlen(prefix)) == 0)
            {
                found = 1;
            }
        }
    }

    free(data);

    return found;
}


/* dlopen()s the object and calls int SYMBOL(void); -1 when it cannot */

static int
call(const char *path, const char *symbol)
{
    int    v;
    void  *h, *f;
    int  (*fn)(void);

    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    if (h == NULL) {
        printf("#   dlopen %s: %s\n", path, dlerror());
        return -1;
    }

    f = dlsym(h, symbol);

    if (f == NULL) {
        dlclose(h);
        return -1;
    }

    memcpy(&fn, &f, sizeof(fn));
    v = fn();
    dlclose(h);

    return v;
}


static pid_t
pid_in(const char *path)
{
    return (pid_t) atoi(slurp(path));
}


/*
 * Whether the process is gone within a second: no such process, or a
 * zombie that its new parent has not reaped yet.
 */

static int
gone(pid_t pid)
{
    int    i;
    char  *p, path[64];

    if (pid <= 0) {
        return 0;
    }

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);

    for (i = 0; i < 50; i++) {
        if (kill(pid, 0) == -1 && errno == ESRCH) {
            return 1;
        }

        p = strrchr(slurp(path), ')');

        if (p != NULL && (p[2] == 'Z' || p[2] == 'X')) {
            return 1;
        }

        sleep_ms(20);
    }

    return 0;
}


static void
test_default(void)
{
    int           rc;
    char          want[PATH_MAX * 3], header[PATH_MAX * 3 + 16], *sdk, *p;
    ssize_t       n;
    build_case_t  c;

    project("hello",
            "src/hello.c", "int helper(void);\n"
                           "int hello(void) { return helper() + 1; }\n",
            "src/a.c", "int helper(void) { return 41; }\n",
            NULL);
    spit(tpath("hello.so"), "an old build\n");

    ok(build("hello") == 0 && err[0] == '\0',
       "default rule: src/*.c builds, over an old out");
    ok(is_elf_so(tpath("hello.so")),
       "default rule: out is an ELF shared object");
    ok(call(tpath("hello.so"), "hello") == 42,
       "default rule: it loads and runs, both files linked");

    snprintf(want, sizeof(want), "cc -std=gnu11 -O2 -g -fPIC -shared -Wall "
             "-I%s src/a.c src/hello.c -o %s\n", incdir, tpath("hello.so"));
    ok(has(log_of("hello"), want),
       "default rule: the log holds the command line, sources sorted");

    project("inc",
            "src/main.c", "#include <shuttle.h>\n"
                          "#include <own.h>\n"
                          "int value(void) { return FAKE_SDK + OWN; }\n",
            "include/own.h", "#define OWN 2\n",
            NULL);

    rc = build("inc");
    snprintf(want, sizeof(want), " -I%s -I%s src/main.c ", incdir,
             tpath("inc/include"));
    ok(rc == 0 && call(tpath("inc.so"), "value") == 42
       && has(log_of("inc"), want),
       "default rule: -I the SDK directory, then the project's include/");

    /* the tree's own SDK header, from build/t/build-unit */

    n = readlink("/proc/self/exe", want, sizeof(want) - 1);
    want[n > 0 ? n : 0] = '\0';
    p = strstr(want, "/build/t/");
    sdk = NULL;

    if (p != NULL) {
        strcpy(p, "/include");
        sdk = want;
    }

    if (sdk != NULL) {
        snprintf(header, sizeof(header), "%s/shuttle.h", sdk);
    }

    if (sdk == NULL || access(header, R_OK) != 0) {
        skip("default rule: a service including the real include/shuttle.h",
             "include/shuttle.h is not there yet");

    } else {
        project("sdk",
                "src/main.c", "#include <shuttle.h>\n"
                              "int sdk_probe(void) { return 7; }\n",
                NULL);

        memset(&c, 0, sizeof(c));
        c.name = "sdk";
        c.include_dir = sdk;
        c.log_fd = -2;

        ok(build_case(&c) == 0 && call(tpath("sdk.so"), "sdk_probe") == 7,
           "default rule: a service including the real include/shuttle.h");
    }

    project("nolog", "src/x.c", "int x(void) { return 3; }\n", NULL);

    memset(&c, 0, sizeof(c));
    c.name = "nolog";
    c.log_fd = -1;

    ok(build_case(&c) == 0 && call(tpath("nolog.so"), "x") == 3,
       "log_fd -1: the output is discarded, the build works");
}


static void
test_errors(void)
{
    int           rc;
    char         *log;
    build_case_t  c;

    project("syntax",
            "src/fine.c", "int fine(void) { return 1; }\n",
            "src/broken.c", "int broken(void)\n{\n    return 1\n}\n",
            NULL);
    spit(tpath("syntax.so"), "an old build\n");

    rc = build("syntax");
    log = log_of("syntax");

    ok(rc == -1 && strcmp(err, "build failed: cc exited with status 1 "
                          "(see build log)") == 0,
       "a syntax error: \"cc exited with status 1\"");
    ok(has(log, "src/broken.c:") && has(log, "error:"),
       "a syntax error: the compiler's message is in the log");
    ok(!exists(tpath("syntax.so")),
       "a failed build leaves no out, not even the old one");

    project("empty", "README", "nothing to build\n",
            "src/only.h", "int x;\n", NULL);

    ok(build("empty") == -1
       && strcmp(err, "no src/*.c and no Makefile") == 0,
       "no src/*.c and no Makefile: said so");

    ok(build("nowhere") == -1 && has(err, "project directory")
       && has(err, "No such file"),
       "a missing project directory: named, with the cause");

    memset(&c, 0, sizeof(c));
    c.name = "hello";
    c.log_fd = 1000;

    ok(build_case(&c) == -1 && has(err, "build log"),
       "a bad log descriptor: said so");

    err[0] = '\0';
    ok(shuttle_build(NULL, err, sizeof(err)) == -1 && err[0] != '\0',
       "no options: an error, not a crash");
}


static void
manifest_case(const char *json, int rc_want, const char *want)
{
    int                 rc;
    shuttle_manifest_t  m;

    spit(tpath("man/shuttle.json"), json);
    err[0] = '\0';
    rc = shuttle_manifest_read(tpath("man"), &m, err, sizeof(err));

    ok(rc == rc_want && has(err, want) && strchr(err, '\n') == NULL,
       "shuttle.json %s: %s", json, rc_want ? want : "read");

    if (rc == 0) {
        shuttle_manifest_free(&m);
    }
}


static void
test_manifest(void)
{
    int                 rc;
    char               *log;
    shuttle_manifest_t  m;

    project("man", NULL);

    rc = shuttle_manifest_read(tpath("man"), &m, err, sizeof(err));
    ok(rc == 0 && m.name == NULL && m.nlibs == 0 && m.libs == NULL,
       "no shuttle.json: an empty manifest");

    spit(tpath("man/shuttle.json"),
         "{\"name\": \"hello-1\", \"libs\": [\"sqlite3\", \"gtk+-3.0\", "
         "\"libfoo_bar.2\"], \"later\": {\"x\": [1, 2]}}");
    rc = shuttle_manifest_read(tpath("man"), &m, err, sizeof(err));
    ok(rc == 0 && m.name != NULL && strcmp(m.name, "hello-1") == 0
       && m.nlibs == 3 && strcmp(m.libs[0], "sqlite3") == 0
       && strcmp(m.libs[1], "gtk+-3.0") == 0
       && strcmp(m.libs[2], "libfoo_bar.2") == 0,
       "shuttle.json: name and libs read, unknown keys ignored");

    if (rc == 0) {
        shuttle_manifest_free(&m);
        ok(m.name == NULL && m.libs == NULL && m.nlibs == 0,
           "shuttle_manifest_free() empties it");
    }

    manifest_case("{\"libs\": []}", 0, "");
    manifest_case("[\"sqlite3\"]", -1,
                  "shuttle.json: the top level is an array, not an object");
    manifest_case("{\"name\": 5}", -1,
                  "shuttle.json: \"name\" is an integer, not a string");
    manifest_case("{\"name\": \"Bad_Name\"}", -1,
                  "shuttle.json: name \"Bad_Name\" is not a DNS label");
    manifest_case("{\"name\": \"-x\"}", -1, "is not a DNS label");
    manifest_case("{\"name\": \"a\\nb\"}", -1, "name \"a\\x0ab\" is not");
    manifest_case("{\"libs\": \"sqlite3\"}", -1,
                  "shuttle.json: \"libs\" is a string, not an array");
    manifest_case("{\"libs\": [\"sqlite3\", 3]}", -1,
                  "shuttle.json: libs[1] is an integer, not a string");
    manifest_case("{\"libs\": [\"a b\"]}", -1,
                  "shuttle.json: libs[0]: \"a b\" is not a pkg-config "
                  "package name");
    manifest_case("{\"libs\": [\"$(touch /tmp/x)\"]}", -1,
                  "libs[0]: \"$(touch /tmp/x)\" is not");
    manifest_case("{\"libs\": [\"\"]}", -1, "libs[0]: \"\" is not");
    manifest_case("{\"name\": \"a\", \"name\": \"b\"}", -1,
                  "shuttle.json: invalid JSON at line 1: duplicate");
    manifest_case("", -1, "shuttle.json: invalid JSON at line ");

    /* through a build */

    project("badjson",
            "shuttle.json", "{\n"
                            "  \"name\": \"x\",\n"
                            "  \"libs\": [\"sqlite3\",]\n"
                            "}\n",
            "src/x.c", "int x(void) { return 1; }\n",
            NULL);

    ok(build("badjson") == -1
       && strncmp(err, "shuttle.json: invalid JSON at line 3: ",
                  sizeof("shuttle.json: invalid JSON at line 3: ") - 1) == 0,
       "invalid JSON fails the build, naming shuttle.json and the line");

    project("db",
            "shuttle.json", "{\"name\": \"db\", \"libs\": [\"sqlite3\"]}\n",
            "src/db.c", "#include <sqlite3.h>\n"
                        "int db_version(void)\n"
                        "{ return sqlite3_libversion_number(); }\n",
            NULL);

    rc = build("db");
    log = log_of("db");

    ok(rc == 0 && has(log, "pkg-config --cflags --libs -- sqlite3\n"),
       "libs [\"sqlite3\"]: builds; pkg-config's command line is logged");
    ok(has(log, " -o ") && has(strstr(log, " -o "), " -lsqlite3"),
       "libs [\"sqlite3\"]: -lsqlite3 on the cc line, after the sources");
    ok(needs(tpath("db.so"), "libsqlite3.so"),
       "libs [\"sqlite3\"]: service.so needs libsqlite3");
    ok(call(tpath("db.so"), "db_version") >= 3000000,
       "libs [\"sqlite3\"]: sqlite answers from the service");

    project("nodb",
            "src/db.c", "#include <sqlite3.h>\n"
                        "int db_version(void)\n"
                        "{ return sqlite3_libversion_number(); }\n",
            NULL);

    ok(build("nodb") == 0 && !needs(tpath("nodb.so"), "libsqlite3.so")
       && !has(log_of("nodb"), "-lsqlite3")
       && !has(log_of("nodb"), "pkg-config"),
       "without libs: no -lsqlite3, no libsqlite3 needed");

    project("nosuch",
            "shuttle.json", "{\"libs\": [\"sqlite3\", \"nosuch-lib-xyz\"]}",
            "src/x.c", "int x(void) { return 1; }\n",
            NULL);

    rc = build("nosuch");
    log = log_of("nosuch");

    ok(rc == -1 && strcmp(err, "shuttle.json: libs[1]: unknown library "
                          "\"nosuch-lib-xyz\" (pkg-config)") == 0,
       "an unknown library: named, with its index");
    ok(has(log, "not found") && !has(log, "cc -std"),
       "an unknown library: pkg-config's complaint is logged, cc not run");
}


static void
test_make(void)
{
    int           rc;
    char          want[PATH_MAX * 2], shm[] = "/dev/shm/build-unit.XXXXXX";
    char          out[PATH_MAX], *log;
    struct stat   a, b;
    build_case_t  c;
    shuttle_build_opts_t  o;

    project("mk",
            "Makefile", "service.so: lib.c\n"
                        "\t$(CC) -shared -fPIC -I$(SHUTTLE_INCLUDE) "
                        "-o $@ lib.c\n",
            "lib.c", "#include <shuttle.h>\n"
                     "int value(void) { return FAKE_SDK + 2; }\n",
            "src/ignored.c", "this is not C\n",
            NULL);

    rc = build("mk");
    log = log_of("mk");

    ok(rc == 0 && is_elf_so(tpath("mk.so"))
       && call(tpath("mk.so"), "value") == 42,
       "Makefile: its service.so is out, built against SHUTTLE_INCLUDE");
    ok(!exists(tpath("mk/service.so")),
       "Makefile: service.so is moved, not copied");

    snprintf(want, sizeof(want), "make -C %s service.so\n", tpath("mk"));
    ok(has(log, want) && has(log, "cc -shared -fPIC -I"),
       "Makefile: make's command line and make's own echo are logged");
    ok(!has(log, "src/ignored.c"), "Makefile: src/*.c is left to it");

    project("mkfail", "Makefile", "service.so:\n\t@echo compiling; exit 3\n",
            NULL);

    ok(build("mkfail") == -1
       && strcmp(err, "build failed: make exited with status 2 "
                 "(see build log)") == 0
       && has(log_of("mkfail"), "compiling\n"),
       "Makefile: a failing recipe, \"make exited with status 2\"");

    project("mknone", "Makefile", "service.so:\n\t@echo nothing to do\n",
            NULL);

    ok(build("mknone") == -1
       && strcmp(err, "Makefile did not produce service.so") == 0,
       "Makefile: no service.so, said so");

    project("mklink", "Makefile", "service.so:\n\tln -s /etc/passwd $@\n",
            NULL);

    ok(build("mklink") == -1 && has(err, "symbolic link")
       && has(err, "\"/etc/passwd\"") && has(err, "refused")
       && !exists(tpath("mklink.so")),
       "Makefile: service.so a symbolic link to /etc/passwd is refused");

    project("mkdir", "Makefile", "service.so:\n\tmkdir $@\n", NULL);

    ok(build("mkdir") == -1 && has(err, "regular file")
       && !exists(tpath("mkdir.so")),
       "Makefile: service.so a directory is refused");

    project("mkdirfile", NULL);
    mkdir(tpath("mkdirfile/Makefile"), 0755);

    memset(&c, 0, sizeof(c));
    c.name = "mkdirfile";
    c.log_fd = -2;

    ok(build_case(&c) == -1
       && strcmp(err, "Makefile is not a regular file") == 0,
       "a Makefile that is a directory: said so");

    /* out on another file system: a copy */

    if (mkdtemp(shm) == NULL || stat(shm, &a) != 0 || stat(base, &b) != 0
        || a.st_dev == b.st_dev)
    {
        skip("Makefile: out on another file system", "no /dev/shm");
        return;
    }

    snprintf(out, sizeof(out), "%s/service.so", shm);

    memset(&o, 0, sizeof(o));
    o.src_dir = tpath("mk");
    o.out = out;
    o.include_dir = incdir;
    o.log_fd = -1;

    ok(shuttle_build(&o, err, sizeof(err)) == 0 && is_elf_so(out)
       && call(out, "value") == 42 && !exists(tpath("mk/service.so")),
       "Makefile: out on another file system");

    shuttle_rmtree(NULL, shm);
}


static void *
cancel_later(void *arg)
{
    sleep_ms(300);
    *(volatile int *) arg = 1;

    return NULL;
}


static void
test_stop(void)
{
    int             rc;
    int64_t         t0, ms;
    pthread_t       t;
    build_case_t    c;
    volatile int    cancel;

    /* a TERM-proof sleep: only SIGKILL to the group ends it */

    project("slow",
            "Makefile", "service.so:\n"
                        "\tsh -c 'trap \"\" TERM; echo $$$$ > sleep.pid; "
                        "exec sleep 30'\n",
            NULL);

    memset(&c, 0, sizeof(c));
    c.name = "slow";
    c.log_fd = -2;
    c.timeout_ms = 500;

    t0 = now_ms();
    rc = build_case(&c);
    ms = now_ms() - t0;

    ok(rc == -1 && strcmp(err, "build timed out after 500 ms") == 0,
       "timeout: \"build timed out after 500 ms\"");
    ok(ms >= 500 && ms < 2500, "timeout: it returns in %d ms, SIGKILL "
       "%d ms after SIGTERM", (int) ms, SHUTTLE_BUILD_KILL_GRACE_MS);
    ok(gone(pid_in(tpath("slow/sleep.pid"))),
       "timeout: the sleep, deaf to SIGTERM, is killed with its group");
    ok(has(log_of("slow"), "build timed out, stopping make"),
       "timeout: the log says why it ends");

    project("cancel",
            "Makefile", "service.so:\n"
                        "\techo $$$$ > sleep.pid; exec sleep 30\n",
            NULL);

    cancel = 0;
    c.name = "cancel";
    c.timeout_ms = 0;
    c.cancel = &cancel;

    pthread_create(&t, NULL, cancel_later, (void *) &cancel);
    t0 = now_ms();
    rc = build_case(&c);
    ms = now_ms() - t0;
    pthread_join(t, NULL);

    ok(rc == -1 && strcmp(err, "build cancelled") == 0,
       "cancel from another thread: \"build cancelled\"");
    ok(ms >= 300 && ms < 1500, "cancel: it returns in %d ms", (int) ms);
    ok(gone(pid_in(tpath("cancel/sleep.pid"))), "cancel: the sleep is gone");

    cancel = 1;
    c.name = "hello";

    ok(build_case(&c) == -1 && strcmp(err, "build cancelled") == 0
       && log_of("hello")[0] == '\0',
       "cancelled before it starts: nothing runs");

    project("bg",
            "Makefile", "service.so: lib.c\n"
                        "\tsleep 30 > /dev/null 2>&1 & echo $$! > bg.pid\n"
                        "\t$(CC) -shared -fPIC -o $@ lib.c\n",
            "lib.c", "int x(void) { return 1; }\n",
            NULL);

    ok(build("bg") == 0 && gone(pid_in(tpath("bg/bg.pid"))),
       "a process left in the background by a good build is killed");
}


static void
test_env(void)
{
    int                 fd, i, n;
    char               *log, *line, *end, want[PATH_MAX * 2];
    sigset_t            usr1, old;
    const char         *allowed[] = { "PATH=", "LANG=", "HOME=",
                                      "SHUTTLE_INCLUDE=", "CC=",
                                      /* make's and sh's own */
                                      "MAKELEVEL=", "MAKEFLAGS=", "MFLAGS=",
                                      "PWD=", "OLDPWD=", "SHLVL=", "_=" };
    struct sigaction    sa, old_hup;
    unsigned long long  ign;

    setenv("SHUTTLE_SECRET_TEST", "xyz", 1);
    setenv("CFLAGS", "-DLEAKED_CFLAGS", 1);

    /* what a daemon could leave to its children by mistake */

    fd = open("/dev/null", O_RDONLY);
    dup2(fd, 47);
    close(fd);

    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, &old_hup);

    project("env",
            "Makefile", "service.so:\n"
                        "\t@env | sort\n"
                        "\t@if [ -e /proc/$$$$/fd/47 ]; then "
                        "echo fd-47-leaked; else echo fd-47-closed; fi\n"
                        "\t@echo stdin=$$(readlink /proc/$$$$/fd/0)\n"
                        "\t@grep -E '^Sig(Blk|Ign)' /proc/self/status\n"
                        "\t@echo cwd=$$(pwd)\n"
                        "\t@exit 1\n",
            NULL);

    build("env");
    log = log_of("env");

    ok(!has(log, "SHUTTLE_SECRET_TEST") && !has(log, "=xyz\n")
       && !has(log, "LEAKED_CFLAGS"),
       "environment: nothing of the caller's (SHUTTLE_SECRET_TEST, CFLAGS)");

    snprintf(want, sizeof(want),
             "\nCC=cc\nHOME=%s\nLANG=C.UTF-8\n", tpath("env"));
    ok(has(log, want) && has(log, "\nPATH=/usr/local/bin:/usr/bin:/bin\n"),
       "environment: PATH, LANG, HOME=the project, CC=cc");

    snprintf(want, sizeof(want), "\nSHUTTLE_INCLUDE=%s\n", incdir);
    ok(has(log, want), "environment: SHUTTLE_INCLUDE");

    /* env's lines are the ones between make's first line and "fd-47" */

    n = 0;
    line = strchr(log, '\n');
    end = strstr(log, "fd-47");

    while (line != NULL && end != NULL && line < end) {
        line++;

        if (strncmp(line, "make", 4) != 0 && line < end) {
            for (i = 0; i < (int) (sizeof(allowed) / sizeof(allowed[0]));
                 i++)
            {
                if (strncmp(line, allowed[i], strlen(allowed[i])) == 0) {
                    break;
                }
            }

            if (i == (int) (sizeof(allowed) / sizeof(allowed[0]))) {
                printf("#   unexpected: %.*s\n",
                       (int) strcspn(line, "\n"), line);
                n++;
            }
        }

        line = strchr(line, '\n');
    }

    ok(n == 0 && end != NULL, "environment: no other variable");

    ok(has(log, "fd-47-closed\n"),
       "a descriptor the caller leaves open is closed in the children");
    ok(has(log, "stdin=/dev/null\n"), "stdin is /dev/null");
    /*
     * SIGHUP, ignored here, must not be in the children.  glibc's
     * posix_spawn() leaves its own two signals, 32 and 33, ignored in
     * every child: only the standard ones are looked at.  (A blocked
     * signal would not show: dash and make unblock them all.)
     */

    line = strstr(log, "SigIgn:\t");
    ign = line ? strtoull(line + sizeof("SigIgn:\t") - 1, NULL, 16) : ~0ULL;

    if (!ok(line != NULL && (ign & 0x7fffffff) == 0,
            "a signal ignored by the caller is not ignored in the children"))
    {
        printf("#   %.*s\n", line ? 24 : 0, line ? line : "");
    }

    snprintf(want, sizeof(want), "cwd=%s\n", tpath("env"));
    ok(has(log, want), "children run in the project directory");

    /* cc is found in our PATH, not the caller's */

    setenv("PATH", "/nonexistent", 1);
    ok(build("hello") == 0, "the caller's PATH does not matter");
    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);

    sigaction(SIGHUP, &old_hup, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(47);
    unsetenv("SHUTTLE_SECRET_TEST");
    unsetenv("CFLAGS");
}


static void
test_paths(void)
{
    char                  cwd[PATH_MAX];
    shuttle_build_opts_t  o;

    if (getcwd(cwd, sizeof(cwd)) == NULL || chdir(base) != 0) {
        printf("Bail out! chdir %s: %s\n", base, strerror(errno));
        exit(1);
    }

    project("rel", "src/x.c", "#include <shuttle.h>\n"
                              "int x(void) { return FAKE_SDK; }\n", NULL);

    memset(&o, 0, sizeof(o));
    o.src_dir = "rel";
    o.out = "rel.so";
    o.include_dir = "fake-sdk";
    o.log_fd = -1;

    ok(shuttle_build(&o, err, sizeof(err)) == 0
       && call(tpath("rel.so"), "x") == 40,
       "relative src_dir, out and include_dir are from the current "
       "directory");

    if (chdir(cwd) != 0) {
        printf("Bail out! chdir %s: %s\n", cwd, strerror(errno));
        exit(1);
    }
}


static void *
build_thread(void *arg)
{
    build_thread_t        *t;
    shuttle_build_opts_t   o;
    char                   src[PATH_MAX], out[PATH_MAX];

    t = arg;
    snprintf(src, sizeof(src), "%s/%s", base, t->name);
    snprintf(out, sizeof(out), "%s/%s.so", base, t->name);

    memset(&o, 0, sizeof(o));
    o.src_dir = src;
    o.out = out;
    o.include_dir = incdir;
    o.log_fd = -1;

    t->rc = shuttle_build(&o, t->err, sizeof(t->err));
    t->value = t->rc == 0 ? call(out, "value") : -1;

    return NULL;
}


static void
test_threads(void)
{
    int             i, good;
    char            src[64];
    pthread_t       tid[THREADS];
    build_thread_t  t[THREADS];

    for (i = 0; i < THREADS; i++) {
        snprintf(t[i].name, sizeof(t[i].name), "thread%d", i);
        snprintf(src, sizeof(src), "int value(void) { return %d; }\n",
                 100 + i);

        if (i % 2) {
            project(t[i].name, "src/v.c", src, NULL);

        } else {
            project(t[i].name, "Makefile", "service.so: v.c\n"
                    "\t$(CC) -shared -fPIC -o $@ v.c\n", "v.c", src, NULL);
        }
    }

    for (i = 0; i < THREADS; i++) {
        pthread_create(&tid[i], NULL, build_thread, &t[i]);
    }

    good = 0;

    for (i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);

        if (t[i].rc == 0 && t[i].value == 100 + i) {
            good++;

        } else {
            printf("#   %s: %s\n", t[i].name, t[i].err);
        }
    }

    ok(good == THREADS, "%d builds at once in %d threads, each its own",
       good, THREADS);
}


/* the descriptors open in this process, the one counting them excluded */

static int
open_fds(void)
{
    int             n;
    DIR            *dir;
    struct dirent  *de;

    dir = opendir("/proc/self/fd");

    if (dir == NULL) {
        return -1;
    }

    n = 0;

    while ((de = readdir(dir)) != NULL) {
        n += de->d_name[0] != '.';
    }

    closedir(dir);

    return n - 1;
}


static int
cmp_ms(const void *one, const void *two)
{
    return (int) (*(const int64_t *) one - *(const int64_t *) two);
}


static void
test_time(void)
{
    int           i;
    int64_t       t0, ms[5];
    build_case_t  c;

    project("timed",
            "src/hello.c", "int hello(void) { return 42; }\n", NULL);

    memset(&c, 0, sizeof(c));
    c.name = "timed";
    c.log_fd = -2;

    for (i = 0; i < 5; i++) {
        t0 = now_ms();

        if (build_case(&c) != 0) {
            break;
        }

        ms[i] = now_ms() - t0;
    }

    ok(i == 5, "the hello build, five times");

    if (i == 5) {
        qsort(ms, 5, sizeof(int64_t), cmp_ms);
        printf("# hello build, default rule: median of 5 %d ms "
               "(%d..%d)\n", (int) ms[2], (int) ms[0], (int) ms[4]);
    }
}


int
main(void)
{
    int  fds;

    fds = open_fds();

    if (mkdtemp(tmpdir) == NULL || realpath(tmpdir, base) == NULL) {
        printf("Bail out! mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }

    snprintf(incdir, sizeof(incdir), "%s/fake-sdk", base);
    mkdir(incdir, 0755);
    spit(tpath("fake-sdk/shuttle.h"), "#define FAKE_SDK 40\n");

    test_default();
    test_errors();
    test_manifest();
    test_make();
    test_stop();
    test_env();
    test_paths();
    test_threads();
    test_time();

    ok(open_fds() == fds, "no descriptor left open by the builds");

    ok(shuttle_rmtree(NULL, base) == 0 && !exists(base),
       "the test directory is removed");

    return tap_done();
}
