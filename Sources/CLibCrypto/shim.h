// SHA-256 and HMAC-SHA256 from OpenSSL's libcrypto, which libcurl (libcurl4-openssl) already
// loads: SigV4 needs nothing more, and swift-crypto would bring full Foundation with it.
// One-shot EVP calls with fixed 32-byte outputs, so Swift needs no OpenSSL types.
#ifndef KSCALER_CLIBCRYPTO_SHIM_H
#define KSCALER_CLIBCRYPTO_SHIM_H
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* SHA-256 of `count` bytes into `digest` (32 bytes). 1 on success, 0 on failure. */
static inline int kscaler_sha256(const void *data, size_t count, unsigned char digest[32]) {
    unsigned int size = 0;
    return EVP_Digest(data, count, digest, &size, EVP_sha256(), NULL) == 1 && size == 32;
}

/* HMAC-SHA256 of `count` bytes under a key of `key_count` bytes into `mac` (32 bytes). 1 on
   success, 0 on failure. */
static inline int kscaler_hmac_sha256(const void *key, size_t key_count, const void *data, size_t count, unsigned char mac[32]) {
    unsigned int size = 0;
    if (key_count > 0x7fffffff) return 0;
    return HMAC(EVP_sha256(), key, (int)key_count, data, count, mac, &size) != NULL && size == 32;
}
#endif
