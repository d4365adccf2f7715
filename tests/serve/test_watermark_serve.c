/* The watermark in distil serve.
 *  - The scheduler (batched, more choices than slots, n > 1, H = 2 so the context straddles the
 *    prompt's end) samples exactly what a plain loop gives that adds delta to the green logits
 *    before sampling, seeded the same way; greedy decoding too; logprobs are the log-softmax of
 *    the biased logits. Without the watermark the same seeds give other tokens.
 *  - Over HTTP: completions (streamed or not, n = 2) return the text of that reference loop;
 *    chat completions (streamed or not) score as watermarked (z > 4 over their token ids, read
 *    back from the logprobs' bytes), and the same requests to a server without the key do not.
 *  - The key never shows: not in the usage db (nor its WAL), response bodies, /metrics or the
 *    server's log, as the key file's bytes, the derived key, or either in hex. */
#include "http_client.h"
#include "serve/sched.h"
#include "serve/serve.h"
#include "serve_fixture.h"
#include "test.h"
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>

static char model_dir[600], db_path[600], key_path[600], log_path[600];
static const char KEY_BYTES[] = "watermark key file: 0123456789abcdef";
static dl_model model;
static dl_tokenizer *tok;
static dl_buf seen_bodies; /* every response body, searched for the key at the end */

/* ---- the reference: a plain sampling loop with the bias -------------------------------------- */

static float log_softmax_at(const float *x, int V, int id) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, x[i]);
    for (int i = 0; i < V; i++) s += exp(x[i] - mx);
    return (float)(x[id] - mx - log(s));
}

/* n tokens continuing prompt; logprobs (may be NULL) of the biased distribution */
static void reference(const dl_wm *wm, const dl_ivec *prompt, int n, float temperature, uint64_t seed, int32_t *out,
                      float *logprobs) {
    dl_error err;
    int V = model.cfg.V, np = (int)prompt->len;
    dl_kv_cache kv;
    dl_kv_cache_create(&kv, &model.cfg, np + n, &err);
    float *logits = malloc((size_t)V * sizeof *logits);
    int32_t *all = malloc((size_t)(np + n) * sizeof *all);
    memcpy(all, prompt->data, (size_t)np * sizeof *all);
    dl_model_decode(&model, &kv, prompt->data, np, logits, 0, &err);
    dl_sampler_cfg cfg = {temperature, 0, 1.0f};
    dl_rng r;
    dl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        if (wm && np + i >= wm->H) dl_wm_bias(wm, all + np + i - wm->H, logits, V);
        out[i] = all[np + i] = dl_sample(logits, V, &cfg, &r);
        if (logprobs) logprobs[i] = log_softmax_at(logits, V, out[i]);
        if (i + 1 < n) dl_model_decode(&model, &kv, &out[i], 1, logits, 0, &err);
    }
    free(all);
    free(logits);
    dl_kv_cache_free(&kv);
}

static void encode(const char *text, dl_ivec *ids) {
    dl_error err;
    ids->len = 0;
    dl_tok_encode(tok, text, strlen(text), 1, ids, &err);
}

/* ---- the scheduler ------------------------------------------------------------------------------ */

