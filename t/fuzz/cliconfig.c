
/*
 * Fuzz target: the CLI's config file, ~/.config/shuttle/config.json
 * (cli/config.c), as every command that talks to the API reads it:
 * cli_settings(), without and with a key required, XDG_CONFIG_HOME set to
 * the fuzz directory and neither SHUTTLE_API nor SHUTTLE_API_KEY set.  When
 * it accepts the file, the API URL must start with http:// or https://
 * and end without a '/', and a required key must be there.  The input is
 * the file.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          need_key;
    char         dir[128];
    size_t       len;
    cli_t        cli;
    static int   once;

    if (!once) {
        snprintf(dir, sizeof(dir), "%s/shuttle", fuzz_dir());

        if (mkdir(dir, 0700) != 0
            || setenv("XDG_CONFIG_HOME", fuzz_dir(), 1) != 0)
        {
            perror(dir);
            exit(2);
        }

        unsetenv("SHUTTLE_API");
        unsetenv("SHUTTLE_API_KEY");
        once = 1;
    }

    (void) fuzz_file("shuttle/config.json", data, size);

    for (need_key = 0; need_key <= 1; need_key++) {
        memset(&cli, 0, sizeof(cli_t));
        cli.cmd = "fuzz";

        if (cli_settings(&cli, need_key) == CLI_OK) {
            len = strlen(cli.api);

            if ((strncmp(cli.api, "http://", 7) != 0
                 && strncmp(cli.api, "https://", 8) != 0)
                || cli.api[len - 1] == '/'
                || (need_key && cli.key == NULL)
                || cli.api_from == NULL)
            {
                abort();
            }
        }

        free(cli.api);
        free(cli.key);
    }

    return 0;
}
