#!/usr/bin/env python3
"""An independent PyTorch evaluator of an advcorrect model (the oracle of docs/oracle.md).

Reads a PyTorch-layout .npz model (what `advcorrect correct` writes as model.npz, or the authors'
files) and a data file, runs clean prediction, FGSM, PGD and APGD-CE written here from their
definitions, and prints one JSON object on stdout. Nothing here imports advcorrect's code: the
architectures and the .npz loading come from scripts/python/torch_models.py.

Data file: an .npz (a path, or '-' for the bytes on stdin) with
  images  float32 [n, H, W, C]  pixels in [0, 1], NHWC as advcorrect holds them
  labels  integer [n]           true classes
  any other float32 [n, H, W, C] array: images to classify as they are (e.g. advcorrect's own
  adversarial images), reported under "extra".

Conventions (those of advcorrect's evaluate(), docs/attacks-and-gradients.md):
  - ε, step sizes and the clip range are in pixel units; a model with an input normalisation
    (CIFAR-10 ResNet8) is attacked as the pixel-space model composed with its normalisation;
  - only the images classified correctly clean are attacked; an attack's accuracy is the share
    of all n images classified correctly both clean and at the attack's point;
  - the attacks push the cross-entropy of the true labels up (--labels pred: the model's clean
    predictions); accuracy is always against the true labels;
  - adversarial pixels are clipped to [0, 1] (--no-clip: not clipped, the ε-ball only);
  - FGSM: x + ε·sign(∇ₓ CE); PGD: uniform random start in the ε-ball ∩ clip range, `steps`
    signed steps of size α, each projected back; with restarts, per image the run with the lowest
    margin f_y − max_{j≠y} f_j is kept;
  - APGD-CE (Croce & Hein, ICML 2020, Algorithm 1): step η = 2ε, momentum α = 0.75, checkpoints
    w_j = ⌈p_j·N⌉ with p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06); at a
    checkpoint η is halved and the iterate reset to the best point when fewer than ρ = 0.75 of the
    steps since the last checkpoint raised the loss, or when neither η nor the best loss changed
    since then. An image counts as broken when any iterate is misclassified.

Usage: torch_oracle.py --model M.npz [--arch A] --data D.npz [--eps 0.1] [--attacks fgsm,pgd,apgd-ce]
       [--seeds 0,1,2] [--restarts 1] [--pgd-steps 40] [--pgd-step-size 0.01] [--apgd-steps 100]
       [--labels true|pred] [--no-clip] [--normalization auto|none|JSON] [--threads 2]
       [--logits] [--per-image] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
import torch_models  # noqa: E402

ATTACKS = ('fgsm', 'pgd', 'apgd-ce')
SATURATION = 1e-5


# ------------------------------------------------------------------------------------------------
# Threat model: per-element bounds of the ε-ball ∩ clip range, in pixel units


def feasible_bounds(x0: torch.Tensor, eps: float, clip: Optional[Tuple[float, float]]) -> Tuple[torch.Tensor, torch.Tensor]:
    lower = x0 - eps
    upper = x0 + eps
    if clip is not None:
        lower = torch.clamp(lower, min=clip[0])
        upper = torch.clamp(upper, max=clip[1])
        # A clean pixel outside the clip range by more than ε: stay in the ball, nearest the range.
        empty = lower > upper
        if bool(empty.any()):
            nearest = torch.where(x0 < clip[0], upper, lower)
            lower = torch.where(empty, nearest, lower)
            upper = torch.where(empty, nearest, upper)
    return lower, upper


def project(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    return torch.max(torch.min(x, upper), lower)


def loss_and_grad(model, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image cross-entropy, its gradient w.r.t. x (per image: the batch sum's gradient), logits."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    losses = F.cross_entropy(logits, y, reduction='none')
    (grad,) = torch.autograd.grad(losses.sum(), x)
    return losses.detach(), grad.detach(), logits.detach()


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f_y − max_{j≠y} f_j per row."""
    own = logits.gather(1, y[:, None])[:, 0]
    others = logits.clone()
    others.scatter_(1, y[:, None], float('-inf'))
    return own - others.max(dim=1).values


# ------------------------------------------------------------------------------------------------
# Attacks (on a batch; inputs and outputs in pixel space, NCHW)


def fgsm(model, x0, y, eps, clip):
    lower, upper = feasible_bounds(x0, eps, clip)
    _, grad, _ = loss_and_grad(model, x0, y)
    return project(x0 + eps * torch.sign(grad), lower, upper)


def uniform_start(x0, eps, lower, upper, generator):
    noise = torch.rand(x0.shape, generator=generator, dtype=torch.float32) * 2 - 1
    return project(x0 + eps * noise, lower, upper)


