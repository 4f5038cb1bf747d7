
/*
 * Responses: the shuttle_res functions a handler calls, and sending what
 * it set once it returns.  The body becomes a libmicrohttpd response at
 * once (a handler's buffer may not outlive the call); the status, the
 * type and the headers stay in the request until it is sent.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loader.h"


#define LOADER_TYPE_TEXT  "text/plain; charset=utf-8"
#define LOADER_TYPE_JSON  "application/json"


static int loader_res_body(shuttle_res *res, int status, const char *type,
    struct MHD_Response *response, const char *func);
static int loader_res_status(int status, const char *func);


int
shuttle_text(shuttle_res *res, int status, const char *text)
{
    if (loader_res_status(status, "shuttle_text") != 0) {
        return -1;
    }

    if (text == NULL) {
        loader_log("shuttle_text: NULL text");
        return -1;
    }

    return loader_res_body(res, status, LOADER_TYPE_TEXT,
               MHD_create_response_from_buffer(strlen(text), (void *) text,
                                               MHD_RESPMEM_MUST_COPY),
               "shuttle_text");
}


int
shuttle_bytes(shuttle_res *res, int status, const char *type,
    const void *data, size_t len)
{
    if (loader_res_status(status, "shuttle_bytes") != 0) {
        return -1;
    }

    if (data == NULL && len != 0) {
        loader_log("shuttle_bytes: NULL data of %zu bytes", len);
        return -1;
    }

    if (type != NULL) {
        type = loader_pstrndup(res->pool, type, strlen(type));
        if (type == NULL) {
            loader_log("shuttle_bytes: out of memory");
            return -1;
        }
    }

    return loader_res_body(res, status, type,
               MHD_create_response_from_buffer(len, (void *) data,
                                               MHD_RESPMEM_MUST_COPY),
               "shuttle_bytes");
}


int
shuttle_json(shuttle_res *res, int status, json_t *json)
{
    char                 *text;
    json_free_t           free_fn;
    struct MHD_Response  *r;

    if (json == NULL) {
        loader_log("shuttle_json: NULL JSON value, answering 500");
        shuttle_text(res, 500, "500 internal error: the service's JSON "
                               "value was NULL\n");
        return -1;
    }

    if (loader_res_status(status, "shuttle_json") != 0) {
        json_decref(json);
        return -1;
    }

    text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(json);

    if (text == NULL) {
        loader_log("shuttle_json: json_dumps() failed (out of memory)");
        return -1;
    }

    /* the text is jansson's: freed by jansson's allocator */
    json_get_alloc_funcs(NULL, &free_fn);

    r = MHD_create_response_from_buffer_with_free_callback(strlen(text),
                                                           text, free_fn);
    if (r == NULL) {
        free_fn(text);
    }

    return loader_res_body(res, status, LOADER_TYPE_JSON, r, "shuttle_json");
}


int
shuttle_printf(shuttle_res *res, int status, const char *fmt, ...)
{
    int                   n;
    char                 *text;
    va_list               args;
    struct MHD_Response  *r;

    if (loader_res_status(status, "shuttle_printf") != 0) {
        return -1;
    }

    va_start(args, fmt);
    n = vasprintf(&text, fmt, args);
    va_end(args);

    if (n < 0) {
        loader_log("shuttle_printf: out of memory");
        return -1;
    }

    r = MHD_create_response_from_buffer_with_free_callback(n, text, free);
    if (r == NULL) {
        free(text);
    }

    return loader_res_body(res, status, LOADER_TYPE_TEXT, r,
                           "shuttle_printf");
}


int
shuttle_status(shuttle_res *res, int status)
{
    if (loader_res_status(status, "shuttle_status") != 0) {
        return -1;
    }

    res->status = status;

    return 0;
}


