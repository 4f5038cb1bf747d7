
/*
 * shuttle-builder keys: the API keys file nginx's shuttle_api_keys reads.
 *
 *   shuttle-builder keys [--file FILE] add NAME    prints a new key once
 *   shuttle-builder keys [--file FILE] list        the names, one a line
 *   shuttle-builder keys [--file FILE] del NAME
 *
 * FILE (/etc/shuttle/api_keys) holds one line per key,
 *
 *     NAME:SHA256HEX
 *
 * the SHA-256 of the whole key string ("sk_" and 64 hex digits of 32
 * random bytes from getrandom(2)), lowercase hex.  The key itself is
 * stored nowhere.  NAME is 1-64 of A-Z a-z 0-9 '_' '.' '-'.  Changes are
 * made under flock(2) on the file; "del" writes a new file and renames it
 * into place, so a reader sees the old file or the new one.  The file is
 * created 0640.  nginx reads it at start and reload.
 */


#ifndef SHUTTLE_BUILDER_KEYS_H
#define SHUTTLE_BUILDER_KEYS_H


#define SHUTTLE_KEYS_FILE      "/etc/shuttle/api_keys"
#define SHUTTLE_KEY_BYTES      32
#define SHUTTLE_KEY_PREFIX     "sk_"


int shuttle_keys_main(int argc, char **argv);


#endif /* SHUTTLE_BUILDER_KEYS_H */
