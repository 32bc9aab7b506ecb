"""The README's main job, `make run`, runs the malaria case study end to end offline on a CPU."""
import json, os, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

@pytest.mark.skipif(not (ROOT/'nbs'/'10_malaria.ipynb').exists(), reason='the malaria notebook is not written yet')
def test_make_run_leaves_executed_notebook_and_results(tmp_path):
    env = {**os.environ, 'MEDCASES_RESULTS_DIR': str(tmp_path/'results')}
    env.pop('MEDCASES_MODE', None)
    r = subprocess.run(['make', 'run', f'RUNS={tmp_path/"runs"}'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    nb = json.loads((tmp_path/'runs'/'10_malaria.ipynb').read_text())
    outputs = [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
    assert not [o for o in outputs if o.get('output_type') == 'error']
    text = ''.join(''.join(o.get('text', '')) for o in outputs)
    assert 'smoke' in text, 'the notebook must say which mode it ran in'
    results = sorted((tmp_path/'results').glob('malaria_smoke_*.json'))
    assert {p.stem for p in results} >= {'malaria_smoke_random', 'malaria_smoke_grouped'}
    for p in results: assert json.loads(p.read_text())  # written and readable
