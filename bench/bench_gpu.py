#!/usr/bin/env python
"""Measure each case study's full-mode recipe on a GPU: training images/s, peak GPU memory, minutes per epoch on the real data.

For every case and stage of the full recipes (architectures, sizes and batch sizes of the KNOBS cells of
nbs/1*_*.ipynb), it writes synthetic stand-ins at the real images' size, builds the DataLoaders the case study
uses (PCam and IDC: the image cache's tensor path, lib.data.case_dls(..., cache, tensor=True); the others: the files,
lib.data.case_dls), a learner as lib.train.make_learner makes it (mixed precision on CUDA; random weights: the
machine may be offline), and times `--steps` training batches after `--warmup` untimed ones, then the validation
pass. Per epoch on the real data set: 80% of its images at the training rate plus 20% at the validation rate.

Figures go to bench/gpu_figures.json (one entry per case and stage). Without CUDA it does nothing unless
--tiny: then every recipe runs on the CPU at a tiny size (a check of this script's code, not a measurement),
writing to --out (default: a temporary file).
    .venv/bin/python bench/bench_gpu.py                      # on a GPU machine
    .venv/bin/python bench/bench_gpu.py --cases pcam,idc     # some cases only
    .venv/bin/python bench/bench_gpu.py --tiny --out /tmp/f.json
"""
import argparse, contextlib, json, os, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from anywhere: lib/ is the repository's
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch

OUT = Path(__file__).resolve().parent/'gpu_figures.json'

# (case, stage, arch, size, bs, frozen, head): the full-mode KNOBS of nbs/10_malaria .. 14_actin_cells, as read
# on 2026-12-01; `recipes` reads the notebooks' KNOBS cells again at run time and uses these only if it cannot
RECIPES = [
    ('malaria', 'stage1', 'resnet34', 128, 256, True, 'classifier'),
    ('malaria', 'stage2-head', 'resnet18', 128, 512, True, 'classifier'),
    ('malaria', 'stage2', 'resnet18', 128, 512, False, 'classifier'),
    ('pcam', 'frozen', 'resnet50', 224, 64, True, 'classifier'),
    ('pcam', 'unfrozen', 'resnet50', 224, 64, False, 'classifier'),
    ('idc', 'regression', 'wide_resnet50_2', 50, 256, True, 'regression'),
    ('kvasir', 'step1', 'resnet34', 224, 64, True, 'classifier'),
    ('kvasir', 'step2-frozen', 'resnet50', 500, 6, True, 'classifier'),
    ('kvasir', 'step2', 'resnet50', 500, 6, False, 'classifier'),
    ('actin', 'frozen', 'resnet34', 224, 64, True, 'classifier'),
    ('actin', 'unfrozen', 'resnet34', 224, 64, False, 'classifier'),
]
NOTEBOOKS = {'malaria': '10_malaria', 'pcam': '11_pcam', 'idc': '12_idc', 'kvasir': '13_kvasir', 'actin': '14_actin_cells'}
# which KNOBS keys give (arch, size, bs) for each stage
KEYS = {('malaria', 'stage1'): ('arch1', 'size', 'bs1'), ('malaria', 'stage2-head'): ('arch2', 'size', 'bs2'),
        ('malaria', 'stage2'): ('arch2', 'size', 'bs2'), ('kvasir', 'step1'): ('arch1', 'size1', 'bs1'),
        ('kvasir', 'step2-frozen'): ('arch2', 'size2', 'bs2'), ('kvasir', 'step2'): ('arch2', 'size2', 'bs2')}


def notebook_knobs(case) -> dict | None:
    "The full-mode KNOBS of `case`'s notebook (its `KNOBS = {...}` cell, evaluated with `slice` and `dict` only), or None."
    import ast
    fn = Path(__file__).resolve().parents[1]/'nbs'/f'{NOTEBOOKS[case]}.ipynb'
    try:
        for c in json.loads(fn.read_text())['cells']:
            src = ''.join(c['source'])
            if c['cell_type'] != 'code' or 'KNOBS = {' not in src: continue
            for node in ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!')))).body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == 'KNOBS':
                    return eval(compile(ast.Expression(node.value), str(fn), 'eval'), {'__builtins__': {}, 'slice': slice, 'dict': dict})['full']
    except (OSError, SyntaxError, KeyError, NameError, TypeError, ValueError): return None


