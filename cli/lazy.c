
/*
 * libcurl and libarchive, loaded when a command first calls them.
 *
 * Linked, they and what they pull in (a TLS stack or two, Kerberos, LDAP,
 * ICU, the compressors: about 40 shared libraries) are mapped, relocated
 * and initialised at every start, "shuttle --version" and "shuttle help"
 * included.  Here each of their functions the CLI calls is a stub of the
 * same name that dlopen()s the library on its first call, looks the
 * function up once and calls it: the CLI's code calls them as if linked,
 * and the commands that never upload or pack never load them.
 *
 * cli_lazy_preload() loads libarchive then libcurl in a thread of its
 * own, so that "shuttle deploy" loads libcurl while it packs (the dynamic
 * loader takes one library at a time: libcurl first would hold the
 * packing up).
 *
 * A library that cannot be loaded ends the CLI, naming it and why (exit
 * 3 for libcurl, an API error; 2 for libarchive, a packing error).
 */


#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* the stubs below are the functions themselves, not curl's checking
   macros around them */
#define CURL_DISABLE_TYPECHECK 1

#include <curl/curl.h>
#include <archive.h>
#include <archive_entry.h>

#include "cli.h"


/* the functions the CLI calls, each library's (X-macro lists) */

#define CLI_CURL_FUNCS(X)                                                    \
    X(curl_global_init) X(curl_global_cleanup) X(curl_easy_init)             \
    X(curl_easy_cleanup) X(curl_easy_reset) X(curl_easy_strerror)            \
    X(curl_slist_append) X(curl_slist_free_all) X(curl_multi_init)           \
    X(curl_multi_cleanup) X(curl_multi_add_handle)                           \
    X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll)     \
    X(curl_multi_info_read) X(curl_easy_setopt) X(curl_easy_getinfo)

#define CLI_ARCHIVE_FUNCS(X)                                                 \
    X(archive_write_new) X(archive_write_free) X(archive_write_close)        \
    X(archive_write_add_filter_gzip)                                         \
    X(archive_write_set_format_pax_restricted)                               \
    X(archive_write_set_bytes_in_last_block)                                 \
    X(archive_write_set_filter_option) X(archive_write_open)                 \
    X(archive_write_header) X(archive_write_data) X(archive_error_string)    \
    X(archive_entry_new) X(archive_entry_free) X(archive_entry_set_pathname) \
    X(archive_entry_set_filetype) X(archive_entry_set_perm)                  \
    X(archive_entry_set_size) X(archive_entry_set_mtime) X(archive_set_error)

#define CLI_ENUM(name)   CLI_SYM_##name,
#define CLI_NAME(name)   #name,

enum { CLI_CURL_FUNCS(CLI_ENUM) CLI_CURL_N };
enum { CLI_ARCHIVE_FUNCS(CLI_ENUM) CLI_ARCHIVE_N };


/*
 * A library: every function of its list is looked up when it loads, so
 * that a call needs no dlsym() (which would wait for a dlopen() of
 * another thread).
 */

typedef struct {
    const char          *file;
    const char          *what;
    int                  status;     /* the exit status when it fails */
    const char *const   *names;
    void               **syms;
    size_t               n;
    void                *handle;     /* set once syms are */
    pthread_mutex_t      lock;
} cli_lib_t;


static void *cli_lazy_fn(cli_lib_t *lib, size_t i);
static void *cli_lazy_load(void *arg);
static void *cli_lazy_preload_run(void *arg);


static const char *const  cli_curl_names[] = { CLI_CURL_FUNCS(CLI_NAME) };
static const char *const  cli_archive_names[] = {
    CLI_ARCHIVE_FUNCS(CLI_NAME)
};

static void  *cli_curl_syms[CLI_CURL_N];
static void  *cli_archive_syms[CLI_ARCHIVE_N];

static cli_lib_t  cli_curl = {
    "libcurl.so.4", "the HTTP client", CLI_API, cli_curl_names,
    cli_curl_syms, CLI_CURL_N, NULL, PTHREAD_MUTEX_INITIALIZER
};

static cli_lib_t  cli_archive = {
    "libarchive.so.13", "the tar writer", CLI_USAGE, cli_archive_names,
    cli_archive_syms, CLI_ARCHIVE_N, NULL, PTHREAD_MUTEX_INITIALIZER
};

static pthread_t  cli_preload_thread;
static int        cli_preloading;


