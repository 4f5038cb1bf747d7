
/*
 * Stand-ins for nginx's ngx_http_parse_status_line() and
 * ngx_http_parse_header_line() (src/http/ngx_http_parse.c), which Debian's
 * nginx-dev tree does not hold: the module's relay of the builder's answer
 * (t/fuzz/modrelay.c) runs them.  Written for these targets: they follow
 * nginx's contract (nginx 1.22, as documented by its behaviour), not its
 * code; no code of nginx is copied here.  The contract:
 *
 * ngx_http_parse_status_line(r, b, status) reads b->pos to b->last,
 * resuming in r->state (0 for a new line; the caller zeroes *status):
 *
 *   - "HTTP/" MAJOR "." MINOR " " (spaces) CODE, then " " or "." and any
 *     text, then LF or CRLF.  MAJOR starts with 1-9, MINOR with any digit;
 *     another digit is refused once a number is over 99.  CODE is three
 *     digits, spaces between them skipped, added to status->code one by
 *     one (status->count counts them), status->start two bytes before
 *     its last digit;
 *   - NGX_OK: b->pos after the LF, status->end at the CR (or the LF),
 *     status->http_version MAJOR * 1000 + MINOR, r->http_major and
 *     r->http_minor set, r->state 0;
 *   - NGX_AGAIN: all of b read (b->pos = b->last), the state kept in
 *     r->state for the next call with more bytes;
 *   - NGX_ERROR: anything else (nginx's callers take it for HTTP/0.9).
 *
 * ngx_http_parse_header_line(r, b, allow_underscores) reads one header
 * line from b->pos, resuming in r->state, r->header_hash and
 * r->lowcase_index:
 *
 *   - NGX_OK: a line "NAME: VALUE" (or a NAME alone), ended by LF or CRLF
 *     (CRs before the LF allowed once the line has a CR): b->pos after the
 *     LF; r->header_name_start and r->header_name_end around NAME,
 *     r->header_start and r->header_end around VALUE without the spaces
 *     around it (both at the end of the line for an empty value);
 *     r->lowcase_header holds NAME lowercased (its first
 *     NGX_HTTP_LC_HEADER_LEN characters, the index wrapping),
 *     r->lowcase_index its length, r->header_hash ngx_hash() over it;
 *     r->invalid_header is 1 if NAME holds a character that is not a
 *     letter, digit, '-' (or '_' when allowed): such characters are
 *     neither hashed nor copied;
 *   - NGX_HTTP_PARSE_HEADER_DONE: an empty line (LF or CRLF), b->pos
 *     after it, r->header_end at its CR or LF;
 *   - NGX_HTTP_PARSE_INVALID_HEADER: a line starting with a control
 *     character, a space, DEL or ':'; a control character, space or DEL
 *     in NAME; a NUL in or before VALUE; a CR followed by anything but LF
 *     (or, inside a line, another CR); r->header_end at the offending
 *     byte, but after a CR;
 *   - NGX_AGAIN: all of b read, the state kept for the next call;
 *   - with r->upstream set, a line that starts "HTTP/" is skipped whole
 *     (an IIS answer's second status line).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the status line's states, kept in r->state */
enum {
    fuzz_status_begin = 0,
    fuzz_status_proto,          /* in "HTTP/", ->count bytes matched */
    fuzz_status_major_first,
    fuzz_status_major,
    fuzz_status_minor_first,
    fuzz_status_minor,
    fuzz_status_code,
    fuzz_status_after_code,
    fuzz_status_text,
    fuzz_status_cr
};

/* the header line's states, kept in r->state */
enum {
    fuzz_header_begin = 0,
    fuzz_header_name,
    fuzz_header_before_value,
    fuzz_header_value,
    fuzz_header_after_value,
    fuzz_header_skip,
    fuzz_header_line_cr,
    fuzz_header_empty_cr
};


static ngx_int_t fuzz_parse_version_digit(ngx_uint_t v, u_char ch);
static u_char fuzz_parse_name_char(u_char ch, ngx_uint_t allow_underscores);


/*
 * "HTTP/" takes five states in one: the bytes of it matched so far are
 * counted in the top bits of r->state
 */