static void test_sched(float temperature) {
    dl_error err;
    dl_wm wm;
    CHECK(dl_wm_load(&wm, key_path, 0.25, 2.0, 2, &err) == 0);
    const char *texts[2] = {"the cat sat", "a"}; /* "a" is one token: its first position has no H = 2 context */
    dl_ivec prompts[2] = {{0}, {0}};
    for (int p = 0; p < 2; p++) encode(texts[p], &prompts[p]);
    CHECK(prompts[1].len == 1);
    enum { N = 40, PER = 2 };
    dl_sampler_cfg cfg = {temperature, 0, 1.0f};
    dl_job *jobs[2];
    for (int marked = 1; marked >= 0; marked--) {
        dl_sched *s = dl_sched_start(&model, tok, 3, 8, &err); /* 4 choices, 3 slots */
        if (marked) dl_sched_set_watermark(s, &wm);
        jobs[marked] = dl_job_new(prompts, 2, PER, N, &cfg, 555, 3, NULL, 0, 0);
        CHECK(dl_sched_submit(s, jobs[marked]) == 0);
        dl_job_wait(jobs[marked]);
        dl_sched_free(s);
    }
    int same = 0, differ = 0;
    double worst = 0;
    for (int c = 0; c < 2 * PER; c++) {
        int32_t want[N];
        float lp[N];
        reference(&wm, &prompts[c / PER], N, temperature, 555 + (uint64_t)c, want, lp);
        const dl_api_choice *got = &jobs[1]->choices[c], *plain = &jobs[0]->choices[c];
        int eq = got->tokens.len == N && !memcmp(got->tokens.data, want, sizeof want);
        same += eq;
        for (int i = 0; eq && i < N; i++) worst = fmax(worst, fabs(got->logprob[i] - lp[i]));
        differ += plain->tokens.len != N || memcmp(plain->tokens.data, want, sizeof want) != 0;
    }
    printf("T=%.0f: %d of %d choices as the reference, logprobs within %.2g; %d differ without the watermark\n",
           (double)temperature, same, 2 * PER, worst, differ);
    CHECK(same == 2 * PER && worst < 1e-4);
    CHECK(differ >= 2 * PER - 1);
    for (int k = 0; k < 2; k++) dl_job_release(jobs[k]);
    for (int p = 0; p < 2; p++) dl_ivec_free(&prompts[p]);
}

/* ---- over HTTP ------------------------------------------------------------------------------------ */

static dl_server *start(int watermark) {
    dl_serve_cfg cfg;
    dl_serve_cfg_default(&cfg);
    cfg.model_dir = model_dir;
    cfg.db_path = db_path;
    cfg.port = 0;
    cfg.no_auth = 1;
    cfg.max_batch = 3;
    cfg.wm_key_file = watermark ? key_path : NULL;
    dl_error err;
    dl_server *s = dl_serve_start(&cfg, &err);
    if (!s) { fprintf(stderr, "start: %s\n", err.msg); exit(2); }
    return s;
}

static json_t *post(dl_server *s, const char *path, const char *body, dl_buf *sse) {
    http_resp r;
    if (http_request(dl_serve_port(s), "POST", path, NULL, body, &r, 60.0) != 0 || r.status != 200) {
        CHECK_MSG(0, "%s: status %d %s", path, r.status, r.body ? r.body : "");
        http_resp_free(&r);
        return NULL;
    }
    dl_buf_append(&seen_bodies, r.body, r.body_len);
    json_error_t je;
    json_t *o = sse ? NULL : json_loads(r.body, JSON_ALLOW_NUL, &je);
    if (sse) dl_buf_append(sse, r.body, r.body_len + 1);
    http_resp_free(&r);
    return o;
}

/* each event of a stream, parsed, in order */
static int stream_events(const char *sse, json_t **ev, int max) {
    int n = 0;
    for (const char *p = sse; (p = strstr(p, "data: ")) && n < max; p += 6) {
        if (!strncmp(p + 6, "[DONE]", 6)) break;
        json_error_t je;
        const char *end = strstr(p, "\n\n");
        if ((ev[n] = json_loadb(p + 6, end ? (size_t)(end - p - 6) : strlen(p + 6), JSON_ALLOW_NUL, &je))) n++;
    }
    return n;
}

