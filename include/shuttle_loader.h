
/*
 * The loader's contract with whoever starts it (the builder), beyond its
 * command line: what its exit statuses mean.
 */


#ifndef SHUTTLE_LOADER_H_INCLUDED
#define SHUTTLE_LOADER_H_INCLUDED


/*
 * Started with --idle SEC, a loader that has had no connection open for
 * SEC seconds stops accepting and exits with this status.  It had no
 * connection then, so none is cut; connections that come later wait in
 * the listening socket's backlog for the next loader (the builder keeps
 * the socket and starts one when it becomes readable).  EX_TEMPFAIL.
 */
#define SHUTTLE_LOADER_EXIT_IDLE   75


#endif /* SHUTTLE_LOADER_H_INCLUDED */
