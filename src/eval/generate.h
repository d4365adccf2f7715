/* generate: text in, text out. Encodes a prompt, prefills a KV cache, then samples one token
 * at a time, handing each new token's text to a callback as it is made. */
#ifndef DISTIL_GENERATE_H
#define DISTIL_GENERATE_H

#include "model/model.h"
#include "model/sampler.h"
#include "tokenizer/tokenizer.h"

/* Called with the bytes of each generated token (a multi-byte UTF-8 character may be split
 * across calls). Return non-zero to stop generating. */
typedef int (*dl_token_fn)(const char *text, size_t len, void *user);
/* The same with the token's id: bytes do not always name one (a SentencePiece vocabulary spells a
 * space both as U+2581 and as the byte token <0x20>; a padded model's extra rows have no text). */
typedef int (*dl_token_id_fn)(int32_t id, const char *text, size_t len, void *user);

typedef enum {
    DL_STOP_MAX_TOKENS,   /* max_tokens were generated */
    DL_STOP_EOS,          /* the model produced its end token (not passed to the callback) */
    DL_STOP_CONTEXT_FULL, /* the context (max_position_embeddings) is full */
    DL_STOP_CALLBACK,     /* the callback asked to stop */
} dl_stop_reason;

typedef struct dl_generate_result {
    int n_prompt;      /* prompt tokens */
    int n_generated;   /* tokens passed to the callback */
    dl_stop_reason stop;
    double seconds;    /* prefill and generation */
    double tokens_per_s; /* generated tokens over the time after the prefill */
} dl_generate_result;

/* The end tokens are the config's eos_token_id and the tokenizer's "<|endoftext|>". Special-
 * token strings in the prompt become their ids. An empty prompt starts from bos_token_id or
 * "<|endoftext|>". The sampler draws from an rng seeded with `seed`, so a seed fixes the text. */
int dl_generate(const dl_model *m, const dl_tokenizer *tok, const char *prompt, int max_tokens,
                const dl_sampler_cfg *cfg, uint64_t seed, dl_token_fn fn, void *user, dl_generate_result *res,
                dl_error *err);
/* dl_generate, handing over each token's id with its bytes. */
int dl_generate_ids(const dl_model *m, const dl_tokenizer *tok, const char *prompt, int max_tokens,
                    const dl_sampler_cfg *cfg, uint64_t seed, dl_token_id_fn fn, void *user, dl_generate_result *res,
                    dl_error *err);

#endif
