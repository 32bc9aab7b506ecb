#!/usr/bin/env python
"""Benchmark the course's training recipe against a plain PyTorch loop, and channels-last against the default.

1. Time to a validation-accuracy target: fastai `fit_one_cycle` (the course's recipe) versus what a reader
   would write without fastai (Adam at a constant learning rate). Same model (one initial state copied into
   both), same synthetic data, same augmentation (both loops draw batches from the same fastai DataLoaders).
2. Training images/second with and without channels-last memory format (torch only, random batches).

Not a test: it prints figures. CPU-sized by default (a few minutes on 2 cores):
    .venv/bin/python bench/bench_train.py
    .venv/bin/python bench/bench_train.py --arch resnet18 --target 0.93 --max-epochs 10
"""
import argparse, copy, os, tempfile, time
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch, torch.nn as nn, torch.nn.functional as F
from fastai.vision.all import ImageDataLoaders, Resize, Flip, Callback, accuracy
from lib.train import set_seed, make_learner
from lib.synthetic import make_malaria


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='efficientnet_lite0', help='torchvision or timm name')
    p.add_argument('--weights', default='offline', help="'offline', a .pth path, or 'none' for random init")
    p.add_argument('--n-per-class', type=int, default=200, help='synthetic malaria cells per class')
    p.add_argument('--size', type=int, default=64, help='image size (px)')
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--target', type=float, default=0.93, help='validation accuracy to reach')
    p.add_argument('--max-epochs', type=int, default=8)
    p.add_argument('--lr-fastai', type=float, default=2e-3, help='fit_one_cycle lr_max')
    p.add_argument('--lr-plain', type=float, default=1e-3, help='constant Adam learning rate')
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--cl-arch', default='resnet18', help='architecture for the channels-last throughput test')
    p.add_argument('--cl-size', type=int, default=128)
    p.add_argument('--cl-bs', type=int, default=32)
    p.add_argument('--cl-steps', type=int, default=8, help='timed training steps per setting (after 2 warm-up)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave as is)')
    p.add_argument('--skip-target', action='store_true', help='only run the channels-last test')
    return p.parse_args(argv)


def get_dls(src, a):
    "The same DataLoaders (data, split, augmentation, order) for both contestants."
    set_seed(a.seed)
    return ImageDataLoaders.from_folder(src, valid_pct=0.2, seed=a.seed, item_tfms=Resize(a.size),
                                        batch_tfms=[Flip()], bs=a.bs, num_workers=0)


class TimeToTarget(Callback):
    "Record wall time and validation accuracy after each epoch; stop once `target` is reached."
    order = 60
    def __init__(self, target): self.target, self.hist = target, []
    def before_fit(self): self.t0 = time.perf_counter()
    def after_epoch(self):
        acc = float(self.recorder.values[-1][2])
        self.hist.append((self.epoch + 1, time.perf_counter() - self.t0, acc))
        if acc >= self.target: raise __import__('fastai').callback.core.CancelFitException


def run_fastai(learn, a):
    "The course's recipe: unfrozen `fit_one_cycle` for `max_epochs`, stopping at the target."
    cb = TimeToTarget(a.target)
    learn.unfreeze()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.max_epochs, a.lr_fastai, cbs=cb)
    return cb.hist


def plain(x): return x.as_subclass(torch.Tensor)


def valid_acc(model, dl):
    model.eval(); correct = n = 0
    with torch.no_grad():
        for xb, yb in dl:
            correct += (model(plain(xb)).argmax(1) == plain(yb)).sum().item(); n += len(yb)
    return correct / n


def run_plain(model, dls, a):
    "What a reader writes without fastai: Adam at a constant lr, cross-entropy, evaluate every epoch."
    opt = torch.optim.Adam(model.parameters(), lr=a.lr_plain)
    for p in model.parameters(): p.requires_grad_(True)
    hist, t0 = [], time.perf_counter()
    for epoch in range(a.max_epochs):
        model.train()
        for xb, yb in dls.train:
            loss = F.cross_entropy(model(plain(xb)), plain(yb))
            opt.zero_grad(); loss.backward(); opt.step()
        acc = valid_acc(model, dls.valid)
        hist.append((epoch + 1, time.perf_counter() - t0, acc))
        if acc >= a.target: break
    return hist


def report(label, hist, target):
    for ep, t, acc in hist: print(f'  {label:8s} epoch {ep}: {t:6.1f} s  valid acc {acc:.3f}')
    hit = [t for ep, t, acc in hist if acc >= target]
    return hit[0] if hit else None


def bench_target(a):
    tmp = tempfile.mkdtemp()
    t = time.perf_counter()
    make_malaria(tmp, n_per_class=a.n_per_class, size=a.size, seed=a.seed)
    print(f'synthetic malaria: {2*a.n_per_class} cells at {a.size} px in {time.perf_counter()-t:.1f} s')
    src = f'{tmp}/cell_images'
    weights = None if a.weights == 'none' else a.weights
    dls = get_dls(src, a); set_seed(a.seed, dls)
    learn = make_learner(dls, a.arch, pretrained=weights is not None, weights=weights, path=tmp)
    init = copy.deepcopy(learn.model.state_dict())
    print(f'\n[1] time to {a.target:.0%} validation accuracy, {a.arch}, weights={a.weights}, at most {a.max_epochs} epochs')
    t_fa = report('fastai', run_fastai(learn, a), a.target)
    dls2 = get_dls(src, a); set_seed(a.seed, dls2)
    model = copy.deepcopy(learn.model); model.load_state_dict(init)
    model.to(memory_format=torch.contiguous_format if not hasattr(learn, 'channels_last') else torch.channels_last)
    t_pl = report('plain', run_plain(model, dls2, a), a.target)
    fmt = lambda t: f'{t:.1f} s' if t is not None else f'not reached in {a.max_epochs} epochs'
    print(f'fastai fit_one_cycle: {fmt(t_fa)}; plain PyTorch Adam lr={a.lr_plain:g}: {fmt(t_pl)}')
    if t_fa and t_pl: print(f'ratio plain/fastai: {t_pl/t_fa:.2f}x')


def images_per_second(arch, size, bs, steps, channels_last):
    "Training throughput (forward+backward+step) on random batches."
    import timm, torchvision
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=2) if hasattr(torchvision.models, arch) else timm.create_model(arch, num_classes=2)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(bs, 3, size, size).to(memory_format=fmt); y = torch.randint(0, 2, (bs,))
    def step():
        loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
    for _ in range(2): step()
    t = time.perf_counter()
    for _ in range(steps): step()
    return steps * bs / (time.perf_counter() - t)


def bench_channels_last(a):
    print(f'\n[2] training images/s, {a.cl_arch} at {a.cl_size} px, bs {a.cl_bs}, {torch.get_num_threads()} thread(s)')
    res = {}
    for rep in range(2):  # alternate to even out drift
        for cl in (False, True): res.setdefault(cl, []).append(images_per_second(a.cl_arch, a.cl_size, a.cl_bs, a.cl_steps, cl))
    for cl in (False, True): print(f'  channels_last={cl!s:5}: {max(res[cl]):6.1f} images/s (best of {len(res[cl])})')
    print(f'channels-last speed-up: {max(res[True])/max(res[False]) - 1:+.0%}')


def main(argv=None):
    a = get_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    t = time.perf_counter()
    if not a.skip_target: bench_target(a)
    bench_channels_last(a)
    print(f'\ntotal {time.perf_counter()-t:.0f} s')


if __name__ == '__main__': main()
