"""A small end-to-end run for trying the launch configs in this folder: a tiny random policy and two tiny random
references (no download), the built-in pairs, the references scored through the cache, then MRPO with uniform weights.

    python examples/train_tiny.py OUT                                              # one process
    torchrun --nproc_per_node 2 examples/train_tiny.py OUT                         # two CPU processes (DDP, gloo)
    accelerate launch --config_file examples/ddp_gpu.yaml examples/train_tiny.py OUT
    accelerate launch --config_file examples/fsdp.yaml examples/train_tiny.py OUT
    accelerate launch --config_file examples/deepspeed_zero2.yaml examples/train_tiny.py OUT

Writes OUT/scores (the score cache) and OUT/run (the run folder); the main process prints the summary's last line.
For a real model pass e.g. --policy smollm2 --refs smollm2,gemma3-270m (and, under FSDP, set the decoder layer class
in the config)."""
import argparse, json, os
from pathlib import Path

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--policy", default="tiny:0")
    p.add_argument("--refs", default="a=tiny:1,b=tiny:2", help="comma-separated 'name=spec' reference specs")
    p.add_argument("--loss", default="mrpo")
    p.add_argument("--weighter", default="uniform")
    p.add_argument("--pairs", type=int, default=64, help="training pairs (16 more each for val and test)")
    p.add_argument("--dtype", default=None,
                   help="the policy's dtype (default: float32 under FSDP, whose bf16 mixed precision computes over it; "
                        "else the trainer's choice)")
    a = p.parse_args()
    import datasets
    from mrpo_nb.builtin import builtin_preferences
    from mrpo_nb.data import split_pairs
    from mrpo_nb.scoring import score_references
    from mrpo_nb.training import TrainConfig, train
    sp = split_pairs(builtin_preferences(seed=0), sizes=dict(train=a.pairs, val=16, test=16), seed=0)
    refs = dict(item.split("=", 1) if "=" in item else (item, item) for item in a.refs.split(","))
    table = score_references(refs, datasets.concatenate_datasets(list(sp.values())), Path(a.out) / "scores", progress=False)
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"   # one dtype per flattened unit: fp32
    cfg = TrainConfig(policy=a.policy, loss=a.loss, weighter=a.weighter, batch_size=16, micro_batch_size=4, lora_r=8,
                      lr=1e-3, eval_points=2, dtype=a.dtype or ("float32" if fsdp else None), progress=False)
    s = train(cfg, sp, table, Path(a.out) / "run")
    if s is not None and (Path(a.out) / "run" / "summary.json").exists():
        print(json.dumps({k: s[k] for k in ("status", "steps", "skipped_steps", "pairs_per_s") if k in s}))

if __name__ == "__main__":
    main()
    from mrpo_nb.scoring import exit_launched
    exit_launched()   # under a launch of several processes: leave without the interpreter's finalisation (gloo can abort it)
