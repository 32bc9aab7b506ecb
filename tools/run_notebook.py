"""Execute a notebook top to bottom the way its mode asks, and save the executed copy.

`jupyter nbconvert --execute` runs every cell, including those flagged `#| slow` (whole dataset) or
`#| cuda` (GPU only). This runner skips those flags in `smoke` mode, exactly as `nbdev-test` does,
and runs everything in `full` mode (MEDCASES_MODE=full, or a CUDA GPU present). It runs the cells in
a real Jupyter kernel, so the executed copy looks as it does in Jupyter (progress bars as tables).

    python tools/run_notebook.py nbs/10_malaria.ipynb runs/      # -> runs/10_malaria.ipynb
"""
import argparse, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from fastcore.nbio import read_nb
from lib.data import get_mode

def cell_flags(src) -> list[set]:
    "The nbdev directives (`slow`, `cuda`, `export`, ...) of each cell of notebook `src`, as nbdev parses them."
    return [set(c.directives) if c.cell_type == 'code' else set() for c in read_nb(src).cells]

def without_bar_styles(outputs: list) -> list:
    "`outputs` less the empty stylesheet fastprogress displays before its first progress bar."
    from fastprogress.fastprogress import html_styles
    return [o for o in outputs if not (o.get('output_type') == 'display_data' and ''.join(o.get('data', {}).get('text/html', '')).strip() == html_styles.strip())]

def run_notebook(src, out_dir, skip_flags=(), timeout=3600) -> Path:
    "Execute notebook `src` in a kernel, skipping cells flagged with `skip_flags`; write it to `out_dir`."
    src, out_dir = Path(src).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir/src.name
    nb, flags = nbformat.read(src, as_version=4), cell_flags(src)
    client = NotebookClient(nb, kernel_name='python3', timeout=timeout,
                            resources={'metadata': {'path': str(src.parent)}})  # cwd = nbs/, as nbdev-test
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != 'code': continue
                if set(skip_flags) & flags[i]: cell.outputs, cell.execution_count = [], None; continue
                t = time.time()
                client.execute_cell(cell, i)
                if time.time() - t > 20: print(f'  cell {i} took {time.time() - t:.0f} s: {cell.source.splitlines()[0][:70]}', flush=True)
                cell.outputs = without_bar_styles(cell.outputs)
    finally: nbformat.write(nb, dst)  # on failure too: the copy shows the error where it happened
    return dst

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('notebook'); p.add_argument('out_dir', nargs='?', default='runs')
    a = p.parse_args()
    mode = get_mode()
    skip = [] if mode.name == 'full' else ['slow', 'cuda']
    print(f'Running {a.notebook} in {mode.name} mode ({mode.reason}); skipping cells flagged: {" ".join(skip) or "none"}')
    t0 = time.time()
    try: dst = run_notebook(a.notebook, a.out_dir, skip)
    except CellExecutionError as e:
        print(f'{a.notebook} failed:\n{e}\nThe executed copy, up to the error, is in {a.out_dir}/', file=sys.stderr)
        return 1
    print(f'Done in {time.time()-t0:.0f} s: {dst}')

if __name__ == '__main__': sys.exit(main())
