"""The repository keeps its promises: two README commands, CI runs the test one, configs agree."""
import re, subprocess, sys, tomllib
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def readme_commands() -> list[str]:
    "The commands in README.md's first code block, without their comments."
    block = re.search(r"```bash\n(.*?)```", (ROOT/'README.md').read_text(), re.S)
    assert block, 'README.md must open with a ```bash block holding its two commands'
    return [l.split('#')[0].strip() for l in block[1].splitlines() if l.split('#')[0].strip()]

def test_readme_opens_with_two_commands():
    cmds = readme_commands()
    assert cmds == ['make run', 'make test'], cmds
    first_block = (ROOT/'README.md').read_text().split('```')[0]
    assert first_block.count('\n') < 6, 'the two commands must come first in README.md'

def test_ci_runs_the_readme_test_command_verbatim():
    test_cmd = readme_commands()[1]
    lines = [l.strip() for l in (ROOT/'.ci'/'run').read_text().splitlines()]
    assert test_cmd in lines, f'.ci/run must call `{test_cmd}` on a line of its own'

def test_makefile_has_the_readme_targets():
    mk = (ROOT/'Makefile').read_text()
    for cmd in readme_commands(): assert re.search(rf'^{cmd.split()[1]}:', mk, re.M), cmd

def test_readme_is_in_step_with_index_notebook():
    r = subprocess.run([sys.executable, 'tools/sync_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_nbdev_config():
    cfg = tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['nbdev']
    assert cfg['lib_path'] == 'lib'
    assert cfg['tst_flags'] == ['slow', 'cuda']
    assert not (ROOT/'settings.ini').exists(), 'nbdev 3 refuses settings.ini'

def test_environment_yml_mirrors_pyproject():
    import yaml
    proj = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']
    want = {r.replace(' ', '') for r in proj['dependencies'] + proj['optional-dependencies']['dev']}
    deps = yaml.safe_load((ROOT/'environment.yml').read_text())['dependencies']
    pip = {r.replace(' ', '') for d in deps if isinstance(d, dict) for r in d['pip']} - {'-e.'}
    assert pip == want, f'only in environment.yml: {pip - want}; only in pyproject.toml: {want - pip}'

def test_lib_is_tracked_not_ignored():
    if not (ROOT/'.git').exists(): pytest.skip('not a git checkout')
    r = subprocess.run(['git', 'check-ignore', '-q', 'lib/__init__.py'], cwd=ROOT)
    assert r.returncode == 1, '.gitignore must not ignore lib/: it is the exported package'

def test_every_library_module_has_its_notebook():
    mods = {p.stem for p in (ROOT/'lib').glob('*.py') if not p.stem.startswith('_')}
    exports = set()
    for nb in (ROOT/'nbs').glob('*.ipynb'):
        exports |= set(re.findall(r'#\s*\|\s*default_exp\s+(\w+)', nb.read_text()))
    assert mods <= exports, f'modules with no notebook (hand-written?): {mods - exports}'

def test_data_readme_describes_every_registered_dataset():
    from lib.data import DATASETS
    text = (ROOT/'data'/'README.md').read_text()
    missing = [k for k in DATASETS if f'\n## {k}\n' not in text]
    assert not missing, f'data/README.md has no section for: {missing}'
