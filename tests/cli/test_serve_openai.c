/* `distil serve` driven by the official OpenAI Node client (tests/serve/openai/check.mjs):
 * completions, chat, streaming, logprobs, an auth failure and a 429. Exits 77 (ctest: skipped,
 * not passed) when node or the npm package is missing; scripts/install-deps.sh installs it
 * (npm ci in tests/serve/openai). */
#include "cli_util.h"
#include "ops/ops.h"
#include "serve/serve.h"
#include "serve/serve_fixture.h"

static int have_node_client(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/node_modules/openai/package.json", dir);
    return system("node --version >/dev/null 2>&1") == 0 && dl_path_exists(path);
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

    pid_t pid = spawn_distil(out, err_path, (const char *const[]){"serve", "--model", model, "--db", db, "--port", "0", NULL});
    int port = wait_serve_port(out, pid);
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
    int st = stop_distil(pid);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "serve did not drain and exit 0 on SIGTERM (status %d)", st);
    TEST_MAIN_END();
}
