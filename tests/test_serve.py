"""lib.serve over real HTTP: a tiny exported learner served on 127.0.0.1, real image bytes posted to
POST /api/predict, bad uploads answered with a message, and the `python -m lib.serve` command."""
import base64, io, os, re, signal, struct, subprocess, sys, tempfile, time, zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np, pytest, requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
_CACHE = {}

def tiny_export() -> Path:
    "A ResNet-18 trained for one epoch on 48 px synthetic malaria cells, exported once per test session."
    if 'pkl' not in _CACHE:
        from lib.serve import _demo_export
        d = Path(tempfile.mkdtemp(prefix='medcases-serve-'))
        _CACHE.update(pkl=_demo_export(d, size=48, n_per_class=12), dir=d, cell=sorted(d.rglob('*.png'))[0])
    return _CACHE['pkl']

def a_cell() -> bytes: tiny_export(); return _CACHE['cell'].read_bytes()

def img_bytes(im, fmt='PNG', **kw) -> bytes:
    buf = io.BytesIO(); im.save(buf, format=fmt, **kw); return buf.getvalue()

def png_header(w, h) -> bytes:
    "A valid PNG header claiming a w x h image, followed by almost no pixel data."
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'\0' * 64)) + chunk(b'IEND', b''))

@pytest.fixture(scope='session')
def model_file(): return tiny_export()

@pytest.fixture(scope='session')
def predictor(model_file):
    from lib.serve import Predictor
    return Predictor.from_file(model_file)

def _env():
    return dict(os.environ, GRADIO_ANALYTICS_ENABLED='False', HF_HUB_OFFLINE='1', MEDCASES_OFFLINE='1', OMP_NUM_THREADS='1')

@pytest.fixture(scope='module')
def cli(model_file):
    "`python -m lib.serve MODEL --port 0` started early (its imports take a while here); always stopped."
    p = subprocess.Popen([sys.executable, '-m', 'lib.serve', str(model_file), '--port', '0', '--no-heatmap'], cwd=ROOT,
                         env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield p
    if p.poll() is None: p.send_signal(signal.SIGINT)
    try: p.wait(15)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

@pytest.fixture(scope='module')
def url(predictor, cli):
    from lib.serve import _Server, make_app
    with _Server(make_app(predictor)) as srv:  # 127.0.0.1, a free port; always stopped
        yield srv.url
    assert not srv.thread.is_alive(), 'the server thread did not stop'

def post(url, data, name='image.png', ctype='image/png', timeout=60):
    return requests.post(f'{url}/api/predict', files={'file': (name, data, ctype)}, timeout=timeout)

def check_prediction(js, vocab):
    assert set(js['probabilities']) == set(vocab)
    assert abs(sum(js['probabilities'].values()) - 1) < 1e-5
    assert js['label'] == max(js['probabilities'], key=js['probabilities'].get)
    assert js['probability'] == js['probabilities'][js['label']]
    assert js['heatmap'].startswith('data:image/png;base64,')
    heat = Image.open(io.BytesIO(base64.b64decode(js['heatmap'].split(',', 1)[1])))
    assert heat.format == 'PNG' and heat.width > heat.height > 0

def test_health(url, predictor):
    js = requests.get(f'{url}/api/health', timeout=10).json()
    assert js == {'status': 'ok', 'model': 'export.pkl', 'classes': ['Parasitized', 'Uninfected']}

def test_predict_png(url, predictor):
    r = post(url, a_cell())
    assert r.status_code == 200, r.text
    js = r.json()
    check_prediction(js, predictor.vocab)
    assert js['image']['mode'] == 'RGB' and js['model'] == 'export.pkl'
    # the same answer as calling the shared prediction function directly
    assert js['label'] == predictor(a_cell())['label']

@pytest.mark.parametrize('mode', ['L', 'RGBA', 'LA', 'P', 'I;16', 'CMYK'])
def test_other_modes_are_converted(url, predictor, mode):
    im = Image.open(io.BytesIO(a_cell())).convert('RGBA' if mode in ('RGBA', 'LA') else 'RGB')
    if mode == 'I;16': im = Image.fromarray((np.asarray(im.convert('L'), np.uint16) * 16))
    elif mode != 'RGBA': im = im.convert(mode)
    fmt = 'JPEG' if mode == 'CMYK' else 'PNG'
    r = post(url, img_bytes(im, fmt), f'x.{fmt.lower()}', f'image/{fmt.lower()}')
    assert r.status_code == 200, r.text
    check_prediction(r.json(), predictor.vocab)
    assert r.json()['image']['mode'] == im.mode

def test_jpeg_and_large_photo(url, predictor):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8))
    r = post(url, img_bytes(big, 'JPEG', quality=70), 'photo.jpg', 'image/jpeg')
    assert r.status_code == 200, r.text
    assert r.json()['image'] == {'width': 4000, 'height': 3000, 'mode': 'RGB'}

