"""Rehearse `full` mode on a CPU, offline: every case study, every cell, only the sizes shrunk.

A reader's full run downloads the real data, loads ImageNet weights and trains for hours on a GPU. The
rehearsal runs the very same notebooks in `full` mode, through the same code, with three stand-ins:

- **the internet**: a local HTTP server answers for every source in its real archive layout: the NIH
  malaria zip, Simula's Kvasir zip, PCam's `.h5.gz` files, a Figshare API answer and its zip, and Kaggle's
  API for the IDC dataset and the PCam competition (the kaggle package itself runs; an IPython startup file
  of the rehearsal's kernels points its endpoint at the local server). The archives hold synthetic images
  (`lib.synthetic`) under the real names and folders; downloads reach the server through `MEDCASES_MIRROR`.
- **the weights**: random-initialised weights of the real architectures, saved where torch hub looks for
  them (`$TORCH_HOME/hub/checkpoints/<file name of the URL>`), so the real pretrained-loading code runs.
- **the sizes**: `MEDCASES_REHEARSAL=1` shrinks epochs, batch sizes and `lr_find` (see `lib.data.rehearsal`).

Progress bars and messages stay on, as for a reader: the kernels run without CI/IN_TEST/MEDCASES_OFFLINE.
Data, checkpoints and results go to a scratch folder (default runs/rehearsal/), never to data/, models/ or
results/; the executed notebooks are left in it, and a summary table is printed at the end.

    python tools/rehearse.py                      # all five case studies
    python tools/rehearse.py 10_malaria 14_actin_cells

Each notebook runs through tools/reproduce.py (`make reproduce`), and its results must carry their provenance,
marked as a rehearsal. For malaria it also rehearses a lost session: the run is killed right after its first
checkpoint, run again, and must end with the uninterrupted run's weights in every stage.
"""
import argparse, gzip, hashlib, io, json, os, re, shutil, sys, threading, time, zipfile
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CASES = ['10_malaria', '11_pcam', '12_idc', '13_kvasir', '14_actin_cells']
FIGSHARE_ID = 7000001

# ---------------------------------------------------------------- stand-in archives in each source's layout
def _zip_dir(src: Path, zip_fn: Path, prefix=''):
    "Zip every file under `src` into `zip_fn`, each under `prefix`/<its path relative to src>."
    zip_fn.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_fn, 'w', zipfile.ZIP_STORED) as z:
        for f in sorted(src.rglob('*')):
            if f.is_file() and not f.name.startswith('.'): z.write(f, f'{prefix}{f.relative_to(src).as_posix()}')
    return zip_fn

def build_sources(www: Path, work: Path) -> dict:
    "Write the stand-in downloads under `www`/<host>/<path> (and www/kaggle/); return the checksums a mirror publishes."
    from lib import synthetic
    from lib.data import DATASETS
    md5 = {}
    def place(url, src, prefix=''): return _zip_dir(src, www/url.split('://', 1)[1].split('?')[0], prefix)
    # malaria: the NIH zip holds cell_images/{Parasitized,Uninfected}/*.png
    synthetic.make_malaria(work/'malaria', n_per_class=60, n_slides=24)
    place(DATASETS['malaria'].url, work/'malaria')
    # Kvasir: Simula's zip holds kvasir-dataset-v2/<class>/*.jpg
    synthetic.make_kvasir(work/'kvasir', n_per_class=8, size=160, p_box=synthetic.KVASIR_P_BOX)
    (work/'kvasir'/'green_box.csv').unlink()           # the real zip has no list of boxes
    place(DATASETS['kvasir'].url, work/'kvasir')
    # IDC: Kaggle's dataset zip wraps the patient folders in IDC_regular_ps50_idx5/
    synthetic.make_idc(work/'idc', n_patients=60, n_per_patient=2)   # a 20% patient split holds at least 10 patients: an interval
    _zip_dir(work/'idc', www/'kaggle'/'breast-histopathology-images.zip', 'IDC_regular_ps50_idx5/')
    # PCam on Kaggle: the competition zip holds train/<id>.tif, train_labels.csv, test/ and sample_submission.csv
    synthetic.make_pcam(work/'pcam', n=160)
    test = work/'pcam'/'test'; test.mkdir()
    for f in sorted((work/'pcam'/'train').iterdir())[:4]: shutil.copy(f, test/f.name)
    (work/'pcam'/'sample_submission.csv').write_text('id,label\n' + ''.join(f'{f.stem},0\n' for f in sorted(test.iterdir())))
    _zip_dir(work/'pcam', www/'kaggle'/'histopathologic-cancer-detection.zip')
    # PCam's own h5.gz files (as on Zenodo), with their MD5s
    h5 = synthetic.make_pcam_h5(work/'pcam-h5', dict(train=96, valid=32, test=64))
    for f in sorted(h5.glob('*.h5.gz')):
        dst = www/'zenodo.org'/'records'/'2546921'/'files'/f.name; dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst); md5[f.name] = hashlib.md5(f.read_bytes()).hexdigest()
    # actin: Figshare serves one zip with a wrapper folder
    synthetic.make_actin(work/'actin', n_per_class=20, size=160)
    z = _zip_dir(work/'actin', www/'ndownloader.figshare.com'/'files'/str(FIGSHARE_ID), 'Actin_images/')
    md5['actin_images.zip'] = hashlib.md5(z.read_bytes()).hexdigest()
    return md5

