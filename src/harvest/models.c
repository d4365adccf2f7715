/* GET /v1/models: the model to ask for when --model is not given (every OpenAI-compatible server
 * lists what it serves; ours, llama.cpp's and vLLM's list one model or put the default first). */
#include "internal.h"
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

static int first_model(const char *body, size_t len, char **model, dl_error *err) {
    json_error_t je;
    json_t *r = json_loadb(body, len, 0, &je);
    if (!r) return dl_fail(err, "the model list is not valid JSON: %s", je.text);
    json_t *data = json_object_get(r, "data");
    json_t *id = json_object_get(json_array_get(data, 0), "id");
    int rc = 0;
    if (!json_is_string(id) || json_string_length(id) == 0)
        rc = dl_fail(err, "the model list has no data[0].id (give --model)");
    else if (!(*model = strdup(json_string_value(id)))) rc = dl_fail(err, "out of memory");
    json_decref(r);
    return rc;
}

int hv_fetch_model(const char *models_url, const char *auth_header, double timeout_s, char **model,
                   dl_error *err) {
    *model = NULL;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *t;
    if (!h) return dl_fail(err, "cannot start libcurl");
    if (auth_header && (t = curl_slist_append(hdrs, auth_header))) hdrs = t;
    dl_buf body = {0};
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, models_url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, hv_collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    CURLcode c = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc;
    if (c != CURLE_OK) rc = dl_fail(err, "%s", cerr[0] ? cerr : curl_easy_strerror(c));
    else if (status != 200) {
        char why[300];
        hv_error_text(body.data, body.len, why, sizeof why);
        rc = dl_fail(err, "HTTP %ld: %s", status, why);
    } else rc = first_model(body.data, body.len, model, err);
    if (rc) dl_fail_ctx(err, "GET %s (to learn the model name; or give --model)", models_url);
    dl_buf_free(&body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}
