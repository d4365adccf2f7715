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
    if (c->o_bias && !c->qkv_bias)
        return dl_fail(err, "config: an o_proj bias without q/k/v biases is not supported");
    return 0;
}

static int get_int_dim(json_t *o, const char *key, int *out, dl_error *err) {
    long long v;
    if (dl_json_get_int(o, key, &v, err)) return -1;
    if (v <= 0 || v > (1LL << 30)) return dl_fail(err, "'%s' = %lld is out of range", key, v);
    *out = (int)v;
    return 0;
}

/* The family: "llama" or "qwen2", from model_type and architectures, which must agree. */
static int read_family(json_t *o, int *qwen2, dl_error *err) {
    static const char *const ARCH[2] = {"LlamaForCausalLM", "Qwen2ForCausalLM"}, *const TYPE[2] = {"llama", "qwen2"};
    int fam = -1;
    json_t *mt = json_object_get(o, "model_type"), *ar = json_object_get(o, "architectures");
    if (mt && !json_is_null(mt)) {
        if (!json_is_string(mt)) return dl_fail(err, "'model_type' must be a string, got %s", dl_json_type_name(mt));
        for (int k = 0; k < 2; k++)
            if (strcmp(json_string_value(mt), TYPE[k]) == 0) fam = k;
        if (fam < 0)
            return dl_fail(err, "model_type '%.64s' is not supported (only 'llama' and 'qwen2')", json_string_value(mt));
    }
    if (ar && !json_is_null(ar) && !json_is_array(ar))
        return dl_fail(err, "'architectures' must be an array of strings, got %s", dl_json_type_name(ar));
    for (size_t i = 0; ar && i < json_array_size(ar); i++) {
        json_t *a = json_array_get(ar, i);
        int k = 0;
        while (k < 2 && !(json_is_string(a) && strcmp(json_string_value(a), ARCH[k]) == 0)) k++;
        if (k == 2)
            return dl_fail(err, "architectures[%zu] %s%.64s%s is not supported (LlamaForCausalLM or Qwen2ForCausalLM)", i,
                           json_is_string(a) ? "'" : "", json_is_string(a) ? json_string_value(a) : dl_json_type_name(a),
                           json_is_string(a) ? "'" : "");
        if (fam >= 0 && k != fam)
            return dl_fail(err, "architectures[%zu] '%s' disagrees with model_type '%s'", i, ARCH[k], TYPE[fam]);
        fam = k;
    }
    *qwen2 = fam == 1;
    return 0;
}

static int opt_bool(json_t *o, const char *key, int *out, dl_error *err) {
    json_t *v = json_object_get(o, key);
    *out = 0;
    return v && !json_is_null(v) ? dl_json_get_bool(o, key, out, err) : 0;
}

/* Keys that change the maths: read, and refused unless they describe the model distil runs. */
static int check_unsupported(json_t *o, int HS, dl_error *err) {
    json_t *v = json_object_get(o, "hidden_act");
    if (v && !(json_is_string(v) && strcmp(json_string_value(v), "silu") == 0))
        return dl_fail(err, "hidden_act %s%.64s%s is not supported (only 'silu')", json_is_string(v) ? "'" : "",
                       json_is_string(v) ? json_string_value(v) : dl_json_type_name(v), json_is_string(v) ? "'" : "");
    v = json_object_get(o, "rope_scaling");
    if (v && !json_is_null(v)) return dl_fail(err, "rope_scaling is not supported (only null)");
    int flag;
    if (opt_bool(o, "use_sliding_window", &flag, err)) return -1;
    if (flag) return dl_fail(err, "use_sliding_window true is not supported (sliding-window attention)");
    if (opt_bool(o, "mlp_bias", &flag, err)) return -1;
    if (flag) return dl_fail(err, "mlp_bias true is not supported");
    static const char *const ints[] = {"sliding_window", "max_window_layers", "head_dim"};
    for (int k = 0; k < 3; k++) {
        v = json_object_get(o, ints[k]);
        if (v && !json_is_null(v) && !json_is_integer(v))
            return dl_fail(err, "'%s' must be an integer or null, got %s", ints[k], dl_json_type_name(v));
    }
    v = json_object_get(o, "head_dim");
    if (json_is_integer(v) && json_integer_value(v) != HS)
        return dl_fail(err, "head_dim %lld differs from hidden_size / num_attention_heads = %d (not supported)",
                       (long long)json_integer_value(v), HS);
    return 0;
}

static int config_from_json(json_t *o, dl_config *c, dl_error *err) {
    memset(c, 0, sizeof *c);
    if (!json_is_object(o)) return dl_fail(err, "expected a JSON object");
    int qwen2 = 0;
    if (read_family(o, &qwen2, err)) return -1;
    if (get_int_dim(o, "vocab_size", &c->V, err) || get_int_dim(o, "hidden_size", &c->C, err) ||
        get_int_dim(o, "intermediate_size", &c->F, err) || get_int_dim(o, "num_hidden_layers", &c->L, err) ||
        get_int_dim(o, "num_attention_heads", &c->NH, err))
        return -1;
    c->NKV = c->NH;
    if (json_object_get(o, "num_key_value_heads") && get_int_dim(o, "num_key_value_heads", &c->NKV, err)) return -1;
    c->max_T = qwen2 ? 32768 : 2048; /* the defaults of Qwen2Config and LlamaConfig */
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
    /* Qwen2 always has q/k/v biases; Llama's attention_bias puts one on o_proj too */
    int attention_bias = 0;
    if (!qwen2 && opt_bool(o, "attention_bias", &attention_bias, err)) return -1;
    c->qkv_bias = qwen2 || attention_bias;
    c->o_bias = !qwen2 && attention_bias;
    long long id;
    c->bos_id = c->eos_id = -1;
    if (json_is_integer(json_object_get(o, "bos_token_id")) && !dl_json_get_int(o, "bos_token_id", &id, err))
        c->bos_id = (int)id;
    if (json_is_integer(json_object_get(o, "eos_token_id")) && !dl_json_get_int(o, "eos_token_id", &id, err))
        c->eos_id = (int)id;
    if (c->NH > 0 && check_unsupported(o, c->C / c->NH, err)) return -1;
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
    /* q/k/v biases alone are a Qwen2 model; with an o_proj bias, Llama's attention_bias */
    int qwen2 = c->qkv_bias && !c->o_bias;
    json_object_set_new(o, "architectures", json_pack("[s]", qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
    json_object_set_new(o, "model_type", json_string(qwen2 ? "qwen2" : "llama"));
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
    if (qwen2) json_object_set_new(o, "use_sliding_window", json_false());
    else json_object_set_new(o, "attention_bias", json_boolean(c->o_bias));
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    int rc = dl_json_save(o, path, err);
    json_decref(o);
    return rc;
}
