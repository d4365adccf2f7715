#include "cli.h"
#include "demo/demo.h"

int cmd_demo(int argc, char **argv) {
    dl_demo_opts o;
    dl_demo_opts_default(&o);
    int seed = (int)o.seed;
    cli_flag flags[] = {
        {"corpus", FLAG_STR, &o.corpus, "text corpus (default: the KJV Bible installed by scripts/install-deps.sh)", 0, 0},
        {"out", FLAG_STR, &o.out, "run folder (default runs/demo)", 0, 0},
        {"vocab-size", FLAG_INT, &o.vocab_size, "tokenizer vocabulary (default 2048)", 0, 0},
        {"steps", FLAG_INT, &o.steps, "teacher training updates (default 1000)", 0, 0},
        {"student-steps", FLAG_INT, &o.student_steps, "student distillation updates (default 1500)", 0, 0},
        {"threads", FLAG_INT, &o.threads, "threads (default: all cores)", 0, 0},
        {"seed", FLAG_INT, &seed, "seed for weights, data order and samples (default 1)", 0, 0},
        {"samples", FLAG_INT, &o.samples, "prompts the teacher continues, at most 5 (default 3)", 0, 0},
        {"sample-tokens", FLAG_INT, &o.sample_tokens, "tokens per sample and per timed generation (default 60)", 0, 0},
        {"harvest-prompts", FLAG_INT, &o.harvest_prompts, "prompts the served teacher answers (default 2048)", 0, 0},
        {"harvest-tokens", FLAG_INT, &o.harvest_tokens, "tokens per harvested answer, at most 100 (default 48)", 0, 0},
        {"bb-steps", FLAG_INT, &o.bb_steps, "black-box student updates (default 600)", 0, 0},
        {0},
    };
    int rc = cli_parse("demo",
                       "Trains a byte-level BPE tokenizer and a small Llama-style teacher on a corpus, shows samples,\n"
                       "distils a student about a quarter its size from it (white-box: live teacher, forward KL), then\n"
                       "serves the teacher on 127.0.0.1 (a free port, no API key) with a keyed watermark, harvests its\n"
                       "answers with their top-10 logprobs for prompts cut from the training text, distils a second\n"
                       "student of the same size from that harvest alone (black-box), and prints a table of teacher\n"
                       "vs both students: parameters, validation loss, top-1 agreement with the teacher, KL,\n"
                       "generation tokens/s and a greedy sample from each. It ends with the proof: each student reads\n"
                       "held-out plain text and distil detect model scores its guesses for the watermark key, with\n"
                       "the p-value of so many green guesses from a model that never learned from the key. Writes everything under the run folder (model/ is the teacher, student/ the white-box\n"
                       "student, student-bb/ the black-box one, harvest.jsonl its data, watermark.key the key).",
                       flags, argc, argv, NULL, 0, NULL);
    if (rc) return rc < 0 ? 2 : 0;
    if (o.vocab_size < 260 || o.steps < 1 || o.student_steps < 1 || o.samples < 0 || o.sample_tokens < 1 || seed < 0)
        return cli_errorf("demo: --vocab-size must be >= 260, --steps, --student-steps and --sample-tokens >= 1, "
                          "--samples and --seed >= 0");
    if (o.harvest_prompts < 2 || o.harvest_tokens < 1 || o.harvest_tokens > 100 || o.bb_steps < 1)
        return cli_errorf("demo: --harvest-prompts must be >= 2, --harvest-tokens in 1..100, --bb-steps >= 1");
    o.seed = (uint64_t)seed;
    dl_error err;
    if (dl_demo_run(&o, &err)) return cli_error(&err);
    return 0;
}
