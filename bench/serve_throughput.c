/* Serving throughput: `distil serve` driven over loopback by one client, then by N concurrent
 * clients, each phase for a bounded time (and at most --max-requests requests). Every request
 * asks for exactly --max-tokens tokens (the bench model has no end token), so tokens/s counts
 * what was generated. Prints one JSON line:
 *   clients, tokens_per_s, single_client_tokens_per_s, speedup, requests_per_s, p50_ms, p99_ms,
 *   errors (+ the model's size and the settings).
 * Without --model it makes a random model sized so decoding is bound by reading the weights
 * (what batching amortises), the way a real teacher's is. */
#include "../tests/serve/http_client.h"
#include "../tests/serve/serve_fixture.h"
#include "ops/ops.h"
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

typedef struct opts {
    const char *model, *distil;
    int clients, max_tokens, max_requests, max_batch, C, L;
    double seconds;
} opts;

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.clients = 8, .max_tokens = 64, .max_requests = 5000, .max_batch = 16, .seconds = 8, .C = 512, .L = 6};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "bench: %s needs a value\n", a), -1;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--distil")) o->distil = v;
        else if (!strcmp(a, "--clients")) o->clients = atoi(v);
        else if (!strcmp(a, "--max-tokens")) o->max_tokens = atoi(v);
        else if (!strcmp(a, "--max-requests")) o->max_requests = atoi(v);
        else if (!strcmp(a, "--max-batch")) o->max_batch = atoi(v);
        else if (!strcmp(a, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(a, "--hidden")) o->C = atoi(v);
        else if (!strcmp(a, "--layers")) o->L = atoi(v);
        else return fprintf(stderr, "bench: unknown flag %s\n", a), -1;
        i++;
    }
    if (o->clients < 1 || o->clients > 256 || o->max_tokens < 1 || o->max_requests < 1 || o->max_batch < 1 ||
        !(o->seconds > 0 && o->seconds <= 600) || o->C < 32 || o->C % 32 || o->L < 1)
        return fprintf(stderr, "bench: bad settings (clients 1..256, seconds 0..600, hidden a multiple of 32)\n"), -1;
    return 0;
}

/* ---- the server process ------------------------------------------------------------------- */

static pid_t start_server(const opts *o, const char *model, const char *dir, int *port) {
    char out[600], db[600], batch[16];
    snprintf(out, sizeof out, "%s/serve.out", dir);
    snprintf(db, sizeof db, "%s/usage.db", dir);
    snprintf(batch, sizeof batch, "%d", o->max_batch);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        execl(o->distil, o->distil, "serve", "--model", model, "--db", db, "--port", "0", "--no-auth", "--max-batch",
              batch, "--max-queue", "1024", "--no-log-prompts", (char *)NULL);
        _exit(127);
    }
    *port = -1;
    for (int i = 0; i < 6000 && *port < 0; i++) {
        char buf[256] = {0};
        FILE *f = fopen(out, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
        }
        const char *p = strstr(buf, "127.0.0.1:");
        if (p && strchr(p, '\n')) *port = atoi(p + 10);
        else if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        else usleep(10000);
    }
    return pid;
}

/* ---- clients ------------------------------------------------------------------------------- */

typedef struct phase {
    int port, max_tokens, max_requests;
    double end;
    pthread_mutex_t mu;
    int requests, errors;
    long long tokens;
    double *lat; /* ms, one per successful request */
    int n_lat, cap_lat;
} phase;

static void record(phase *p, int ok, long long tokens, double ms) {
    pthread_mutex_lock(&p->mu);
    if (!ok) p->errors++;
    else {
        p->tokens += tokens;
        if (p->n_lat == p->cap_lat) {
            p->cap_lat = p->cap_lat ? 2 * p->cap_lat : 1024;
            p->lat = realloc(p->lat, (size_t)p->cap_lat * sizeof *p->lat);
        }
        p->lat[p->n_lat++] = ms;
    }
    pthread_mutex_unlock(&p->mu);
}

