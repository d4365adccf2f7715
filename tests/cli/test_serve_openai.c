/* `distil serve` driven by the official OpenAI Node client (tests/serve/openai/check.mjs):
 * completions, chat, streaming, logprobs, an auth failure and a 429. Exits 77 (ctest: skipped,
 * not passed) when node or the npm package is missing; scripts/install-deps.sh installs it
 * (npm ci in tests/serve/openai). */
#include "ops/ops.h"
#include "serve/serve.h"
#include "serve/serve_fixture.h"
#include "test.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

static void slurp(const char *path, char *buf, size_t n) {
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = 0;
    fclose(f);
}

static int have_node_client(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/node_modules/openai/package.json", dir);
    return system("node --version >/dev/null 2>&1") == 0 && dl_path_exists(path);
}

static int wait_port(const char *out_path, pid_t pid) {
    for (int i = 0; i < 3000; i++) {
        char buf[256];
        slurp(out_path, buf, sizeof buf);
        const char *p = strstr(buf, "listening on http://127.0.0.1:");
        if (p && strchr(p, '\n')) return atoi(p + strlen("listening on http://127.0.0.1:"));
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        usleep(10000);
    }
    return -1;
}

int main(int argc, char **argv) {
    (void)argc;
    char node_dir[1024];
    snprintf(node_dir, sizeof node_dir, "%s/tests/serve/openai", DISTIL_SOURCE_DIR);
    if (!have_node_client(node_dir)) {
        printf("SKIP: needs node and the openai npm package (npm ci in %s; scripts/install-deps.sh does it)\n", node_dir);
        return 77;
    }
    dl_ops_tune_runtime(argv);
    const char *tmp = test_tmpdir("serve-openai");
    char model[700], db[700], out[700], err_path[700], cmd[4096];
    snprintf(model, sizeof model, "%s/m", tmp);
    snprintf(db, sizeof db, "%s/usage.db", tmp);
    snprintf(out, sizeof out, "%s/serve.out", tmp);
    snprintf(err_path, sizeof err_path, "%s/serve.err", tmp);
    make_model_dir(model, 64, 2, 128, 256, 3.0f, 0, 3);

    char key[DL_KEY_TEXT_MAX], limited[DL_KEY_TEXT_MAX];
    long long id;
    dl_error err;
    dl_key_limits none = {0}, one_rpm = {.rpm = 1};
    CHECK(dl_keys_create(db, "node", &none, key, &id, &err) == 0);
    CHECK(dl_keys_create(db, "node-limited", &one_rpm, limited, &id, &err) == 0);

    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execl(DISTIL_BIN, DISTIL_BIN, "serve", "--model", model, "--db", db, "--port", "0", (char *)NULL);
        _exit(127);
    }
    int port = wait_port(out, pid);
    CHECK_MSG(port > 0, "the server did not start");
    if (port > 0) {
        char log[700];
        snprintf(log, sizeof log, "%s/node.txt", tmp);
        snprintf(cmd, sizeof cmd, "cd '%s' && timeout 120 node check.mjs http://127.0.0.1:%d '%s' '%s' m >'%s' 2>&1", node_dir,
                 port, key, limited, log);
        int st = system(cmd);
        char text[65536];
        slurp(log, text, sizeof text);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(text, "checks passed"), "node client:\n%s", text);
        printf("%s", text);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    TEST_MAIN_END();
}
