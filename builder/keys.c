
/*
 * shuttle-builder keys: add, list and delete API keys.
 */


#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "keys.h"
#include "log.h"


#define KEYS_OK        0
#define KEYS_FAILED    1
#define KEYS_USAGE     2

#define KEYS_MAX_SIZE  (16 * 1024 * 1024)
#define KEYS_HASH_HEX  64


/* one line of the keys file, for the builder */
typedef struct {
    char           name[SHUTTLE_KEY_MAX + 1];
    unsigned char  hash[KEYS_HASH_HEX / 2];
} keyring_key_t;


struct shuttle_keyring_s {
    char              *path;
    pthread_mutex_t    lock;
    struct stat        st;          /* of the file read last */
    unsigned           missing:1;   /* stat() failed, and was logged */
    keyring_key_t     *keys;
    size_t             nkeys;
};


typedef struct {
    const char  *path;
    int          fd;
    char        *text;      /* the file, NUL-terminated */
    size_t       len;
} keys_file_t;


static void keys_usage(FILE *f);
static int keys_open(keys_file_t *kf, int create, int lock);
static void keys_close(keys_file_t *kf);
static const char *keys_find(keys_file_t *kf, const char *name,
    size_t *linelen);
static int keys_add(keys_file_t *kf, const char *name);
static int keys_list(keys_file_t *kf);
static int keys_del(keys_file_t *kf, const char *name);
static int keys_mkdir_parent(const char *path);
static void keys_hex(const unsigned char *in, size_t n, char *out);
static int keys_write_all(int fd, const char *p, size_t n);
static int keyring_read(const char *path, struct stat *st,
    keyring_key_t **keys, size_t *nkeys, char *err, size_t errlen);
static int keyring_parse(const char *path, char *text, size_t len,
    keyring_key_t **keys, size_t *nkeys, char *err, size_t errlen);
static int keyring_same(const struct stat *a, const struct stat *b);
static int keyring_unhex(const char *in, unsigned char *out, size_t n);


int
shuttle_keys_main(int argc, char **argv)
{
    int           i, rc;
    const char   *verb, *name;
    keys_file_t   kf;

    memset(&kf, 0, sizeof(keys_file_t));
    kf.path = SHUTTLE_KEYS_FILE;
    kf.fd = -1;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            keys_usage(stdout);
            return KEYS_OK;
        }

        if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            kf.path = argv[++i];
            continue;
        }

        if (strncmp(argv[i], "--file=", 7) == 0) {
            kf.path = argv[i] + 7;
            continue;
        }

        if (argv[i][0] == '-') {
            fprintf(stderr, "shuttle-builder keys: unknown option \"%s\" "
                    "(see shuttle-builder keys --help)\n", argv[i]);
            return KEYS_USAGE;
        }

        break;
    }

    if (i == argc) {
        keys_usage(stderr);
        return KEYS_USAGE;
    }

    verb = argv[i++];
    name = i < argc ? argv[i++] : NULL;

    if (i < argc) {
        fprintf(stderr, "shuttle-builder keys %s: too many arguments\n",
                verb);
        return KEYS_USAGE;
    }

    if (strcmp(verb, "list") == 0) {
        if (name != NULL) {
            fprintf(stderr, "shuttle-builder keys list: no argument "
                    "expected\n");
            return KEYS_USAGE;
        }

        if (keys_open(&kf, 0, 0) != 0) {
            return KEYS_FAILED;
        }

        rc = keys_list(&kf);
        keys_close(&kf);

        return rc;
    }

    if (strcmp(verb, "add") != 0 && strcmp(verb, "del") != 0) {
        fprintf(stderr, "shuttle-builder keys: unknown verb \"%s\" (see "
                "shuttle-builder keys --help)\n", verb);
        return KEYS_USAGE;
    }

    if (name == NULL) {
        fprintf(stderr, "shuttle-builder keys %s: a key NAME is needed\n",
                verb);
        return KEYS_USAGE;
    }

    if (!shuttle_api_valid_key(name)) {
        fprintf(stderr, "shuttle-builder keys %s: key name \"%s\" is not "
                "1-64 of A-Z, a-z, 0-9, '_', '.' and '-'\n", verb, name);
        return KEYS_USAGE;
    }

    if (keys_open(&kf, strcmp(verb, "add") == 0, 1) != 0) {
        return KEYS_FAILED;
    }

    rc = strcmp(verb, "add") == 0 ? keys_add(&kf, name) : keys_del(&kf, name);

    keys_close(&kf);

    return rc;
}


