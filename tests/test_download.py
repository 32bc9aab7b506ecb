"""Downloads against a local web server that breaks connections and serves wrong bytes on purpose.

Nothing here touches the internet: the server listens on 127.0.0.1 on a free port.
"""
import gzip, hashlib, io, json, threading, zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lib.data import (_CorruptArchiveError, DownloadError, download_dataset, _download_url, _extract,
                      fetch_gunzip, _figshare_find, get_items)


class Handler(BaseHTTPRequestHandler):
    "Serves `server.files`; honours `Range: bytes=N-`; can cut a reply short, send wrong bytes or a short file."
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args): pass

    def _reply(self, code, body, ctype='application/octet-stream', length=None, extra=()):
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body) if length is None else length))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        srv.log.append((self.path, self.headers.get('Range')))
        if self.path in srv.json: return self._reply(200, json.dumps(srv.json[self.path]).encode(), 'application/json')
        if self.path not in srv.files: return self._reply(404, b'not found')
        data = srv.files[self.path]
        if srv.wrong.get(self.path, 0) > 0:                 # serve different bytes of the same length
            srv.wrong[self.path] -= 1
            data = bytes(255 - b for b in data)
        if srv.short.get(self.path, 0) > 0:                 # a complete reply, but of a file cut in half
            srv.short[self.path] -= 1
            data = data[:len(data)//2]
        start, code, extra = 0, 200, [('Accept-Ranges', 'bytes')]
        rng = self.headers.get('Range')
        if rng:
            start = int(rng.split('=')[1].split('-')[0])
            if start >= len(data): return self._reply(416, b'')
            code, extra = 206, extra + [('Content-Range', f'bytes {start}-{len(data)-1}/{len(data)}')]
        body = data[start:]
        if srv.cut.get(self.path, 0) > 0:                   # promise everything, send half, hang up
            srv.cut[self.path] -= 1
            self._reply(code, body[:len(body)//2], length=len(body), extra=extra)
            self.wfile.flush()
            self.close_connection = True
            return
        self._reply(code, body, extra=extra)

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        srv.log.append((self.path, body.decode()))
        if self.path in srv.json:
            reply = srv.json[self.path]
            if callable(reply): reply = reply(json.loads(body))
            return self._reply(200, json.dumps(reply).encode(), 'application/json')
        self._reply(404, b'[]')


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.files, srv.json, srv.cut, srv.wrong, srv.short, srv.log = {}, {}, {}, {}, {}, []
    srv.url = f'http://127.0.0.1:{srv.server_address[1]}'
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown(); srv.server_close()


def sha(b): return hashlib.sha256(b).hexdigest()
DATA = bytes(range(256)) * 4096 + b'tail'  # 1 MB and a bit


def gets(srv, path): return [r for p, r in srv.log if p == path]


def test_resumes_truncated_transfer(server, tmp_path):
    server.files['/big.bin'] = DATA
    server.cut['/big.bin'] = 1
    fn = _download_url(server.url + '/big.bin', tmp_path/'big.bin', sha256=sha(DATA), wait=0, progress=False)
    assert fn.read_bytes() == DATA
    ranges = gets(server, '/big.bin')
    assert ranges[0] is None and ranges[1].startswith('bytes=')          # the second request resumed …
    assert 0 < int(ranges[1][6:-1]) <= len(DATA)//2                       # … where the first one broke off
    assert not (tmp_path/'big.bin.part').exists()


def test_gives_up_after_retries(server, tmp_path):
    server.files['/big.bin'] = DATA
    server.cut['/big.bin'] = 10
    with pytest.raises(DownloadError, match='after 2 retries'):
        _download_url(server.url + '/big.bin', tmp_path/'big.bin', retries=2, wait=0, progress=False)
    assert not (tmp_path/'big.bin').exists()


def test_checksum_mismatch_downloads_again(server, tmp_path, capsys):
    server.files['/a.bin'] = DATA
    server.wrong['/a.bin'] = 1
    fn = _download_url(server.url + '/a.bin', tmp_path/'a.bin', sha256=sha(DATA), wait=0, progress=False)
    assert fn.read_bytes() == DATA and len(gets(server, '/a.bin')) == 2
    assert 'checksum mismatch' in capsys.readouterr().out


def test_checksum_mismatch_twice_is_an_error(server, tmp_path):
    server.files['/a.bin'] = DATA
    server.wrong['/a.bin'] = 2
    with pytest.raises(DownloadError, match='expected'):
        _download_url(server.url + '/a.bin', tmp_path/'a.bin', sha256=sha(DATA), wait=0, progress=False)
    assert not (tmp_path/'a.bin').exists() and not (tmp_path/'a.bin.part').exists()


def test_second_download_does_nothing(server, tmp_path):
    server.files['/a.bin'] = DATA
    for _ in range(2): _download_url(server.url + '/a.bin', tmp_path/'a.bin', sha256=sha(DATA), progress=False)
    assert len(gets(server, '/a.bin')) == 1


def test_bad_local_file_is_replaced(server, tmp_path):
    server.files['/a.bin'] = DATA
    (tmp_path/'a.bin').write_bytes(b'old and wrong')
    _download_url(server.url + '/a.bin', tmp_path/'a.bin', sha256=sha(DATA), progress=False)
    assert (tmp_path/'a.bin').read_bytes() == DATA


def md5(b): return hashlib.md5(b).hexdigest()


def test_md5_mismatch_downloads_again(server, tmp_path, capsys):
    server.files['/a.bin'] = DATA
    server.wrong['/a.bin'] = 1
    fn = _download_url(server.url + '/a.bin', tmp_path/'a.bin', md5=md5(DATA), wait=0, progress=False)
    assert fn.read_bytes() == DATA and len(gets(server, '/a.bin')) == 2
    assert 'checksum mismatch (md5' in capsys.readouterr().out


def test_md5_mismatch_twice_is_an_error(server, tmp_path):
    server.files['/a.bin'] = DATA
    server.wrong['/a.bin'] = 2
    with pytest.raises(DownloadError, match=f'a.bin: md5 is {md5(bytes(255 - b for b in DATA))}, expected {md5(DATA)}, twice'):
        _download_url(server.url + '/a.bin', tmp_path/'a.bin', md5=md5(DATA), wait=0, progress=False)
    assert len(gets(server, '/a.bin')) == 2
    assert not (tmp_path/'a.bin').exists() and not (tmp_path/'a.bin.part').exists()


def test_bad_local_file_is_replaced_md5(server, tmp_path):
    server.files['/a.bin'] = DATA
    (tmp_path/'a.bin').write_bytes(b'old and wrong')
    _download_url(server.url + '/a.bin', tmp_path/'a.bin', md5=md5(DATA), progress=False)
    assert (tmp_path/'a.bin').read_bytes() == DATA


GZ = gzip.compress(DATA)


def test_truncated_gz_is_fetched_again(server, tmp_path, capsys):
    server.files['/x.h5.gz'] = GZ
    server.short['/x.h5.gz'] = 1
    fn = fetch_gunzip(server.url + '/x.h5.gz', tmp_path/'x.h5', wait=0, progress=False)
    assert fn == tmp_path/'x.h5' and fn.read_bytes() == DATA
    assert len(gets(server, '/x.h5.gz')) == 2
    assert 'x.h5.gz is damaged or incomplete; downloading it again' in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ['x.h5']             # no .gz, no .part left


def test_truncated_gz_left_by_an_earlier_run_is_replaced(server, tmp_path):
    server.files['/x.h5.gz'] = GZ
    (tmp_path/'x.h5.gz').write_bytes(GZ[:len(GZ)//2])                         # no checksum would catch this
    fn = fetch_gunzip(server.url + '/x.h5.gz', tmp_path/'x.h5', wait=0, progress=False)
    assert fn.read_bytes() == DATA and len(gets(server, '/x.h5.gz')) == 1


def test_truncated_gz_twice_is_an_error(server, tmp_path):
    server.files['/x.h5.gz'] = GZ
    server.short['/x.h5.gz'] = 2
    url = server.url + '/x.h5.gz'
    with pytest.raises(_CorruptArchiveError, match=f'x.h5.gz downloaded from {url} is damaged or incomplete twice'):
        fetch_gunzip(url, tmp_path/'x.h5', wait=0, progress=False)
    assert len(gets(server, '/x.h5.gz')) == 2 and list(tmp_path.iterdir()) == []


def test_gz_md5_mismatch_downloads_again(server, tmp_path):
    server.files['/x.h5.gz'] = GZ
    server.wrong['/x.h5.gz'] = 1
    fn = fetch_gunzip(server.url + '/x.h5.gz', tmp_path/'x.h5', md5=md5(GZ), wait=0, progress=False)
    assert fn.read_bytes() == DATA and len(gets(server, '/x.h5.gz')) == 2


def test_second_fetch_gunzip_does_nothing(server, tmp_path):
    server.files['/x.h5.gz'] = GZ
    for _ in range(2): fn = fetch_gunzip(server.url + '/x.h5.gz', tmp_path/'x.h5', md5=md5(GZ), progress=False)
    assert fn.read_bytes() == DATA and len(gets(server, '/x.h5.gz')) == 1
    (tmp_path/'x.h5').write_bytes(b'kept')                                      # an existing result is not re-checked
    assert fetch_gunzip(server.url + '/x.h5.gz', tmp_path/'x.h5', progress=False).read_bytes() == b'kept'


def test_404_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match='404'):
        _download_url(server.url + '/nothing.zip', tmp_path/'x.zip', wait=0, progress=False)
    assert len(server.log) == 1


def malaria_zip() -> bytes:
    "A zip with the malaria layout: 2 slides x 2 classes x 2 PNG files."
    from PIL import Image
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for label in ('Parasitized', 'Uninfected'):
            for slide in ('C1P1thinF', 'C2P2thinF'):
                for i in range(2):
                    png = io.BytesIO(); Image.new('RGB', (8, 8), (i*50, 0, 0)).save(png, 'PNG')
                    z.writestr(f'cell_images/{label}/{slide}_IMG_2015_cell_{i}.png', png.getvalue())
    return buf.getvalue()


def test_truncated_zip_is_detected(tmp_path):
    z = malaria_zip()
    (tmp_path/'cut.zip').write_bytes(z[:len(z)//2])
    with pytest.raises(_CorruptArchiveError, match='damaged or incomplete'):
        _extract(tmp_path/'cut.zip', tmp_path/'out')
    bad = bytearray(z); bad[60:70] = b'\0'*10         # damage the first file's data: its CRC check fails
    (tmp_path/'bad.zip').write_bytes(bytes(bad))
    with pytest.raises(_CorruptArchiveError): _extract(tmp_path/'bad.zip', tmp_path/'out2')


def test_download_dataset_once(server, tmp_path, capsys):
    server.files['/cell_images.zip'] = malaria_zip()
    dest = tmp_path/'malaria'
    download_dataset('malaria', dest=dest, url=server.url + '/cell_images.zip', use_kaggle=False, progress=False)
    assert len(get_items('malaria', dest)) == 8
    assert not (dest/'downloads').exists()             # the archive is removed after extraction
    n = len(server.log)
    download_dataset('malaria', dest=dest, url=server.url + '/cell_images.zip', use_kaggle=False, progress=False)
    assert len(server.log) == n and 'already downloaded' in capsys.readouterr().out


def test_download_dataset_refetches_a_corrupt_archive(server, tmp_path):
    z = malaria_zip()
    server.files['/cell_images.zip'] = z
    server.json = {}
    # the first reply is a zip cut short (complete as far as HTTP knows); the second one is good
    calls = {'n': 0}
    orig = Handler.do_GET
    def do_GET(self):
        if self.path == '/cell_images.zip' and calls['n'] == 0:
            calls['n'] += 1; self.server.log.append((self.path, None))
            return self._reply(200, z[:len(z)//2])
        return orig(self)
    Handler.do_GET = do_GET
    try:
        dest = download_dataset('malaria', dest=tmp_path/'m', url=server.url + '/cell_images.zip', use_kaggle=False,
                                progress=False, wait=0)
    finally: Handler.do_GET = orig
    assert len(get_items('malaria', dest)) == 8 and len(gets(server, '/cell_images.zip')) == 2


def test_figshare_find_with_canned_reply(server):
    doi = '10.1371/journal.pone.0213626'
    server.json['/v2/articles/search'] = lambda q: ([{'id': 7, 'title': 'Actin images', 'doi': '10.6084/m9.figshare.7'}]
                                                   if q.get('resource_doi') == doi else [])
    server.json['/v2/articles/7/files'] = [{'name': 'MCF7.zip', 'download_url': server.url + '/files/1',
                                           'size': 123, 'computed_md5': 'abc'}]
    files = _figshare_find(doi, api=server.url + '/v2')
    assert files == [{'name': 'MCF7.zip', 'url': server.url + '/files/1', 'size': 123, 'md5': 'abc'}]
    assert _figshare_find('10.0000/none', api=server.url + '/v2') == []


def test_download_dataset_from_figshare(server, tmp_path, monkeypatch):
    "actin has no official archive and no Kaggle mirror: its zip comes through Figshare's API (canned answers, via the mirror)."
    from PIL import Image
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for k in ('MCF-10A', 'MCF-7', 'MDA-MB-231'):
            png = io.BytesIO(); Image.new('RGB', (8, 8)).save(png, 'PNG')
            z.writestr(f'Actin_images/{k}/cell1.png', png.getvalue())   # a wrapper folder, as Figshare's zip has
    server.files['/ndownloader.figshare.com/files/9'] = buf.getvalue()
    server.json['/api.figshare.com/v2/articles/search'] = lambda q: [{'id': 9}] if q.get('resource_doi') else []
    server.json['/api.figshare.com/v2/articles/9/files'] = [{'name': 'actin.zip', 'download_url': 'https://ndownloader.figshare.com/files/9',
                                                            'computed_md5': md5(buf.getvalue())}]
    monkeypatch.setenv('MEDCASES_MIRROR', server.url)
    dest = download_dataset('actin', dest=tmp_path/'actin', progress=False, wait=0)
    assert get_items('actin', dest).label.tolist() == ['MCF-10A', 'MCF-7', 'MDA-MB-231']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['actin']       # the downloads folder is gone
