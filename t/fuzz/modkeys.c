
/*
 * Fuzz target: the keys file of "shuttle_api_keys" as nginx reads it,
 * through the module's own parser: ngx_shuttle_module/ngx_http_shuttle_api.c
 * is included here whole and its ngx_http_shuttle_load_keys() reads the
 * file ("name:sha256-hex" lines, '#' comments, blank lines) with the pools,
 * arrays and logs of ngx_fuzz.c: every allocation of its exact size.
 *
 * The input is the file.  When the module accepts it, it must have kept
 * a key per line that is neither blank nor a comment, each named by 1 to
 * 64 of [A-Za-z0-9_.-] taken from the start of its line.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_fuzz.h"
#include "fuzz.h"

#include "ngx_http_shuttle_api.c"


static ngx_uint_t fuzz_modkeys_lines(const uint8_t *data, size_t size,
    const uint8_t **starts, ngx_uint_t max);


#define FUZZ_MODKEYS_MAX  4096


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        c;
    ngx_int_t                     rc;
    ngx_uint_t                    i, j, n;
    ngx_conf_t                    cf;
    const char                   *path;
    ngx_http_shuttle_key_t       *keys;
    ngx_http_shuttle_loc_conf_t   slcf;
    static const uint8_t         *starts[FUZZ_MODKEYS_MAX];

    path = fuzz_file("keys", data, size);

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = fuzz_ngx_pool();
    cf.temp_pool = fuzz_ngx_pool();
    cf.log = fuzz_ngx_log();

    ngx_memzero(&slcf, sizeof(ngx_http_shuttle_loc_conf_t));
    slcf.keys_file.data = (u_char *) path;
    slcf.keys_file.len = ngx_strlen(path);

    rc = ngx_http_shuttle_load_keys(&cf, &slcf);

    if (rc == NGX_OK) {
        n = fuzz_modkeys_lines(data, size, starts, FUZZ_MODKEYS_MAX);

        if (slcf.keys == NULL
            || (n < FUZZ_MODKEYS_MAX && slcf.keys->nelts != n))
        {
            abort();
        }

        keys = slcf.keys->elts;

        for (i = 0; i < slcf.keys->nelts; i++) {
            if (keys[i].name.len == 0 || keys[i].name.len > 64) {
                abort();
            }

            if (i < n
                && ngx_memcmp(keys[i].name.data, starts[i],
                              keys[i].name.len) != 0)
            {
                abort();
            }

            for (j = 0; j < keys[i].name.len; j++) {
                c = keys[i].name.data[j];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                      || (c >= '0' && c <= '9') || c == '_' || c == '-'
                      || c == '.'))
                {
                    abort();
                }
            }
        }

    } else if (rc != NGX_ERROR) {
        abort();
    }

    fuzz_ngx_reset();

    return 0;
}


/* the lines neither blank nor comments: where their text starts */

static ngx_uint_t
fuzz_modkeys_lines(const uint8_t *data, size_t size, const uint8_t **starts,
    ngx_uint_t max)
{
    size_t          i, s, e, nl;
    ngx_uint_t      n;
    const uint8_t  *p;

    n = 0;

    for (i = 0; i < size; i = nl + 1) {
        p = memchr(data + i, '\n', size - i);
        nl = (p != NULL) ? (size_t) (p - data) : size;

        s = i;
        e = nl;

        while (e > s && (data[e - 1] == '\r' || data[e - 1] == ' '
                         || data[e - 1] == '\t'))
        {
            e--;
        }

        while (s < e && (data[s] == ' ' || data[s] == '\t')) {
            s++;
        }

        if (s == e || data[s] == '#') {
            continue;
        }

        if (n < max) {
            starts[n] = data + s;
        }

        n++;
    }

    return n;
}
