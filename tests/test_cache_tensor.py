"""The image cache's tensor path (lib.data.case_dls(name, df, cache, tensor=True)) and the GPU benchmark's CPU code path.

Correctness only, nothing timed: the tensor path gives the file path's batches and predictions, reads a cache that
get_cache rebuilt after an interrupted build, and bench/bench_gpu.py writes its JSON (tiny sizes, on the CPU).
"""
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch, torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lib.cache import get_cache, ImageCache, IncompleteCacheError
from lib.data import get_items, random_split, case_dls
from lib.synthetic import make_pcam


@pytest.fixture(scope='module')
def pcam(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pcam')
    src = make_pcam(tmp/'pcam', n=40, seed=1)
    df = random_split(get_items('pcam', src), valid_pct=0.25, seed=0)
    return tmp, src, df, get_cache(df.path, tmp/'cache', root=src)


def test_valid_batches_and_predictions_match_files(pcam):
    from fastai.vision.all import Learner, CrossEntropyLossFlat, set_seed
    tmp, src, df, cache = pcam
    for size, tol in ((96, 0), (64, 0.02)):     # at the tiles' size: bit for bit; resized: PIL's rounding
        t, f = case_dls('pcam', df, cache, size=size, bs=5, tensor=True), case_dls('pcam', df, src, size=size, bs=5)
        for (xt, yt), (xf, yf) in zip(t.valid, f.valid):
            assert torch.equal(yt, yf) and float((xt - xf).abs().max()) <= tol
    set_seed(0)
    learn = Learner(t, nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
                    loss_func=CrossEntropyLossFlat(), path=tmp)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    with learn.no_bar(): (pt, yt), (pf, yf) = learn.get_preds(), learn.get_preds(dl=f.valid)
    assert torch.equal(yt, yf) and torch.allclose(pt, pf, atol=1e-3)
    assert list(t.valid.items.path) == list(df.path[df.is_valid]) and t.vocab == f.vocab


def test_train_batches_hold_the_cached_images(pcam):
    tmp, src, df, cache = pcam
    dls = case_dls('pcam', df, cache, size=96, bs=6, batch_tfms=[], tensor=True)
    want = {cache.keys.index(k): str(l) for k, l in zip(dls.train.items.path, dls.train.items.label)}
    pix = {i: torch.from_numpy(np.array(cache[i])).permute(2, 0, 1).float()/255 for i in want}
    seen = []
    for xb, yb in dls.train:
        for x, y in zip(xb, yb):
            i = next(i for i, p in pix.items() if torch.equal(x, p))
            assert dls.vocab[y] == want[i]; seen.append(i)
    assert len(seen) == len(set(seen)) == len(want)//6*6


KILL_AT = """
import os, signal, sys, pandas as pd
from lib.cache import _build_cache, _read_rgb
def reader(fn, n=[0]):                       # kills its own process (SIGKILL: no cleanup runs) at the k-th image
    n[0] += 1
    if n[0] == int(sys.argv[3]): os.kill(os.getpid(), signal.SIGKILL)
    return _read_rgb(fn)
root = sys.argv[1]
_build_cache(pd.read_csv(f'{root}/train_labels.csv').id.map('train/{}.tif'.format), sys.argv[2], root=root, reader=reader)
"""


def test_tensor_path_after_an_interrupted_build(tmp_path):
    src = make_pcam(tmp_path/'pcam', n=16, seed=2)
    df = random_split(get_items('pcam', src), valid_pct=0.25, seed=0)
    assert subprocess.run([sys.executable, '-c', KILL_AT, str(src), str(tmp_path/'cache'), '5'], cwd=ROOT, capture_output=True).returncode == -9
    with pytest.raises(IncompleteCacheError): ImageCache.load(tmp_path/'cache')
    cache = get_cache(df.path, tmp_path/'cache', root=src)                 # rebuilt
    assert get_cache(df.path, tmp_path/'cache', root=src).meta['created'] == cache.meta['created']   # reused
    x, y = case_dls('pcam', df, cache, size=96, bs=4, tensor=True).valid.one_batch()
    assert torch.equal(x, case_dls('pcam', df, src, size=96, bs=4).valid.one_batch()[0])


def test_bench_gpu_code_path_on_cpu(tmp_path):
    sys.path.insert(0, str(ROOT/'bench'))
    import bench_gpu
    assert {r['case'] for r in bench_gpu.recipes()} == {'malaria', 'pcam', 'idc', 'kvasir', 'actin'}
    assert [r['data'] for r in bench_gpu.recipes(['pcam', 'idc', 'actin'])] == ['tensor cache']*3 + ['files']*2
    out = tmp_path/'g.json'
    bench_gpu.main(['--tiny', '--cases', 'actin', '--out', str(out)])
    rows = json.loads(out.read_text())
    assert [r['stage'] for r in rows] == ['frozen', 'unfrozen']
    keys = {'case', 'stage', 'arch', 'size', 'bs', 'img_per_s', 'peak_gpu_gb', 'epoch_min_real', 'gpu', 'date'}
    assert all(keys <= set(r) and r['img_per_s'] > 0 and r['tiny'] for r in rows)
