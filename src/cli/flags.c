#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_error(const dl_error *err) {
    fprintf(stderr, "distil: error: %s\n", err->msg);
    return 1;
}

int cli_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "distil: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static const char *type_hint(flag_type t) {
    switch (t) {
    case FLAG_STR: return " VALUE";
    case FLAG_INT: return " N";
    case FLAG_FLOAT:
    case FLAG_DOUBLE: return " X";
    default: return "";
    }
}

void cli_usage(const char *cmd, const char *summary, const cli_flag *flags, FILE *out) {
    fprintf(out, "usage: distil %s [flags]\n\n%s\n\nflags:\n", cmd, summary);
    for (const cli_flag *f = flags; f->name; f++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", f->name, type_hint(f->type));
        fprintf(out, "  %-24s %s%s\n", left, f->help, f->required ? " (required)" : "");
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help");
}

static int set_value(const char *cmd, cli_flag *f, const char *v) {
    char *end;
    errno = 0;
    switch (f->type) {
    case FLAG_STR: *(const char **)f->dst = v; return 0;
    case FLAG_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -2147483647L || x > 2147483647L)
            return cli_errorf("distil %s: --%s expects an integer, got '%s'", cmd, f->name, v), -1;
        *(int *)f->dst = (int)x;
        return 0;
    }
    case FLAG_FLOAT:
    case FLAG_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x))
            return cli_errorf("distil %s: --%s expects a number, got '%s'", cmd, f->name, v), -1;
        if (f->type == FLAG_FLOAT) *(float *)f->dst = (float)x;
        else *(double *)f->dst = x;
        return 0;
    }
    default: return -1;
    }
}

int cli_parse(const char *cmd, const char *summary, cli_flag *flags, int argc, char **argv, char **pos,
              int max_pos, int *npos) {
    if (npos) *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_usage(cmd, summary, flags, stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!npos || *npos >= max_pos) {
                cli_errorf("distil %s: unexpected argument '%s' (see distil %s --help)", cmd, a, cmd);
                return -1;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        cli_flag *f = NULL;
        for (cli_flag *g = flags; g->name; g++)
            if (strlen(g->name) == nlen && strncmp(g->name, name, nlen) == 0) f = g;
        if (!f) {
            cli_errorf("distil %s: unknown flag '--%.*s' (see distil %s --help)", cmd, (int)nlen, name, cmd);
            return -1;
        }
        f->seen = 1;
        if (f->type == FLAG_BOOL) {
            if (eq) {
                cli_errorf("distil %s: --%s takes no value", cmd, f->name);
                return -1;
            }
            *(int *)f->dst = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            cli_errorf("distil %s: --%s needs a value", cmd, f->name);
            return -1;
        }
        if (set_value(cmd, f, v)) return -1;
    }
    for (cli_flag *f = flags; f->name; f++)
        if (f->required && !f->seen) {
            cli_errorf("distil %s: --%s is required (see distil %s --help)", cmd, f->name, cmd);
            return -1;
        }
    return 0;
}

int cli_dispatch(const char *group, void (*usage)(FILE *), const cli_sub *subs, int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        usage(stdout);
        return 0;
    }
    for (const cli_sub *c = subs; c->name; c++)
        if (!strcmp(sub, c->name)) return c->fn(argc - 1, argv + 1);
    cli_errorf("unknown command '%s %s' (see distil %s --help)", group, sub, group);
    return 2;
}
