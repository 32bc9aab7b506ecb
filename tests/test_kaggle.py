"""What a reader sees when Kaggle is not set up: one clear message, never the key.

The kaggle package's download calls are replaced by fakes raising the HTTP errors Kaggle answers with;
nothing touches the network.
"""
import pytest
import requests

from lib.data import KaggleSetupError, _kaggle_download

SECRET = 'f00dfeedc0ffee1234567890abcdef12'
COMP = 'histopathologic-cancer-detection'


@pytest.fixture
def no_creds(monkeypatch, tmp_path):
    "An empty home folder and no Kaggle variables."
    monkeypatch.setenv('HOME', str(tmp_path))
    for k in ('KAGGLE_API_TOKEN', 'KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_CONFIG_DIR', 'XDG_CONFIG_HOME'):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


@pytest.fixture
def creds(no_creds, monkeypatch):
    "A (fake) legacy username + key in the environment: enough for the kaggle package to authenticate offline."
    monkeypatch.setenv('KAGGLE_USERNAME', 'medcases-test')
    monkeypatch.setenv('KAGGLE_KEY', SECRET)
    return no_creds


def http_error(code):
    r = requests.Response(); r.status_code = code; r.url = f'https://www.kaggle.com/api/v1/x?key={SECRET}'
    return requests.HTTPError(f'{code} Client Error for url: {r.url}', response=r)


def fake(code):
    def download(self, *args, **kwargs): raise http_error(code)
    return download


def test_no_credentials(no_creds, tmp_path, capsys):
    with pytest.raises(KaggleSetupError) as e: _kaggle_download(COMP, tmp_path/'dl')
    msg = str(e.value)
    assert 'No Kaggle API token found' in msg and 'https://www.kaggle.com/settings' in msg
    assert '~/.kaggle/kaggle.json' in msg and 'KAGGLE_API_TOKEN' in msg


def test_competition_rules_not_accepted(creds, tmp_path, monkeypatch, capsys):
    from kaggle.api.kaggle_api_extended import KaggleApi
    monkeypatch.setattr(KaggleApi, 'competition_download_files', fake(403))
    with pytest.raises(KaggleSetupError) as e: _kaggle_download(COMP, tmp_path/'dl')
    msg = str(e.value)
    assert f'https://www.kaggle.com/competitions/{COMP}/rules' in msg and '403' in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__     # one error, not a chain of three
    out = capsys.readouterr()
    assert SECRET not in msg + out.out + out.err


def test_wrong_slug(creds, tmp_path, monkeypatch, capsys):
    from kaggle.api.kaggle_api_extended import KaggleApi
    monkeypatch.setattr(KaggleApi, 'dataset_download_files', fake(404))
    with pytest.raises(KaggleSetupError) as e: _kaggle_download('someone/no-such-data', tmp_path/'dl')
    msg = str(e.value)
    assert "no dataset called 'someone/no-such-data'" in msg and 'https://www.kaggle.com/datasets/someone/no-such-data' in msg
    out = capsys.readouterr()
    assert SECRET not in msg + out.out + out.err


def test_other_errors_never_show_the_key(creds, tmp_path, monkeypatch, capsys):
    from kaggle.api.kaggle_api_extended import KaggleApi
    def boom(self, *a, **k): raise RuntimeError(f'server said no to key {SECRET}')
    monkeypatch.setattr(KaggleApi, 'dataset_download_files', boom)
    with pytest.raises(KaggleSetupError) as e: _kaggle_download('a/b', tmp_path/'dl')
    assert SECRET not in str(e.value) and '***' in str(e.value)


def test_success_returns_the_zip(creds, tmp_path, monkeypatch):
    from kaggle.api.kaggle_api_extended import KaggleApi
    def download(self, slug, path=None, **kw): (tmp_path/'dl'/'breast-histopathology-images.zip').write_bytes(b'PK')
    monkeypatch.setattr(KaggleApi, 'dataset_download_files', download)
    fn = _kaggle_download('paultimothymooney/breast-histopathology-images', tmp_path/'dl')
    assert fn == tmp_path/'dl'/'breast-histopathology-images.zip' and fn.exists()
