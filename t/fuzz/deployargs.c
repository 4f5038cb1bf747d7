
/*
 * Fuzz target: the arguments of the builder's hand-off, POST
 * /deploy?project=NAME&key=KEY&file=FILE, as libmicrohttpd hands them to
 * builder/api/api.c: three strings, here the input cut at its first two NUL
 * bytes.  What is accepted must be what the contract says: a project a
 * DNS label, a key [A-Za-z0-9_.-]{1,64}, a spool file a plain name that
 * cannot leave the spool directory.  A breach aborts.
 */


#include <stdlib.h>
#include <string.h>

#include <shuttle_zone.h>

#include "api.h"
#include "fuzz.h"


static void
deployargs_check(const char *project, const char *key, const char *file)
{
    size_t       i, len;
    const char  *c;

    len = strlen(project);

    if (shuttle_valid_name(project, len)) {
        if (len == 0 || len > 63 || project[0] == '-'
            || project[len - 1] == '-')
        {
            abort();
        }

        for (i = 0; i < len; i++) {
            c = strchr("abcdefghijklmnopqrstuvwxyz0123456789-", project[i]);
            if (c == NULL || *c == '\0') {
                abort();
            }
        }
    }

    len = strlen(key);

    if (shuttle_api_valid_key(key)) {
        if (len == 0 || len > 64) {
            abort();
        }

        for (i = 0; i < len; i++) {
            c = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789_.-", key[i]);
            if (c == NULL || *c == '\0') {
                abort();
            }
        }
    }

    len = strlen(file);

    if (shuttle_api_valid_spool_name(file)) {
        if (len == 0 || len > 255 || strchr(file, '/') != NULL
            || strcmp(file, ".") == 0 || strcmp(file, "..") == 0
            || file[0] == '.')
        {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   *buf, *project, *key, *file, *end;

    /* three NUL-terminated strings, whatever the input holds */

    buf = malloc(size + 3);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data, size);
    buf[size] = '\0';
    buf[size + 1] = '\0';
    buf[size + 2] = '\0';

    end = buf + size;
    project = buf;
    key = project + strlen(project) + 1;
    key = key <= end ? key : end;
    file = key + strlen(key) + 1;
    file = file <= end + 1 ? file : end + 1;

    deployargs_check(project, key, file);

    free(buf);

    return 0;
}
