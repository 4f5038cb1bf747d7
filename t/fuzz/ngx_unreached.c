
/*
 * The nginx functions that the module's files included by t/fuzz/mod*.c
 * call only from code the targets do not run (request handlers, the
 * hand-off to the builder): each aborts, so a target that reached one
 * would say so at once.  No nginx header here: only the names matter.
 * Each is weak: a target that runs one (modrelay runs the hand-off's)
 * defines it, or links t/fuzz/ngx_fuzz_parse.c, and its own is taken.
 */


#include <stdlib.h>


#define FUZZ_UNREACHED(name)                                                  \
    void name(void) __attribute__((weak));                                    \
    void name(void) { abort(); }


FUZZ_UNREACHED(ngx_close_connection)
FUZZ_UNREACHED(ngx_conf_full_name)
FUZZ_UNREACHED(ngx_cpystrn)
FUZZ_UNREACHED(ngx_create_temp_buf)
FUZZ_UNREACHED(ngx_escape_json)
FUZZ_UNREACHED(ngx_event_connect_peer)
FUZZ_UNREACHED(ngx_event_get_peer)
FUZZ_UNREACHED(ngx_handle_read_event)
FUZZ_UNREACHED(ngx_handle_write_event)
FUZZ_UNREACHED(ngx_http_arg)
FUZZ_UNREACHED(ngx_http_discard_request_body)
FUZZ_UNREACHED(ngx_http_finalize_request)
FUZZ_UNREACHED(ngx_http_output_filter)
FUZZ_UNREACHED(ngx_http_parse_header_line)
FUZZ_UNREACHED(ngx_http_parse_status_line)
FUZZ_UNREACHED(ngx_http_read_client_request_body)
FUZZ_UNREACHED(ngx_http_run_posted_requests)
FUZZ_UNREACHED(ngx_http_send_header)
FUZZ_UNREACHED(ngx_http_send_special)
FUZZ_UNREACHED(ngx_http_shuttle_get_ctx)
FUZZ_UNREACHED(ngx_list_push)
FUZZ_UNREACHED(ngx_pcalloc)
FUZZ_UNREACHED(ngx_pool_cleanup_add)
FUZZ_UNREACHED(ngx_rbtree_delete)
FUZZ_UNREACHED(ngx_rbtree_insert)
FUZZ_UNREACHED(ngx_sprintf)
FUZZ_UNREACHED(ngx_strncasecmp)
FUZZ_UNREACHED(ngx_vslprintf)