/* loads lib (once, any thread), else ends the CLI saying why */

static void *
cli_lazy_load(void *arg)
{
    void       *h;
    size_t      i;
    cli_lib_t  *lib;

    lib = arg;

    pthread_mutex_lock(&lib->lock);

    h = lib->handle;

    if (h == NULL) {
        h = dlopen(lib->file, RTLD_LAZY | RTLD_LOCAL);

        if (h == NULL) {
            fprintf(stderr, "shuttle: cannot load %s (%s): %s\n", lib->file,
                    lib->what, dlerror());
            exit(lib->status);
        }

        for (i = 0; i < lib->n; i++) {
            lib->syms[i] = dlsym(h, lib->names[i]);

            if (lib->syms[i] == NULL) {
                fprintf(stderr, "shuttle: %s (%s) has no %s: %s\n",
                        lib->file, lib->what, lib->names[i], dlerror());
                exit(lib->status);
            }
        }

        __atomic_store_n(&lib->handle, h, __ATOMIC_RELEASE);
    }

    pthread_mutex_unlock(&lib->lock);

    return h;
}


/* function i of lib, lib loaded first if it is not */

static void *
cli_lazy_fn(cli_lib_t *lib, size_t i)
{
    if (__atomic_load_n(&lib->handle, __ATOMIC_ACQUIRE) == NULL) {
        (void) cli_lazy_load(lib);
    }

    return lib->syms[i];
}


void
cli_lazy_preload(void)
{
    if (!cli_preloading
        && pthread_create(&cli_preload_thread, NULL, cli_lazy_preload_run,
                          NULL) == 0)
    {
        cli_preloading = 1;
    }
}


static void *
cli_lazy_preload_run(void *arg)
{
    (void) cli_lazy_load(&cli_archive);

    return cli_lazy_load(&cli_curl);
}


void
cli_lazy_preloaded(void)
{
    if (cli_preloading) {
        (void) pthread_join(cli_preload_thread, NULL);
        cli_preloading = 0;
    }
}


/* a stub: NAME(PARAMS) calls the library's NAME(ARGS) */

#define CLI_LAZY(lib, type, name, params, args)                              \
type                                                                         \
name params                                                                  \
{                                                                            \
    type (*fn) params;                                                       \
                                                                             \
    *(void **) &fn = cli_lazy_fn(&lib, CLI_SYM_##name);                      \
    return fn args;                                                          \
}

#define CLI_LAZY_VOID(lib, name, params, args)                               \
void                                                                         \
name params                                                                  \
{                                                                            \
    void (*fn) params;                                                       \
                                                                             \
    *(void **) &fn = cli_lazy_fn(&lib, CLI_SYM_##name);                      \
    fn args;                                                                 \
}


/* libcurl ------------------------------------------------------------ */

CLI_LAZY(cli_curl, CURLcode, curl_global_init, (long flags), (flags))
CLI_LAZY_VOID(cli_curl, curl_global_cleanup, (void), ())
CLI_LAZY(cli_curl, CURL *, curl_easy_init, (void), ())
CLI_LAZY_VOID(cli_curl, curl_easy_cleanup, (CURL *h), (h))
CLI_LAZY_VOID(cli_curl, curl_easy_reset, (CURL *h), (h))
CLI_LAZY(cli_curl, const char *, curl_easy_strerror, (CURLcode code),
         (code))
CLI_LAZY(cli_curl, struct curl_slist *, curl_slist_append,
         (struct curl_slist *list, const char *s), (list, s))
CLI_LAZY_VOID(cli_curl, curl_slist_free_all, (struct curl_slist *list),
              (list))
CLI_LAZY(cli_curl, CURLM *, curl_multi_init, (void), ())
CLI_LAZY(cli_curl, CURLMcode, curl_multi_cleanup, (CURLM *m), (m))
CLI_LAZY(cli_curl, CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h),
         (m, h))
CLI_LAZY(cli_curl, CURLMcode, curl_multi_remove_handle,
         (CURLM *m, CURL *h), (m, h))
CLI_LAZY(cli_curl, CURLMcode, curl_multi_perform, (CURLM *m, int *running),
         (m, running))
CLI_LAZY(cli_curl, CURLMcode, curl_multi_poll,
         (CURLM *m, struct curl_waitfd extra[], unsigned int n, int ms,
          int *numfds),
         (m, extra, n, ms, numfds))
CLI_LAZY(cli_curl, CURLMsg *, curl_multi_info_read, (CURLM *m, int *left),
         (m, left))


/*
 * The variadic two: an option's value is a long, a pointer (an object or
 * a function) or a curl_off_t, by the option's number as libcurl itself
 * reads it; getinfo's is always a pointer.
 */

CURLcode
curl_easy_setopt(CURL *h, CURLoption option, ...)
{
    long             n;
    void            *p;
    va_list          ap;
    CURLcode         rc;
    curl_off_t       off;
    CURLcode       (*fn)(CURL *, CURLoption, ...);

    *(void **) &fn = cli_lazy_fn(&cli_curl, CLI_SYM_curl_easy_setopt);

    va_start(ap, option);

    if (option < CURLOPTTYPE_OBJECTPOINT) {
        n = va_arg(ap, long);
        rc = fn(h, option, n);

    } else if (option >= CURLOPTTYPE_OFF_T
               && option < CURLOPTTYPE_OFF_T + 10000)
    {
        off = va_arg(ap, curl_off_t);
        rc = fn(h, option, off);

    } else {
        p = va_arg(ap, void *);
        rc = fn(h, option, p);
    }

    va_end(ap);

    return rc;
}


CURLcode
curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    void           *p;
    va_list         ap;
    CURLcode      (*fn)(CURL *, CURLINFO, ...);

    *(void **) &fn = cli_lazy_fn(&cli_curl, CLI_SYM_curl_easy_getinfo);

    va_start(ap, info);
    p = va_arg(ap, void *);
    va_end(ap);

    return fn(h, info, p);
}


