
/*
 * Requests as a handler sees them, and the pool their small strings live
 * in.  A request's pool starts as a buffer inside the request (on the
 * stack of the thread, for a request without a body), so most requests
 * allocate nothing of their own; the pool is freed when the response has
 * been queued.
 */


#include <stdlib.h>
#include <string.h>

#include "loader.h"


/* an allocation this big or bigger gets a block of its own */
#define LOADER_POOL_BLOCK  4096


typedef struct {
    const char  *name;
    size_t       len;
    const char  *value;
} loader_query_t;


static enum MHD_Result loader_request_query(void *cls,
    enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size);


void
loader_request_init(loader_request_t *lr, shuttle_app *app,
    struct MHD_Connection *conn, const char *method, const char *path)
{
    lr->pool.pos = lr->pool.buf;
    lr->pool.end = lr->pool.buf + sizeof(lr->pool.buf);
    lr->pool.blocks = NULL;

    lr->req.conn = conn;
    lr->req.app = app;
    lr->req.method = method;
    lr->req.path = path;
    lr->req.body = NULL;
    lr->req.body_len = 0;
    lr->req.nparams = 0;
    lr->req.pool = &lr->pool;

    lr->res.status = 0;
    lr->res.response = NULL;
    lr->res.type = NULL;
    lr->res.nheaders = 0;
    lr->res.pool = &lr->pool;

    lr->route = NULL;
    lr->body_size = 0;
    lr->body_status = 0;
}


void
loader_request_free(loader_request_t *lr)
{
    loader_pool_block_t  *b, *next;

    for (b = lr->pool.blocks; b != NULL; b = next) {
        next = b->next;
        free(b);
    }

    lr->pool.blocks = NULL;

    if (lr->res.response != NULL) {
        MHD_destroy_response(lr->res.response);
        lr->res.response = NULL;
    }

    free(lr->req.body);
    lr->req.body = NULL;
}


void *
loader_palloc(loader_pool_t *pool, size_t size)
{
    char                 *p;
    size_t                align, bsize;
    loader_pool_block_t  *b;

    align = _Alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);

    if (size <= (size_t) (pool->end - pool->pos)) {
        p = pool->pos;
        pool->pos += size;
        return p;
    }

    /* a header the size of max_align_t keeps the data aligned */
    bsize = size < LOADER_POOL_BLOCK / 4 ? LOADER_POOL_BLOCK : size;

    b = malloc(align + bsize);
    if (b == NULL) {
        return NULL;
    }

    b->next = pool->blocks;
    pool->blocks = b;

    p = (char *) b + align;

    if (bsize > size) {
        /* small allocations go on in the new block */
        pool->pos = p + size;
        pool->end = p + bsize;
    }

    return p;
}


char *
loader_pstrndup(loader_pool_t *pool, const char *s, size_t len)
{
    char  *p;

    p = loader_palloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


const char *
shuttle_req_method(shuttle_req *req)
{
    return req->method;
}


const char *
shuttle_req_path(shuttle_req *req)
{
    return req->path;
}


const char *
shuttle_req_param(shuttle_req *req, const char *name)
{
    size_t  i, len;

    len = strlen(name);

    for (i = 0; i < req->nparams; i++) {
        if (req->params[i].name_len == len
            && memcmp(req->params[i].name, name, len) == 0)
        {
            return req->params[i].value;
        }
    }

    return NULL;
}


/*
 * libmicrohttpd's own lookup ignores the case of the name, right for
 * headers, wrong for query parameters: "?Q=" is not "?q=".
 */
const char *
shuttle_req_query(shuttle_req *req, const char *name)
{
    loader_query_t  q;

    q.name = name;
    q.len = strlen(name);
    q.value = NULL;

    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND,
                                loader_request_query, &q);

    return q.value;
}


const char *
shuttle_req_header(shuttle_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}


const char *
shuttle_req_body(shuttle_req *req, size_t *len)
{
    if (len != NULL) {
        *len = req->body_len;
    }

    return req->body != NULL ? req->body : "";
}


json_t *
shuttle_req_json(shuttle_req *req, json_error_t *err)
{
    return json_loadb(req->body != NULL ? req->body : "", req->body_len, 0,
                      err);
}


shuttle_app *
shuttle_req_app(shuttle_req *req)
{
    return req->app;
}


/* the first parameter of the name, "" when it has no value */
static enum MHD_Result
loader_request_query(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
    loader_query_t  *q;

    q = cls;

    if (key_size != q->len || memcmp(key, q->name, key_size) != 0) {
        return MHD_YES;
    }

    q->value = value != NULL ? value : "";

    return MHD_NO;
}