int
shuttle_header(shuttle_res *res, const char *name, const char *value)
{
    char    *n, *v;
    size_t   i;

    if (name == NULL || !loader_token(name)) {
        loader_log("shuttle_header: \"%s\" is not a header name",
                   name ? name : "(null)");
        return -1;
    }

    if (strcasecmp(name, "Content-Length") == 0
        || strcasecmp(name, "Transfer-Encoding") == 0
        || strcasecmp(name, "Connection") == 0
        || strcasecmp(name, "Date") == 0)
    {
        loader_log("shuttle_header: %s is set by the loader", name);
        return -1;
    }

    if (value != NULL && strpbrk(value, "\r\n") != NULL) {
        loader_log("shuttle_header: the value of %s has a line break", name);
        return -1;
    }

    for (i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, name) == 0) {
            break;
        }
    }

    if (value == NULL) {
        if (i < res->nheaders) {
            res->headers[i] = res->headers[--res->nheaders];
        }

        return 0;
    }

    if (i == LOADER_MAX_HEADERS) {
        loader_log("shuttle_header: more than %d headers, %s refused",
                   LOADER_MAX_HEADERS, name);
        return -1;
    }

    n = loader_pstrndup(res->pool, name, strlen(name));
    v = loader_pstrndup(res->pool, value, strlen(value));

    if (n == NULL || v == NULL) {
        loader_log("shuttle_header: out of memory");
        return -1;
    }

    res->headers[i].name = n;
    res->headers[i].value = v;

    if (i == res->nheaders) {
        res->nheaders++;
    }

    return 0;
}


/*
 * Sends what the handler set; close asks the client to close the
 * connection after it (the loader is draining).
 */
enum MHD_Result
loader_response_send(loader_request_t *lr, int close)
{
    size_t                i;
    const char           *type;
    shuttle_res          *res;
    enum MHD_Result       rc;
    struct MHD_Response  *r;
    char                  text[LOADER_ERRLEN];

    res = &lr->res;
    r = res->response;

    if (r == NULL) {
        loader_log("%s %s: the handler set no response, answering 500",
                   lr->req.method, lr->req.path);
        snprintf(text, sizeof(text), "500 internal error: the handler of "
                 "%s %s set no response\n", lr->req.method, lr->req.path);
        return loader_response_error(lr->req.conn, 500, text, NULL, close);
    }

    type = res->type;

    for (i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, "Content-Type") == 0) {
            type = NULL;
        }

        if (MHD_add_response_header(r, res->headers[i].name,
                                    res->headers[i].value)
            != MHD_YES)
        {
            loader_log("%s %s: header %s refused by libmicrohttpd",
                       lr->req.method, lr->req.path, res->headers[i].name);
        }
    }

    if (type != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    }

    if (close) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    }

    rc = MHD_queue_response(lr->req.conn, res->status, r);

    MHD_destroy_response(r);
    res->response = NULL;

    return rc;
}


/* a response of the loader's own: 404, 405, 413, 500 */
enum MHD_Result
loader_response_error(struct MHD_Connection *conn, int status,
    const char *text, const char *allow, int close)
{
    enum MHD_Result       rc;
    struct MHD_Response  *r;

    r = MHD_create_response_from_buffer(strlen(text), (void *) text,
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        loader_log("a %d response: out of memory", status);
        return MHD_NO;
    }

    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            LOADER_TYPE_TEXT);

    if (allow != NULL) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }

    if (close) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    }

    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);

    return rc;
}


static int
loader_res_body(shuttle_res *res, int status, const char *type,
    struct MHD_Response *response, const char *func)
{
    if (response == NULL) {
        loader_log("%s: out of memory", func);
        return -1;
    }

    if (res->response != NULL) {
        MHD_destroy_response(res->response);
    }

    res->response = response;
    res->status = status;
    res->type = type;

    return 0;
}


static int
loader_res_status(int status, const char *func)
{
    if (status < 200 || status > 599) {
        loader_log("%s: status %d is not between 200 and 599", func, status);
        return -1;
    }

    return 0;
}
