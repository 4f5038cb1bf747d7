
/*
 * Fuzz target: the JSON bodies of the builder's /v1 API, through its own
 * request handlers (builder/api/'s files, included here whole): PUT
 * /v1/projects/demo/scale ({"idle": DURATION}), PUT
 * /v1/projects/demo/secrets ({"KEY": "VALUE", ...}) and POST
 * /v1/projects/demo/rollback ({"deployment": ID}), as key "k" that owns
 * project "demo" in a real store (SQLite in the fuzz directory) with one
 * deployment queued.  No daemon runs: libmicrohttpd's response functions
 * are stood in for here and keep the status and the body of the answer.
 *
 * The input's first byte picks the request; the rest is its body.  The
 * answer must be one status of 200, 400, 404, 409 or 413 (an input is
 * never the server's fault), with a JSON object as its body.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "fuzz.h"

#include "../../builder/api/api.c"
#include "../../builder/api/deployments.c"
#include "../../builder/api/json.c"
#include "../../builder/api/projects.c"


struct MHD_Response {
    size_t                  len;
    char                   *body;
};


static void fuzz_apibody_start(void);


static shuttle_serve_t  fuzz_apibody_serve;
static shuttle_api_t    fuzz_apibody_api;
static api_body_t       fuzz_apibody_body;
static unsigned         fuzz_apibody_status;
static char            *fuzz_apibody_answer;
static size_t           fuzz_apibody_answer_len;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t     *j;
    api_req_t   r;

    if (size == 0) {
        return 0;
    }

    fuzz_apibody_start();

    memset(&r, 0, sizeof(api_req_t));
    r.api = &fuzz_apibody_api;
    r.s = &fuzz_apibody_serve;
    r.c = (struct MHD_Connection *) &fuzz_apibody_api;
    r.key = "k";
    r.body = &fuzz_apibody_body;

    fuzz_apibody_body.too_long = (size - 1 > API_BODY_MAX);
    fuzz_apibody_body.len = fuzz_apibody_body.too_long ? 0 : size - 1;
    memcpy(fuzz_apibody_body.data, data + 1, fuzz_apibody_body.len);
    fuzz_apibody_body.data[fuzz_apibody_body.len] = '\0';

    r.seg[0] = "v1";
    r.seg[1] = "projects";
    r.seg[2] = "demo";
    r.nseg = 4;

    fuzz_apibody_status = 0;

    switch (data[0] % 3) {

    case 0:
        r.method = "PUT";
        r.url = "/v1/projects/demo/scale";
        r.seg[3] = "scale";
        (void) api_project_scale(&r);
        break;

    case 1:
        r.method = "PUT";
        r.url = "/v1/projects/demo/secrets";
        r.seg[3] = "secrets";
        (void) api_secrets(&r);
        break;

    default:
        r.method = "POST";
        r.url = "/v1/projects/demo/rollback";
        r.seg[3] = "rollback";
        (void) api_project_rollback(&r);
        break;
    }

    switch (fuzz_apibody_status) {

    case 200:
    case 400:
    case 404:
    case 409:
    case 413:
        break;

    default:
        /* no answer, or the server's fault */
        fprintf(stderr, "fuzz apibody: %s %s: %u %.*s\n", r.method, r.url,
                fuzz_apibody_status, (int) fuzz_apibody_answer_len,
                fuzz_apibody_answer ? fuzz_apibody_answer : "");
        abort();
    }

    j = json_loadb(fuzz_apibody_answer, fuzz_apibody_answer_len, 0, NULL);

    if (!json_is_object(j)) {
        abort();
    }

    json_decref(j);
    free(fuzz_apibody_answer);
    fuzz_apibody_answer = NULL;

    return 0;
}


static void
fuzz_apibody_start(void)
{
    char          path[256], err[512];
    int64_t       id;
    static int    started;

    if (started) {
        return;
    }

    fuzz_std_fds();

    snprintf(path, sizeof(path), "%s/store.db", fuzz_dir());

    fuzz_apibody_serve.conf.data = strdup(fuzz_dir());
    fuzz_apibody_serve.conf.apps_url = "http://{name}.example";
    fuzz_apibody_serve.conf.start_timeout_ms = 1000;
    fuzz_apibody_serve.wake_fd = -1;
    pthread_mutex_init(&fuzz_apibody_serve.lock, NULL);
    pthread_mutex_init(&fuzz_apibody_serve.zone_lock, NULL);
    pthread_cond_init(&fuzz_apibody_serve.changed, NULL);

    fuzz_apibody_serve.store = shuttle_store_open(path, fuzz_dir(), err,
                                                  sizeof(err));

    if (fuzz_apibody_serve.store == NULL
        || shuttle_store_enqueue(fuzz_apibody_serve.store, "demo", "k", 0,
                                 &id, err, sizeof(err))
           != 0)
    {
        fprintf(stderr, "fuzz apibody: %s\n", err);
        exit(2);
    }

    fuzz_apibody_api.s = &fuzz_apibody_serve;

    started = 1;
}


/* libmicrohttpd's responses: the last one queued is kept */

struct MHD_Response *
MHD_create_response_from_buffer(size_t size, void *buffer,
    enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response  *resp;

    resp = malloc(sizeof(struct MHD_Response));
    if (resp == NULL) {
        return NULL;
    }

    resp->len = size;
    resp->body = malloc(size ? size : 1);

    if (resp->body == NULL) {
        free(resp);
        return NULL;
    }

    memcpy(resp->body, buffer, size);

    if (mode == MHD_RESPMEM_MUST_FREE) {
        free(buffer);
    }

    return resp;
}


enum MHD_Result
MHD_add_response_header(struct MHD_Response *response, const char *header,
    const char *content)
{
    if (response == NULL || header == NULL || content == NULL) {
        abort();
    }

    return MHD_YES;
}


enum MHD_Result
MHD_queue_response(struct MHD_Connection *connection,
    unsigned int status_code, struct MHD_Response *response)
{
    if (fuzz_apibody_status != 0) {
        /* one answer per request */
        abort();
    }

    fuzz_apibody_status = status_code;
    fuzz_apibody_answer = malloc(response->len ? response->len : 1);

    if (fuzz_apibody_answer == NULL) {
        abort();
    }

    memcpy(fuzz_apibody_answer, response->body, response->len);
    fuzz_apibody_answer_len = response->len;

    return MHD_YES;
}


void
MHD_destroy_response(struct MHD_Response *response)
{
    free(response->body);
    free(response);
}
