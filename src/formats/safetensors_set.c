/* A model folder's weights as one set of tensors: model.safetensors, or the shards of
 * model.safetensors.index.json. The index is untrusted like the files: shard names must be
 * plain names inside the folder, and the index and the shards must agree tensor for tensor. */
#include "formats/safetensors.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Real models have a few to a few hundred shards; this bounds the mappings a hostile index asks for. */
#define MAX_SHARDS 4096

typedef struct {
    const dl_st_tensor *t;
    int shard;
} entry;

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    int c = strcmp(x->t->name, y->t->name);
    return c ? c : (x->shard > y->shard) - (x->shard < y->shard);
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp((*(const dl_st_tensor *const *)a)->name, (*(const dl_st_tensor *const *)b)->name);
}

/* A file name in the folder itself: no separator, no "..", nothing unprintable. */
static int plain_file_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255 || strstr(s, "..") || strcmp(s, ".") == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || (unsigned char)s[i] < 0x20) return 0;
    return 1;
}

/* The index's weight_map into *map, checked: an object of tensor name -> shard file name. */
static int weight_map(json_t *root, json_t **map, dl_error *err) {
    if (!json_is_object(root)) return dl_fail(err, "expected a JSON object, got %s", dl_json_type_name(root));
    json_t *md = json_object_get(root, "metadata"), *m = json_object_get(root, "weight_map");
    if (md && !json_is_null(md) && !json_is_object(md))
        return dl_fail(err, "'metadata' must be an object, got %s", dl_json_type_name(md));
    if (!m) return dl_fail(err, "'weight_map' is missing");
    if (!json_is_object(m)) return dl_fail(err, "'weight_map' must be an object, got %s", dl_json_type_name(m));
    if (json_object_size(m) == 0) return dl_fail(err, "'weight_map' is empty");
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v))
            return dl_fail(err, "weight_map['%.100s'] must be a shard file name, got %s", key, dl_json_type_name(v));
        if (!plain_file_name(json_string_value(v)))
            return dl_fail(err, "weight_map['%.100s']: '%.100s' is not a plain file name in the model folder", key,
                           json_string_value(v));
    }
    *map = m;
    return 0;
}

/* The distinct shard names of map, sorted, into *names (pointers into map). */
static int shard_names(json_t *map, const char ***names, int *n, dl_error *err) {
    size_t m = json_object_size(map), k = 0, u = 0;
    const char **s = malloc((m + 1) * sizeof *s);
    if (!s) return dl_fail(err, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) s[k++] = json_string_value(v);
    qsort(s, m, sizeof *s, cmp_str);
    for (size_t i = 0; i < m; i++)
        if (u == 0 || strcmp(s[u - 1], s[i]) != 0) s[u++] = s[i];
    if (u > MAX_SHARDS) {
        free(s);
        return dl_fail(err, "the index names %zu shard files (at most %d)", u, MAX_SHARDS);
    }
    *names = s;
    *n = (int)u;
    return 0;
}

static int open_shards(dl_st_set *s, const char *dir, const char **names, int n, dl_error *err) {
    s->files = calloc((size_t)n + 1, sizeof *s->files);
    if (!s->files) return dl_fail(err, "out of memory");
    for (int i = 0; i < n; i++) {
        char path[4096];
        if (dl_path_join(path, sizeof path, dir, names[i], err)) return -1;
        if (!dl_path_exists(path)) return dl_fail(err, "shard '%s' named by the index is missing", names[i]);
        if (dl_st_open(&s->files[i], path, err)) return -1;
        s->n_files = i + 1;
    }
    return 0;
}

/* Sorts every tensor of every file by name into s->tensors; a name in two shards is refused.
 * With an index, each tensor must be where the index says. */
