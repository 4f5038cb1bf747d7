
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
 *
 * The builder reads the same file (serve --api-keys FILE): every request
 * nginx's workers send on its socket carries the bearer key itself
 * ("Authorization: Bearer sk_..."), and the builder finds the key's name
 * from it.  shuttle_keyring_name() reads the file again whenever it
 * changed (its inode, size, mtime or ctime), so "keys add" and "keys del"
 * take effect at the next request, without a restart; a file that cannot
 * be read or parsed then is logged, and the keys read before are kept.
 */


#ifndef SHUTTLE_BUILDER_KEYS_H
#define SHUTTLE_BUILDER_KEYS_H


#define SHUTTLE_KEYS_FILE      "/etc/shuttle/api_keys"
#define SHUTTLE_KEY_BYTES      32
#define SHUTTLE_KEY_PREFIX     "sk_"


typedef struct shuttle_keyring_s  shuttle_keyring_t;


int shuttle_keys_main(int argc, char **argv);

/* reads FILE; NULL with the reason in err (the line that is wrong) */
shuttle_keyring_t *shuttle_keyring_open(const char *path, char *err,
    size_t errlen);
void shuttle_keyring_close(shuttle_keyring_t *kr);

/*
 * The name of the key whose SHA-256 is that of secret (len bytes), every
 * key compared in constant time: 0 with it in name, -1 when no key has it.
 * Thread-safe.
 */
int shuttle_keyring_name(shuttle_keyring_t *kr, const char *secret,
    size_t len, char *name, size_t size);


#endif /* SHUTTLE_BUILDER_KEYS_H */
