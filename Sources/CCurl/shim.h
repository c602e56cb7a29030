// Fixed-arity wrappers around libcurl's variadic curl_easy_setopt / curl_easy_getinfo,
// which Swift cannot call directly ("Variadic function is unavailable").
#ifndef KSCALER_CCURL_SHIM_H
#define KSCALER_CCURL_SHIM_H
#include <curl/curl.h>

typedef size_t (*kscaler_curl_data_cb)(char *data, size_t size, size_t count, void *userdata);
typedef int (*kscaler_curl_prereq_cb)(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port);

static inline CURLcode kscaler_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode kscaler_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode kscaler_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode kscaler_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode kscaler_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode kscaler_curl_setopt_callback(CURL *handle, CURLoption option, kscaler_curl_data_cb value) {
    return curl_easy_setopt(handle, option, value);
}
/* A `CURLOPTTYPE_BLOB` option (CA, client certificate or key as PEM bytes in memory).
   CURL_BLOB_COPY: libcurl copies the bytes, so they need not outlive the call, and no key
   is ever written to a file for libcurl to read. */
static inline CURLcode kscaler_curl_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob;
    blob.data = (void *)data;
    blob.len = length;
    blob.flags = CURL_BLOB_COPY;
    return curl_easy_setopt(handle, option, &blob);
}
static inline CURLcode kscaler_curl_setopt_prereq(CURL *handle, kscaler_curl_prereq_cb value) {
    return curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, value);
}
static inline CURLcode kscaler_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode kscaler_curl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}
/* The result of the one transfer on `multi` once it is done: sets *done and returns its code.
   (CURLMsg's `data` is a union, which is clumsy to read from Swift.) */
static inline CURLcode kscaler_curl_multi_done_result(CURLM *multi, int *done) {
    int left = 0;
    CURLMsg *message;
    *done = 0;
    while ((message = curl_multi_info_read(multi, &left)) != NULL) {
        if (message->msg == CURLMSG_DONE) {
            *done = 1;
            return message->data.result;
        }
    }
    return CURLE_OK;
}
#endif
