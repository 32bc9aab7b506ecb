"""Check that the committed package and notebooks are what nbdev would make of them.

`nbdev-export` must leave `lib/` unchanged and `nbdev-clean` must leave `nbs/` unchanged;
otherwise someone edited `lib/` by hand or forgot to export/clean before committing.
Works on copies, so it never changes the working tree.
"""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def tree_diff(a: Path, b: Path) -> list[str]:
    "Relative paths of files that differ between folders `a` and `b` (ignoring caches)."
    def files(p): return {f.relative_to(p) for f in p.rglob('*') if f.is_file() and '__pycache__' not in f.parts}
    fa, fb = files(a), files(b)
    diff = sorted(str(f) for f in fa ^ fb)
    diff += sorted(str(f) for f in fa & fb if not filecmp.cmp(a/f, b/f, shallow=False))
    return diff

def check(cmd: list[str], folder: str) -> list[str]:
    "Run `cmd` in a scratch copy of the project and list what it changed under `folder`."
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp)/'proj'
        shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns('.venv', '.git', 'data', 'runs', '__pycache__', '.ipynb_checkpoints'))
        subprocess.run(cmd, cwd=dst, check=True, capture_output=True)
        return tree_diff(ROOT/folder, dst/folder)

def main():
    problems = []
    for cmd, folder, fix in [([str(BIN/'nbdev-export')], 'lib', 'nbdev-export'),
                             ([str(BIN/'nbdev-clean')], 'nbs', 'nbdev-clean')]:
        changed = check(cmd, folder)
        if changed: problems.append(f"`{fix}` changes {folder}/: {', '.join(changed)}. Run `{fix}` and commit.")
    if problems:
        print('\n'.join(problems)); sys.exit(1)
    print('lib/ is what nbdev-export makes of nbs/, and nbs/ are clean.')

if __name__ == '__main__': main()
