/* What goes out: the routes of an endpoint and the body of one request. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

static char *concat(const char *a, size_t na, const char *b) {
    size_t nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

/* "http://h:8080" and "http://h:8080/v1/" both mean the routes under http://h:8080/v1: users copy
 * either form from server docs and OpenAI clients' base_url. */
int hv_endpoint_urls(const char *endpoint, int chat, char **post_url, char **models_url, dl_error *err) {
    *post_url = *models_url = NULL;
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)
        return dl_fail(err, "--endpoint '%s' must start with http:// or https://", endpoint);
    for (const char *c = endpoint; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return dl_fail(err, "--endpoint '%s' holds a space or a control character", endpoint);
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/') n--;
    int has_v1 = n >= 3 && memcmp(endpoint + n - 3, "/v1", 3) == 0;
    const char *route = chat ? "/chat/completions" : "/completions";
    char *base = concat(endpoint, n, has_v1 ? "" : "/v1");
    if (base) {
        *post_url = concat(base, strlen(base), route);
        *models_url = concat(base, strlen(base), "/models");
    }
    free(base);
    if (!*post_url || !*models_url) {
        free(*post_url);
        free(*models_url);
        *post_url = *models_url = NULL;
        return dl_fail(err, "out of memory");
    }
    return 0;
}

char *hv_request_body(const dl_harvest_opts *o, const char *model, json_t *input, long line) {
    json_t *b = json_object();
    int bad = !b || json_object_set_new(b, "model", json_string(model)) ||
              json_object_set(b, o->chat ? "messages" : "prompt", input) ||
              json_object_set_new(b, "max_tokens", json_integer(o->max_tokens)) ||
              json_object_set_new(b, "temperature", json_real(o->temperature)) ||
              (o->seed >= 0 && json_object_set_new(b, "seed", json_integer((json_int_t)o->seed + line)));
    if (!bad && o->top_logprobs >= 0) {
        if (o->chat)
            bad = json_object_set_new(b, "logprobs", json_true()) ||
                  json_object_set_new(b, "top_logprobs", json_integer(o->top_logprobs));
        else bad = json_object_set_new(b, "logprobs", json_integer(o->top_logprobs));
    }
    /* 15 digits: the temperature goes out as typed (0.7, not 0.69999999999999996) */
    char *s = bad ? NULL : json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(b);
    return s;
}
