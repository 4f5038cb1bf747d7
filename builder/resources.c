
/*
 * Reading a service's resource declarations from its ELF file.
 *
 * The records are plain data (no pointers, so no relocations): the bytes
 * of the "shuttle_res" section are the records as the compiler laid them
 * out for this machine, which is the machine that built them.
 */


#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resources.h"


#define RES_SECTION  "shuttle_res"


static int res_check(const shuttle_resource_decl *d, size_t i,
    const char *file, char *err, size_t errlen);
static int res_db_name(const char *name);
static int res_folder(const char *name);
static void res_show(const char *name, char *buf, size_t len);
static const char *res_base(const char *path);


int
shuttle_resources_read(const char *so_path, shuttle_res_t **res, size_t *n,
    char *err, size_t errlen)
{
    int                           fd, rc;
    Elf                          *elf;
    size_t                        shstrndx, i, j, count, have;
    Elf_Scn                      *scn;
    GElf_Shdr                     shdr;
    Elf_Data                     *data;
    const char                   *name, *file, *other;
    shuttle_res_t                *out;
    const shuttle_resource_decl  *d;

    *res = NULL;
    *n = 0;
    file = res_base(so_path);

    if (elf_version(EV_CURRENT) == EV_NONE) {
        snprintf(err, errlen, "%s: libelf: %s", file, elf_errmsg(-1));
        return -1;
    }

    /* a link left by a build is read by no one (ELOOP) */
    fd = open(so_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd == -1) {
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return -1;
    }

    rc = -1;
    out = NULL;
    count = 0;
    elf = elf_begin(fd, ELF_C_READ, NULL);

    if (elf == NULL || elf_kind(elf) != ELF_K_ELF) {
        snprintf(err, errlen, "%s: not an ELF file", file);
        goto done;
    }

    if (elf_getshdrstrndx(elf, &shstrndx) != 0) {
        snprintf(err, errlen, "%s: %s", file, elf_errmsg(-1));
        goto done;
    }

    scn = NULL;
    data = NULL;

    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        if (gelf_getshdr(scn, &shdr) == NULL) {
            snprintf(err, errlen, "%s: %s", file, elf_errmsg(-1));
            goto done;
        }

        name = elf_strptr(elf, shstrndx, shdr.sh_name);

        if (name != NULL && strcmp(name, RES_SECTION) == 0) {
            if (shdr.sh_type == SHT_NOBITS) {
                snprintf(err, errlen, "%s: section %s holds no data", file,
                         RES_SECTION);
                goto done;
            }

            data = elf_getdata(scn, NULL);
            break;
        }
    }

    if (scn == NULL || data == NULL || data->d_size == 0) {
        rc = 0;                                 /* nothing declared */
        goto done;
    }

    if (data->d_size % sizeof(shuttle_resource_decl) != 0
        || data->d_buf == NULL)
    {
        snprintf(err, errlen, "%s: section %s is %zu bytes, not a whole "
                 "number of %zu-byte declarations: built against another "
                 "shuttle.h?", file, RES_SECTION, (size_t) data->d_size,
                 sizeof(shuttle_resource_decl));
        goto done;
    }

    have = data->d_size / sizeof(shuttle_resource_decl);

    if (have > SHUTTLE_RES_MAX) {
        snprintf(err, errlen, "%s: %zu resource declarations, more than "
                 "%d", file, have, SHUTTLE_RES_MAX);
        goto done;
    }

    out = calloc(have, sizeof(shuttle_res_t));

    if (out == NULL) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto done;
    }

    other = NULL;

    for (i = 0; i < have; i++) {
        d = (const shuttle_resource_decl *) data->d_buf + i;

        if (res_check(d, i, file, err, errlen) != 0) {
            goto done;
        }

        for (j = 0; j < count; j++) {
            if ((int) out[j].kind == d->kind
                && strcmp(out[j].name, d->name) == 0)
            {
                break;
            }
        }

        if (j < count) {
            continue;                           /* a duplicate */
        }

        if (d->kind == SHUTTLE_RES_STATIC) {
            if (other != NULL) {
                snprintf(err, errlen, "%s: SHUTTLE_STATIC(\"%s\") and "
                         "SHUTTLE_STATIC(\"%s\"): one static folder per "
                         "service", file, other, d->name);
                goto done;
            }

            other = d->name;
        }

        out[count].kind = (shuttle_res_kind_t) d->kind;
        memcpy(out[count].name, d->name, sizeof(out[count].name));
        count++;
    }

    *res = out;
    *n = count;
    out = NULL;
    rc = 0;

done:

    free(out);

    if (elf != NULL) {
        elf_end(elf);
    }

    close(fd);

    return rc;
}


const char *
shuttle_res_kind_name(shuttle_res_kind_t kind)
{
    switch (kind) {
    case SHUTTLE_RES_KIND_SQLITE:
        return "sqlite";
    case SHUTTLE_RES_KIND_POSTGRES:
        return "postgres";
    case SHUTTLE_RES_KIND_SECRETS:
        return "secrets";
    case SHUTTLE_RES_KIND_STATIC:
        return "static";
    }

    return "unknown";
}


