
/*
 * A project's manifest, shuttle.json: read and checked (build.h).
 */

#include "build.h"
#include "build_int.h"


static int build_manifest_parse(json_t *root, shuttle_manifest_t *m,
    char *err, size_t errlen);
static int build_valid_lib(const char *s, size_t len);
static const char *build_json_type(json_t *v);


int
shuttle_manifest_read(const char *src_dir, shuttle_manifest_t *m,
    char *err, size_t errlen)
{
    int           fd, rc;
    char         *path, *buf;
    size_t        len;
    ssize_t       n;
    json_t       *root;
    struct stat   st;
    json_error_t  jerr;

    memset(m, 0, sizeof(shuttle_manifest_t));

    if (asprintf(&path, "%s/" BUILD_MANIFEST, src_dir) == -1) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
        return -1;
    }

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    free(path);

    if (fd == -1) {

        if (errno == ENOENT) {
            return 0;
        }

        build_error(err, errlen, BUILD_MANIFEST ": %s",
                    errno == ELOOP ? "a symbolic link, not a file"
                                   : strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(errno));
        close(fd);
        return -1;
    }

    if (!S_ISREG(st.st_mode)) {
        build_error(err, errlen, BUILD_MANIFEST ": not a regular file");
        close(fd);
        return -1;
    }

    if (st.st_size > SHUTTLE_MANIFEST_MAX_SIZE) {
        build_error(err, errlen, BUILD_MANIFEST ": larger than %d bytes",
                    SHUTTLE_MANIFEST_MAX_SIZE);
        close(fd);
        return -1;
    }

    buf = malloc(SHUTTLE_MANIFEST_MAX_SIZE + 1);

    if (buf == NULL) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
        close(fd);
        return -1;
    }

    len = 0;

    for ( ;; ) {
        n = read(fd, buf + len, SHUTTLE_MANIFEST_MAX_SIZE + 1 - len);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        len += n;

        if (len > SHUTTLE_MANIFEST_MAX_SIZE) {
            break;
        }
    }

    close(fd);

    if (n == -1) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(errno));
        free(buf);
        return -1;
    }

    if (len > SHUTTLE_MANIFEST_MAX_SIZE) {
        build_error(err, errlen, BUILD_MANIFEST ": larger than %d bytes",
                    SHUTTLE_MANIFEST_MAX_SIZE);
        free(buf);
        return -1;
    }

    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);

    if (root == NULL) {
        build_error(err, errlen, BUILD_MANIFEST ": invalid JSON at line %d: "
                    "%s", jerr.line, jerr.text);
        return -1;
    }

    rc = build_manifest_parse(root, m, err, errlen);
    json_decref(root);

    if (rc != 0) {
        shuttle_manifest_free(m);
    }

    return rc;
}


static int
build_manifest_parse(json_t *root, shuttle_manifest_t *m, char *err,
    size_t errlen)
{
    char         quoted[BUILD_QUOTED * 4 + 8];
    size_t       i, len, nlibs;
    json_t      *name, *libs, *lib;
    const char  *s;

    if (!json_is_object(root)) {
        build_error(err, errlen, BUILD_MANIFEST ": the top level is %s, "
                    "not an object", build_json_type(root));
        return -1;
    }

    name = json_object_get(root, "name");

    if (name != NULL) {

        if (!json_is_string(name)) {
            build_error(err, errlen, BUILD_MANIFEST ": \"name\" is %s, "
                        "not a string", build_json_type(name));
            return -1;
        }

        s = json_string_value(name);
        len = json_string_length(name);

        if (!shuttle_valid_name(s, len)) {
            build_error(err, errlen, BUILD_MANIFEST ": name %s is not a DNS "
                        "label (" BUILD_NAME_RULE ")",
                        build_quote(s, len, quoted, sizeof(quoted)));
            return -1;
        }

        m->name = strndup(s, len);

        if (m->name == NULL) {
            build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
            return -1;
        }
    }

    libs = json_object_get(root, "libs");

    if (libs == NULL) {
        return 0;
    }

    if (!json_is_array(libs)) {
        build_error(err, errlen, BUILD_MANIFEST ": \"libs\" is %s, not an "
                    "array of strings", build_json_type(libs));
        return -1;
    }

    nlibs = json_array_size(libs);

    if (nlibs > SHUTTLE_MANIFEST_MAX_LIBS) {
        build_error(err, errlen, BUILD_MANIFEST ": \"libs\" has %zu entries, "
                    "more than %d", nlibs, SHUTTLE_MANIFEST_MAX_LIBS);
        return -1;
    }

    if (nlibs == 0) {
        return 0;
    }

    m->libs = calloc(nlibs, sizeof(char *));

    if (m->libs == NULL) {
        build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
        return -1;
    }

    json_array_foreach(libs, i, lib) {

        if (!json_is_string(lib)) {
            build_error(err, errlen, BUILD_MANIFEST ": libs[%zu] is %s, not "
                        "a string", i, build_json_type(lib));
            return -1;
        }

        s = json_string_value(lib);
        len = json_string_length(lib);

        if (!build_valid_lib(s, len)) {
            build_error(err, errlen, BUILD_MANIFEST ": libs[%zu]: %s is not "
                        "a pkg-config package name (" BUILD_LIB_CHARS ", "
                        "at most %d bytes)", i,
                        build_quote(s, len, quoted, sizeof(quoted)),
                        SHUTTLE_MANIFEST_MAX_LIB);
            return -1;
        }

        m->libs[i] = strndup(s, len);

        if (m->libs[i] == NULL) {
            build_error(err, errlen, BUILD_MANIFEST ": %s", strerror(ENOMEM));
            return -1;
        }

        m->nlibs++;
    }

    return 0;
}


void
shuttle_manifest_free(shuttle_manifest_t *m)
{
    size_t  i;

    for (i = 0; i < m->nlibs; i++) {
        free(m->libs[i]);
    }

    free(m->libs);
    free(m->name);
    memset(m, 0, sizeof(shuttle_manifest_t));
}


static int
build_valid_lib(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > SHUTTLE_MANIFEST_MAX_LIB) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '+' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


static const char *
build_json_type(json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_OBJECT:
        return "an object";

    case JSON_ARRAY:
        return "an array";

    case JSON_STRING:
        return "a string";

    case JSON_INTEGER:
        return "an integer";

    case JSON_REAL:
        return "a number";

    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";

    default:
        return "null";
    }
}


/* an untrusted string for err: quoted, escaped, cut at BUILD_QUOTED bytes */

const char *
build_quote(const char *s, size_t len, char *buf, size_t size)
{
    size_t          i, n;
    unsigned char   c;

    n = 0;
    buf[n++] = '"';

    for (i = 0; i < len && i < BUILD_QUOTED && n + 8 < size; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = c;

        } else if (c < 0x20 || c >= 0x7f) {
            n += snprintf(buf + n, size - n, "\\x%02x", c);

        } else {
            buf[n++] = c;
        }
    }

    if (i < len && n + 4 < size) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }

    buf[n++] = '"';
    buf[n] = '\0';

    return buf;
}