#define FUZZ_PROTO_SHIFT  8
#define FUZZ_PROTO        "HTTP/"


ngx_int_t
ngx_http_parse_status_line(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_http_status_t *status)
{
    u_char      ch, *p;
    ngx_uint_t  state, matched;

    state = r->state & ((1 << FUZZ_PROTO_SHIFT) - 1);
    matched = r->state >> FUZZ_PROTO_SHIFT;

    for (p = b->pos; p < b->last; p++) {
        ch = *p;

        switch (state) {

        case fuzz_status_begin:
            matched = 0;
            state = fuzz_status_proto;

            /* fall through */

        case fuzz_status_proto:
            if (ch != (u_char) FUZZ_PROTO[matched]) {
                return NGX_ERROR;
            }

            if (++matched == sizeof(FUZZ_PROTO) - 1) {
                state = fuzz_status_major_first;
                matched = 0;
            }

            break;

        case fuzz_status_major_first:
            if (ch < '1' || ch > '9') {
                return NGX_ERROR;
            }

            r->http_major = ch - '0';
            state = fuzz_status_major;
            break;

        case fuzz_status_major:
            if (ch == '.') {
                state = fuzz_status_minor_first;
                break;
            }

            if (fuzz_parse_version_digit(r->http_major, ch) != NGX_OK) {
                return NGX_ERROR;
            }

            r->http_major = r->http_major * 10 + (ch - '0');

            break;

        case fuzz_status_minor_first:
            if (ch < '0' || ch > '9') {
                return NGX_ERROR;
            }

            r->http_minor = ch - '0';
            state = fuzz_status_minor;
            break;

        case fuzz_status_minor:
            if (ch == ' ') {
                state = fuzz_status_code;
                break;
            }

            if (fuzz_parse_version_digit(r->http_minor, ch) != NGX_OK) {
                return NGX_ERROR;
            }

            r->http_minor = r->http_minor * 10 + (ch - '0');

            break;

        case fuzz_status_code:
            if (ch == ' ') {
                /* nginx's too: spaces between the digits are skipped */
                break;
            }

            if (ch < '0' || ch > '9') {
                return NGX_ERROR;
            }

            status->code = status->code * 10 + (ch - '0');
            status->count++;

            if (status->count == 3) {
                status->start = p - 2;
                state = fuzz_status_after_code;
            }

            break;

        case fuzz_status_after_code:
            if (ch == ' ' || ch == '.') {
                state = fuzz_status_text;
                break;
            }

            if (ch == CR) {
                state = fuzz_status_cr;
                break;
            }

            if (ch == LF) {
                goto done;
            }

            return NGX_ERROR;

        case fuzz_status_text:
            if (ch == CR) {
                state = fuzz_status_cr;

            } else if (ch == LF) {
                goto done;
            }

            break;

        case fuzz_status_cr:
            status->end = p - 1;

            if (ch != LF) {
                return NGX_ERROR;
            }

            goto done;

        default:
            /* a state no call left */
            return NGX_ERROR;
        }
    }

    b->pos = p;
    r->state = state | (matched << FUZZ_PROTO_SHIFT);

    return NGX_AGAIN;

done:

    b->pos = p + 1;

    if (status->end == NULL) {
        status->end = p;
    }

    status->http_version = r->http_major * 1000 + r->http_minor;
    r->state = fuzz_status_begin;

    return NGX_OK;
}


/*
 * may a version number v (r->http_major and r->http_minor are bit fields)
 * take one more digit: refused once it is over 99
 */