def pgd(model, x0, y, eps, clip, steps, step_size, generator, random_start=True):
    lower, upper = feasible_bounds(x0, eps, clip)
    x = uniform_start(x0, eps, lower, upper, generator) if random_start else x0.clone()
    for _ in range(steps):
        _, grad, _ = loss_and_grad(model, x, y)
        x = project(x + step_size * torch.sign(grad), lower, upper)
    return x


def apgd_checkpoints(steps: int) -> List[int]:
    """Iterations w_1 < w_2 < … (w_0 = 0) at which APGD decides on halving the step."""
    p = [0.0, 0.22]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - 0.03, 0.06)
        if nxt > 1:
            break
        p.append(nxt)
    points = sorted({int(math.ceil(q * steps - 1e-9)) for q in p[1:]})
    return [w for w in points if 0 < w <= steps]


def apgd_ce(model, x0, y_loss, y_true, eps, clip, steps, generator, alpha=0.75, rho=0.75):
    """APGD on the cross-entropy of y_loss, from a uniform random start. Returns a boolean per
    image: True when some iterate was misclassified (w.r.t. y_true). A misclassified image leaves
    the batch (nothing it does later can matter)."""
    n = x0.shape[0]
    broken = torch.zeros(n, dtype=torch.bool)
    lower, upper = feasible_bounds(x0, eps, clip)
    view = lambda t: t.view((t.shape[0],) + (1,) * (x0.dim() - 1))
    checkpoints = set(apgd_checkpoints(steps))

    x = uniform_start(x0, eps, lower, upper, generator)
    loss, grad, logits = loss_and_grad(model, x, y_loss)
    # Per-image state of the images still attacked; `ids` maps its rows to the batch.
    ids = torch.arange(n)
    state = {
        'x': x, 'x_prev': x.clone(), 'loss': loss, 'grad': grad,
        'best_loss': loss.clone(), 'x_best': x.clone(), 'grad_best': grad.clone(),
        'eta': torch.full((n,), 2.0 * eps), 'increases': torch.zeros(n),
        'eta_at_last': torch.full((n,), 2.0 * eps), 'best_at_last': loss.clone(),
        'lower': lower, 'upper': upper, 'y_loss': y_loss, 'y_true': y_true,
    }

    def drop(wrong: torch.Tensor) -> None:
        nonlocal ids
        broken[ids[wrong]] = True
        keep = ~wrong
        ids = ids[keep]
        for key in state:
            state[key] = state[key][keep]

    drop(logits.argmax(1) != y_true)
    last_w = 0
    for k in range(steps):
        if ids.numel() == 0:
            break
        S = state
        x, x_prev = S['x'], S['x_prev']
        z = project(x + view(S['eta']) * torch.sign(S['grad']), S['lower'], S['upper'])
        if k == 0:
            x_new = z
        else:
            x_new = project(x + alpha * (z - x) + (1 - alpha) * (x - x_prev), S['lower'], S['upper'])
        loss_new, grad_new, logits_new = loss_and_grad(model, x_new, S['y_loss'])
        S['increases'] += (loss_new > S['loss']).float()
        better = loss_new > S['best_loss']
        S['best_loss'] = torch.where(better, loss_new, S['best_loss'])
        S['x_best'] = torch.where(view(better), x_new, S['x_best'])
        S['grad_best'] = torch.where(view(better), grad_new, S['grad_best'])
        S['x_prev'], S['x'], S['loss'], S['grad'] = x, x_new, loss_new, grad_new
        t = k + 1  # index of the iterate just computed
        if t in checkpoints:
            too_few = S['increases'] < rho * (t - last_w)
            stalled = (S['eta_at_last'] == S['eta']) & (S['best_at_last'] == S['best_loss'])
            halve = too_few | stalled
            S['eta'] = torch.where(halve, S['eta'] / 2, S['eta'])
            # Restart from the best point, without momentum.
            S['x'] = torch.where(view(halve), S['x_best'], S['x'])
            S['grad'] = torch.where(view(halve), S['grad_best'], S['grad'])
            S['loss'] = torch.where(halve, S['best_loss'], S['loss'])
            S['x_prev'] = torch.where(view(halve), S['x'], S['x_prev'])
            S['increases'] = torch.zeros_like(S['increases'])
            last_w = t
            S['eta_at_last'] = S['eta'].clone()
            S['best_at_last'] = S['best_loss'].clone()
        drop(logits_new.argmax(1) != S['y_true'])
    return broken


# ------------------------------------------------------------------------------------------------