@pytest.mark.parametrize('what,data,status,says', [
    ('empty upload', b'', 400, 'empty'),
    ('text file', b'patient notes, not an image', 400, 'not an image'),
    ('the model file itself', None, 400, 'not an image'),
    ('truncated PNG', 'truncated', 400, 'damaged or truncated'),
    ('7000 x 7000 header', png_header(7000, 7000), 413, '49 megapixels'),
    ('20000 x 20000 header', png_header(20000, 20000), 413, '400 megapixels'),
])
def test_bad_uploads_get_a_message(url, model_file, what, data, status, says):
    if data is None: data = model_file.read_bytes()[:1_000_000]  # uploads are read as images, never unpickled
    if data == 'truncated': data = a_cell()[:len(a_cell()) // 2]
    r = post(url, data)
    assert r.status_code == status, (what, r.status_code, r.text)
    assert says in r.json()['error'], r.json()
    assert 'Traceback' not in r.text

@pytest.mark.parametrize('side,says', [(7000, '49 megapixels'), (20000, '400 megapixels')])
def test_real_decompression_bomb(url, monkeypatch, side, says):
    "A real huge PNG (a few kB on disk) is refused from its header: no pixel is decoded (PIL's load is never called)."
    from PIL import ImageFile
    bomb = img_bytes(Image.new('1', (side, side)), optimize=True)
    assert len(bomb) < 200_000
    loads = []  # the server runs in this process (a thread), so it sees these wrappers
    for cls in (Image.Image, ImageFile.ImageFile):
        orig = cls.load
        monkeypatch.setattr(cls, 'load', lambda self, *a, _orig=orig, **kw: loads.append(self.size) or _orig(self, *a, **kw))
    r = post(url, bomb)
    assert r.status_code == 413 and says in r.json()['error'], r.text
    assert loads == [], f'pixels were decoded before the upload was refused: {loads}'
    r = post(url, a_cell())  # the wrappers do count a real decode
    assert r.status_code == 200 and loads, (r.status_code, loads)

def test_too_many_bytes(url):
    r = post(url, b'\0' * (21 * 2**20))
    assert r.status_code == 413 and 'the limit is 20 MB' in r.json()['error'], r.text

def test_no_file_field(url):
    r = requests.post(f'{url}/api/predict', timeout=10)
    assert r.status_code == 400 and "field 'file'" in r.json()['error']

def test_still_serving_after_bad_input_and_concurrent_requests(url, predictor):
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda d: post(url, d), [a_cell(), b'junk'] * 8))
    assert [r.status_code for r in rs] == [200, 400] * 8
    assert len({r.json()['label'] for r in rs[::2]}) == 1, 'the same image must get the same answer'
    assert requests.get(f'{url}/api/health', timeout=10).status_code == 200

def test_unexpected_failure_is_a_short_500():
    from lib.serve import _safe_call
    def broken(data): raise RuntimeError('secret detail')
    res, status = _safe_call(broken, b'x')
    assert status == 500 and 'secret' not in res['error'] and 'RuntimeError' in res['error']

def test_web_page_is_served(url):
    r = requests.get(url + '/', timeout=10)
    assert r.status_code == 200 and 'gradio' in r.text.lower()

