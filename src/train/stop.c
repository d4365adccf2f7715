#include "stop.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t g_signal;
static struct sigaction g_old_int, g_old_term;

static void on_signal(int sig) { g_signal = sig; }

void dl_stop_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    g_signal = 0;
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
}

void dl_stop_restore(void) {
    sigaction(SIGINT, &g_old_int, NULL);
    sigaction(SIGTERM, &g_old_term, NULL);
}

int dl_stop_requested(void) { return (int)g_signal; }
