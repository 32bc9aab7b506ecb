"""Reproduce one case study: run its notebook in `full` mode, headless, and print the verdict.

This is the one command a GPU owner needs (`make reproduce CASE=pcam`). It runs the notebook through the
same runner as `make run` (tools/run_notebook.py), every cell included, writes the executed notebook and
the results (each with its provenance: commit, versions, GPU, seed, data fingerprint, time per stage) to
`runs/reproduce/<case>/`, checks that every results file carries its provenance, and prints the
reproduction table: the article's figure, ours with its 95% CI, and whether the article's figure lies
inside it. Nothing tracked by git changes; `tools/register_run.py` copies a finished run into results/.

A run that stops (a lost session, an error) can simply be started again: the notebook continues from its
last checkpoint (`lib.train.fit_checkpointed`).

    python tools/reproduce.py malaria                   # -> runs/reproduce/malaria/{10_malaria.ipynb,results/}
    MEDCASES_VARIANT=budget python tools/reproduce.py pcam
"""
import argparse, os, re, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOTEBOOKS = {'malaria': '10_malaria', 'pcam': '11_pcam', 'idc': '12_idc', 'kvasir': '13_kvasir', 'actin': '14_actin_cells'}

def provenance_problems(results_dir, case) -> list:
    "What is missing from the full-mode results of `case` in `results_dir`: no file, or provenance fields absent or empty."
    from lib.evaluate import Report
    from lib.run import _PROVENANCE_KEYS
    files = sorted(Path(results_dir).glob(f'{case}_full_*.json'))
    if not files: return [f'no {case}_full_*.json in {results_dir}']
    problems = []
    for fn in files:
        p = Report.load(fn).provenance
        missing = [k for k in _PROVENANCE_KEYS if k not in p]
        empty = [k for k in ('commit', 'versions', 'device', 'seed', 'data', 'stages') if k in p and p[k] in (None, {}, '')]
        if missing or empty: problems.append(f'{fn.name}: provenance lacks {missing + empty}')
        for name, st in p.get('stages', {}).items():
            if not {'epochs', 'bs', 'seconds', 'kept', 'weights'} <= set(st): problems.append(f'{fn.name}: stage {name} lacks {st}')
    return problems

def reproduce(case, out_dir=None) -> int:
    "Run case study `case` in full mode into `out_dir` (default runs/reproduce/<case>); print the verdict; return an exit code."
    from tools.run_notebook import run_notebook
    from nbclient.exceptions import CellExecutionError
    if case not in NOTEBOOKS: raise SystemExit(f"CASE must be one of {', '.join(NOTEBOOKS)}, not {case!r}")
    out = Path(out_dir or ROOT/'runs'/'reproduce'/case).resolve()
    os.environ.setdefault('MEDCASES_RESULTS_DIR', str(out/'results'))
    os.environ['MEDCASES_MODE'] = 'full'
    results = Path(os.environ['MEDCASES_RESULTS_DIR'])
    t0 = time.time()
    print(f'reproduce: {NOTEBOOKS[case]} in full mode; executed notebook -> {out}/, results -> {results}/', flush=True)
    try: run_notebook(ROOT/'nbs'/f'{NOTEBOOKS[case]}.ipynb', out)
    except CellExecutionError as e:
        print(re.sub(r'\x1b\[[0-9;]*m', '', str(e))[-3000:], file=sys.stderr)
        print(f'reproduce: {case} stopped with an error after {time.time() - t0:.0f} s; the executed copy is in {out}/. '
              f'Mend the cause and run it again: training continues from its last checkpoint.', file=sys.stderr)
        return 1
    problems = provenance_problems(results, case)
    if problems: print('reproduce: provenance incomplete:\n  ' + '\n  '.join(problems), file=sys.stderr); return 1
    from tools.tables import reproduction_table
    print(f'\nreproduce: {case} done in {(time.time() - t0)/60:.1f} min\n')
    print('\n'.join(l for l in reproduction_table(results).splitlines() if l.startswith(('| case', '|---', f'| {case} '))))
    print(f'\nTo put this run into the course\'s results (README): python tools/register_run.py {results}')
    return 0

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('case', choices=list(NOTEBOOKS)); p.add_argument('--out', default=None, help='folder for the executed notebook and results')
    a = p.parse_args()
    return reproduce(a.case, a.out)

if __name__ == '__main__': sys.exit(main())
