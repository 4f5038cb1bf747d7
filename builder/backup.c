
/*
 * shuttle-builder backup FILE: see backup.h.
 */


#include <stdio.h>

#include "backup.h"


int
shuttle_backup_main(int argc, char **argv)
{
    fprintf(stderr, "shuttle-builder backup: not built yet\n");
    return 1;
}
