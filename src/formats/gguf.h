/* gguf: llama.cpp's model file, version 3 (little-endian).
 *
 * Layout: "GGUF", version u32, tensor count u64, key-value count u64; the key-value pairs
 * (key string, value type u32, value); the tensor infos (name string, n_dims u32, n_dims
 * dimensions u64 with ne[0] the innermost, ggml type u32, data offset u64); zero padding to
 * the alignment (general.alignment, default 32); the tensor data, each tensor at an aligned
 * offset from the start of the data section. A string is a u64 byte length and the bytes,
 * without a NUL. An array value is the element type u32, the count u64, then the elements.
 *
 * The reader maps the file and checks every count, length, type and offset before anything
 * points into it; values and tensor data stay in the mapping (copy with memcpy: they may be
 * unaligned). */
#ifndef DISTIL_GGUF_H
#define DISTIL_GGUF_H

#include "base/base.h"

enum {
    DL_GGUF_VERSION = 3,
    DL_GGUF_DEFAULT_ALIGNMENT = 32,
    DL_GGUF_MAX_DIMS = 4,
    /* ggml keeps names in a 64-byte field with the NUL, so llama.cpp refuses 64 bytes and up */
    DL_GGUF_NAME_MAX = 63,
    DL_GGUF_KEY_MAX = 65535,
};

/* Value types of the key-value pairs (numbers fixed by the format). */
typedef enum {
    DL_GGUF_U8 = 0, DL_GGUF_I8 = 1, DL_GGUF_U16 = 2, DL_GGUF_I16 = 3, DL_GGUF_U32 = 4, DL_GGUF_I32 = 5,
    DL_GGUF_F32 = 6, DL_GGUF_BOOL = 7, DL_GGUF_STRING = 8, DL_GGUF_ARRAY = 9, DL_GGUF_U64 = 10,
    DL_GGUF_I64 = 11, DL_GGUF_F64 = 12,
} dl_gguf_vtype;
const char *dl_gguf_vtype_name(uint32_t t); /* "u32", ... or "unknown" */

/* ggml tensor types used here (numbers fixed by the format; the reader knows the others too). */
enum { DL_GGML_F32 = 0, DL_GGML_F16 = 1, DL_GGML_Q8_0 = 8, DL_GGML_BF16 = 30 };
/* Elements per block and bytes per block of a ggml type; -1 for a type that is not known. */
int dl_ggml_type_info(uint32_t type, uint32_t *block, uint32_t *block_bytes);
const char *dl_ggml_type_name(uint32_t type); /* "Q8_0", ... or "unknown" */

/* ---- Q8_0 (quant.c): blocks of 32 values as an f16 scale d and 32 int8 q, x ~ d * q ------ */
enum { DL_Q8_0_BLOCK = 32, DL_Q8_0_BYTES = 34 };
/* d = max|x| / 127, q = round(x / d) (ggml's reference quantiser); n a multiple of 32. */
void dl_q8_0_quantize(const float *x, uint8_t *out, size_t n);
void dl_q8_0_dequantize(const uint8_t *in, float *y, size_t n);

/* ---- reading (gguf_read.c) --------------------------------------------------------------- */
typedef struct dl_gguf_kv {
    char *key;
    uint32_t type;        /* dl_gguf_vtype of a scalar, or DL_GGUF_ARRAY */
    uint32_t elem_type;   /* the element type of an array; equal to type for a scalar */
    uint64_t n;           /* elements of an array; 1 for a scalar */
    const uint8_t *data;  /* the value (a string starts with its length), or the first element */
    size_t *str_off;      /* string arrays: offset of element i from data */
} dl_gguf_kv;

typedef struct dl_gguf_tensor {
    char *name;
    uint32_t type;        /* ggml type */
    int ndim;
    uint64_t ne[DL_GGUF_MAX_DIMS]; /* ne[0] innermost; 1 past ndim */
    uint64_t numel;
    uint64_t offset;      /* from the start of the data section */
    const uint8_t *data;  /* into the file */
    size_t nbytes;
} dl_gguf_tensor;

typedef struct dl_gguf_file {
    dl_mmap map;          /* unused by dl_gguf_open_mem */
    const uint8_t *base;
    size_t len;
    uint32_t version, alignment;
    dl_gguf_kv *kv;       /* in file order */
    size_t n_kv;
    dl_gguf_tensor *tensors; /* in file order */
    size_t n_tensors;
    size_t data_offset;   /* start of the data section in the file */
} dl_gguf_file;