def predict(model, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            out.append(model(x[s : s + batch_size]))
    return torch.cat(out) if out else torch.zeros((0, 10))


def bits(mask) -> str:
    return ''.join('1' if v else '0' for v in mask.tolist())


def read_data(source: str) -> Dict[str, np.ndarray]:
    raw = sys.stdin.buffer.read() if source == '-' else open(source, 'rb').read()
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def parse_normalization(text: str, arch: str) -> Optional[dict]:
    if text == 'auto':
        return torch_models.NORMALIZATIONS[arch]
    if text == 'none':
        return None
    value = json.loads(text)
    if not isinstance(value, dict) or 'mean' not in value or 'std' not in value:
        raise ValueError('--normalization must be auto, none or {"mean": [...], "std": [...]}')
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='PyTorch oracle for advcorrect models (prints one JSON object)')
    parser.add_argument('--model', required=True, help='PyTorch-layout .npz (BN statistics from <model>_bn_stats.npz)')
    parser.add_argument('--arch', choices=torch_models.ARCH_NAMES, help='architecture (default: inferred from the tensors)')
    parser.add_argument('--bn-stats', help='BatchNorm statistics .npz (default <model>_bn_stats.npz)')
    parser.add_argument('--data', required=True, help="data .npz (images NHWC in [0,1], labels), or '-' for stdin")
    parser.add_argument('--eps', type=float, default=0.1)
    parser.add_argument('--attacks', default='fgsm,pgd', help=f'comma-separated subset of {",".join(ATTACKS)} (clean always runs); "" for none')
    parser.add_argument('--seeds', default='0', help='comma-separated seeds: PGD and APGD run once per seed')
    parser.add_argument('--restarts', type=int, default=1)
    parser.add_argument('--pgd-steps', type=int, default=40)
    parser.add_argument('--pgd-step-size', type=float, default=0.01)
    parser.add_argument('--no-random-start', action='store_true', help='PGD from the clean image')
    parser.add_argument('--apgd-steps', type=int, default=100)
    parser.add_argument('--labels', choices=('true', 'pred'), default='true')
    parser.add_argument('--no-clip', action='store_true')
    parser.add_argument('--normalization', default='auto')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=500)
    parser.add_argument('--logits', action='store_true', help='include the clean logits')
    parser.add_argument('--per-image', action='store_true', help="include per-image correctness strings ('1' = correct)")
    args = parser.parse_args(argv)

    attacks = [a for a in args.attacks.split(',') if a]
    for a in attacks:
        if a not in ATTACKS:
            parser.error(f'unknown attack {a!r} (known: {", ".join(ATTACKS)})')
    seeds = [int(s) for s in args.seeds.split(',') if s != '']
    if not seeds:
        parser.error('--seeds needs at least one seed')
    if not (args.eps >= 0) or args.restarts < 1 or args.batch_size < 1:
        parser.error('--eps must be ≥ 0, --restarts and --batch-size ≥ 1')

    torch.set_num_threads(args.threads)
    started = time.time()
    base = torch_models.load_npz(args.model, args.arch, args.bn_stats)
    arch = base.arch
    normalization = parse_normalization(args.normalization, arch)
    model = torch_models.with_normalization(base, arch, normalization) if normalization else base
    for p in model.parameters():
        p.requires_grad_(False)

    data = read_data(args.data)
    images = data['images']
    if images.ndim != 4:
        raise ValueError(f'images must be [n, H, W, C], got shape {list(images.shape)}')
    labels_np = data['labels'].astype(np.int64).reshape(-1)
    n = images.shape[0]
    if labels_np.shape[0] != n:
        raise ValueError(f'{n} images but {labels_np.shape[0]} labels')
    to_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.astype(np.float32).transpose(0, 3, 1, 2)))
    x_all = to_nchw(images)
    y_true = torch.from_numpy(labels_np)
    clip = None if args.no_clip else (0.0, 1.0)

    logits = predict(model, x_all, args.batch_size)
    clean_ok = logits.argmax(1) == y_true
    # Saturated images: 1 − p_y < SATURATION in float64 at the clean point. There the true-class
    # coefficient p_y − 1 of the float32 cross-entropy gradient carries a relative rounding error
    # above 0.6 %, and gradient signs near zero (FGSM's pixels) are decided by rounding.
    model64 = copy.deepcopy(model).double()
    with torch.no_grad():
        p64 = torch.cat([torch.softmax(model64(x_all[s : s + args.batch_size].double()), 1) for s in range(0, n, args.batch_size)]) if n else torch.zeros((0, 1))
    saturated = (1 - p64.gather(1, y_true[:, None])[:, 0]) < SATURATION if n else torch.zeros(0, dtype=torch.bool)
    y_loss = y_true if args.labels == 'true' else logits.argmax(1)

    def summary(ok: torch.Tensor, extra: Optional[dict] = None) -> dict:
        out = {'correct': int(ok.sum()), 'accuracy': float(ok.float().mean()) if n else 0.0}
        if args.per_image:
            out['perImage'] = bits(ok)
        if extra:
            out.update(extra)
        return out

    result = {
        'oracle': 'pytorch',
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'model': args.model,
        'arch': arch,
        'normalization': normalization,
        'n': n,
        'eps': args.eps,
        'labels': args.labels,
        'clip': not args.no_clip,
        'clean': summary(clean_ok),
        'saturation': SATURATION,
        'saturated': int(saturated.sum()),
    }
    if args.per_image:
        result['saturatedPerImage'] = bits(saturated)
    if args.logits:
        result['logits'] = logits.tolist()

    # Only the clean-correct images are attacked (as advcorrect's evaluate() does).
    attacked = torch.nonzero(clean_ok).flatten()
    m = attacked.numel()
    x_att, y_att, y_loss_att = x_all[attacked], y_true[attacked], y_loss[attacked]

    def batches():
        for s in range(0, m, args.batch_size):
            yield s, min(m, s + args.batch_size)

    def scatter(ok_attacked: torch.Tensor) -> torch.Tensor:
        ok = torch.zeros(n, dtype=torch.bool)
        ok[attacked] = ok_attacked
        return ok

    if 'fgsm' in attacks:
        t0 = time.time()
        ok = torch.zeros(m, dtype=torch.bool)
        for s, e in batches():
            adv = fgsm(model, x_att[s:e], y_loss_att[s:e], args.eps, clip)
            ok[s:e] = predict(model, adv, args.batch_size).argmax(1) == y_att[s:e]
        result['fgsm'] = summary(scatter(ok), {'attacked': m, 'timeMs': round((time.time() - t0) * 1000)})

    if 'pgd' in attacks:
        runs = []
        for seed in seeds:
            t0, c0 = time.time(), time.process_time()
            best_margin = torch.full((m,), float('inf'))
            ok = torch.zeros(m, dtype=torch.bool)
            for restart in range(args.restarts):
                # One stream per (seed, restart), advanced batch by batch.
                gen = torch.Generator().manual_seed(seed * 1000003 + restart)
                for s, e in batches():
                    adv = pgd(model, x_att[s:e], y_loss_att[s:e], args.eps, clip, args.pgd_steps, args.pgd_step_size, gen, not args.no_random_start)
                    out = predict(model, adv, args.batch_size)
                    mg = margins(out, y_att[s:e])
                    take = mg < best_margin[s:e] if restart > 0 else torch.ones(e - s, dtype=torch.bool)
                    best_margin[s:e] = torch.where(take, mg, best_margin[s:e])
                    ok[s:e] = torch.where(take, out.argmax(1) == y_att[s:e], ok[s:e])
            runs.append(summary(scatter(ok), {'seed': seed, 'timeMs': round((time.time() - t0) * 1000), 'cpuMs': round((time.process_time() - c0) * 1000)}))
        result['pgd'] = {'steps': args.pgd_steps, 'stepSize': args.pgd_step_size, 'restarts': args.restarts, 'randomStart': not args.no_random_start, 'attacked': m, 'runs': runs}

    if 'apgd-ce' in attacks:
        runs = []
        for seed in seeds:
            t0, c0 = time.time(), time.process_time()
            broken = torch.zeros(m, dtype=torch.bool)
            for restart in range(args.restarts):
                gen = torch.Generator().manual_seed(seed * 1000003 + restart)
                for s, e in batches():
                    b = apgd_ce(model, x_att[s:e], y_loss_att[s:e], y_att[s:e], args.eps, clip, args.apgd_steps, gen)
                    broken[s:e] |= b
            runs.append(summary(scatter(~broken), {'seed': seed, 'timeMs': round((time.time() - t0) * 1000), 'cpuMs': round((time.process_time() - c0) * 1000)}))
        result['apgd-ce'] = {'steps': args.apgd_steps, 'restarts': args.restarts, 'checkpoints': apgd_checkpoints(args.apgd_steps), 'attacked': m, 'runs': runs}

    extra = {}
    for key, value in data.items():
        if key in ('images', 'labels'):
            continue
        if value.shape != images.shape:
            raise ValueError(f'extra array {key} has shape {list(value.shape)}, the images {list(images.shape)}')
        out = predict(model, to_nchw(value), args.batch_size)
        extra[key] = summary(out.argmax(1) == y_true)
        if args.logits:
            extra[key]['logits'] = out.tolist()
    if extra:
        result['extra'] = extra
    result['timeMs'] = round((time.time() - started) * 1000)
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
