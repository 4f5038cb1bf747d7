
/*
 * Unit tests of reading resource declarations (builder/build/resources.c), in
 * TAP.  Each case compiles a small service with cc against the tree's
 * include/ into a temporary directory and reads its declarations back
 * with shuttle_resources_read(); records the SDK macros cannot make
 * (a bad magic, another ABI, an unknown kind, an unterminated name) are
 * written into the section by hand.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resources.h"
#include "tap.h"


#define ERRLEN  1024


static char  tmpdir[] = "/tmp/resources-unit.XXXXXX";
static char  include[1024];


/* compiles source into NAME.so; its path, or NULL */

static const char *
service(const char *name, const char *source)
{
    FILE         *f;
    char          c[1200], cmd[4096];
    static char   so[1200];

    snprintf(c, sizeof(c), "%s/%s.c", tmpdir, name);
    snprintf(so, sizeof(so), "%s/%s.so", tmpdir, name);

    f = fopen(c, "w");
    if (f == NULL) {
        return NULL;
    }

    fputs(source, f);
    fclose(f);

    snprintf(cmd, sizeof(cmd), "cc -std=gnu11 -fPIC -shared -I%s %s -o %s",
             include, c, so);

    return system(cmd) == 0 ? so : NULL;
}


/* reads so: rc, and the declarations as "kind:name kind:name" in out */

static int
declared(const char *so, char *out, size_t size, char *err)
{
    int             rc;
    size_t          i, n, len;
    shuttle_res_t  *res;

    out[0] = '\0';
    err[0] = '\0';

    rc = shuttle_resources_read(so, &res, &n, err, ERRLEN);

    if (rc == 0) {
        for (i = 0, len = 0; i < n; i++) {
            len += snprintf(out + len, size - len, "%s%s:%s", i ? " " : "",
                            shuttle_res_kind_name(res[i].kind),
                            res[i].name);
        }

        free(res);
    }

    return rc;
}


static void
refused(const char *what, const char *source, const char *expect)
{
    char         list[512], err[ERRLEN];
    const char  *so;

    so = service(what, source);

    if (so == NULL) {
        ok(0, "%s: compiles", what);
        return;
    }

    ok(declared(so, list, sizeof(list), err) == -1
       && strstr(err, expect) != NULL, "%s: refused: %s", what, err);
}


int
main(void)
{
    char         list[512], err[ERRLEN], cmd[1200];
    const char  *so;

    if (mkdtemp(tmpdir) == NULL) {
        printf("1..0 # SKIP mkdtemp: cannot\n");
        return 0;
    }

    if (realpath("include", include) == NULL) {
        printf("1..0 # SKIP run from the repository's top\n");
        return 0;
    }

    so = service("none", "#include <shuttle.h>\n"
                 "SHUTTLE_MAIN(app) { (void) app; return 0; }\n");
    ok(so && declared(so, list, sizeof(list), err) == 0
       && list[0] == '\0', "no declaration: nothing, no error");

    so = service("all", "#include <shuttle.h>\n"
                 "SHUTTLE_SQLITE(\"main\");\n"
                 "SHUTTLE_POSTGRES(\"events_2\");\n"
                 "SHUTTLE_SECRETS();\n"
                 "SHUTTLE_STATIC(\"web/dist\");\n"
                 "SHUTTLE_SQLITE(\"main\");\n"
                 "SHUTTLE_MAIN(app) { (void) app; return 0; }\n");
    ok(so && declared(so, list, sizeof(list), err) == 0
       && strcmp(list, "sqlite:main postgres:events_2 secrets: "
                       "static:web/dist") == 0,
       "every kind, a duplicate merged: \"%s\" %s", list, err);

    refused("badname", "#include <shuttle.h>\n"
            "SHUTTLE_SQLITE(\"Main DB\");\n",
            "badname.so: SHUTTLE_SQLITE(\"Main DB\"): a database name is "
            "[a-z][a-z0-9_]{0,31}");

    refused("longname", "#include <shuttle.h>\n"
            "SHUTTLE_POSTGRES(\"a234567890123456789012345678901234\");\n",
            "SHUTTLE_POSTGRES(\"a234567890123456789012345678901234\"): a "
            "database name is");

    refused("dotdot", "#include <shuttle.h>\n"
            "SHUTTLE_STATIC(\"public/../..\");\n",
            "SHUTTLE_STATIC(\"public/../..\"): a static folder is a relative "
            "path");

    refused("absolute", "#include <shuttle.h>\n"
            "SHUTTLE_STATIC(\"/etc\");\n",
            "SHUTTLE_STATIC(\"/etc\"): a static folder");

    refused("twostatic", "#include <shuttle.h>\n"
            "SHUTTLE_STATIC(\"a\");\nSHUTTLE_STATIC(\"b\");\n",
            "SHUTTLE_STATIC(\"a\") and SHUTTLE_STATIC(\"b\"): one static "
            "folder per service");

#define RAW(magic, abi, kind, name)                                          \
    "#include <shuttle.h>\n"                                                 \
    "__attribute__((used, section(\"shuttle_res\"), aligned(8)))\n"          \
    "static const shuttle_resource_decl raw = { " magic ", " abi ", "        \
    kind ", " name " };\n"

    refused("magic", RAW("0x12345678u", "SHUTTLE_ABI", "1", "\"main\""),
            "declaration #1 in section shuttle_res is not a resource "
            "declaration (bad magic 0x12345678)");

    refused("abi", RAW("SHUTTLE_RES_MAGIC", "SHUTTLE_ABI + 1", "1",
                       "\"main\""),
            "declaration #1 was built against SDK ABI 2, this platform "
            "speaks ABI 1");

    refused("kind", RAW("SHUTTLE_RES_MAGIC", "SHUTTLE_ABI", "9", "\"x\""),
            "declaration #1 (\"x\") is of unknown kind 9");

    refused("unterminated", RAW("SHUTTLE_RES_MAGIC", "SHUTTLE_ABI", "1",
            "{ [0 ... 119] = 'a' }"),
            "declaration #1: the name is not NUL-terminated");

    refused("secretname", RAW("SHUTTLE_RES_MAGIC", "SHUTTLE_ABI", "3",
                              "\"KEY\""),
            "SHUTTLE_SECRETS() with a name (\"KEY\"): it takes none");

    snprintf(cmd, sizeof(cmd), "%s/text.so", tmpdir);
    so = service("text", "int x;\n");
    if (so != NULL) {
        FILE  *f = fopen(cmd, "w");
        fputs("not an ELF file\n", f);
        fclose(f);
    }

    ok(declared(cmd, list, sizeof(list), err) == -1
       && strstr(err, "text.so: not an ELF file") != NULL,
       "a file that is not ELF: %s", err);

    ok(declared("/nonexistent/service.so", list, sizeof(list), err) == -1
       && strstr(err, "service.so: No such file or directory") != NULL,
       "a missing file: %s", err);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        /* left behind in /tmp */
    }

    return tap_done();
}
