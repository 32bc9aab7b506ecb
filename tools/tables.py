"""The README's two tables, made from the reports saved in results/ (`lib.evaluate.Report.save`).

- `results_table`: every saved report, the metrics the article or the paper published (accuracy if none), ours
  with its 95% interval, the majority-class baseline and the published figures;
- `reproduction_table`: one row per case study, the split and metric the article reported, ours in smoke and
  in full with the full run's provenance, and `lib.run.verdict`.

tools/sync_readme.py writes both into README.md; tools/reproduce.py prints a case's row after a GPU run.
"""
import json
from pathlib import Path
from lib.evaluate import Report, _fmt, _label, _published_cell
from lib.run import verdict

ARTICLE_RESULT = {'malaria': ('random', 'accuracy'), 'pcam': ('random', 'accuracy'), 'idc': ('random-regression', 'accuracy'),
                  'kvasir': ('random', 'accuracy'), 'actin': ('random', 'accuracy')}   # the article's split and metric, per case

def is_report(fn) -> bool:
    "Is `fn` a file holding a saved `Report` (not a sub-folder, not some other JSON)?"
    if not Path(fn).is_file(): return False
    try: d = json.loads(Path(fn).read_text())
    except (OSError, ValueError): return False
    return isinstance(d, dict) and {'case', 'mode', 'split', 'vocab', 'table'} <= set(d) and isinstance(d['table'], list)

def reports(folder) -> list:
    "The saved reports in `folder`, by file name."
    return [Report.load(f) for f in sorted(Path(folder).glob('*.json')) if is_report(f)]

def results_table(folder) -> str:
    "Markdown table of all saved reports in `folder`: ours with CI, baseline, article, paper."
    lines = ['| case | mode | split (n) | metric | ours (95% CI) | majority baseline | article | paper |', '|---|---|---|---|---|---|---|---|']
    for rep in reports(folder):
        for m in [m for m in dict.fromkeys(rep.table.metric) if any(p.metric == m and not p.step for p in rep.published)] or ['accuracy']:
            r = rep.row(m)
            lines.append(f"| {rep.case} | {rep.mode} | {rep.split} ({rep.n:,}) | {_label(r)} | {_fmt(r.value, r.ci_low, r.ci_high)} | {_fmt(r.baseline)} | "
                         f"{_published_cell(rep, 'article', m)} | {_published_cell(rep, 'paper', m)} |")
    if len(lines) == 2: lines.append('| (no results yet) | | | | | | | |')
    return '\n'.join(lines)

def provenance_text(rep) -> str:
    "GPU, date and commit of a full-mode report, in a few words."
    p = rep.provenance or {}
    dev, when, commit = p.get('device', {}), (p.get('date') or rep.created or '')[:10], (p.get('commit') or '?')[:7]
    return f"{'rehearsal, CPU' if p.get('rehearsal') else dev.get('name', '?')}, {when}, {commit}"

def reproduction_table(folder) -> str:
    "Markdown: per case study the article's and paper's figures, ours in smoke and in full (with provenance), and the verdict."
    reps = {(r.case, r.mode, r.split): r for r in reports(folder)}
    lines = ['| case | metric (split) | article | paper | ours, smoke (stand-ins) | ours, full | full run on | verdict |', '|---|---|---|---|---|---|---|---|']
    for case, (split, metric) in ARTICLE_RESULT.items():
        smoke, full = reps.get((case, 'smoke', split)), reps.get((case, 'full', split))
        if not (smoke or full): continue
        ref, cell = full or smoke, lambda r: _fmt(*r.row(metric)[['value', 'ci_low', 'ci_high']]) if r is not None else '—'
        lines.append(f"| {case} | {metric} ({split}) | {_published_cell(ref, 'article', metric)} | {_published_cell(ref, 'paper', metric)} | "
                     f"{cell(smoke)} | {cell(full) if full else 'not yet run on a GPU'} | {provenance_text(full) if full else '—'} | "
                     f"{verdict(full, metric) if full else '—'} |")
    return '\n'.join(lines)
