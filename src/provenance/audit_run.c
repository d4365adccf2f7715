/* `distil audit`: read the db, analyse, print the table or JSON, write the report. */
#include "audit_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int dl_audit_parse_time(const char *text, double *t, dl_error *err) {
    char *end;
    double v = strtod(text, &end);
    if (*text && !*end && isfinite(v)) { /* "2026-11-28" stops strtod at the first '-' */
        *t = v;
        return 0;
    }
    struct tm tm = {0};
    int used = 0;
    int n = sscanf(text, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used);
    const char *rest = text + used;
    if (n == 3 && (*rest == 'T' || *rest == ' ')) {
        int u2 = 0;
        n += sscanf(rest + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &u2);
        rest += 1 + u2;
        if (n == 5 && *rest == ':') {
            int u3 = 0;
            n += sscanf(rest + 1, "%2d%n", &tm.tm_sec, &u3);
            rest += 1 + u3;
        }
    }
    if (*rest == 'Z') rest++;
    if ((n != 3 && n != 5 && n != 6) || *rest || used == 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_hour < 0 || tm.tm_min < 0 ||
        tm.tm_sec < 0)
        return dl_fail(err, "'%s' is not a time: give unix seconds or a UTC date like 2026-11-28 or 2026-11-28T14:30:00",
                       text);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *t = (double)timegm(&tm);
    return 0;
}

static int emit(const dl_audit_opts *o, const dl_audit_result *res, FILE *out, dl_error *err) {
    if (o->report_path && dl_audit_write_report(res, o->db_path, o->report_path, err)) return -1;
    if (!o->json) return dl_audit_print_table(res, o->db_path, out) ? dl_fail(err, "cannot write the table") : 0;
    char *s = dl_audit_json(res, o->db_path);
    if (!s) return dl_fail(err, "cannot format the audit as JSON");
    fprintf(out, "%s\n", s);
    free(s);
    return ferror(out) ? dl_fail(err, "cannot write the JSON") : 0;
}

int dl_audit_run(const dl_audit_opts *o, FILE *out, dl_error *err) {
    if (o->since >= o->until) return dl_fail(err, "--since must be before --until");
    dl_audit_log *L = dl_audit_log_new(err);
    if (!L) return -1;
    double t0 = dl_now();
    int rc = dl_audit_read_db(L, o->db_path, o->since, o->until, err);
    dl_audit_result res;
    if (rc == 0) {
        dl_log("audit: read %zu requests of %d keys in %.2f s", L->n_rows, L->n_keys, dl_now() - t0);
        rc = dl_audit_analyse(L, &res, err);
    }
    if (rc == 0) {
        dl_log("audit: analysed in %.2f s", dl_now() - t0);
        rc = emit(o, &res, out, err);
        dl_audit_result_free(&res);
    }
    dl_audit_log_free(L);
    return rc;
}