# ---------------------------------------------------------------- the local "internet"
class Handler(BaseHTTPRequestHandler):
    "Files under www/<host>/<path> (with Range), Figshare's article search and file list, Kaggle's download RPCs."
    www: Path = None
    def log_message(self, *a): pass
    def _send(self, code, body=b'', ctype='application/json', headers=()):
        self.send_response(code); self.send_header('Content-Type', ctype); self.send_header('Content-Length', str(len(body)))
        for k, v in headers: self.send_header(k, v)
        self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get('Content-Length', 0))) or b'{}')
        p = self.path.split('?')[0]
        if p.endswith('/v2/articles/search'):
            return self._send(200, json.dumps([{'id': FIGSHARE_ID, 'title': 'Actin images (stand-ins)', 'doi': body.get('resource_doi')}]).encode())
        if p.endswith('DatasetApiService/DownloadDataset'): slug = body.get('datasetSlug') or body.get('dataset_slug')
        elif p.endswith('CompetitionApiService/DownloadDataFiles'): slug = body.get('competitionName') or body.get('competition_name')
        else: return self._send(404, b'{"code": 404, "message": "not found"}')
        if not (self.www/'kaggle'/f'{slug}.zip').exists(): return self._send(404, json.dumps({'code': 404, 'message': f'{slug} not found'}).encode())
        self._send(302, headers=[('Location', f'http://127.0.0.1:{self.server.server_address[1]}/kaggle/{slug}.zip')])
    def do_GET(self):
        p = self.path.split('?')[0].lstrip('/')
        if m := re.fullmatch(r'api\.figshare\.com/v2/articles/(\d+)/files', p):
            f = self.www/'ndownloader.figshare.com'/'files'/m.group(1)
            return self._send(200, json.dumps([{'name': 'actin_images.zip', 'download_url': f'https://ndownloader.figshare.com/files/{m.group(1)}',
                                               'size': f.stat().st_size, 'computed_md5': hashlib.md5(f.read_bytes()).hexdigest()}]).encode())
        f = self.www/p
        if not f.is_file(): return self._send(404, b'not found', 'text/plain')
        data, start = f.read_bytes(), 0
        if (r := re.fullmatch(r'bytes=(\d+)-', self.headers.get('Range', ''))):
            start = int(r.group(1))
            if start >= len(data): return self._send(416, b'', 'text/plain')
        hdr = [('Accept-Ranges', 'bytes')] + ([('Content-Range', f'bytes {start}-{len(data)-1}/{len(data)}')] if start else [])
        self._send(206 if start else 200, data[start:], 'application/octet-stream', hdr)

def serve(www: Path) -> ThreadingHTTPServer:
    "Start the local server on a free port of 127.0.0.1 in a thread."
    Handler.www = www
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv

# ---------------------------------------------------------------- weights where torch hub looks
def place_weights(torch_home: Path, archs=('resnet18', 'resnet34', 'resnet50', 'wide_resnet50_2')):
    "Random-initialised weights of each torchvision `arch`, saved under the file name of its ImageNet weights' URL."
    import torch, torchvision
    from lib.train import hub_weights
    for a in archs:
        fn = torch_home/'hub'/'checkpoints'/hub_weights(getattr(torchvision.models, a))[1].name
        if fn.exists(): continue
        fn.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0); torch.save(getattr(torchvision.models, a)(weights=None).state_dict(), fn)

