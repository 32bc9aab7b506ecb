"The README's tables (tools/tables.py), made from saved reports: what they show, and what they skip."
import sys, warnings
from pathlib import Path
import numpy as np
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lib.evaluate import make_report
from tools.tables import results_table, reproduction_table

T4 = dict(kind='cuda', name='Tesla T4', count=1, memory_gb=15.8)

def toy(n, pos_frac=0.1, seed=0):
    "Synthetic binary probs/targets: positives score higher on average."
    r = np.random.default_rng(seed)
    t = (r.uniform(size=n) < pos_frac).astype(int)
    return 1 / (1 + np.exp(-(r.normal(size=n) * 1.2 + 2.2 * t - 2.5))), t

def test_results_table(tmp_path):
    "One row per published metric of each saved report; other JSON files and sub-folders are skipped; a missing CI says so."
    assert results_table(tmp_path).splitlines()[-1] == '| (no results yet) | | | | | | | |'
    pm, tm = toy(2000)
    rep = make_report(pm, tm, ['Parasitized', 'Uninfected'], 'malaria', 'smoke', 'valid', n_boot=300)
    rep.save(tmp_path/'malaria_smoke_valid.json')
    pidc, tidc = toy(3000, pos_frac=0.28, seed=5)
    make_report(pidc, tidc, ['0', '1'], 'idc', 'smoke', 'valid', n_boot=300).save(tmp_path/'idc_smoke_valid.json')
    md = results_table(tmp_path)
    lines = md.splitlines()
    assert len(lines) == 2 + 3 + 1, md   # header, rule, idc: accuracy + balanced accuracy + F1, malaria: accuracy
    assert lines[2].startswith('| idc | smoke | valid (3,000) | accuracy |')
    assert '0.765 (Janowczyk & Madabhushi 2016, to confirm); 0.718 (Cruz-Roa et al. 2014, to confirm)' in md
    assert '0.847 (Janowczyk & Madabhushi 2016, to confirm)' in md and '| 0.957 (to confirm) |' in md and '| 0.970 |' in md
    assert any('| f1 (1) |' in o for o in lines)
    (tmp_path/'cache_index.json').write_text('{"a": 1}'); (tmp_path/'list.json').write_text('[1, 2]'); (tmp_path/'broken.json').write_text('{')
    (tmp_path/'old.json').mkdir(); (tmp_path/'sub').mkdir(); rep.save(tmp_path/'sub'/'malaria_smoke_train.json')
    assert results_table(tmp_path) == md
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # too few groups for a bootstrap: lib.evaluate warns
        make_report(pidc[:20], tidc[:20], ['0', '1'], 'idc', 'smoke', 'two_patients', n_boot=100, groups=[0, 1]*10).save(tmp_path/'idc_smoke_two.json')
    md = results_table(tmp_path)
    assert '| idc | smoke | two_patients (20) | accuracy |' in md and '(CI n/a)' in md

def test_reproduction_table(tmp_path):
    "A full run's row shows the article's figure, the GPU and the verdict; smoke alone says 'not yet run on a GPU'."
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 400); probs = np.eye(2)[np.where(rng.random(400) < 0.97, t, 1 - t)]
    make_report(probs, t, ['Parasitized', 'Uninfected'], 'malaria', 'smoke', 'random').save(tmp_path/'malaria_smoke_random.json')
    row = reproduction_table(tmp_path).splitlines()[-1]
    assert row.startswith('| malaria | accuracy (random) | 0.970 |') and '| not yet run on a GPU | — | — |' in row, row
    full = make_report(probs, t, ['Parasitized', 'Uninfected'], 'malaria', 'full', 'random')
    full.provenance = {**full.provenance, 'rehearsal': False, 'device': T4}; full.save(tmp_path/'malaria_full_random.json')
    row = reproduction_table(tmp_path).splitlines()[-1]
    assert 'Tesla T4' in row and row.endswith('| reproduced (article inside our 95% CI) |'), row
    full.provenance['rehearsal'] = True; full.save(tmp_path/'malaria_full_random.json')
    row = reproduction_table(tmp_path).splitlines()[-1]
    assert '| rehearsal, CPU, ' in row and row.endswith('| rehearsal on stand-ins, not a reproduction |'), row
