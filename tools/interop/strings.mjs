// Deterministic varied text for the interop checks: mixed scripts, accents, CJK, emoji,
// contractions, numbers, whitespace runs, code. `node strings.mjs corpus N SEED` prints N
// lines of training text; `node strings.mjs json N SEED` prints N test strings as JSON;
// `node strings.mjs text N SEED` prints N tokenizer test strings, one a line.

// xorshift32: the same seed gives the same strings on every machine
export function rng(seed) {
  let s = (seed >>> 0) || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "to", "a", "house", "and", "quick", "brown",
  "fox", "jumps", "over", "lazy", "river", "light", "morning", "Hello", "World", "THE", "Zebra"];
const ACCENTED = ["café", "naïve", "über", "señor", "façade", "élan", "crème", "brûlée", "Ångström", "żółć", "Øre"];
const SCRIPTS = ["日本語のテキスト", "中文字符测试", "한국어 문장", "Привет мир", "Γειά σου", "مرحبا بالعالم",
  "שלום עולם", "नमस्ते दुनिया", "ไทย", "Tiếng Việt"];
const EMOJI = ["😀", "👍🏽", "🎉🎉", "👨‍👩‍👧", "🇫🇷", "❤️", "🤖", "✨"];
const CONTRACTIONS = ["don't", "I'm", "we've", "they're", "she'll", "he'd", "it's", "DON'T", "You'RE", "'s", "o'clock"];
const CODE = ["int main(void) {\n    return 0;\n}", "for (i = 0; i < n; i++) x[i] += y[i];", "def f(x):\n\treturn x**2",
  "if (a && b || !c) { foo->bar = 0x1F; }", "const s = `${a}+${b}`;", "<div class=\"x\">&amp;</div>", "#include <stdio.h>",
  "SELECT * FROM t WHERE id = 42;", "a_b-c.d/e\\f", "x=1;y=2 ;; z==3"];
const SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n", "      ", "\t\t  \n", "\u00a0", "\u3000"];

function pick(r, a) { return a[Math.floor(r() * a.length)]; }

function number(r) {
  const k = Math.floor(r() * 5);
  if (k === 0) return String(Math.floor(r() * 10));
  if (k === 1) return String(Math.floor(r() * 1e9));
  if (k === 2) return (r() * 1000).toFixed(3);
  if (k === 3) return "1,234,567";
  return "2024-0" + (1 + Math.floor(r() * 9)) + "-1" + Math.floor(r() * 10);
}

function piece(r) {
  const k = Math.floor(r() * 10);
  switch (k) {
    case 0: case 1: case 2: return pick(r, WORDS);
    case 3: return pick(r, ACCENTED);
    case 4: return pick(r, SCRIPTS);
    case 5: return pick(r, EMOJI);
    case 6: return pick(r, CONTRACTIONS);
    case 7: return number(r);
    case 8: return pick(r, CODE);
    default: return pick(r, [".", ",", "!", "?", "...", "--", "(", ")", "\"", "'", ":", ";", "$", "%"]);
  }
}

// one test string: 1..12 pieces joined by mostly single spaces, sometimes runs
export function variedString(r) {
  const n = 1 + Math.floor(r() * 12);
  let s = r() < 0.1 ? pick(r, SPACES) : "";
  for (let i = 0; i < n; i++) {
    s += piece(r);
    if (i + 1 < n || r() < 0.15) s += r() < 0.7 ? " " : pick(r, SPACES);
  }
  return s;
}

export function variedStrings(n, seed) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < n; i++) out.push(variedString(r));
  return out;
}

// harder pieces for the tokenizer check: what pre-tokenizer regexes and BPE disagree on first
const UNICODE_SPACES = ["\u00a0", "\u2009", "\u3000", "\u2028", "\u202f", "\u1680"];
const TRICKY = ["'S", "'LL", "'Ve", "''", "'", "'''s", "abc123def", "x1y22z333", "1234567890123", "3.14e-10",
  "e\u0301", "Ñ", "n\u0303", "ﬁ", "Straße", "İstanbul", "ǅ", "ΣΑΣ", "!!!???", "...", "—", "«»", "¿¡", "@@", "__init__",
  "\\n", "0x7fff", "µs", "½", "²³", "٣٤٥", "१२३", "Ⅻ", "👩🏽‍💻", "🏳️‍🌈", "\u200d", "\u200b", "a\tb", "\r", "\r\r\n",
  "can't've", "y'all'd've", "$(( 1+2 ))", "=>", "->", "::", "#!/bin/sh"];

function whitespaceRun(r) {
  const n = 1 + Math.floor(r() * 24);
  let s = "";
  for (let i = 0; i < n; i++) s += pick(r, [" ", " ", " ", "\t", "\n", "\r\n", "\r"]);
  return s;
}

// one tokenizer test string: any mix of the pieces above, glued or spaced at random
export function tokenizerString(r) {
  const n = 1 + Math.floor(r() * 16);
  let s = "";
  for (let i = 0; i < n; i++) {
    const k = r();
    s += k < 0.55 ? piece(r) : k < 0.75 ? pick(r, TRICKY) : k < 0.8 ? pick(r, UNICODE_SPACES) : whitespaceRun(r);
    const g = r();
    if (g < 0.6) s += " ";
    else if (g < 0.7) s += whitespaceRun(r);
  }
  return s;
}

export function tokenizerStrings(n, seed) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < n; i++) out.push(tokenizerString(r));
  return out;
}

// training text for a tiny model: simple repeated sentences, so greedy continuations are
// confident (few near-ties between logits) and the same in both engines
export function corpus(n, seed) {
  const r = rng(seed);
  const subj = ["the cat", "the dog", "a fox", "the bird", "my friend"];
  const verb = ["sat on", "ran to", "looked at", "jumped over", "walked past"];
  const obj = ["the mat.", "the house.", "a river.", "the old tree.", "the café."];
  const lines = [];
  for (let i = 0; i < n; i++) {
    let s = pick(r, subj) + " " + pick(r, verb) + " " + pick(r, obj);
    if (r() < 0.2) s += " " + pick(r, SCRIPTS) + " " + pick(r, EMOJI);
    if (r() < 0.2) s += " " + number(r);
    lines.push(s);
  }
  return lines.join("\n") + "\n";
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [mode, n, seed] = [process.argv[2], parseInt(process.argv[3] || "1000"), parseInt(process.argv[4] || "1")];
  if (mode === "corpus") process.stdout.write(corpus(n, seed));
  else if (mode === "json") process.stdout.write(JSON.stringify(variedStrings(n, seed)) + "\n");
  else if (mode === "text") process.stdout.write(tokenizerStrings(n, seed).join("\n"));
  else { console.error("usage: node strings.mjs corpus|json|text N SEED"); process.exit(2); }
}
