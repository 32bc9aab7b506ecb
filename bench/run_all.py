#!/usr/bin/env python
"""Run the CPU benchmarks at small sizes (a few minutes on 2 cores) and print one summary table: figure, goal, met?

    .venv/bin/python bench/run_all.py          # `make bench`

1. bench_cache.py: training-pipeline speed-up of the image cache's tensor path over the raw TIFFs (goal: 10x).
2. bench_train.py: end-to-end training images/s divided by the bare model's (goal: 0.9), with its breakdown.
3. bench_gpu.py: with CUDA, the case studies' full recipes (figures to bench/gpu_figures.json); without, its code
   path at tiny sizes on the CPU (written to a temporary file, not to bench/gpu_figures.json).

All on one torch thread, as the issue's figures were measured, so that the other core keeps the machine usable.
Not a test: figures vary with the machine and its load; the table says so when a goal is missed.
"""
import os, shutil, sys, tempfile, time
from pathlib import Path
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE)); sys.path.insert(0, str(HERE.parent))
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch


def section(title): print(f"\n{'=' * 100}\n{title}\n{'=' * 100}", flush=True)


def main():
    import bench_cache, bench_train, bench_gpu
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    section('1. bench_cache.py --n 1500 --batches 12 --threads 1')
    c = bench_cache.main(bench_cache.get_args(['--n', '1500', '--batches', '12', '--threads', '1']))
    section('2. bench_train.py --threads 1')
    t = bench_train.main(bench_train.get_args(['--threads', '1']))
    cuda = torch.cuda.is_available()
    section('3. bench_gpu.py' + ('' if cuda else ' --tiny (no CUDA: the code path only)'))
    tmp = tempfile.mkdtemp(prefix='bench_gpu_')
    try: g = bench_gpu.main([] if cuda else ['--tiny', '--out', os.path.join(tmp, 'gpu_figures_tiny.json')])
    finally: shutil.rmtree(tmp, ignore_errors=True)

    rows = [('tensor cache ÷ raw TIFFs, training pipeline, no augmentation (CPU)', c['speedup']['no augmentation'], 10, 'x', ''),
            ('tensor cache ÷ raw TIFFs, training pipeline, PCam augmentation (CPU)', c['speedup']['PCam augmentation'], 10, 'x',
             f"ceiling {c['ceiling']:.1f}x: both paths pay the augmentation's {c['aug_ms']:.0f} ms per batch"),
            ('end-to-end ÷ bare model, lean learner', t['ratio_lean'], 0.9, '', ''),
            ("end-to-end ÷ bare model, course's make_learner defaults", t['ratio_course'], 0.9, '', ''),
            ("fastai's loop ÷ bare model, same in-memory batches, lean", t['ratio_loop_lean'], 0.9, '', 'the Learner alone: no pipeline, no validation'),
            ("fastai's loop ÷ bare model, same in-memory batches, course", t['ratio_loop_course'], 0.9, '', ''),
            ("model's own work ÷ training batch time, course recipe, one run", t['model_share'], 0.9, '',
             f"data pipeline {t['phases'][bench_train.PHASES[0]]/sum(t['phases'].values()):.0%}, callbacks and zero_grad "
             f"{t['phases'][bench_train.PHASES[-1]]/sum(t['phases'].values()):.0%}")]
    section(f'summary ({time.perf_counter() - t0:.0f} s, torch threads {torch.get_num_threads()}, '
            f"{torch.cuda.get_device_name() if cuda else 'no CUDA'})")
    print(f"{'figure':<72}{'value':>8}{'goal':>8}  met?")
    for name, v, goal, unit, note in rows:
        print(f"{name:<72}{v:>7.2f}{unit:1}{'≥' + str(goal) + unit:>8}  {'yes' if v >= goal else 'NO'}" + (f'  ({note})' if note else ''))
    print(f"{'GPU recipes measured (bench/gpu_figures.json)':<72}{len(g) if cuda else 0:>8}{len(bench_gpu.RECIPES):>8}  "
          + ('yes' if cuda and len(g) == len(bench_gpu.RECIPES) else f'no CUDA here: code path checked on {len(g)} tiny recipes'))
    return rows


if __name__ == '__main__':
    main()