def test_command_line_serves_on_loopback(cli):
    "`python -m lib.serve MODEL --port 0`: binds 127.0.0.1, answers REST requests, stops on Ctrl+C."
    out, deadline = '', time.monotonic() + 120
    while 'Ctrl+C' not in out and time.monotonic() < deadline and cli.poll() is None:
        out += cli.stdout.readline()
    m = re.search(r'web page : (http://[\d.]+:\d+)/', out)
    assert m, out
    url = m[1]
    assert url.startswith('http://127.0.0.1:'), url
    for _ in range(100):  # the socket is bound before the banner; uvicorn needs a moment more
        try: requests.get(f'{url}/api/health', timeout=2); break
        except requests.ConnectionError: time.sleep(0.1)
    r = post(url, a_cell())
    assert r.status_code == 200 and 'heatmap' not in r.json(), r.text
    cli.send_signal(signal.SIGINT)
    assert cli.wait(15) in (0, -signal.SIGINT), cli.returncode

def test_command_line_without_a_model_says_why(tmp_path, capsys):
    "The command's own code path, run in this process (a second interpreter would cost ~30 s of imports here)."
    from lib.serve import _main
    with pytest.raises(SystemExit) as e: _main([str(tmp_path/'nothing.pkl')])
    err = capsys.readouterr().err
    assert e.value.code == 2 and 'no such file' in err and 'Traceback' not in err, err
    with pytest.raises(SystemExit) as e: _main(['--port', 'eighty'])
    assert e.value.code == 2 and 'invalid int value' in capsys.readouterr().err

def test_default_host_is_loopback():
    from lib.serve import _make_parser
    assert _make_parser().parse_args([]).host == '127.0.0.1'

def test_no_model_given_serves_only_models_folder_and_says_which(tmp_path, capsys, monkeypatch):
    "With no path, only models/ is searched (never results/ or elsewhere), and the file chosen is printed."
    from lib.serve import _find_export
    (tmp_path/'pyproject.toml').write_text('[project]\nname = "medcases"\n')
    (tmp_path/'results').mkdir(); (tmp_path/'results'/'newer.pkl').write_bytes(b'not loaded')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match='no exported model'): _find_export()
    (tmp_path/'models'/'malaria-smoke').mkdir(parents=True)
    old, new = tmp_path/'models'/'old.pkl', tmp_path/'models'/'malaria-smoke'/'malaria.pkl'
    old.write_bytes(b'x'); new.write_bytes(b'x'); os.utime(old, (1, 1))
    os.utime(tmp_path/'results'/'newer.pkl')  # the newest .pkl of all, but not in models/
    assert _find_export().resolve() == new.resolve()
    out = capsys.readouterr().out
    assert 'Loading models/malaria-smoke/malaria.pkl' in out and 'python -m lib.serve path/to/export.pkl' in out, out
    assert str(tmp_path) not in out, out

def test_help_says_what_is_served_by_default():
    from lib.serve import _make_parser
    h = _make_parser().format_help()
    assert 'models/' in h and 'results/' not in h and 'runs code' in h, h

def test_spaces_requirements_drop_local_versions():
    from lib.serve import _spaces_requirements
    req = _spaces_requirements(['torch', 'torchvision', 'fastai'], versions={'torch': '2.5.1+cu121', 'torchvision': '0.20.1+cu121', 'fastai': '2.8.1'})
    assert req == 'torch==2.5.1\ntorchvision==0.20.1\nfastai==2.8.1\n', req
    assert all('==' in l and '+' not in l for l in _spaces_requirements().splitlines())

def test_space_title_comes_from_the_model(predictor, model_file, tmp_path):
    "app.py names the served model's classes (or the title given), not a fixed case study."
    from lib.serve import classes_title, _spaces_app, _write_space
    app = _spaces_app()
    assert 'Malaria' not in app and 'classes_title(predictor.vocab)' in app
    assert classes_title(predictor.vocab).startswith('Parasitized / Uninfected classifier')
    assert classes_title(['polyps', 'ulcer']).startswith('polyps / ulcer classifier')
    d = _write_space(tmp_path/'space', model_file, title='Kvasir demo')
    src = (d/'app.py').read_text()
    compile(src, 'app.py', 'exec')
    assert "title='Kvasir demo'" in src and (d/'export.pkl').is_file() and (d/'lib'/'serve.py').is_file()
