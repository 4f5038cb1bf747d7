
/*
 * shuttle_res.h: the record a resource declaration of shuttle.h
 * (SHUTTLE_SQLITE() and the others) puts in the "shuttle_res" section of
 * service.so.  It is the contract between services and the platform's
 * builder, which reads the section from the file (docs/resources.md).
 * Services include shuttle.h, which includes this.
 */

#ifndef SHUTTLE_RES_H
#define SHUTTLE_RES_H

#include <stdint.h>


/* the SDK ABI, as in shuttle.h */
#ifndef SHUTTLE_ABI
#define SHUTTLE_ABI  1
#endif


#define SHUTTLE_RES_MAGIC     0x53485253u
#define SHUTTLE_RES_NAME_MAX  120

#define SHUTTLE_RES_SQLITE    1
#define SHUTTLE_RES_POSTGRES  2
#define SHUTTLE_RES_SECRETS   3
#define SHUTTLE_RES_STATIC    4

typedef struct {
    uint32_t  magic;                        /* SHUTTLE_RES_MAGIC */
    uint16_t  abi;                          /* SHUTTLE_ABI */
    uint16_t  kind;                         /* SHUTTLE_RES_* */
    char      name[SHUTTLE_RES_NAME_MAX];   /* NUL-terminated */
} shuttle_resource_decl;


#endif /* SHUTTLE_RES_H */
