"""The FLOP floor both benchmarks measure against: the work an exact method must do, and this machine's fp32 matmul
rate, taken in the same run.

The floor is a floor: it charges only what no exact implementation can skip.
* The body (every parameter but the input embedding, a lookup, and the LM head) runs on every token once: each prompt
  once per pair, each reply once.
* The LM head runs only at the rows that predict a reply token (one row per reply token), not at every position.
* Per parameter and row: 2 FLOPs forward; training a frozen base adds 2 for the activation gradients (no weight
  gradients); the LoRA adapter, which trains, adds 2 more for its weight gradients.
Attention scores, normalisation and the softmax are left out, so the floor is a lower bound.

    python benchmarks/floor.py      # checks the parameter split on a tiny model (a second, no download)
"""
import time


def matmul_rate(n: int = 2048, seconds: float = 3.0) -> float:
    "fp32 FLOP/s of a large square matmul: total FLOPs over total time in a window of `seconds`."
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b); k += 1
    return 2 * n ** 3 * k / (time.perf_counter() - t0)


def param_split(model) -> dict:
    """Parameters of a causal LM by the work they cost: `body` (decoder layers and final norm: every token), `head`
    (the LM head: reply rows only), `embedding` (a lookup: free), `lora` (adapter weights, inside the body)."""
    ptrs = {}
    for name, p in model.named_parameters(): ptrs.setdefault(p.data_ptr(), (name, p.numel()))
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    lora = sum(n for name, n in ptrs.values() if "lora_" in name)
    tied = head.data_ptr() == emb.data_ptr()
    total = sum(n for _, n in ptrs.values())
    body = total - emb.numel() - (0 if tied else head.numel()) - lora
    return dict(body=body, head=head.numel(), embedding=emb.numel(), lora=lora, tied=tied, total=total)


def train_flops(split: dict, tokens: float, reply_tokens: float) -> float:
    """FLOPs an exact LoRA trainer must spend on `tokens` (prompt once + replies) of which `reply_tokens` are reply
    tokens: frozen body 4 per parameter and token, adapter 6, LM head 4 per parameter at reply rows only."""
    return 4 * split["body"] * tokens + 6 * split["lora"] * tokens + 4 * split["head"] * reply_tokens


def score_flops(split: dict, tokens: float, reply_tokens: float) -> float:
    "FLOPs an exact scorer must spend (forward only): the body 2 per parameter and token, the head at reply rows."
    return 2 * (split["body"] + split["lora"]) * tokens + 2 * split["head"] * reply_tokens


if __name__ == "__main__":
    from mrpo_nb.models import tiny_model
    m = tiny_model(0, hidden=32, layers=2, vocab_size=100)          # untied: embedding and head 100 x 32 each
    s = param_split(m)
    layer = sum(p.numel() for p in m.model.layers.parameters()) + m.model.norm.weight.numel()
    assert (s["body"], s["head"], s["embedding"], s["lora"], s["tied"]) == (layer, 3200, 3200, 0, False), s
    assert train_flops(s, 10, 4) == 4 * layer * 10 + 4 * 3200 * 4
    assert score_flops(s, 10, 4) == 2 * layer * 10 + 2 * 3200 * 4
    t = param_split(tiny_model(0, hidden=32, layers=2, vocab_size=100, tie_word_embeddings=True))
    assert (t["body"], t["head"], t["tied"]) == (layer, 3200, True), t
    from peft import LoraConfig, get_peft_model
    lm = get_peft_model(tiny_model(0, hidden=32, layers=2, vocab_size=100), LoraConfig(r=2, target_modules=["q_proj"]))
    u = param_split(lm)
    assert (u["body"], u["head"], u["lora"]) == (layer, 3200, 2 * 2 * (32 + 32)), u   # 2 layers x r 2 x (in + out)
    print("floor.py: parameter split and FLOP counts check out:", s)