static void
keys_usage(FILE *f)
{
    fputs(
"usage: shuttle-builder keys [--file FILE] add NAME | list | del NAME\n"
"\n"
"Manages the API keys nginx accepts (shuttle_api_keys FILE).\n"
"\n"
"  add NAME   makes a new key, prints it once on stdout, and appends\n"
"             NAME:SHA256-OF-THE-KEY to FILE (created 0640)\n"
"  list       the key names, one a line\n"
"  del NAME   removes the key\n"
"\n"
"  --file FILE  the keys file (" SHUTTLE_KEYS_FILE ")\n"
"\n"
"nginx reads FILE when it starts or reloads (nginx -s reload); the\n"
"builder (serve --api-keys FILE) whenever it changed.\n"
"exit status: 0 done, 1 failed, 2 usage error\n", f);
}


/*
 * Opens and reads the file; with lock, under an exclusive flock, taken on
 * the file that is at the path once locked (del renames a new one there).
 */

static int
keys_open(keys_file_t *kf, int create, int lock)
{
    int          n, flags;
    char        *text;
    ssize_t      r;
    struct stat  st, at;

    for (n = 0; n < 100; n++) {
        flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);

        kf->fd = open(kf->path, lock ? flags : O_RDONLY | O_CLOEXEC, 0640);

        if (kf->fd == -1 && errno == ENOENT && create
            && keys_mkdir_parent(kf->path) == 0)
        {
            kf->fd = open(kf->path, flags, 0640);
        }

        if (kf->fd == -1) {
            fprintf(stderr, "shuttle-builder keys: %s: %s\n", kf->path,
                    strerror(errno));
            return -1;
        }

        if (!lock) {
            break;
        }

        if (flock(kf->fd, LOCK_EX) == -1) {
            fprintf(stderr, "shuttle-builder keys: %s: flock: %s\n",
                    kf->path, strerror(errno));
            close(kf->fd);
            return -1;
        }

        if (fstat(kf->fd, &st) == 0 && stat(kf->path, &at) == 0
            && st.st_ino == at.st_ino && st.st_dev == at.st_dev)
        {
            break;
        }

        /* replaced while we waited: the new one */
        close(kf->fd);
        kf->fd = -1;
    }

    if (kf->fd == -1 || fstat(kf->fd, &st) == -1) {
        fprintf(stderr, "shuttle-builder keys: %s: cannot lock it\n",
                kf->path);
        return -1;
    }

    if (!S_ISREG(st.st_mode) || st.st_size > KEYS_MAX_SIZE) {
        fprintf(stderr, "shuttle-builder keys: %s: not a keys file\n",
                kf->path);
        return -1;
    }

    if (create && st.st_size == 0 && (st.st_mode & 07777) != 0640) {
        (void) fchmod(kf->fd, 0640);
    }

    text = malloc(st.st_size + 1);
    if (text == NULL) {
        fprintf(stderr, "shuttle-builder keys: %s\n", strerror(ENOMEM));
        return -1;
    }

    kf->len = 0;

    while (kf->len < (size_t) st.st_size) {
        r = pread(kf->fd, text + kf->len, st.st_size - kf->len, kf->len);

        if (r <= 0) {
            break;
        }

        kf->len += r;
    }

    text[kf->len] = '\0';
    kf->text = text;

    return 0;
}


static void
keys_close(keys_file_t *kf)
{
    if (kf->fd != -1) {
        close(kf->fd);
        kf->fd = -1;
    }

    free(kf->text);
    kf->text = NULL;
}


/* the line "NAME:..." of name, its length with the newline */

static const char *
keys_find(keys_file_t *kf, const char *name, size_t *linelen)
{
    size_t       len;
    const char  *p, *end, *nl;

    len = strlen(name);
    end = kf->text + kf->len;

    for (p = kf->text; p < end; p = nl + 1) {
        nl = memchr(p, '\n', end - p);

        if (nl == NULL) {
            nl = end - 1;
        }

        if ((size_t) (nl - p) > len && memcmp(p, name, len) == 0
            && p[len] == ':')
        {
            *linelen = nl - p + 1;
            return p;
        }
    }

    return NULL;
}


