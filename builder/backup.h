
/*
 * shuttle-builder backup FILE: a consistent copy of the store, taken
 * with SQLite's online backup API while the builder runs.
 */


#ifndef SHUTTLE_BUILDER_BACKUP_H
#define SHUTTLE_BUILDER_BACKUP_H


int shuttle_backup_main(int argc, char **argv);


#endif /* SHUTTLE_BUILDER_BACKUP_H */