static int take_ticket(phase *p) {
    pthread_mutex_lock(&p->mu);
    int ok = dl_now() < p->end && p->requests < p->max_requests;
    if (ok) p->requests++;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void *client(void *arg) {
    phase *p = arg;
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"m\",\"prompt\":\"the quick brown fox\",\"max_tokens\":%d,\"temperature\":1}",
             p->max_tokens);
    while (take_ticket(p)) {
        double t0 = dl_now();
        http_resp r;
        int ok = http_request(p->port, "POST", "/v1/completions", NULL, body, &r, 120.0) == 0 && r.status == 200;
        long long tokens = 0;
        if (ok) {
            json_error_t je;
            json_t *o = json_loads(r.body, JSON_ALLOW_NUL, &je);
            tokens = json_integer_value(json_object_get(json_object_get(o, "usage"), "completion_tokens"));
            json_decref(o);
            ok = tokens > 0;
        }
        if (r.head) http_resp_free(&r);
        record(p, ok, tokens, (dl_now() - t0) * 1000.0);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(phase *p, double q) {
    if (p->n_lat == 0) return 0;
    qsort(p->lat, (size_t)p->n_lat, sizeof *p->lat, cmp_double);
    int i = (int)(q * (p->n_lat - 1) + 0.5);
    return p->lat[i];
}

static void run_phase(phase *p, int port, int clients, const opts *o, double *seconds) {
    *p = (phase){.port = port, .max_tokens = o->max_tokens, .max_requests = o->max_requests};
    pthread_mutex_init(&p->mu, NULL);
    double t0 = dl_now();
    p->end = t0 + o->seconds;
    pthread_t th[256];
    for (int i = 0; i < clients; i++) pthread_create(&th[i], NULL, client, p);
    for (int i = 0; i < clients; i++) pthread_join(th[i], NULL);
    *seconds = dl_now() - t0;
}

static void find_distil(opts *o, char *buf, size_t n) {
    if (o->distil) return;
    /* build/bench/bench_serve_throughput -> build/distil */
    ssize_t k = readlink("/proc/self/exe", buf, n - 16);
    if (k <= 0) k = 0;
    buf[k] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
    slash = strrchr(buf, '/');
    if (slash) strcpy(slash, "/distil");
    o->distil = buf;
}

int main(int argc, char **argv) {
    dl_ops_tune_runtime(argv);
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    char distil[PATH_MAX], dir[] = "/tmp/distil-bench-serve-XXXXXX", model[700];
    find_distil(&o, distil, sizeof distil);
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    if (!o.model) {
        snprintf(model, sizeof model, "%s/m", dir);
        make_model_dir(model, o.C, o.L, (o.C * 8 / 3 + 31) / 32 * 32, o.max_tokens + 64, 1.0f, 0, 1);
        o.model = model;
    }
    dl_config cfg;
    dl_error err;
    if (dl_config_load_any(o.model, &cfg, &err)) return fprintf(stderr, "bench: %s\n", err.msg), 1;
    int port;
    pid_t pid = start_server(&o, o.model, dir, &port);
    if (pid < 0 || port < 0) return fprintf(stderr, "bench: %s serve did not start (see %s/serve.out)\n", o.distil, dir), 1;
    phase one, many;
    double s1, sn;
    run_phase(&one, port, 1, &o, &s1);
    run_phase(&many, port, o.clients, &o, &sn);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    double single = one.tokens / s1, tps = many.tokens / sn;
    long long params = 0;
    dl_layout lay;
    if (dl_layout_build(&lay, &cfg, &err) == 0) params = (long long)lay.total, dl_layout_free(&lay);
    printf("{\"clients\": %d, \"tokens_per_s\": %.1f, \"single_client_tokens_per_s\": %.1f, \"speedup\": %.2f, "
           "\"requests_per_s\": %.2f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, \"errors\": %d, \"single_client_errors\": %d, "
           "\"max_tokens\": %d, \"max_batch\": %d, \"seconds_per_phase\": %.1f, \"model_params\": %lld, \"server_exit\": %d}\n",
           o.clients, tps, single, single > 0 ? tps / single : 0, many.n_lat / sn, percentile(&many, 0.5),
           percentile(&many, 0.99), many.errors, one.errors, o.max_tokens, o.max_batch, o.seconds, params,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    free(one.lat);
    free(many.lat);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", dir);
    return 0;
}
