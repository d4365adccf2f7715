#include "model.h"
#include <jansson.h>
#include <string.h>

int dl_config_validate(const dl_config *c, dl_error *err) {
    if (c->V <= 0 || c->C <= 0 || c->F <= 0 || c->L <= 0 || c->NH <= 0 || c->NKV <= 0 || c->max_T <= 0)
        return dl_fail(err, "config: every dimension must be positive (vocab_size %d, hidden_size %d, "
                            "intermediate_size %d, num_hidden_layers %d, num_attention_heads %d, "
                            "num_key_value_heads %d, max_position_embeddings %d)",
                       c->V, c->C, c->F, c->L, c->NH, c->NKV, c->max_T);
    if (c->C % c->NH != 0)
        return dl_fail(err, "config: hidden_size %d is not divisible by num_attention_heads %d", c->C, c->NH);
    if (c->NH % c->NKV != 0)
        return dl_fail(err, "config: num_attention_heads %d is not divisible by num_key_value_heads %d", c->NH,
                       c->NKV);
    if ((c->C / c->NH) % 2 != 0)
        return dl_fail(err, "config: head size %d (hidden_size / num_attention_heads) must be even for RoPE",
                       c->C / c->NH);
    if (c->V > (1 << 24) || c->C > (1 << 16) || c->F > (1 << 18) || c->L > 1024 || c->max_T > (1 << 20))
        return dl_fail(err, "config: dimensions are implausibly large");
    if (!(c->rms_eps > 0) || !(c->rope_theta > 0))
        return dl_fail(err, "config: rms_norm_eps and rope_theta must be positive");
    return 0;
}

static int get_int_dim(json_t *o, const char *key, int *out, dl_error *err) {
    long long v;
    if (dl_json_get_int(o, key, &v, err)) return -1;
    if (v <= 0 || v > (1LL << 30)) return dl_fail(err, "'%s' = %lld is out of range", key, v);
    *out = (int)v;
    return 0;
}

static int config_from_json(json_t *o, dl_config *c, dl_error *err) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(o)) return dl_fail(err, "expected a JSON object");
    json_t *mt = json_object_get(o, "model_type");
    if (mt && json_is_string(mt) && strcmp(json_string_value(mt), "llama") != 0)
        return dl_fail(err, "model_type '%s' is not supported (only 'llama')", json_string_value(mt));
    if (get_int_dim(o, "vocab_size", &c->V, err) || get_int_dim(o, "hidden_size", &c->C, err) ||
        get_int_dim(o, "intermediate_size", &c->F, err) || get_int_dim(o, "num_hidden_layers", &c->L, err) ||
        get_int_dim(o, "num_attention_heads", &c->NH, err))
        return -1;
    c->NKV = c->NH;
    if (json_object_get(o, "num_key_value_heads") && get_int_dim(o, "num_key_value_heads", &c->NKV, err)) return -1;
    c->max_T = 2048;
    if (json_object_get(o, "max_position_embeddings") && get_int_dim(o, "max_position_embeddings", &c->max_T, err))
        return -1;
    double d;
    c->rms_eps = 1e-6f;
    if (json_object_get(o, "rms_norm_eps")) {
        if (dl_json_get_double(o, "rms_norm_eps", &d, err)) return -1;
        c->rms_eps = (float)d;
    }
    c->rope_theta = 10000.0f;
    if (json_object_get(o, "rope_theta")) {
        if (dl_json_get_double(o, "rope_theta", &d, err)) return -1;
        c->rope_theta = (float)d;
    }
    c->tied = 0;
    if (json_object_get(o, "tie_word_embeddings") && dl_json_get_bool(o, "tie_word_embeddings", &c->tied, err))
        return -1;
    long long id;
    c->bos_id = c->eos_id = -1;
    if (json_is_integer(json_object_get(o, "bos_token_id")) && !dl_json_get_int(o, "bos_token_id", &id, err))
        c->bos_id = (int)id;
    if (json_is_integer(json_object_get(o, "eos_token_id")) && !dl_json_get_int(o, "eos_token_id", &id, err))
        c->eos_id = (int)id;
    return dl_config_validate(c, err);
}

int dl_config_load(const char *path, dl_config *c, dl_error *err) {
    json_t *o = dl_json_load(path, err);
    if (!o) return -1;
    int rc = config_from_json(o, c, err);
    json_decref(o);
    if (rc) return dl_fail_ctx(err, "%s", path);
    return 0;
}

int dl_config_load_any(const char *path_or_dir, dl_config *c, dl_error *err) {
    if (!dl_is_dir(path_or_dir)) return dl_config_load(path_or_dir, c, err);
    char p[4096];
    if (dl_path_join(p, sizeof p, path_or_dir, "config.json", err)) return -1;
    return dl_config_load(p, c, err);
}

int dl_config_save(const dl_config *c, const char *path, dl_error *err) {
    if (dl_config_validate(c, err)) return -1;
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "LlamaForCausalLM"));
    json_object_set_new(o, "model_type", json_string("llama"));
    json_object_set_new(o, "vocab_size", json_integer(c->V));
    json_object_set_new(o, "hidden_size", json_integer(c->C));
    json_object_set_new(o, "intermediate_size", json_integer(c->F));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->L));
    json_object_set_new(o, "num_attention_heads", json_integer(c->NH));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->NKV));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_T));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_eps));
    json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tied));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    int rc = dl_json_save(o, path, err);
    json_decref(o);
    return rc;
}
