
/*
 * The socket keeper: `shuttle-builder keep SOCKET`, a small process of
 * its own session that outlives the builder and holds a copy of every
 * loader's listening socket, so that a port in the zone stays valid (its
 * connections wait in the backlog) while no builder runs, whatever
 * signal ended the last one.
 *
 * It listens on the unix socket SOCKET (SOCK_SEQPACKET, mode 0600; a
 * peer whose SO_PEERCRED uid is not the keeper's is closed at once) and
 * takes one message at a time, a line of text and at most one fd
 * (SCM_RIGHTS):
 *
 *   put ID PORT + fd    keeps fd, the socket of deployment ID on PORT
 *                       (one it kept on PORT before is closed)
 *   drop PORT           closes the socket kept on PORT
 *   list                answers "fd ID PORT" + fd for each, then "end N"
 *   quit                exits, closing them all
 *
 * The builder starts it (setsid, stdin, stdout and stderr /dev/null)
 * when none answers, and again if it dies; `shuttle-builder stop --all`
 * stops it with everything else.
 */


#ifndef SHUTTLE_BUILDER_KEEPER_H
#define SHUTTLE_BUILDER_KEEPER_H


#include <stddef.h>
#include <stdint.h>


#define SHUTTLE_KEEPER_SUFFIX  ".keeper"    /* beside the API socket */
#define SHUTTLE_KEEPER_MSG     64


/* shuttle-builder keep SOCKET */
int shuttle_keeper_main(int argc, char **argv);

/*
 * shuttle-builder stop --all [--socket PATH] [--data DIR]: the builder
 * (SIGUSR2: it stops its loaders and the keeper, then exits), or with no
 * builder running, the loaders under DATA and the keeper.
 */
int shuttle_stop_main(int argc, char **argv);

/* a connection to the keeper at path: the fd, or -1 (errno) */
int shuttle_keeper_connect(const char *path);

/* sends a message and at most one fd (-1: none); 0 or -1 (errno) */
int shuttle_keeper_send(int fd, const char *msg, int pass);

/* receives a message into buf (NUL-terminated) and its fd, or -1 */
int shuttle_keeper_recv(int fd, char *buf, size_t len, int *pass);


#endif /* SHUTTLE_BUILDER_KEEPER_H */