static ngx_int_t
fuzz_parse_version_digit(ngx_uint_t v, u_char ch)
{
    if (ch < '0' || ch > '9' || v > 99) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_parse_header_line(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_uint_t allow_underscores)
{
    u_char      ch, lc, *p;
    ngx_uint_t  state, hash, i;

    state = r->state;
    hash = r->header_hash;
    i = r->lowcase_index;

    for (p = b->pos; p < b->last; p++) {
        ch = *p;

        switch (state) {

        case fuzz_header_begin:
            r->header_name_start = p;
            r->invalid_header = 0;
            hash = 0;
            i = 0;

            if (ch == CR) {
                r->header_end = p;
                state = fuzz_header_empty_cr;
                break;
            }

            if (ch == LF) {
                r->header_end = p;
                goto header_done;
            }

            if (ch <= 0x20 || ch == 0x7f || ch == ':') {
                r->header_end = p;
                return NGX_HTTP_PARSE_INVALID_HEADER;
            }

            /* the name's first character */
            state = fuzz_header_name;

            /* fall through */

        case fuzz_header_name:
            lc = fuzz_parse_name_char(ch, allow_underscores);

            if (lc) {
                hash = ngx_hash(hash, lc);
                r->lowcase_header[i] = lc;
                i = (i + 1) % NGX_HTTP_LC_HEADER_LEN;
                break;
            }

            if (ch == ':' && p != r->header_name_start) {
                r->header_name_end = p;
                state = fuzz_header_before_value;
                break;
            }

            if (ch == CR || ch == LF) {
                r->header_name_end = p;
                r->header_start = p;
                r->header_end = p;

                if (ch == LF) {
                    goto done;
                }

                state = fuzz_header_line_cr;
                break;
            }

            if (ch == '/' && r->upstream != NULL
                && p - r->header_name_start == 4
                && ngx_strncmp(r->header_name_start, "HTTP", 4) == 0)
            {
                state = fuzz_header_skip;
                break;
            }

            if (ch <= 0x20 || ch == 0x7f) {
                r->header_end = p;
                return NGX_HTTP_PARSE_INVALID_HEADER;
            }

            /* not a token's character (or '_' not allowed): kept out */
            r->invalid_header = 1;
            break;

        case fuzz_header_before_value:
        case fuzz_header_after_value:

            if (ch == ' ') {
                break;
            }

            if (ch == '\0') {
                r->header_end = p;
                return NGX_HTTP_PARSE_INVALID_HEADER;
            }

            if (ch == CR || ch == LF) {
                if (state == fuzz_header_before_value) {
                    r->header_start = p;
                    r->header_end = p;
                }

                if (ch == LF) {
                    goto done;
                }

                state = fuzz_header_line_cr;
                break;
            }

            if (state == fuzz_header_before_value) {
                r->header_start = p;
            }

            state = fuzz_header_value;
            break;

        case fuzz_header_value:
            if (ch == '\0') {
                r->header_end = p;
                return NGX_HTTP_PARSE_INVALID_HEADER;
            }

            if (ch == ' ' || ch == CR || ch == LF) {
                r->header_end = p;
            }

            if (ch == ' ') {
                state = fuzz_header_after_value;

            } else if (ch == CR) {
                state = fuzz_header_line_cr;

            } else if (ch == LF) {
                goto done;
            }

            break;

        case fuzz_header_skip:
            if (ch == LF) {
                state = fuzz_header_begin;
            }

            break;

        case fuzz_header_line_cr:
            if (ch == LF) {
                goto done;
            }

            if (ch != CR) {
                return NGX_HTTP_PARSE_INVALID_HEADER;
            }

            break;

        case fuzz_header_empty_cr:
            if (ch == LF) {
                goto header_done;
            }

            return NGX_HTTP_PARSE_INVALID_HEADER;

        default:
            return NGX_HTTP_PARSE_INVALID_HEADER;
        }
    }

    b->pos = p;
    r->state = state;
    r->header_hash = hash;
    r->lowcase_index = i;

    return NGX_AGAIN;

done:

    b->pos = p + 1;
    r->state = fuzz_header_begin;
    r->header_hash = hash;
    r->lowcase_index = i;

    return NGX_OK;

header_done:

    b->pos = p + 1;
    r->state = fuzz_header_begin;

    return NGX_HTTP_PARSE_HEADER_DONE;
}


/* a header name's character lowercased, or 0: not one hashed */

static u_char
fuzz_parse_name_char(u_char ch, ngx_uint_t allow_underscores)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
        return ch;
    }

    if (ch >= 'A' && ch <= 'Z') {
        return ch | 0x20;
    }

    if (ch == '_' && allow_underscores) {
        return ch;
    }

    return 0;
}
