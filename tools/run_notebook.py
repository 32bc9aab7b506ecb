"""Execute a notebook top to bottom the way its mode asks, and save the executed copy.

`jupyter nbconvert --execute` runs every cell, including those flagged `#| slow` (whole dataset) or
`#| cuda` (GPU only). This runner skips those flags in `smoke` mode, exactly as `nbdev-test` does,
and runs everything in `full` mode (MEDCASES_MODE=full, or a CUDA GPU present).

    python tools/run_notebook.py nbs/10_malaria.ipynb runs/      # -> runs/10_malaria.ipynb
"""
import argparse, shutil, sys, time
from pathlib import Path
from execnb.shell import CaptureShell
from fastcore.nbio import write_nb
from fastcore.xtras import working_directory
from nbdev.process import NBProcessor
from nbdev.test import _skip_cell
from lib.data import get_mode

def run_notebook(src, out_dir, skip_flags=None) -> Path:
    "Execute notebook `src` (skipping cells flagged with `skip_flags`) into `out_dir`; return the copy's path."
    src, out_dir = Path(src), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir/src.name
    shutil.copy(src, dst)
    nb = NBProcessor(dst, rm_directives=False, process=True).nb
    shell = CaptureShell(src)
    try:
        with working_directory(src.parent.resolve()):  # as nbdev-test: relative paths resolve from nbs/
            shell.run_all(nb, exc_stop=True, preproc=_skip_cell(nb, skip_flags))
    finally: write_nb(nb, dst)  # on failure too: the copy shows the error where it happened
    return dst

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('notebook'); p.add_argument('out_dir', nargs='?', default='runs')
    a = p.parse_args()
    mode = get_mode()
    skip = [] if mode.name == 'full' else ['slow', 'cuda']
    print(f'Running {a.notebook} in {mode.name} mode ({mode.reason}); skipping cells flagged: {skip or "none"}')
    t0 = time.time()
    try: dst = run_notebook(a.notebook, a.out_dir, skip)
    except Exception as e:
        print(f'{a.notebook} failed: {type(e).__name__}: {e}\nThe executed copy, up to the error, is in {a.out_dir}/', file=sys.stderr)
        return 1
    print(f'Done in {time.time()-t0:.0f} s: {dst}')

if __name__ == '__main__': sys.exit(main())
