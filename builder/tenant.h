
/*
 * A tenant's limits as JSON: the operator's overrides the store keeps
 * (shuttle-builder limits) over the builder's defaults (serve --memory
 * ...), and the effective limits the API shows.
 *
 *     {"memory": 536870912, "tasks": 64, "cpu": 100, "nofile": 1024,
 *      "file_size": 1073741824, "disk": 1073741824}
 *
 * Sizes are bytes, 0 is "no limit".  An override holds only the keys it
 * changes.
 */


#ifndef SHUTTLE_BUILDER_TENANT_H
#define SHUTTLE_BUILDER_TENANT_H


#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox.h"


/* json's keys over l; -1 with err naming a bad key or value */
int shuttle_limits_merge(shuttle_limits_t *l, const char *json, char *err,
    size_t errlen);

/* every field of l */
json_t *shuttle_limits_json(const shuttle_limits_t *l);

/*
 * One "--memory 512m" style option into the override object o (the keys
 * memory, tasks, cpu, nofile, file_size, disk; sizes take k, m, g).  0,
 * or -1 with err.
 */
int shuttle_limits_option(json_t *o, const char *name, const char *value,
    char *err, size_t errlen);


/*
 * A duration: "15m", "2s", "500ms", "1h", "1d", a bare number of seconds;
 * "0", "never" and "off" are 0.  0, or -1 when s is none of these.
 */
int shuttle_duration_parse(const char *s, int64_t *ms);
void shuttle_duration_text(int64_t ms, char *buf, size_t size);


/* shuttle-builder limits: an operator's limits for one project */
int shuttle_limits_main(int argc, char **argv);


#endif /* SHUTTLE_BUILDER_TENANT_H */