static int
keys_add(keys_file_t *kf, const char *name)
{
    char           key[sizeof(SHUTTLE_KEY_PREFIX) + 2 * SHUTTLE_KEY_BYTES];
    char           hash[KEYS_HASH_HEX + 1], *line;
    size_t         n, len;
    ssize_t        r;
    unsigned int   mdlen;
    unsigned char  bytes[SHUTTLE_KEY_BYTES], md[EVP_MAX_MD_SIZE];

    if (keys_find(kf, name, &len) != NULL) {
        fprintf(stderr, "shuttle-builder keys add: key \"%s\" already exists "
                "in %s\n", name, kf->path);
        return KEYS_FAILED;
    }

    for (n = 0; n < sizeof(bytes); n += r) {
        r = getrandom(bytes + n, sizeof(bytes) - n, 0);

        if (r == -1) {
            if (errno == EINTR) {
                r = 0;
                continue;
            }

            fprintf(stderr, "shuttle-builder keys add: getrandom: %s\n",
                    strerror(errno));
            return KEYS_FAILED;
        }
    }

    memcpy(key, SHUTTLE_KEY_PREFIX, sizeof(SHUTTLE_KEY_PREFIX) - 1);
    keys_hex(bytes, sizeof(bytes), key + sizeof(SHUTTLE_KEY_PREFIX) - 1);

    if (EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != KEYS_HASH_HEX / 2)
    {
        fprintf(stderr, "shuttle-builder keys add: SHA-256 failed\n");
        return KEYS_FAILED;
    }

    keys_hex(md, mdlen, hash);

    /* a last line without its newline gets one first */

    len = strlen(name) + 1 + KEYS_HASH_HEX + 2;
    line = malloc(len + 1);

    if (line == NULL) {
        fprintf(stderr, "shuttle-builder keys add: %s\n", strerror(ENOMEM));
        return KEYS_FAILED;
    }

    n = 0;

    if (kf->len > 0 && kf->text[kf->len - 1] != '\n') {
        line[n++] = '\n';
    }

    n += sprintf(line + n, "%s:%s\n", name, hash);

    if (lseek(kf->fd, 0, SEEK_END) == -1
        || keys_write_all(kf->fd, line, n) != 0
        || fsync(kf->fd) == -1)
    {
        fprintf(stderr, "shuttle-builder keys add: %s: %s\n", kf->path,
                strerror(errno));
        free(line);
        return KEYS_FAILED;
    }

    free(line);

    printf("%s\n", key);

    if (fflush(stdout) != 0) {
        fprintf(stderr, "shuttle-builder keys add: writing the key: %s\n",
                strerror(errno));
        return KEYS_FAILED;
    }

    fprintf(stderr, "key \"%s\" added to %s; it is shown only this once.  "
            "Reload nginx (nginx -s reload) to accept it.\n", name,
            kf->path);

    return KEYS_OK;
}


static int
keys_list(keys_file_t *kf)
{
    const char  *p, *end, *nl, *colon;

    end = kf->text + kf->len;

    for (p = kf->text; p < end; p = nl + 1) {
        nl = memchr(p, '\n', end - p);

        if (nl == NULL) {
            nl = end;
        }

        colon = memchr(p, ':', nl - p);

        if (colon != NULL && colon > p && p[0] != '#') {
            printf("%.*s\n", (int) (colon - p), p);
        }
    }

    return fflush(stdout) == 0 ? KEYS_OK : KEYS_FAILED;
}


static int
keys_del(keys_file_t *kf, const char *name)
{
    int          fd;
    char        *tmp;
    size_t       len, off;
    struct stat  st;
    const char  *line;

    line = keys_find(kf, name, &len);

    if (line == NULL) {
        fprintf(stderr, "shuttle-builder keys del: no key \"%s\" in %s\n",
                name, kf->path);
        return KEYS_FAILED;
    }

    tmp = malloc(strlen(kf->path) + 8);
    if (tmp == NULL) {
        fprintf(stderr, "shuttle-builder keys del: %s\n", strerror(ENOMEM));
        return KEYS_FAILED;
    }

    sprintf(tmp, "%s.new", kf->path);

    if (fstat(kf->fd, &st) == -1) {
        st.st_mode = 0640;
        st.st_uid = (uid_t) -1;
        st.st_gid = (gid_t) -1;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd == -1) {
        fprintf(stderr, "shuttle-builder keys del: %s: %s\n", tmp,
                strerror(errno));
        free(tmp);
        return KEYS_FAILED;
    }

    off = line - kf->text;

    if (keys_write_all(fd, kf->text, off) != 0
        || keys_write_all(fd, line + len, kf->len - off - len) != 0
        || fchmod(fd, st.st_mode & 07777) == -1
        || fchown(fd, st.st_uid, st.st_gid) == -1
        || fsync(fd) == -1
        || rename(tmp, kf->path) == -1)
    {
        fprintf(stderr, "shuttle-builder keys del: %s: %s\n", tmp,
                strerror(errno));
        close(fd);
        (void) unlink(tmp);
        free(tmp);
        return KEYS_FAILED;
    }

    close(fd);
    free(tmp);

    fprintf(stderr, "key \"%s\" removed from %s.  Reload nginx (nginx -s "
            "reload) to refuse it.\n", name, kf->path);

    return KEYS_OK;
}