const char *
shuttle_res_kind_macro(shuttle_res_kind_t kind)
{
    switch (kind) {
    case SHUTTLE_RES_KIND_SQLITE:
        return "SHUTTLE_SQLITE";
    case SHUTTLE_RES_KIND_POSTGRES:
        return "SHUTTLE_POSTGRES";
    case SHUTTLE_RES_KIND_SECRETS:
        return "SHUTTLE_SECRETS";
    case SHUTTLE_RES_KIND_STATIC:
        return "SHUTTLE_STATIC";
    }

    return "SHUTTLE_?";
}


/* one record: 0, or -1 with err naming it */

static int
res_check(const shuttle_resource_decl *d, size_t i, const char *file,
    char *err, size_t errlen)
{
    char         shown[SHUTTLE_RES_NAME_MAX * 4 + 1];
    const char  *macro;

    if (d->magic != SHUTTLE_RES_MAGIC) {
        snprintf(err, errlen, "%s: declaration #%zu in section %s is not "
                 "a resource declaration (bad magic 0x%08x)", file, i + 1,
                 RES_SECTION, (unsigned) d->magic);
        return -1;
    }

    if (d->abi != SHUTTLE_ABI) {
        snprintf(err, errlen, "%s: declaration #%zu was built against SDK "
                 "ABI %u, this platform speaks ABI %u: rebuild with its "
                 "shuttle.h", file, i + 1, (unsigned) d->abi, SHUTTLE_ABI);
        return -1;
    }

    if (memchr(d->name, '\0', sizeof(d->name)) == NULL) {
        snprintf(err, errlen, "%s: declaration #%zu: the name is not "
                 "NUL-terminated", file, i + 1);
        return -1;
    }

    res_show(d->name, shown, sizeof(shown));

    switch (d->kind) {

    case SHUTTLE_RES_SQLITE:
    case SHUTTLE_RES_POSTGRES:
        macro = shuttle_res_kind_macro((shuttle_res_kind_t) d->kind);

        if (!res_db_name(d->name)) {
            snprintf(err, errlen, "%s: %s(\"%s\"): a database name is "
                     "[a-z][a-z0-9_]{0,31}", file, macro, shown);
            return -1;
        }

        return 0;

    case SHUTTLE_RES_SECRETS:
        if (d->name[0] != '\0') {
            snprintf(err, errlen, "%s: SHUTTLE_SECRETS() with a name "
                     "(\"%s\"): it takes none", file, shown);
            return -1;
        }

        return 0;

    case SHUTTLE_RES_STATIC:
        if (!res_folder(d->name)) {
            snprintf(err, errlen, "%s: SHUTTLE_STATIC(\"%s\"): a static "
                     "folder is a relative path inside the project, of "
                     "letters, digits, '.', '_', '-' and '/', without "
                     "\"..\" or empty components", file, shown);
            return -1;
        }

        return 0;
    }

    snprintf(err, errlen, "%s: declaration #%zu (\"%s\") is of unknown "
             "kind %u", file, i + 1, shown, (unsigned) d->kind);
    return -1;
}


/* [a-z][a-z0-9_]{0,31} */

static int
res_db_name(const char *name)
{
    size_t  i;

    if (name[0] < 'a' || name[0] > 'z') {
        return 0;
    }

    for (i = 1; name[i] != '\0'; i++) {
        if (i >= SHUTTLE_RES_DB_NAME_MAX) {
            return 0;
        }

        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* "public", "web/dist": no "/" at either end, no "", "." or ".." part */

static int
res_folder(const char *name)
{
    size_t       len;
    const char  *p, *seg;
    unsigned char       c;

    if (name[0] == '\0') {
        return 0;
    }

    seg = name;

    for (p = name; ; p++) {
        c = (unsigned char) *p;

        if (c == '/' || c == '\0') {
            len = (size_t) (p - seg);

            if (len == 0 || (len == 1 && seg[0] == '.')
                || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            {
                return 0;
            }

            if (c == '\0') {
                return 1;
            }

            seg = p + 1;
            continue;
        }

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return 0;
        }
    }
}


/* the name for a message: printable ASCII as is, other bytes as \xNN */

static void
res_show(const char *name, char *buf, size_t len)
{
    size_t  i;
    unsigned char  c;

    i = 0;

    for ( /* void */ ; *name != '\0' && i + 5 < len; name++) {
        c = (unsigned char) *name;

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[i++] = (char) c;

        } else {
            i += (size_t) snprintf(buf + i, len - i, "\\x%02x", c);
        }
    }

    buf[i] = '\0';
}


static const char *
res_base(const char *path)
{
    const char  *p;

    p = strrchr(path, '/');

    return p ? p + 1 : path;
}