# stand-ins at about the real images' size (px; PCam tiles and IDC patches have exactly these)
STANDIN = {'malaria': 130, 'pcam': 96, 'idc': 50, 'kvasir': 576, 'actin': 512}
TENSOR_CACHE = ('pcam', 'idc')   # the cases whose notebooks read the image cache's tensor path


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cases', default=None, help='comma-separated cases (default: all)')
    p.add_argument('--warmup', type=int, default=3, help='untimed training batches')
    p.add_argument('--steps', type=int, default=10, help='timed training batches')
    p.add_argument('--tiny', action='store_true', help='tiny sizes on any device: a check of the code path, not a measurement')
    p.add_argument('--out', default=None, help=f'JSON file to write (default: {OUT.name} next to this script; with --tiny a temp file)')
    return p.parse_args(argv)


def recipes(cases=None, tiny=False) -> list:
    "The recipes to measure, as dicts; `tiny`: 32 px, batch size 4 (the architectures stay)."
    out, knobs = [], {}
    for case, stage, arch, size, bs, frozen, head in RECIPES:
        if cases and case not in cases: continue
        k = knobs.setdefault(case, notebook_knobs(case))
        ka, ks, kb = KEYS.get((case, stage), ('arch', 'size', 'bs'))
        if k and all(k.get(x) for x in (ka, ks, kb)): arch, size, bs = k[ka], k[ks], k[kb]
        r = dict(case=case, stage=stage, arch=arch, size=size, bs=bs, frozen=frozen, head=head,
                 standin=STANDIN[case], data='tensor cache' if case in TENSOR_CACHE else 'files')
        if tiny: r.update(size=32, bs=4, standin=min(STANDIN[case], 48))
        out.append(r)
    return out


def sync():
    if torch.cuda.is_available(): torch.cuda.synchronize()


