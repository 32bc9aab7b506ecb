"""Copy a finished full-mode run into the course's committed results, then refresh the README.

A reader's or maintainer's run (`make reproduce CASE=...`) writes to a git-ignored folder. This is the one
deliberate step that puts it into results/, from which the README's tables are made. It refuses what would
mislead a reader: smoke results, a rehearsal (full mode on stand-ins), stand-in data, or a results file
without its provenance.

    python tools/register_run.py runs/reproduce/pcam/results          # copies pcam_full_*.json into results/
"""
import argparse, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

def refusals(fn) -> list:
    "Why results file `fn` must not enter the registry ([] if it may)."
    from lib.evaluate import Report
    from lib.run import _PROVENANCE_KEYS
    rep, why = Report.load(fn), []
    p = rep.provenance or {}
    if rep.mode != 'full': why.append(f'mode {rep.mode}, not full')
    if p.get('rehearsal'): why.append('a rehearsal (full mode on stand-ins), not a reproduction')
    if any(v == 'stand-ins' for v in (p.get('data') or {}).values()): why.append('trained on stand-in data')
    if missing := [k for k in _PROVENANCE_KEYS if k not in p]: why.append(f'provenance lacks {missing}')
    return why

def register(results_dir, registry=ROOT/'results', sync=True) -> int:
    "Copy every acceptable `*_full_*.json` of `results_dir` into `registry`; say what was refused and why."
    files = sorted(Path(results_dir).glob('*_full_*.json'))
    if not files: print(f'register: no *_full_*.json in {results_dir}', file=sys.stderr); return 1
    bad = {fn.name: w for fn in files if (w := refusals(fn))}
    for name, w in bad.items(): print(f'register: refused {name}: {"; ".join(w)}', file=sys.stderr)
    if bad: return 1
    Path(registry).mkdir(parents=True, exist_ok=True)
    for fn in files: shutil.copy2(fn, Path(registry)/fn.name); print(f'register: {fn.name} -> {registry}/')
    if sync: subprocess.run([sys.executable, str(ROOT/'tools'/'sync_readme.py')], check=True)
    return 0

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('results_dir'); p.add_argument('--registry', default=str(ROOT/'results'))
    a = p.parse_args()
    sys.exit(register(a.results_dir, a.registry, sync=Path(a.registry).resolve() == (ROOT/'results').resolve()))