/* the file's directory, /etc/shuttle say, when it is missing */

static int
keys_mkdir_parent(const char *path)
{
    int    rc;
    char  *dir, *slash;

    dir = strdup(path);
    if (dir == NULL) {
        return -1;
    }

    slash = strrchr(dir, '/');
    rc = -1;

    if (slash != NULL && slash != dir) {
        *slash = '\0';
        rc = mkdir(dir, 0755) == 0 ? 0 : -1;
    }

    free(dir);

    return rc;
}


static void
keys_hex(const unsigned char *in, size_t n, char *out)
{
    size_t  i;

    static const char  digits[] = "0123456789abcdef";

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }

    out[2 * n] = '\0';
}


static int
keys_write_all(int fd, const char *p, size_t n)
{
    ssize_t  w;

    while (n > 0) {
        w = write(fd, p, n);

        if (w == -1) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        p += w;
        n -= w;
    }

    return 0;
}


/*
 * The builder's view of the keys file (keys.h): the same lines nginx's
 * shuttle_api_keys reads, "NAME:SHA256HEX", blank lines and '#' comments
 * skipped, spaces and a '\r' around a line ignored.
 */

shuttle_keyring_t *
shuttle_keyring_open(const char *path, char *err, size_t errlen)
{
    shuttle_keyring_t  *kr;

    kr = calloc(1, sizeof(shuttle_keyring_t));
    if (kr == NULL || (kr->path = strdup(path)) == NULL) {
        free(kr);
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return NULL;
    }

    if (keyring_read(path, &kr->st, &kr->keys, &kr->nkeys, err, errlen)
        != 0)
    {
        free(kr->path);
        free(kr);
        return NULL;
    }

    pthread_mutex_init(&kr->lock, NULL);

    return kr;
}


void
shuttle_keyring_close(shuttle_keyring_t *kr)
{
    if (kr == NULL) {
        return;
    }

    pthread_mutex_destroy(&kr->lock);
    free(kr->keys);
    free(kr->path);
    free(kr);
}


int
shuttle_keyring_name(shuttle_keyring_t *kr, const char *secret, size_t len,
    char *name, size_t size)
{
    char            err[512];
    size_t          i, n, found;
    unsigned int    mdlen;
    struct stat     st;
    keyring_key_t  *keys;
    unsigned char   md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL) != 1
        || mdlen != KEYS_HASH_HEX / 2)
    {
        shuttle_log(SHUTTLE_LOG_ERROR, "api keys: SHA-256 failed");
        return -1;
    }

    pthread_mutex_lock(&kr->lock);

    /* changed since it was read: read again; kept as it was if that fails */

    if (stat(kr->path, &st) == -1) {
        if (!kr->missing) {
            shuttle_log(SHUTTLE_LOG_ERROR, "api keys: %s: %s: the keys read "
                        "before are kept", kr->path, strerror(errno));
            kr->missing = 1;
        }

    } else if (kr->missing || !keyring_same(&st, &kr->st)) {
        if (keyring_read(kr->path, &st, &keys, &n, err, sizeof(err)) == 0) {
            free(kr->keys);
            kr->keys = keys;
            kr->nkeys = n;
            shuttle_log(SHUTTLE_LOG_INFO, "api keys: %s read again: %zu "
                        "keys", kr->path, n);

        } else {
            shuttle_log(SHUTTLE_LOG_ERROR, "api keys: %s: the keys read "
                        "before are kept", err);
        }

        kr->st = st;
        kr->missing = 0;
    }

    /* every key is compared, in constant time */

    found = kr->nkeys;

    for (i = 0; i < kr->nkeys; i++) {
        if (CRYPTO_memcmp(md, kr->keys[i].hash, KEYS_HASH_HEX / 2) == 0) {
            found = i;
        }
    }

    if (found < kr->nkeys) {
        snprintf(name, size, "%s", kr->keys[found].name);
    }

    pthread_mutex_unlock(&kr->lock);

    return found < kr->nkeys ? 0 : -1;
}