def make_standins(case, n, px, dest) -> Path:
    "About `n` synthetic images of `case` at `px` pixels in `dest`, in the real layout."
    from lib import synthetic
    if case == 'malaria': return synthetic.make_malaria(dest, n_per_class=n//2 + 1, size=px)
    if case == 'pcam': return synthetic.make_pcam(dest, n=n)
    if case == 'idc': return synthetic.make_idc(dest, n_patients=max(2, n//60 + 1), n_per_patient=60)
    if case == 'kvasir': return synthetic.make_kvasir(dest, n_per_class=n//8 + 1, size=px)
    if case == 'actin': return synthetic.make_actin(dest, n_per_class=n//3 + 1, size=px)
    raise ValueError(case)


def make_dls(r, src, work):
    "The DataLoaders the case study builds for recipe `r` from stand-ins in `src`."
    from lib.data import get_items, random_split, case_dls
    from lib.cache import get_cache
    df = random_split(get_items(r['case'], src), valid_pct=0.2, seed=42)
    if r['data'] == 'files': return case_dls(r['case'], df, src, size=r['size'], bs=r['bs'])
    kw = dict(size=50, method='pad', fill=255) if r['case'] == 'idc' else {}
    with contextlib.redirect_stdout(open(os.devnull, 'w')):
        cache = get_cache(df.path, Path(work)/'cache', root=src, **kw)
    return case_dls(r['case'], df, cache, size=r['size'], bs=r['bs'], tensor=True)


def make_timer(warmup):
    from fastai.callback.core import Callback, CancelTrainException
    class Timer(Callback):
        "Time `steps` training batches after `warmup`, then stop training; time the validation pass."
        order = 100
        def __init__(self, steps): self.steps, self.t = steps, {}
        def after_batch(self):
            if not self.training: return
            if self.iter == warmup - 1: sync(); self.t0 = time.perf_counter()
            if self.iter == warmup + self.steps - 1:
                sync(); self.t['train'] = time.perf_counter() - self.t0
                raise CancelTrainException
        def before_validate(self): sync(); self.t['v0'] = time.perf_counter()
        def after_validate(self): sync(); self.t['valid'] = time.perf_counter() - self.t['v0']
    return Timer


def measure(r, warmup, steps, work) -> dict:
    "Figures of recipe `r`: training and validation images/s, peak GPU memory, minutes per epoch on the real data."
    from lib.data import DATASETS
    from lib.train import make_learner
    from lib.run import device, _peak_gpu_gb   # the units and names the preflight reads back
    n_train = r['bs'] * (warmup + steps + 1)
    src = make_standins(r['case'], int(n_train / 0.8) + 1, r['standin'], Path(work)/'data')
    dls = make_dls(r, src, work)
    assert len(dls.train) >= warmup + steps, f"{len(dls.train)} training batches, {warmup + steps} needed"
    learn = make_learner(dls, r['arch'], pretrained=False, head=r['head'], path=work)
    learn.freeze() if r['frozen'] else learn.unfreeze()
    cuda = torch.cuda.is_available()
    if cuda: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    timer = make_timer(warmup)(steps)
    with learn.no_bar(), learn.no_logging(), open(os.devnull, 'w') as null, contextlib.redirect_stderr(null):
        learn.fit(1, 1e-4, cbs=timer)
    train_ips = steps * r['bs'] / timer.t['train']
    valid_ips = len(dls.valid_ds) / timer.t['valid']
    n = DATASETS[r['case']].n_images
    return dict(case=r['case'], stage=r['stage'], arch=r['arch'], size=r['size'], bs=r['bs'], frozen=r['frozen'], data=r['data'],
                img_per_s=round(train_ips, 1), valid_img_per_s=round(valid_ips, 1),
                peak_gpu_gb=_peak_gpu_gb(),
                epoch_min_real=round((0.8*n/train_ips + 0.2*n/valid_ips)/60, 2), n_real=n,
                gpu=device()['name'] if cuda else 'none (CPU)', date=time.strftime('%Y-%m-%d'),
                torch=torch.__version__, standin_px=r['standin'], tiny=r['size'] == 32 and r['bs'] == 4)


def main(argv=None) -> list:
    "Measure the recipes, print a table, write the JSON; return its entries."
    a = get_args(argv)
    if not torch.cuda.is_available() and not a.tiny:
        print('bench_gpu: no CUDA device here: nothing measured (--tiny checks the code path on the CPU)'); return []
    rs = recipes(a.cases.split(',') if a.cases else None, tiny=a.tiny)
    out = Path(a.out) if a.out else (Path(tempfile.gettempdir())/'gpu_figures_tiny.json' if a.tiny else OUT)
    rows = []
    print(f"{'case':<8}{'stage':<14}{'arch':<17}{'size':>5}{'bs':>5}{'img/s':>9}{'valid img/s':>12}{'peak GB':>9}{'epoch min':>10}")
    for r in rs:
        work = tempfile.mkdtemp(prefix=f"bench_gpu_{r['case']}_")
        try: e = measure(r, 1 if a.tiny else a.warmup, 2 if a.tiny else a.steps, work)
        finally: shutil.rmtree(work, ignore_errors=True)
        rows.append(e)
        gb = '-' if e['peak_gpu_gb'] is None else f"{e['peak_gpu_gb']:.1f}"
        print(f"{e['case']:<8}{e['stage']:<14}{e['arch']:<17}{e['size']:>5}{e['bs']:>5}{e['img_per_s']:>9,.0f}"
              f"{e['valid_img_per_s']:>12,.0f}{gb:>9}{e['epoch_min_real']:>10.1f}")
        out.write_text(json.dumps(rows, indent=1) + '\n')   # after each: a run cut short keeps what it measured
    print(f'wrote {len(rows)} entries to {out}' + (' (tiny sizes on the CPU: a code check, not figures)' if a.tiny else ''))
    return rows


if __name__ == '__main__':
    main()