/* libarchive --------------------------------------------------------- */

CLI_LAZY(cli_archive, struct archive *, archive_write_new, (void), ())
CLI_LAZY(cli_archive, int, archive_write_free, (struct archive *a), (a))
CLI_LAZY(cli_archive, int, archive_write_close, (struct archive *a), (a))
CLI_LAZY(cli_archive, int, archive_write_add_filter_gzip,
         (struct archive *a), (a))
CLI_LAZY(cli_archive, int, archive_write_set_format_pax_restricted,
         (struct archive *a), (a))
CLI_LAZY(cli_archive, int, archive_write_set_bytes_in_last_block,
         (struct archive *a, int n), (a, n))
CLI_LAZY(cli_archive, int, archive_write_set_filter_option,
         (struct archive *a, const char *m, const char *o, const char *v),
         (a, m, o, v))
CLI_LAZY(cli_archive, int, archive_write_open,
         (struct archive *a, void *data, archive_open_callback *open,
          archive_write_callback *write, archive_close_callback *close),
         (a, data, open, write, close))
CLI_LAZY(cli_archive, int, archive_write_header,
         (struct archive *a, struct archive_entry *e), (a, e))
CLI_LAZY(cli_archive, la_ssize_t, archive_write_data,
         (struct archive *a, const void *buf, size_t len), (a, buf, len))
CLI_LAZY(cli_archive, const char *, archive_error_string,
         (struct archive *a), (a))
CLI_LAZY(cli_archive, struct archive_entry *, archive_entry_new, (void), ())
CLI_LAZY_VOID(cli_archive, archive_entry_free, (struct archive_entry *e),
              (e))
CLI_LAZY_VOID(cli_archive, archive_entry_set_pathname,
              (struct archive_entry *e, const char *name), (e, name))
CLI_LAZY_VOID(cli_archive, archive_entry_set_filetype,
              (struct archive_entry *e, unsigned int type), (e, type))
CLI_LAZY_VOID(cli_archive, archive_entry_set_perm,
              (struct archive_entry *e, mode_t mode), (e, mode))
CLI_LAZY_VOID(cli_archive, archive_entry_set_size,
              (struct archive_entry *e, la_int64_t size), (e, size))
CLI_LAZY_VOID(cli_archive, archive_entry_set_mtime,
              (struct archive_entry *e, time_t t, long ns), (e, t, ns))


/* archive_set_error(): the message made here, handed over as "%s" */

void
archive_set_error(struct archive *a, int err, const char *fmt, ...)
{
    char           msg[512];
    va_list        ap;
    void         (*fn)(struct archive *, int, const char *, ...);

    *(void **) &fn = cli_lazy_fn(&cli_archive, CLI_SYM_archive_set_error);

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    fn(a, err, "%s", msg);
}