static int
keyring_read(const char *path, struct stat *st, keyring_key_t **keys,
    size_t *nkeys, char *err, size_t errlen)
{
    int          fd, rc;
    char        *text;
    size_t       len;
    ssize_t      r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd == -1 || fstat(fd, st) == -1) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    if (!S_ISREG(st->st_mode) || st->st_size > KEYS_MAX_SIZE) {
        snprintf(err, errlen, "%s: not a regular file of 16 MB at most",
                 path);
        close(fd);
        return -1;
    }

    text = malloc(st->st_size + 1);
    if (text == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
        close(fd);
        return -1;
    }

    for (len = 0; len < (size_t) st->st_size; len += r) {
        r = pread(fd, text + len, st->st_size - len, len);

        if (r == -1 && errno == EINTR) {
            r = 0;
            continue;
        }

        if (r == -1) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            free(text);
            close(fd);
            return -1;
        }

        if (r == 0) {
            break;
        }
    }

    close(fd);
    text[len] = '\0';

    rc = keyring_parse(path, text, len, keys, nkeys, err, errlen);
    free(text);

    return rc;
}


static int
keyring_parse(const char *path, char *text, size_t len, keyring_key_t **keys,
    size_t *nkeys, char *err, size_t errlen)
{
    char           *line, *end, *p, *colon, *last;
    size_t          n, nalloc, lineno;
    keyring_key_t  *k, *all;

    all = NULL;
    n = 0;
    nalloc = 0;
    lineno = 0;
    last = text + len;

    for (line = text; line < last; line = end + 1) {
        lineno++;

        end = memchr(line, '\n', last - line);
        if (end == NULL) {
            end = last;
        }

        p = end;
        while (p > line && (p[-1] == '\r' || p[-1] == ' ' || p[-1] == '\t')) {
            p--;
        }

        while (line < p && (*line == ' ' || *line == '\t')) {
            line++;
        }

        if (line == p || *line == '#') {
            continue;
        }

        colon = memchr(line, ':', p - line);

        if (colon == NULL || colon == line
            || colon - line > SHUTTLE_KEY_MAX
            || p - (colon + 1) != KEYS_HASH_HEX)
        {
            goto invalid;
        }

        *colon = '\0';

        if (!shuttle_api_valid_key(line)) {
            goto invalid;
        }

        if (n == nalloc) {
            nalloc = nalloc ? 2 * nalloc : 8;
            k = realloc(all, nalloc * sizeof(keyring_key_t));

            if (k == NULL) {
                free(all);
                snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
                return -1;
            }

            all = k;
        }

        k = &all[n];
        snprintf(k->name, sizeof(k->name), "%s", line);

        if (keyring_unhex(colon + 1, k->hash, KEYS_HASH_HEX / 2) != 0) {
            goto invalid;
        }

        n++;
    }

    *keys = all;
    *nkeys = n;

    return 0;

invalid:

    free(all);
    snprintf(err, errlen, "%s line %zu is not \"name:sha256-hex\" (a name "
             "of [A-Za-z0-9_.-], 64 hex digits)", path, lineno);

    return -1;
}


static int
keyring_same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino
           && a->st_size == b->st_size
           && a->st_mtim.tv_sec == b->st_mtim.tv_sec
           && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
           && a->st_ctim.tv_sec == b->st_ctim.tv_sec
           && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}


static int
keyring_unhex(const char *in, unsigned char *out, size_t n)
{
    size_t  i;
    int     v;
    char    c;

    for (i = 0; i < 2 * n; i++) {
        c = in[i];

        if (c >= '0' && c <= '9') {
            v = c - '0';

        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;

        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;

        } else {
            return -1;
        }

        if (i % 2 == 0) {
            out[i / 2] = (unsigned char) (v << 4);

        } else {
            out[i / 2] |= (unsigned char) v;
        }
    }

    return 0;
}
