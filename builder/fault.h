
/*
 * Fault points: where a test stops the builder to kill it.
 *
 * With SHUTTLE_FAULT=POINT[,POINT...] in its environment, the builder
 * logs "fault point POINT: stopping" and stops itself (SIGSTOP, the whole
 * process) when it reaches POINT; a test that sees it stopped
 * SIGKILLs it there, in the middle of what it was doing, and starts it
 * again.  Without the variable a point is one load and one test.
 *
 * The points (t/faults-kill.t kills the builder at each):
 *
 *     extracting      an upload's first file written, the rest not
 *     built           a deployment's service.so built and stored as
 *                     built, its loader not started
 *     loading         a new deployment's loader started, not ready
 *     switch          a new loader ready and stored as running, the
 *                     zone not switched to it, the old one not stopped
 *     rollback        a rollback's loader started, not ready
 *     restart         a restart's new loader started beside the old one
 *     delete          a project deleted in the store, its loaders, zone
 *                     slot and files not yet removed
 *     purge           a purge's databases dropped, its role and the
 *                     store's rows not
 *     provisioning    a PostgreSQL role created, its database not
 */


#ifndef SHUTTLE_BUILDER_FAULT_H
#define SHUTTLE_BUILDER_FAULT_H


void shuttle_fault(const char *point);


#endif /* SHUTTLE_BUILDER_FAULT_H */
