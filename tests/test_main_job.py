"""The README's main job, `make run`, runs the malaria case study end to end offline on a CPU
(its executed notebook goes to a temporary RUNS folder, its results to a temporary MEDCASES_RESULTS_DIR)."""
import json, os, subprocess, sys
from pathlib import Path

from lib.evaluate import Report

ROOT = Path(__file__).resolve().parent.parent

def test_make_run_leaves_executed_notebook_and_results(tmp_path):
    env = {**os.environ, 'MEDCASES_RESULTS_DIR': str(tmp_path/'results')}
    env.pop('MEDCASES_MODE', None)
    r = subprocess.run(['make', 'run', f'RUNS={tmp_path/"runs"}'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    nb = json.loads((tmp_path/'runs'/'10_malaria.ipynb').read_text())
    outputs = [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
    assert not [o for o in outputs if o.get('output_type') == 'error']
    text = ''.join(''.join(o.get('text', '')) for o in outputs if o.get('output_type') == 'stream')
    assert 'mode: smoke (' in text and 'STAND-INS' in text, 'the notebook must print the mode it ran in and say the images are stand-ins (lib.run.Case)'
    results = sorted((tmp_path/'results').glob('malaria_smoke_*.json'))
    assert {p.stem for p in results} >= {'malaria_smoke_random', 'malaria_smoke_grouped'}, results
    for p in results:
        rep = Report.load(p)
        assert (rep.case, rep.mode) == ('malaria', 'smoke'), (p.name, rep.case, rep.mode)
        acc = rep.table[rep.table.metric == 'accuracy']
        assert len(acc) == 1 and 0 <= acc.value.iloc[0] <= 1, (p.name, rep.table)
        assert rep.n > 0 and rep.vocab == ['Parasitized', 'Uninfected'], (p.name, rep.n, rep.vocab)

def test_make_run_leaves_tracked_results_alone(tmp_path):
    "A reader's `make run` writes its results beside the executed notebook (git-ignored), never into results/."
    env = {k: v for k, v in os.environ.items() if k != 'MEDCASES_RESULTS_DIR'}
    r = subprocess.run(['make', '-n', 'run', f'RUNS={tmp_path}'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f'MEDCASES_RESULTS_DIR={tmp_path}/results ' in r.stdout, r.stdout

def test_make_reproduce_runs_one_case_study_in_full_mode(tmp_path):
    "`make reproduce CASE=...` is tools/reproduce.py (the runner of `make run`, in full mode); without CASE it says how to call it."
    r = subprocess.run(['make', '--no-print-directory', '-n', 'reproduce', 'CASE=pcam'], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and '.venv/bin/python tools/reproduce.py pcam' in r.stdout.splitlines(), r.stdout
    r = subprocess.run(['make', '--no-print-directory', 'reproduce'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and 'usage: make reproduce CASE=malaria|pcam|idc|kvasir|actin' in r.stdout, r.stdout + r.stderr
    src = (ROOT/'tools'/'reproduce.py').read_text()
    assert "os.environ['MEDCASES_MODE'] = 'full'" in src and 'from tools.run_notebook import run_notebook' in src

def _full_report(case='malaria', **prov):
    import numpy as np
    from lib.evaluate import make_report
    t = np.arange(40) % 2
    rep = make_report(np.eye(2)[t], t, ['Parasitized', 'Uninfected'], case, 'full', 'random')
    rep.provenance = {**rep.provenance, 'data': {case: 'files-digest:abc of 27,558 images'}, **prov}
    return rep

def test_reproduce_checks_provenance(tmp_path):
    "A results file without its provenance fails `make reproduce`'s check; one from make_report passes it."
    from tools.reproduce import provenance_problems
    assert provenance_problems(tmp_path, 'malaria') == [f'no malaria_full_*.json in {tmp_path}']
    rep = _full_report(seed=42, stages={'malaria-stage1': dict(epochs=10, bs=256, seconds=1200.0, kept='the last epoch', weights='0123456789abcdef')})
    rep.save(tmp_path/'malaria_full_random.json')
    assert provenance_problems(tmp_path, 'malaria') == []
    rep.provenance = {}; rep.save(tmp_path/'malaria_full_grouped.json')
    [problem] = provenance_problems(tmp_path, 'malaria')
    assert problem.startswith("malaria_full_grouped.json: provenance lacks ['commit', 'versions', 'device'"), problem

def test_register_copies_a_full_run_and_refuses_rehearsals(tmp_path, capsys):
    "`make register` copies a finished full run into the registry; a rehearsal, smoke or stand-in result is refused, naming why."
    from tools.register_run import register
    run, registry = tmp_path/'run', tmp_path/'registry'
    _full_report(rehearsal=True).save(run/'malaria_full_random.json')
    assert register(run, registry, sync=False) == 1 and not registry.exists()
    assert 'refused malaria_full_random.json: a rehearsal (full mode on stand-ins), not a reproduction' in capsys.readouterr().err
    _full_report(rehearsal=False, data={'malaria': 'stand-ins'}).save(run/'malaria_full_random.json')
    assert register(run, registry, sync=False) == 1 and 'trained on stand-in data' in capsys.readouterr().err
    _full_report(rehearsal=False).save(run/'malaria_full_random.json')
    assert register(run, registry, sync=False) == 0
    assert json.loads((registry/'malaria_full_random.json').read_text())['provenance']['data'] == {'malaria': 'files-digest:abc of 27,558 images'}
