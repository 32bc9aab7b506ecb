#!/usr/bin/env python
"""Benchmark reading PCam-style tiles from the raw TIFFs against reading them from a lib.cache image cache.

Same machine, same run, same images, same split, same fastai transforms: only where the pixels come from
differs (lib.data.case_dls reads the files, lib.cache.cache_dls reads the cache). It prints images/second

1. for the cache build itself (a one-off cost),
2. item loading: `dls.train_ds[i]` plus the item transforms (Resize), one image at a time, which is where
   the files are opened and decoded,
3. the whole training pipeline: iterating `dls.train` (item transforms, collation, batch augmentation).

Not a test: it prints figures. Synthetic tiles by default (lib.synthetic.make_pcam), or your own folder in the
Kaggle layout (train/<id>.tif + train_labels.csv) with --data. The page cache is warm for both sources (the
files are read once before timing), which favours the raw files: on a cold disk the gap is larger.
    .venv/bin/python bench/bench_cache.py
    .venv/bin/python bench/bench_cache.py --n 5000 --size 224 --batches 20
"""
import argparse, os, shutil, tempfile, time
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np, torch


def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=3000, help='synthetic tiles to make (ignored with --data)')
    p.add_argument('--data', default=None, help='a folder in the Kaggle layout instead of synthetic tiles')
    p.add_argument('--size', type=int, default=96, help='item Resize size (the article used 224)')
    p.add_argument('--bs', type=int, default=64)
    p.add_argument('--items', type=int, default=2000, help='single items timed for the item-loading figure')
    p.add_argument('--batches', type=int, default=20, help='training batches timed for the pipeline figure')
    p.add_argument('--workers', type=int, default=0, help='DataLoader num_workers')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave as is)')
    p.add_argument('--keep', action='store_true', help='keep the temporary folder')
    return p.parse_args(argv)


def rate(n, seconds): return n / seconds if seconds > 0 else float('inf')


def time_items(dls, k):
    "Images/second through dataset indexing plus item transforms, one image at a time."
    ds, tf = dls.train_ds, dls.train.after_item
    idx = np.random.default_rng(0).permutation(len(ds))[:k]
    t0 = time.perf_counter()
    for i in idx: tf(ds[int(i)])
    return rate(len(idx), time.perf_counter() - t0)


def time_pipeline(dls, n_batches):
    "Images/second iterating the training DataLoader (item tfms, collation, batch augmentation)."
    n, t0 = 0, time.perf_counter()
    for b, (xb, yb) in enumerate(dls.train):
        n += len(xb)
        if b + 1 == n_batches: break
    return rate(n, time.perf_counter() - t0)


def main(a):
    from lib.data import get_items, random_split, case_dls
    from lib.cache import build_cache, cache_dls
    from lib.synthetic import make_pcam
    if a.threads: torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix='bench_cache_')
    try:
        src = a.data or make_pcam(os.path.join(tmp, 'pcam'), n=a.n, seed=0)
        df = random_split(get_items('pcam', src), valid_pct=0.2, seed=42)
        sizes = [os.path.getsize(os.path.join(src, p)) for p in df.path]
        for p in df.path: open(os.path.join(src, p), 'rb').read()   # warm the page cache for the raw files too
        t0 = time.perf_counter()
        cache = build_cache(df.path, os.path.join(tmp, 'cache'), root=src, progress=False)
        t_build = time.perf_counter() - t0
        print(f'{len(df):,} tiles, {np.mean(sizes)/1024:.1f} KB each on disk | torch threads {torch.get_num_threads()}, '
              f'num_workers {a.workers}, Resize {a.size}, bs {a.bs}')
        print(f'cache build: {t_build:.1f} s = {rate(len(df), t_build):,.0f} images/s (once); '
              f'{cache.meta["nbytes"]/2**20:.0f} MiB on disk')
        kw = dict(size=a.size, bs=a.bs, num_workers=a.workers)
        dls = {'raw TIFFs': case_dls('pcam', df, src, **kw), 'cache': cache_dls('pcam', df, cache, **kw)}
        xr, xc = (d.valid.one_batch()[0] for d in dls.values())
        assert torch.equal(xr, xc), 'the two sources gave different tensors'
        rows = []
        for name, d in dls.items():
            time_items(d, 50); time_pipeline(d, 1)                     # warm-up
            rows.append((name, time_items(d, a.items), time_pipeline(d, a.batches)))
        print(f"\n{'source':<10} {'item loading (img/s)':>22} {'training pipeline (img/s)':>27}")
        for name, it, pl in rows: print(f'{name:<10} {it:>22,.0f} {pl:>27,.0f}')
        (_, it_r, pl_r), (_, it_c, pl_c) = rows
        print(f"{'speed-up':<10} {it_c/it_r:>21.1f}x {pl_c/pl_r:>26.1f}x")
        print('(validation batches from both sources were checked identical)')
    finally:
        if not a.keep: shutil.rmtree(tmp, ignore_errors=True)
        else: print(f'kept {tmp}')


if __name__ == '__main__':
    main(get_args())
