
/*
 * shuttle-builder serve: the daemon.
 *
 * One process, these threads:
 *
 *   main      the event loop (serve.c): signals through a signalfd,
 *             messages from the other threads through an eventfd, the
 *             loaders' readiness pipes and timers (supervise.c).  It alone
 *             starts, signals and reaps loaders, and only the pids it
 *             started: waitpid(-1) is never called, so shuttle_build()
 *             reaps its own children.
 *   workers   --jobs of them (queue.c): extract and build a deployment
 *             (deploy.c), then hand it to main to start.
 *   api       libmicrohttpd's, one per connection (api.c): the hand-off
 *             from nginx and the management API.
 *
 * Who owns what: the store (SQLite) and the queue lock themselves; the
 * zone is written under zone_lock, always from the store's view of a
 * project (shuttle_serve_zone_sync()), so the last writer writes the
 * latest state; loaders belong to main.
 */


#ifndef SHUTTLE_BUILDER_SERVE_H
#define SHUTTLE_BUILDER_SERVE_H


#include "core.h"


int shuttle_serve_main(int argc, char **argv);


#endif /* SHUTTLE_BUILDER_SERVE_H */
