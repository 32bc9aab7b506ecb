"""The README's main job, `make run`, runs the malaria case study end to end offline on a CPU
(its executed notebook goes to a temporary RUNS folder, its results to a temporary MEDCASES_RESULTS_DIR)."""
import json, os, subprocess
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
    assert 'Mode: smoke (' in text, 'the notebook must print the mode it ran in (lib.data.show_mode)'
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
