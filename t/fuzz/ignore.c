
/*
 * Fuzz target: a project's .shuttleignore (cli/pack.c), as "shuttle
 * deploy" reads it: cli_ignore_load() parses the file, cli_ignore_match()
 * is asked about fixed paths and about each line of the input taken as a
 * path (a pattern matched against itself, wildcards and all), and
 * cli_pack() packs a small fixed project with the file in it, walking the
 * tree the rules prune.  The input is the file.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fuzz.h"


static const char  *fuzz_ignore_tree[] = {
    "src/", "src/main.c", "src/lib/", "src/lib/util.c", "public/",
    "public/index.html", "build/", "build/main.o", ".git/", ".git/HEAD",
    "a/", "a/b/", "a/b/c.txt", "Secrets.json", "README.md", NULL
};


static void fuzz_ignore_project(const char *dir);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           dir[128], err[512], rel[64], *text, *line, *next;
    size_t         len;
    const char   **p;
    cli_pack_t     pack;
    cli_ignore_t  *ig;

    snprintf(dir, sizeof(dir), "%s/project", fuzz_dir());
    fuzz_ignore_project(dir);

    (void) fuzz_file("project/.shuttleignore", data, size);

    ig = cli_ignore_load(dir, err, sizeof(err));
    if (ig == NULL) {
        /* only when out of memory, or the file cannot be opened */
        abort();
    }

    for (p = fuzz_ignore_tree; *p; p++) {
        len = strlen(*p);

        if ((*p)[len - 1] == '/') {
            snprintf(rel, sizeof(rel), "%.*s", (int) len - 1, *p);
            (void) cli_ignore_match(ig, rel, 1);

        } else {
            (void) cli_ignore_match(ig, *p, 0);
        }
    }

    /* the path the builtin rules keep out, whatever the file says */
    if (!cli_ignore_match(ig, ".git", 1)
        || !cli_ignore_match(ig, "Secrets.json", 0))
    {
        abort();
    }

    text = malloc(size + 1);
    if (text == NULL) {
        abort();
    }

    memcpy(text, data, size);
    text[size] = '\0';

    for (line = text; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }

        (void) cli_ignore_match(ig, line, 0);
        (void) cli_ignore_match(ig, line, 1);
    }

    free(text);
    cli_ignore_free(ig);

    if (cli_pack(dir, &pack, NULL, err, sizeof(err)) == 0) {
        cli_pack_free(&pack);
    }

    return 0;
}


static void
fuzz_ignore_project(const char *dir)
{
    char          path[256];
    size_t        len;
    const char  **p;
    static int    made;

    if (made) {
        return;
    }

    if (mkdir(dir, 0755) != 0) {
        perror(dir);
        exit(2);
    }

    for (p = fuzz_ignore_tree; *p; p++) {
        len = strlen(*p);

        if ((*p)[len - 1] == '/') {
            snprintf(path, sizeof(path), "%s/%s", dir, *p);

            if (mkdir(path, 0755) != 0) {
                perror(path);
                exit(2);
            }

        } else {
            snprintf(path, sizeof(path), "project/%s", *p);
            (void) fuzz_file(path, (const uint8_t *) *p, len);
        }
    }

    made = 1;
}