static void test_completions_text(dl_server *s, int watermark, int stream) {
    dl_error err;
    dl_wm wm;
    CHECK(dl_wm_load(&wm, key_path, 0.25, 2.0, 1, &err) == 0);
    enum { N = 50 };
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\": \"model\", \"prompt\": \"the dog\", \"max_tokens\": %d, \"n\": 2, \"seed\": 31, \"stream\": %s}", N,
             stream ? "true" : "false");
    dl_buf sse = {0}, text[2] = {{0}, {0}};
    json_t *o = post(s, "/v1/completions", body, stream ? &sse : NULL);
    if (stream) {
        json_t *ev[1024];
        int n = stream_events(sse.data ? sse.data : "", ev, 1024);
        for (int i = 0; i < n; i++) {
            json_t *c = json_array_get(json_object_get(ev[i], "choices"), 0), *t = json_object_get(c, "text");
            size_t k = (size_t)json_integer_value(json_object_get(c, "index"));
            if (k < 2 && json_is_string(t)) dl_buf_append(&text[k], json_string_value(t), json_string_length(t));
            json_decref(ev[i]);
        }
    } else
        for (int k = 0; k < 2; k++) {
            json_t *t = json_object_get(json_array_get(json_object_get(o, "choices"), (size_t)k), "text");
            if (json_is_string(t)) dl_buf_append(&text[k], json_string_value(t), json_string_length(t));
        }
    dl_ivec prompt = {0};
    encode("the dog", &prompt);
    for (int k = 0; k < 2; k++) {
        int32_t ids[N];
        reference(watermark ? &wm : NULL, &prompt, N, 1.0f, 31 + (uint64_t)k, ids, NULL);
        dl_buf raw = {0}, want = {0};
        dl_tok_decode(tok, ids, N, &raw, &err);
        dl_utf8_repair(&want, raw.data, raw.len);
        CHECK_MSG(text[k].len == want.len && !memcmp(text[k].data, want.data, want.len),
                  "completions (watermark %d, stream %d) choice %d: '%.*s' vs reference '%.*s'", watermark, stream, k,
                  (int)text[k].len, text[k].data ? text[k].data : "", (int)want.len, want.data);
        dl_buf_free(&raw);
        dl_buf_free(&want);
        dl_buf_free(&text[k]);
    }
    dl_ivec_free(&prompt);
    dl_buf_free(&sse);
    json_decref(o);
}

/* token ids from chat logprobs entries (their "bytes") appended to ids */
static void ids_of_content(json_t *content, dl_ivec *ids) {
    size_t i;
    json_t *e;
    json_array_foreach(content, i, e) {
        json_t *b = json_object_get(e, "bytes");
        char raw[64];
        size_t n = 0, k;
        json_t *x;
        json_array_foreach(b, k, x) if (n < sizeof raw - 1) raw[n++] = (char)json_integer_value(x);
        raw[n] = 0;
        dl_ivec_push(ids, n == 1 ? (unsigned char)raw[0] : dl_tok_id(tok, raw)); /* byte b is id b */
    }
}

static double chat_z(dl_server *s, int stream, uint64_t seed) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\": \"model\", \"messages\": [{\"role\": \"user\", \"content\": \"tell me about the cat\"}], "
             "\"max_tokens\": 150, \"seed\": %llu, \"logprobs\": true, \"stream\": %s}",
             (unsigned long long)seed, stream ? "true" : "false");
    dl_buf sse = {0};
    dl_ivec ids = {0};
    json_t *o = post(s, "/v1/chat/completions", body, stream ? &sse : NULL);
    if (stream) {
        json_t *ev[1024];
        int n = stream_events(sse.data ? sse.data : "", ev, 1024);
        for (int i = 0; i < n; i++) {
            json_t *c = json_array_get(json_object_get(ev[i], "choices"), 0);
            ids_of_content(json_object_get(json_object_get(c, "logprobs"), "content"), &ids);
            json_decref(ev[i]);
        }
    } else
        ids_of_content(json_object_get(json_object_get(json_array_get(json_object_get(o, "choices"), 0), "logprobs"),
                                       "content"), &ids);
    dl_error err;
    dl_wm wm;
    CHECK(dl_wm_load(&wm, key_path, 0.25, 2.0, 1, &err) == 0);
    dl_wm_scorer *sc = dl_wm_scorer_new(&wm);
    dl_wm_stats st;
    CHECK(dl_wm_score(sc, ids.data, ids.data, ids.len, NULL, 0, &err) == 0);
    dl_wm_scorer_stats(sc, &st);
    CHECK_MSG(ids.len == 150, "%zu ids read back", ids.len);
    dl_wm_scorer_free(sc);
    dl_ivec_free(&ids);
    dl_buf_free(&sse);
    json_decref(o);
    return st.z;
}