static int collect(dl_st_set *s, json_t *map, const char **names, dl_error *err) {
    size_t total = 0;
    for (int i = 0; i < s->n_files; i++) total += (size_t)s->files[i].n;
    entry *e = malloc((total + 1) * sizeof *e);
    s->tensors = malloc((total + 1) * sizeof *s->tensors);
    if (!e || !s->tensors) {
        free(e);
        return dl_fail(err, "out of memory");
    }
    size_t k = 0;
    for (int i = 0; i < s->n_files; i++)
        for (int j = 0; j < s->files[i].n; j++) e[k++] = (entry){&s->files[i].tensors[j], i};
    qsort(e, total, sizeof *e, cmp_entry);
    int rc = 0;
    for (size_t i = 0; i < total && rc == 0; i++) {
        const char *name = e[i].t->name;
        if (i > 0 && strcmp(name, e[i - 1].t->name) == 0)
            rc = dl_fail(err, "tensor '%.100s' is in two shards ('%s' and '%s')", name, names[e[i - 1].shard],
                         names[e[i].shard]);
        else if (map && !json_is_string(json_object_get(map, name)))
            rc = dl_fail(err, "tensor '%.100s' of shard '%s' is not in the index's weight_map", name,
                         names[e[i].shard]);
        else if (map && strcmp(json_string_value(json_object_get(map, name)), names[e[i].shard]) != 0)
            rc = dl_fail(err, "the index puts tensor '%.100s' in '%s', but it is in '%s'", name,
                         json_string_value(json_object_get(map, name)), names[e[i].shard]);
        s->tensors[i] = e[i].t;
    }
    s->n = total;
    free(e);
    return rc;
}

/* Every tensor of the index must be in its shard (collect() showed the converse). */
static int check_listed(const dl_st_set *s, json_t *map, dl_error *err) {
    if (json_object_size(map) == s->n) return 0;
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!dl_st_set_find(s, key))
            return dl_fail(err, "the index lists tensor '%.100s' in '%s', which does not hold it", key,
                           json_string_value(v));
    }
    return 0;
}

static int open_index(dl_st_set *s, const char *dir, const char *index_path, dl_error *err) {
    json_t *root = dl_json_load(index_path, err);
    if (!root) return -1;
    const char **names = NULL;
    int n = 0, rc = -1;
    json_t *map = NULL;
    if (weight_map(root, &map, err) == 0 && shard_names(map, &names, &n, err) == 0 && open_shards(s, dir, names, n, err) == 0 &&
        collect(s, map, names, err) == 0)
        rc = check_listed(s, map, err);
    free(names);
    json_decref(root);
    if (rc) return dl_fail_ctx(err, "%s", index_path);
    return 0;
}

int dl_st_set_open(dl_st_set *s, const char *dir, dl_error *err) {
    memset(s, 0, sizeof *s);
    char path[4096];
    if (dl_path_join(path, sizeof path, dir, "model.safetensors", err)) return -1;
    int rc;
    if (dl_path_exists(path)) {
        snprintf(s->source, sizeof s->source, "%s", path);
        static const char *const one[] = {"model.safetensors"};
        s->files = calloc(1, sizeof *s->files);
        rc = !s->files ? dl_fail(err, "out of memory") : dl_st_open(&s->files[0], path, err);
        if (rc == 0) s->n_files = 1;
        if (rc == 0) rc = collect(s, NULL, (const char **)one, err);
    } else {
        char index[4096];
        if (dl_path_join(index, sizeof index, dir, DL_ST_INDEX_NAME, err)) return -1;
        if (!dl_path_exists(index)) return dl_fail(err, "%s: missing (and no %s beside it)", path, DL_ST_INDEX_NAME);
        snprintf(s->source, sizeof s->source, "%s", index);
        rc = open_index(s, dir, index, err);
    }
    if (rc) dl_st_set_close(s);
    return rc ? -1 : 0;
}

void dl_st_set_close(dl_st_set *s) {
    for (int i = 0; i < s->n_files; i++) dl_st_close(&s->files[i]);
    free(s->files);
    free(s->tensors);
    memset(s, 0, sizeof *s);
}

const dl_st_tensor *dl_st_set_find(const dl_st_set *s, const char *name) {
    dl_st_tensor key = {.name = (char *)name};
    const dl_st_tensor *kp = &key, **hit = s->n ? bsearch(&kp, s->tensors, s->n, sizeof *s->tensors, cmp_tensor) : NULL;
    return hit ? *hit : NULL;
}

int dl_st_set_exists(const char *dir) {
    char p[4096];
    return (dl_path_join(p, sizeof p, dir, "model.safetensors", NULL) == 0 && dl_path_exists(p)) ||
           (dl_path_join(p, sizeof p, dir, DL_ST_INDEX_NAME, NULL) == 0 && dl_path_exists(p));
}
