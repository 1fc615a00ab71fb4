"""cria_torch: what Cria's PyTorch peers share (tools/train-torch, tools/finetune-torch).

A GGUF reader (F32 and F16 tensors, mapped), the Llama shape read from its metadata, the Llama
forward pass (GQA, rope as llama: adjacent pairs, optional llama3 per-frequency factors, linear
scaling and partial rotary; RMSNorm; SwiGLU; tied output; qwen2's q/k/v biases, qwen3's
per-head q/k RMSNorm and both's NeoX rope) with optional LoRA adapters on its
products, the learning-rate schedule of Cria's recipe, AdamW as PyTorch's plain loop runs it,
and peak RSS. Independent of Cria's Java code: written from the file format and the recipe.

Import it from a script beside it:
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    import cria_torch
"""

import math
import mmap
import resource
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# GGUF reader (v2/v3), F32 and F16 tensors

GGUF_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
GGUF_STRING, GGUF_ARRAY = 8, 9
GGML_F32, GGML_F16 = 0, 1


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def scalar(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.scalar("<Q")
        s = bytes(self.data[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def value(self, vtype):
        if vtype in GGUF_SCALARS:
            return self.scalar(GGUF_SCALARS[vtype])
        if vtype == GGUF_STRING:
            return self.string()
        if vtype == GGUF_ARRAY:
            etype = self.scalar("<I")
            n = self.scalar("<Q")
            if etype in GGUF_SCALARS and etype != 7:
                fmt = GGUF_SCALARS[etype]
                arr = np.frombuffer(self.data, dtype=np.dtype(fmt), count=n, offset=self.pos)
                self.pos += n * struct.calcsize(fmt)
                return arr
            return [self.value(etype) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf(path, copy=True, hint=""):
    """Returns (metadata dict, {name: numpy float32 array in (out, in) layout}).

    The file is mapped copy-on-write, never read whole. With copy (the default) every tensor is a
    float32 array of its own; without, F32 tensors are views of the mapping (pages are read as
    they are touched, writes stay private) and only F16 tensors are converted. hint is added to
    the message for an unsupported tensor type.
    """
    with open(path, "rb") as f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except ValueError:
            sys.exit(f"{path}: empty file")
    data = memoryview(mm)
    r = _Reader(data)
    if bytes(data[:4]) != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    r.pos = 4
    version = r.scalar("<I")
    if version not in (2, 3):
        sys.exit(f"{path}: GGUF version {version} not supported")
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        vtype = r.scalar("<I")
        meta[key] = r.value(vtype)
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar("<I")
        ne = [r.scalar("<Q") for _ in range(n_dims)]
        ttype = r.scalar("<I")
        offset = r.scalar("<Q")
        infos.append((name, ne, ttype, offset))
    align = int(meta.get("general.alignment", 32))
    base = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, ttype, offset in infos:
        count = int(np.prod(ne)) if ne else 1
        if ttype == GGML_F32:
            dt = np.dtype("<f4")
        elif ttype == GGML_F16:
            dt = np.dtype("<f2")
        else:
            sys.exit(f"{path}: tensor {name} has ggml type {ttype}; only F32 and F16 are supported{hint}")
        arr = np.frombuffer(data, dtype=dt, count=count, offset=base + offset)
        # ggml's ne[0] is the fastest-varying dimension: numpy shape is ne reversed.
        tensors[name] = arr.reshape(tuple(reversed(ne))).astype(np.float32, copy=copy)
    return meta, tensors


# ---------------------------------------------------------------------------
# Shape

class Config:
    """A Llama shape. head_dim defaults to dim / heads, rope_dims (values rotated per head) to
    head_dim; rope_freq_scale is linear scaling (1 / factor); rope_factors are llama3's
    per-frequency factors (rope_freqs.weight) or None; neox pairs i with i + rope_dims / 2;
    qk_norm RMS-normalizes each head of q and k before rope (qwen3's attn_q_norm / attn_k_norm)."""

    def __init__(self, dim, layers, heads, kv_heads, ffn, vocab, eps=1e-5, rope_base=10000.0,
                 head_dim=None, rope_dims=None, rope_freq_scale=1.0, rope_factors=None, neox=False,
                 qk_norm=False):
        self.dim, self.layers, self.heads, self.kv_heads = dim, layers, heads, kv_heads
        self.ffn, self.vocab, self.eps, self.rope_base = ffn, vocab, eps, rope_base
        if heads < 1 or kv_heads < 1 or heads % kv_heads:
            sys.exit(f"bad shape: heads {heads}, kv heads {kv_heads}")
        if head_dim is None:
            if dim % heads:
                sys.exit(f"bad shape: dim {dim}, heads {heads}, kv heads {kv_heads}")
            head_dim = dim // heads
        self.head_dim = head_dim
        self.rope_dims = head_dim if rope_dims is None else rope_dims
        if self.rope_dims % 2 or self.rope_dims > head_dim:
            sys.exit("head dim must be even for rope" if rope_dims is None
                     else f"rope dims {self.rope_dims}: even and at most the head dim {head_dim}")
        self.rope_freq_scale = rope_freq_scale
        self.rope_factors = None if rope_factors is None else np.asarray(rope_factors, dtype=np.float32)
        if self.rope_factors is not None and self.rope_factors.size != self.rope_dims // 2:
            sys.exit(f"rope factors: {self.rope_factors.size} values, expected {self.rope_dims // 2}")
        self.neox = neox
        self.qk_norm = qk_norm
        self.q_dim = heads * head_dim
        self.kv_dim = kv_heads * head_dim

    def describe(self):
        s = (f"dim {self.dim}, layers {self.layers}, heads {self.heads}/{self.kv_heads}, "
             f"head dim {self.head_dim}, ffn {self.ffn}, vocab {self.vocab}, "
             f"eps {self.eps:g}, rope base {self.rope_base:g}")
        if self.rope_dims != self.head_dim:
            s += f", rope dims {self.rope_dims}"
        if self.rope_freq_scale != 1.0:
            s += f", rope scale {self.rope_freq_scale:g}"
        if self.rope_factors is not None:
            s += ", rope factors"
        if self.neox:
            s += ", neox rope"
        if self.qk_norm:
            s += ", q/k norms"
        return s


LAYER_MATS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
LAYER_NORMS = ["attn_norm", "ffn_norm"]


def param_shapes(c):
    """GGUF name -> torch shape (out, in) for every parameter (output.weight included)."""
    shapes = {"token_embd.weight": (c.vocab, c.dim), "output_norm.weight": (c.dim,),
              "output.weight": (c.vocab, c.dim)}
    for l in range(c.layers):
        p = f"blk.{l}."
        shapes.update({
            p + "attn_norm.weight": (c.dim,),
            p + "attn_q.weight": (c.q_dim, c.dim),
            p + "attn_k.weight": (c.kv_dim, c.dim),
            p + "attn_v.weight": (c.kv_dim, c.dim),
            p + "attn_output.weight": (c.dim, c.q_dim),
            p + "ffn_norm.weight": (c.dim,),
            p + "ffn_gate.weight": (c.ffn, c.dim),
            p + "ffn_up.weight": (c.ffn, c.dim),
            p + "ffn_down.weight": (c.dim, c.ffn),
        })
        if c.qk_norm:
            shapes[p + "attn_q_norm.weight"] = (c.head_dim,)
            shapes[p + "attn_k_norm.weight"] = (c.head_dim,)
    return shapes


ARCHS = ("llama", "mistral", "qwen2", "qwen3")   # the graphs this file runs


def bias_shapes(c):
    """GGUF name -> shape of the q, k, v biases a model may have (qwen2 has them): constants here."""
    shapes = {}
    for l in range(c.layers):
        p = f"blk.{l}."
        shapes.update({p + "attn_q.bias": (c.q_dim,), p + "attn_k.bias": (c.kv_dim,),
                       p + "attn_v.bias": (c.kv_dim,)})
    return shapes


def config_from_gguf(meta, tensors, neox=None):
    """The shape a llama, mistral, qwen2 or qwen3 GGUF's metadata gives (neox: True forces NeoX
    rope; qwen2 and qwen3 have it anyway; qwen3 has per-head q/k norms)."""
    arch = meta.get("general.architecture", "llama")
    if arch not in ARCHS:
        sys.exit(f"architecture '{arch}' is not one of {', '.join(ARCHS)}")

    def key(k, default=None):
        v = meta.get(f"{arch}.{k}", default)
        if v is None:
            sys.exit(f"GGUF lacks {arch}.{k}")
        return v

    dim = int(key("embedding_length"))
    heads = int(key("attention.head_count"))
    head_dim = int(meta.get(f"{arch}.attention.key_length", 0)) or None
    rope_dims = int(meta.get(f"{arch}.rope.dimension_count", 0)) or None
    scale = 1.0
    scaling = str(meta.get(f"{arch}.rope.scaling.type", "none")).lower()
    if scaling == "linear":
        scale = 1.0 / float(key("rope.scaling.factor"))
    elif scaling != "none":
        sys.exit(f"rope scaling '{scaling}' is not supported (none and linear are)")
    elif float(meta.get(f"{arch}.rope.scale_linear", 0) or 0) > 0:
        scale = 1.0 / float(meta[f"{arch}.rope.scale_linear"])
    scale = float(np.float32(scale))  # a float32 in the file's reader, as in Cria
    factors = tensors.get("rope_freqs.weight")
    return Config(dim=dim, layers=int(key("block_count")), heads=heads,
                  kv_heads=int(key("attention.head_count_kv", heads)),
                  ffn=int(key("feed_forward_length")),
                  vocab=tensors["token_embd.weight"].shape[0],
                  eps=float(key("attention.layer_norm_rms_epsilon", 1e-5)),
                  rope_base=float(key("rope.freq_base", 10000.0)),
                  head_dim=head_dim, rope_dims=rope_dims, rope_freq_scale=scale,
                  rope_factors=None if factors is None else np.asarray(factors).reshape(-1),
                  neox=bool(neox) or arch in ("qwen2", "qwen3"), qk_norm=arch == "qwen3")


# ---------------------------------------------------------------------------
# Model

class Llama(torch.nn.Module):
    def __init__(self, c, weights, dtype, frozen=False):
        """weights: GGUF name -> numpy or torch array; output.weight may be absent (tied).

        frozen: the weights are constants (requires_grad False), used where they lie when already
        of dtype (no copy: a mapped file stays mapped); otherwise each is a trainable copy."""
        super().__init__()
        self.c = c
        self.frozen = frozen
        self.params = torch.nn.ParameterDict()
        self.names = {}  # ParameterDict key -> GGUF name
        self.base = {}   # GGUF name -> frozen tensor
        for name, shape in param_shapes(c).items():
            if name not in weights:
                if name == "output.weight":
                    continue
                sys.exit(f"missing tensor {name}")
            w = torch.as_tensor(np.asarray(weights[name]) if not torch.is_tensor(weights[name])
                                else weights[name]).to(dtype)
            if tuple(w.shape) != shape:
                sys.exit(f"tensor {name}: shape {tuple(w.shape)}, expected {shape}")
            if frozen:
                self.base[name] = w.requires_grad_(False)
                continue
            key = name.replace(".", "_")
            self.params[key] = torch.nn.Parameter(w.clone())
            self.names[key] = name
        self.tied = "output.weight" not in weights
        self.bias = {}   # GGUF name -> constant bias (never trained)
        for name, shape in bias_shapes(c).items():
            if name in weights:
                b = torch.as_tensor(np.asarray(weights[name]) if not torch.is_tensor(weights[name])
                                    else weights[name]).to(dtype).reshape(-1)
                if tuple(b.shape) != shape:
                    sys.exit(f"tensor {name}: shape {tuple(b.shape)}, expected {shape}")
                self.bias[name] = b.clone().requires_grad_(False)
        self.lora = {}   # GGUF name of a product -> (A [r, in], B [out, r], scale)
        self._rope = {}

    def p(self, name):
        if self.frozen:
            return self.base[name]
        return self.params[name.replace(".", "_")]

    def add_lora(self, name, a, b, scale):
        """y = W·x + scale · B·(A·x) on product `name` (A and B: tensors, usually Parameters)."""
        w = self.p(name)
        if tuple(a.shape) != (a.shape[0], w.shape[1]) or tuple(b.shape) != (w.shape[0], a.shape[0]):
            sys.exit(f"adapter of {name}: A {tuple(a.shape)}, B {tuple(b.shape)} do not fit {tuple(w.shape)}")
        self.lora[name] = (a, b, scale)

    def linear(self, x, name):
        y = F.linear(x, self.p(name), self.bias.get(name[:-len(".weight")] + ".bias"))
        ad = self.lora.get(name)
        if ad is not None:
            a, b, scale = ad
            y = y + F.linear(F.linear(x, a) * scale, b)
        return y

    def rope_tables(self, n, dtype):
        key = (n, dtype)
        if key not in self._rope:
            c = self.c
            i = torch.arange(0, c.rope_dims, 2, dtype=torch.float64)
            inv = c.rope_base ** (-i / c.rope_dims)             # base^(-2i/dims) for pair i
            if c.rope_freq_scale != 1.0:
                inv = inv * c.rope_freq_scale
            if c.rope_factors is not None:
                inv = inv / torch.from_numpy(c.rope_factors.astype(np.float64))
            ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
            self._rope[key] = (torch.cos(ang).to(dtype), torch.sin(ang).to(dtype))
        return self._rope[key]

    def causal_mask(self, n, group, dtype):
        """Additive mask for the (group * n) x n score rows of one kv head: -inf above the diagonal."""
        key = ("mask", n, group, dtype)
        if key not in self._rope:
            m = torch.zeros(n, n, dtype=dtype).masked_fill_(
                torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
            self._rope[key] = m.repeat(group, 1)
        return self._rope[key]

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c.eps) * w

    def rope(self, x, cos, sin):
        # x: (B, H, T, hd); rotate pairs of the first rope_dims values: adjacent (2i, 2i+1), or
        # (i, i + rope_dims/2) for neox
        B, H, T, hd = x.shape
        rd = self.c.rope_dims
        xr = x[..., :rd] if rd < hd else x
        if self.c.neox:
            x0, x1 = xr[..., :rd // 2], xr[..., rd // 2:]
            y = torch.cat((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
        else:
            xp = xr.reshape(B, H, T, rd // 2, 2)
            x0, x1 = xp[..., 0], xp[..., 1]
            y0 = x0 * cos - x1 * sin
            y1 = x0 * sin + x1 * cos
            y = torch.stack((y0, y1), dim=-1).reshape(B, H, T, rd)
        return torch.cat((y, x[..., rd:]), dim=-1) if rd < hd else y

    def layer(self, x, l, cos, sin, mask):
        """Layer l of the residual stream x (B, T, dim)."""
        c = self.c
        B, T = x.shape[0], x.shape[1]
        group = c.heads // c.kv_heads
        scale = 1.0 / math.sqrt(c.head_dim)
        p = f"blk.{l}."
        h = self.rmsnorm(x, self.p(p + "attn_norm.weight"))
        q = self.linear(h, p + "attn_q.weight").view(B, T, c.heads, c.head_dim)
        k = self.linear(h, p + "attn_k.weight").view(B, T, c.kv_heads, c.head_dim)
        if c.qk_norm:  # qwen3: each head of q and k RMS-normalized over its head_dim values
            q = self.rmsnorm(q, self.p(p + "attn_q_norm.weight"))
            k = self.rmsnorm(k, self.p(p + "attn_k_norm.weight"))
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.linear(h, p + "attn_v.weight").view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
        q = self.rope(q, cos, sin) * scale  # scaling q, not the T x T scores, is cheaper
        k = self.rope(k, cos, sin)
        # Query head h reads kv head h // group: view the query heads as
        # (kv head, group * T) rows so each kv head serves its group in one
        # product, without copying k and v per query head. The causal mask
        # (0 / -inf) is added by the product itself (baddbmm).
        n = B * c.kv_heads
        qg = q.reshape(n, group * T, c.head_dim)
        kt = k.reshape(n, T, c.head_dim).transpose(1, 2)
        s = torch.baddbmm(mask, qg, kt)
        pr = torch.softmax(s, dim=-1)
        a = torch.bmm(pr, v.reshape(n, T, c.head_dim)).view(B, c.heads, T, c.head_dim)
        a = a.transpose(1, 2).reshape(B, T, c.q_dim)
        x = x + self.linear(a, p + "attn_output.weight")
        h = self.rmsnorm(x, self.p(p + "ffn_norm.weight"))
        g = self.linear(h, p + "ffn_gate.weight")
        u = self.linear(h, p + "ffn_up.weight")
        return x + self.linear(F.silu(g) * u, p + "ffn_down.weight")

    def forward(self, tokens, recompute=False):
        """Logits (B, T, vocab). recompute: keep only each layer's input for backward and run
        the layer again there (torch.utils.checkpoint), as Cria's --recompute."""
        c = self.c
        B, T = tokens.shape
        x = F.embedding(tokens, self.p("token_embd.weight"))
        cos, sin = self.rope_tables(T, x.dtype)
        mask = self.causal_mask(T, c.heads // c.kv_heads, x.dtype)
        for l in range(c.layers):
            if recompute and torch.is_grad_enabled():
                from torch.utils.checkpoint import checkpoint
                x = checkpoint(self.layer, x, l, cos, sin, mask, use_reentrant=False)
            else:
                x = self.layer(x, l, cos, sin, mask)
        h = self.rmsnorm(x, self.p("output_norm.weight"))
        wout = self.p("token_embd.weight") if self.tied else self.p("output.weight")
        return F.linear(h, wout)

    def numpy_weights(self):
        return {self.names[k]: v.detach().cpu().numpy() for k, v in self.params.items()}


# ---------------------------------------------------------------------------
# Schedule: the learning rate of step s (from 0); a needs lr, min_lr, warmup, steps, schedule,
# gamma, step_size, cycle

def lr_at(s, a):
    if s < a.warmup:
        return a.lr * (s + 1) / a.warmup
    d = a.steps - 1 - a.warmup
    p = 1.0 if d <= 0 else min(1.0, (s - a.warmup) / d)
    if a.schedule == "cosine":
        return a.min_lr + (a.lr - a.min_lr) * (1 + math.cos(math.pi * p)) / 2
    if a.schedule == "linear":
        return a.lr + (a.min_lr - a.lr) * p
    if a.schedule == "step":
        return a.lr * a.gamma ** ((s - a.warmup) // a.step_size)
    if a.schedule == "constant":
        return a.lr
    if a.schedule == "cyclical":
        q = ((s - a.warmup) % a.cycle) / a.cycle
        return a.min_lr + (a.lr - a.min_lr) * abs(2 * q - 1)
    raise ValueError(a.schedule)


SCHEDULES = ["cosine", "linear", "step", "constant", "cyclical"]


def add_schedule_args(g):
    """The schedule's options, as Cria names them, on an argparse group."""
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--min-lr", type=float, default=None, help="default: --lr / 10")
    g.add_argument("--warmup", type=int, default=0)
    g.add_argument("--schedule", default="cosine", choices=SCHEDULES)
    g.add_argument("--gamma", type=float, default=0.5, help="step schedule's factor")
    g.add_argument("--step-size", type=int, default=100, help="step schedule's period")
    g.add_argument("--cycle", type=int, default=200, help="cyclical schedule's period")


# ---------------------------------------------------------------------------
# Optimizer, memory

def adamw(groups, lr, betas=(0.9, 0.95), eps=1e-8):
    """torch.optim.AdamW on the plain per-tensor loop (neither foreach nor fused: those differ
    only in rounding, and not every torch has them)."""
    kw = {}
    try:  # torch >= 1.12 knows foreach; fused came later
        import inspect
        sig = inspect.signature(torch.optim.AdamW.__init__).parameters
        if "foreach" in sig:
            kw["foreach"] = False
        if "fused" in sig:
            kw["fused"] = False
    except (TypeError, ValueError):
        pass
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, **kw)


def write_gguf(path, meta, tensors):
    """A GGUF v3 file: meta is a list of (key, value) with str, float (written F32), bool or int
    (U32) values; tensors maps a name to a 2-D float32 array (rows, cols), written F32 with
    ne = [cols, rows]."""
    def gstr(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(meta))]
    for k, v in meta:
        out.append(gstr(k))
        if isinstance(v, str):
            out += [struct.pack("<I", GGUF_STRING), gstr(v)]
        elif isinstance(v, bool):
            out.append(struct.pack("<I?", 7, v))
        elif isinstance(v, int):
            out.append(struct.pack("<II", 4, v))
        else:
            out.append(struct.pack("<If", 6, float(v)))
    align, offset, blobs = 32, 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        ne = list(reversed(arr.shape))
        out += [gstr(name), struct.pack("<I", len(ne)), struct.pack(f"<{len(ne)}Q", *ne),
                struct.pack("<IQ", GGML_F32, offset)]
        blob = arr.tobytes()
        blob += b"\0" * (-len(blob) % align)
        blobs.append(blob)
        offset += len(blob)
    head = b"".join(out)
    head += b"\0" * (-len(head) % align)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
