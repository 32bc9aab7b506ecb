"""Keep README.md in step with the course's front page, nbs/index.ipynb.

nbdev's own `nbdev-readme` needs Quarto, which cannot be installed offline, so README.md is
made here: the markdown cells of nbs/index.ipynb, in order, with the results table (between
`<!-- results:start -->` and `<!-- results:end -->`) and the reproduction table (between the
`reproduction` markers) regenerated from results/*.json.

    python tools/sync_readme.py          # rewrite nbs/index.ipynb's table and README.md
    python tools/sync_readme.py --check  # exit 1 if either is out of date (used by the tests)
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
INDEX, README = ROOT/'nbs'/'index.ipynb', ROOT/'README.md'
BLOCK = re.compile(r'(<!-- results:start -->\n).*?(<!-- results:end -->)', re.S)
REPRO = re.compile(r'(<!-- reproduction:start -->\n).*?(<!-- reproduction:end -->)', re.S)

def results_markdown() -> str:
    "The results table made from results/*.json (tools/tables.py)."
    from tools.tables import results_table
    return results_table(ROOT/'results').strip() + '\n'

def reproduction_markdown() -> str:
    "The reproduction table (one row per case study, with the verdict) made from results/*.json (tools/tables.py)."
    from tools.tables import reproduction_table
    return reproduction_table(ROOT/'results').strip() + '\n'

def with_results(md: str, table: str, repro: str = '') -> str:
    "`md` with the text between the results markers replaced by `table`, and between the reproduction markers by `repro`."
    return REPRO.sub(lambda m: m[1] + repro + m[2], BLOCK.sub(lambda m: m[1] + table + m[2], md))

def render(nb: dict, table: str, repro: str = '') -> tuple[dict, str]:
    "The index notebook with a fresh results table, and the README made from it."
    cells = []
    for c in nb['cells']:
        if c['cell_type'] == 'markdown':
            src = with_results(''.join(c['source']), table, repro)
            c = {**c, 'source': src.splitlines(keepends=True)}
        cells.append(c)
    nb = {**nb, 'cells': cells}
    readme = '\n\n'.join(''.join(c['source']).strip() for c in cells if c['cell_type'] == 'markdown') + '\n'
    return nb, readme

def main(check: bool = False) -> int:
    nb_text = INDEX.read_text()
    nb, readme = render(json.loads(nb_text), results_markdown(), reproduction_markdown())
    new_nb_text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n'  # as nbdev writes it
    stale = [p.name for p, new in [(INDEX, new_nb_text), (README, readme)] if not p.exists() or p.read_text() != new]
    if check:
        if stale: print(f"Out of date: {', '.join(stale)}. Run `python tools/sync_readme.py`.")
        return 1 if stale else 0
    if INDEX.name in stale: INDEX.write_text(new_nb_text)
    README.write_text(readme)
    return 0

if __name__ == '__main__': sys.exit(main(check='--check' in sys.argv))