# ---------------------------------------------------------------- the run
def kaggle_endpoint_startup(ipython_dir: Path, url: str) -> Path:
    "An IPython startup file that points the kaggle package's API endpoint at `url` in every kernel using `ipython_dir`."
    fn = ipython_dir/'profile_default'/'startup'/'00-rehearsal-kaggle.py'
    fn.parent.mkdir(parents=True, exist_ok=True)
    fn.write_text(f"# rehearsal (tools/rehearse.py): Kaggle's API is answered by the local server\n"
                  f"import kagglesdk.kaggle_env as _k\n_k._env_to_endpoint[_k.KaggleEnv.PROD] = {url!r}\n")
    return fn

def rehearsal_env(work: Path, url: str) -> dict:
    "The environment of a reader's full run, pointed at the stand-ins (served at `url`) and the scratch folder."
    env = {k: v for k, v in os.environ.items() if k not in ('CI', 'IN_TEST', 'MEDCASES_OFFLINE', 'MEDCASES_MODE')}
    return env | dict(MEDCASES_REHEARSAL='1', MEDCASES_MIRROR=url, IPYTHONDIR=str(work/'ipython'),
                      MEDCASES_CHECKSUMS=str(work/'checksums.json'),
                      KAGGLE_USERNAME='rehearsal', KAGGLE_KEY='rehearsal-key-0000', KAGGLE_CONFIG_DIR=str(work/'kaggle'),
                      MEDCASES_DATA_DIR=str(work/'data'), MEDCASES_MODELS_DIR=str(work/'models'),
                      MEDCASES_RESULTS_DIR=str(work/'results'), TORCH_HOME=str(work.parent/'torch_home'),
                      HF_HUB_OFFLINE='1', NO_PROXY='127.0.0.1,localhost', no_proxy='127.0.0.1,localhost',
                      OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))

def check_case(nb_name: str, work: Path) -> list:
    "What must hold after a full run of notebook `nb_name`, on a GPU too: full-mode results with provenance, checkpoints cleaned up."
    import torch
    from lib.evaluate import Report
    from tools.reproduce import provenance_problems
    case = nb_name.split('_')[1]
    problems, results = [], sorted((work/'results').glob(f'{case}_full_*.json'))
    if not results: problems.append(f'{nb_name}: no results/{case}_full_*.json was written')
    for fn in results:
        rep = Report.load(fn)
        if (rep.case, rep.mode) != (case, 'full') or not rep.n: problems.append(f'{fn.name}: case {rep.case}, mode {rep.mode}, n {rep.n}')
        if not rep.provenance.get('rehearsal') or rep.provenance.get('data', {}).get(case) != 'stand-ins':
            problems.append(f"{fn.name}: a rehearsal's results must say so (rehearsal: {rep.provenance.get('rehearsal')}, data: {rep.provenance.get('data')})")
    problems += provenance_problems(work/'results', case) if results else []
    d = work/'models'/f'{case}-full'
    kept = {f"{f.stem}_{torch.load(f, weights_only=False)['kept']}" for f in d.glob('*.done')}
    left = [f.name for f in d.glob('*') if f.suffix == '.part' or (f.suffix == '.pth' and f.stem not in kept)]
    if left: problems.append(f'{nb_name}: checkpoints left behind (only each finished stage\'s kept epoch may stay): {left[:5]}')
    if not kept: problems.append(f'{nb_name}: no finished stage kept its final weights: a rerun would train again')
    return problems

def _descendants(pid: int) -> list:
    "Process ids of every descendant of `pid` (Linux /proc)."
    kids = {}
    for st in Path('/proc').glob('[0-9]*/stat'):
        try: f = st.read_text().rsplit(')', 1)[1].split(); kids.setdefault(int(f[1]), []).append(int(st.parent.name))
        except (OSError, IndexError, ValueError): pass
    out, todo = [], [pid]
    while todo: p = todo.pop(); out += kids.get(p, []); todo += kids.get(p, [])
    return out

