/* safetensors: 8-byte little-endian header length, a JSON header mapping tensor names to
 * {dtype, shape, data_offsets}, then the raw data. Every offset is checked on open. */
#ifndef DISTIL_SAFETENSORS_H
#define DISTIL_SAFETENSORS_H

#include "base/base.h"

typedef enum { DL_F32, DL_F16, DL_BF16, DL_I32, DL_I64, DL_U8, DL_I8, DL_U16, DL_DTYPE_UNKNOWN } dl_dtype;
const char *dl_dtype_name(dl_dtype t);
size_t dl_dtype_size(dl_dtype t);
/* "F32" -> DL_F32, ...; DL_DTYPE_UNKNOWN for any other string. */
dl_dtype dl_dtype_from_name(const char *name);

#define DL_ST_MAX_DIMS 8
typedef struct dl_st_tensor {
    char *name;
    dl_dtype dtype;
    int ndim;
    int64_t shape[DL_ST_MAX_DIMS];
    size_t numel;
    const void *data; /* into the mapping (reading) or the caller's memory (writing) */
    size_t nbytes;
} dl_st_tensor;

typedef struct dl_st_file {
    dl_mmap map;
    dl_st_tensor *tensors;
    int n;
    struct json_t *metadata; /* "__metadata__" object or NULL */
} dl_st_file;

/* Maps and validates the file: header length within the file, valid JSON, known dtypes,
 * shapes whose product matches the byte range, ranges inside the data and not overlapping. */
int dl_st_open(dl_st_file *f, const char *path, dl_error *err);
void dl_st_close(dl_st_file *f);
const dl_st_tensor *dl_st_find(const dl_st_file *f, const char *name);
/* Converts a tensor of any float dtype (F32, F16, BF16) to float32; n must equal numel. */
int dl_st_read_f32(const dl_st_tensor *t, float *out, size_t n, dl_error *err);

/* ---- a model folder's weights (safetensors_set.c) ------------------------------------------
 * model.safetensors, or when the folder has none, the shards that model.safetensors.index.json
 * names ({"metadata": {...}, "weight_map": {tensor: shard file}}). Shard names are plain file
 * names in the folder (no path separator, no ".."); every shard is mapped and checked as
 * dl_st_open does; every tensor is in exactly one shard, the one the index says, and every
 * tensor the index lists is there. At most 4096 shards. */
typedef struct dl_st_set {
    dl_st_file *files;
    int n_files;
    const dl_st_tensor **tensors; /* all tensors of all files, sorted by name */
    size_t n;
    char source[4096]; /* the path of model.safetensors or of the index, for messages */
} dl_st_set;

#define DL_ST_INDEX_NAME "model.safetensors.index.json"
int dl_st_set_open(dl_st_set *s, const char *dir, dl_error *err);
void dl_st_set_close(dl_st_set *s);
const dl_st_tensor *dl_st_set_find(const dl_st_set *s, const char *name);
/* Whether dir holds model.safetensors or an index (says nothing of their validity). */
int dl_st_set_exists(const char *dir);

/* Writes tensors (name, dtype, ndim, shape, data, nbytes set by the caller) atomically.
 * metadata: optional string->string pairs (NULL-terminated key, value, key, value, ...). */
int dl_st_write(const char *path, const dl_st_tensor *tensors, int n, const char *const *metadata,
                dl_error *err);

/* half-precision conversions (round to nearest even) */
float dl_f16_to_f32(uint16_t h);
uint16_t dl_f32_to_f16(float f);
float dl_bf16_to_f32(uint16_t h);
uint16_t dl_f32_to_bf16(float f);

#endif