static void test_http(void) {
    /* the server's log goes to a file while it runs, to be searched for the key */
    fflush(stderr);
    int saved = dup(2), fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    dl_server *s = start(1);
    test_completions_text(s, 1, 0);
    test_completions_text(s, 1, 1);
    double z[4];
    for (int i = 0; i < 4; i++) z[i] = chat_z(s, i % 2, 40 + (uint64_t)i);
    http_resp m;
    if (http_request(dl_serve_port(s), "GET", "/metrics", NULL, NULL, &m, 10.0) == 0)
        dl_buf_append(&seen_bodies, m.body, m.body_len);
    http_resp_free(&m);
    dl_serve_stop(s);
    s = start(0);
    test_completions_text(s, 0, 0);
    double z0[4];
    for (int i = 0; i < 4; i++) z0[i] = chat_z(s, i % 2, 40 + (uint64_t)i);
    dl_serve_stop(s);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    for (int i = 0; i < 4; i++) {
        printf("chat %s: z %.2f with the watermark, %.2f without\n", i % 2 ? "streamed" : "whole", z[i], z0[i]);
        CHECK(z[i] > 4 && z0[i] < 4);
    }
}

/* ---- the key stays secret ---------------------------------------------------------------------- */

static int contains(const char *hay, size_t n, const void *needle, size_t k) {
    return hay && n >= k && memmem(hay, n, needle, k) != NULL;
}

static void check_absent(const char *what, const char *data, size_t n) {
    dl_wm wm;
    dl_error err;
    CHECK(dl_wm_load(&wm, key_path, 0.25, 2.0, 1, &err) == 0);
    char hex_file[2 * sizeof KEY_BYTES + 1], hex_key[2 * DL_WM_KEY_BYTES + 1];
    sodium_bin2hex(hex_file, sizeof hex_file, (const unsigned char *)KEY_BYTES, sizeof KEY_BYTES - 1);
    sodium_bin2hex(hex_key, sizeof hex_key, wm.key, sizeof wm.key);
    CHECK_MSG(!contains(data, n, KEY_BYTES, sizeof KEY_BYTES - 1), "%s holds the key file's bytes", what);
    CHECK_MSG(!contains(data, n, "0123456789abcdef", 16), "%s holds part of the key file", what);
    CHECK_MSG(!contains(data, n, hex_file, strlen(hex_file)), "%s holds the key file in hex", what);
    CHECK_MSG(!contains(data, n, wm.key, sizeof wm.key), "%s holds the derived key", what);
    CHECK_MSG(!contains(data, n, hex_key, strlen(hex_key)), "%s holds the derived key in hex", what);
}

static void test_key_secret(void) {
    const char *suffix[] = {"", "-wal", "-shm"};
    int files = 0;
    for (int i = 0; i < 3; i++) {
        char path[700], *data = NULL;
        size_t n = 0;
        snprintf(path, sizeof path, "%s%s", db_path, suffix[i]);
        if (!dl_path_exists(path) || dl_read_file(path, &data, &n, NULL)) continue;
        files++;
        check_absent(path, data, n);
        free(data);
    }
    CHECK(files >= 1);
    check_absent("the response bodies", seen_bodies.data, seen_bodies.len);
    CHECK(seen_bodies.len > 10000);
    char *log = NULL;
    size_t n = 0;
    CHECK(dl_read_file(log_path, &log, &n, NULL) == 0 && strstr(log, "watermark on"));
    if (log) fputs(log, stderr); /* the server's lines and any failed check while they went there */
    check_absent("the server's log", log, n);
    free(log);
}

int main(void) {
    const char *tmp = test_tmpdir("watermark-serve");
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    snprintf(db_path, sizeof db_path, "%s/usage.db", tmp);
    snprintf(key_path, sizeof key_path, "%s/wm.key", tmp);
    snprintf(log_path, sizeof log_path, "%s/serve.log", tmp);
    FILE *f = fopen(key_path, "wb");
    fwrite(KEY_BYTES, 1, sizeof KEY_BYTES - 1, f);
    fclose(f);
    make_model_dir(model_dir, 32, 2, 64, 256, 4.0f, 0, 17);
    dl_error err;
    char tp[700];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", model_dir);
    if (dl_model_load(&model, model_dir, &err) || !(tok = dl_tok_load(tp, &err))) fixture_die("load", &err);
    test_sched(1.0f);
    test_sched(0.0f);
    test_http();
    test_key_secret();
    dl_buf_free(&seen_bodies);
    dl_tok_free(tok);
    dl_model_free(&model);
    TEST_MAIN_END();
}