def resume_check(work: Path) -> list:
    """A session lost mid-stage: kill a full-mode malaria run (its kernel too) right after its first checkpoint, run it again,
    and compare every stage's final weights (their digests in the results' provenance) with the uninterrupted run's."""
    import signal, subprocess
    from lib.evaluate import Report
    w2 = work/'resume'
    shutil.rmtree(w2, ignore_errors=True)
    env = {**os.environ, 'MEDCASES_MODELS_DIR': str(w2/'models'), 'MEDCASES_RESULTS_DIR': str(w2/'results')}
    cmd = [sys.executable, str(ROOT/'tools'/'reproduce.py'), 'malaria', '--out', str(w2/'notebooks')]
    ckpt = w2/'models'/'malaria-full'
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (ckpt/'malaria-stage1_0.state').exists() and p.poll() is None: time.sleep(0.02)
    for pid in _descendants(p.pid) + [p.pid]:
        try: os.kill(pid, signal.SIGKILL)
        except ProcessLookupError: pass
    p.wait()
    problems = []
    if (ckpt/'malaria-stage1.done').exists(): problems.append('resume check: the kill came after stage 1 had finished, not mid-stage')
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode: return problems + [f'resume check: the rerun failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}']
    said = (w2/'notebooks'/'10_malaria.ipynb').read_text()
    if 'resuming malaria-stage1 at epoch 1 of 2 from checkpoint malaria-stage1_0' not in said: problems.append('resume check: the rerun did not say where it resumed')
    a, b = (Report.load(d/'malaria_full_grouped.json').provenance['stages'] for d in (work/'results', w2/'results'))
    differ = [k for k in a if a[k].get('weights') != b.get(k, {}).get('weights')]
    if differ or set(a) != set(b): problems.append(f'resume check: final weights differ from the uninterrupted run in {differ or set(a) ^ set(b)}')
    else: print(f'rehearse: resume check: killed mid-stage, rerun, and all {len(a)} stages end with the uninterrupted run\'s weights', flush=True)
    return problems

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('cases', nargs='*', default=CASES, help='notebooks to rehearse (default: all five case studies)')
    p.add_argument('--work', default=str(ROOT/'runs'/'rehearsal'), help='scratch folder (default runs/rehearsal)')
    a = p.parse_args()
    cases = [c.removesuffix('.ipynb').split('/')[-1] for c in a.cases]
    work = Path(a.work).resolve()/'run'
    shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
    t0 = time.time()
    print('rehearse: building stand-in downloads and weights …', flush=True)
    md5 = build_sources(work/'www', work/'src')
    (work/'checksums.json').write_text(json.dumps(md5, indent=1))
    place_weights(work.parent/'torch_home')
    srv = serve(work/'www')
    url = f'http://127.0.0.1:{srv.server_address[1]}'
    kaggle_endpoint_startup(work/'ipython', url)
    os.environ.clear(); os.environ.update(rehearsal_env(work, url))
    from tools.reproduce import reproduce
    print(f'rehearse: ready in {time.time() - t0:.0f} s; notebooks run in full mode with MEDCASES_REHEARSAL=1', flush=True)
    rows, failed = [], []
    for c in cases:
        t = time.time(); print(f'rehearse: {c} …', flush=True)
        ok = 'ok' if reproduce(c.split('_')[1], work/'notebooks') == 0 else 'FAILED'   # `make reproduce`'s own runner
        if ok == 'ok' and (problems := check_case(c, work)): ok = 'FAILED'; print('\n'.join(problems), file=sys.stderr)
        if ok == 'ok' and c == '10_malaria' and (problems := resume_check(work)): ok = 'FAILED'; print('\n'.join(problems), file=sys.stderr)
        if ok != 'ok': failed.append(c)
        rows.append((c, ok, time.time() - t)); print(f'rehearse: {c} {ok} in {time.time() - t:.0f} s', flush=True)
    srv.shutdown()
    print('\n| notebook | result | seconds |\n|---|---|---|')
    for c, ok, s in rows: print(f'| {c} | {ok} | {s:.0f} |')
    print(f'\nrehearse: {len(rows) - len(failed)} passed, {len(failed)} failed in {time.time() - t0:.0f} s; executed notebooks in {work/"notebooks"}')
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