/* Maps and validates: magic, version (2 or 3), counts no larger than the file could hold,
 * string and array lengths inside the file, known value and tensor types, no nested arrays,
 * booleans 0 or 1, unique non-empty keys and tensor names (names at most 63 bytes),
 * general.alignment a u32 power of two, 1 to 4 dimensions each > 0 without overflow, rows a
 * whole number of blocks, data offsets aligned, inside the file and not overlapping. */
int dl_gguf_open(dl_gguf_file *f, const char *path, dl_error *err);
/* The same over bytes in memory, which must outlive f. */
int dl_gguf_open_mem(dl_gguf_file *f, const void *data, size_t len, dl_error *err);
void dl_gguf_close(dl_gguf_file *f);

const dl_gguf_kv *dl_gguf_find(const dl_gguf_file *f, const char *key);           /* NULL if absent */
const dl_gguf_tensor *dl_gguf_find_tensor(const dl_gguf_file *f, const char *name); /* NULL if absent */

/* Typed scalar reads that fail naming the key when it is missing or of another type.
 * get_int takes any integer type; get_float takes F32 or F64. */
int dl_gguf_get_int(const dl_gguf_file *f, const char *key, int64_t *out, dl_error *err);
int dl_gguf_get_float(const dl_gguf_file *f, const char *key, double *out, dl_error *err);
int dl_gguf_get_bool(const dl_gguf_file *f, const char *key, int *out, dl_error *err);
int dl_gguf_get_str(const dl_gguf_file *f, const char *key, const char **s, size_t *len, dl_error *err);
/* An array of the given element type (any integer type when want is DL_GGUF_I64). */
int dl_gguf_get_arr(const dl_gguf_file *f, const char *key, uint32_t want, const dl_gguf_kv **out, dl_error *err);
/* Element i < kv->n of a string array / an integer array (fails for a u64 above INT64_MAX). */
void dl_gguf_arr_str(const dl_gguf_kv *kv, uint64_t i, const char **s, size_t *len);
int dl_gguf_arr_int(const dl_gguf_kv *kv, uint64_t i, int64_t *out);

/* Converts an F32, F16, BF16 or Q8_0 tensor to float32; n must equal numel. */
int dl_gguf_tensor_to_f32(const dl_gguf_tensor *t, float *out, size_t n, dl_error *err);

/* ---- writing (gguf_write.c) ---------------------------------------------------------------
 * Key-value pairs are serialised as they are added; tensors are laid out in the order they
 * are added, each padded to the alignment (the last too, as llama.cpp's writer does). */
typedef struct dl_gguf_writer dl_gguf_writer;
dl_gguf_writer *dl_gguf_writer_new(dl_error *err);
void dl_gguf_writer_free(dl_gguf_writer *w);

/* Writes general.alignment (a power of two, at least 8) and uses it for the layout. */
int dl_gguf_set_alignment(dl_gguf_writer *w, uint32_t alignment, dl_error *err);
int dl_gguf_add_u32(dl_gguf_writer *w, const char *key, uint32_t v, dl_error *err);
int dl_gguf_add_i32(dl_gguf_writer *w, const char *key, int32_t v, dl_error *err);
int dl_gguf_add_f32(dl_gguf_writer *w, const char *key, float v, dl_error *err);
int dl_gguf_add_bool(dl_gguf_writer *w, const char *key, int v, dl_error *err);
int dl_gguf_add_str(dl_gguf_writer *w, const char *key, const char *s, dl_error *err);
/* An array of n elements of elem_type (DL_GGUF_STRING, DL_GGUF_I32 or DL_GGUF_F32), followed by
 * exactly n push calls before anything else is added. */
int dl_gguf_begin_arr(dl_gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n, dl_error *err);
int dl_gguf_push_str(dl_gguf_writer *w, const char *s, size_t len, dl_error *err);
int dl_gguf_push_i32(dl_gguf_writer *w, int32_t v, dl_error *err);
int dl_gguf_push_f32(dl_gguf_writer *w, float v, dl_error *err);

/* Adds a tensor; nbytes must match the type and shape (ne[0] innermost). The data must stay
 * valid until dl_gguf_write; with take set the writer frees it (also on failure). */
int dl_gguf_add_tensor(dl_gguf_writer *w, const char *name, uint32_t type, int ndim, const uint64_t *ne,
                       const void *data, size_t nbytes, int take, dl_error *err);
/* Writes the file atomically (temp file, fsync, rename). */
int dl_gguf_write(dl_gguf_writer *w, const char *path, dl_error *err);

#endif
