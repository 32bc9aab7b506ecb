"""End to end in a real browser: Debian's Chromium (headless, driven by Playwright) opens the served page
with every non-loopback request blocked, uploads an image and reads the predicted class off the page.
Needs /usr/bin/chromium (`make test` installs Debian's chromium when it runs as root): skipped without it,
except when env CI is set, where it fails with the reason."""
import json, os, shutil, tempfile
from pathlib import Path

import pytest, requests

CHROMIUM = os.environ.get('MEDCASES_CHROMIUM', '/usr/bin/chromium')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
IN_CI = os.environ.get('CI', '').strip().lower() not in ('', '0', 'false', 'no')

UNAVAILABLE = None  # why the browser test cannot run here, if it cannot
if not Path(CHROMIUM).exists():
    UNAVAILABLE = f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) or set MEDCASES_CHROMIUM"
else:
    try: from playwright.sync_api import sync_playwright
    except ImportError: UNAVAILABLE = 'Python playwright is not installed (pip install playwright; it drives the system Chromium)'
if UNAVAILABLE and not IN_CI: pytest.skip(UNAVAILABLE, allow_module_level=True)

@pytest.fixture(scope='module', autouse=True)
def browser_available():
    "In CI (env CI set) a browser test that cannot run fails with the reason instead of being skipped silently."
    if UNAVAILABLE: pytest.fail(f'{UNAVAILABLE}. CI is set, so the browser test must run rather than be skipped: '
                                'install Chromium in the CI job (make browser, as root) or unset CI.', pytrace=False)

from test_serve import tiny_export, a_cell  # the same tiny exported learner (built once per session)

@pytest.fixture(scope='module')
def served():
    from lib.serve import Predictor, _Server, make_app
    predictor = Predictor.from_file(tiny_export())
    with _Server(make_app(predictor)) as srv:
        yield srv.url, predictor
    assert not srv.thread.is_alive()

@pytest.fixture(scope='module')
def browser_page(served):
    url, _ = served
    profile = tempfile.mkdtemp(prefix='medcases-chromium-')
    outside = []  # requests the page tried to make to anywhere but our server
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
        def only_loopback(route):
            if route.request.url.startswith(url) or route.request.url.startswith(('data:', 'blob:')): route.continue_()
            else: outside.append(route.request.url); route.abort()
        ctx.route('**/*', only_loopback)
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        try: yield page, outside
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)

def upload(page, url, path):
    page.goto(url + '/', wait_until='domcontentloaded')
    page.locator('#upload input[type=file]').set_input_files(str(path))

def test_upload_shows_prediction_probabilities_and_heatmap(served, browser_page, tmp_path):
    url, predictor = served
    page, outside = browser_page
    img = tmp_path/'cell.png'; img.write_bytes(a_cell())
    upload(page, url, img)
    page.wait_for_selector('#result:has-text("Predicted:")')
    shown = page.inner_text('#result')
    expected = predictor(a_cell())
    assert f"Predicted: {expected['label']}" in shown, shown
    probs = page.inner_text('#probs')
    assert all(c in probs for c in predictor.vocab), probs
    page.wait_for_selector('#heatmap img')
    assert page.locator('#heatmap img').evaluate('i => i.complete && i.naturalWidth') > 0
    page.screenshot(path=str(tmp_path/'page.png'), full_page=True)
    assert outside == [], f'the page tried to reach the internet (blocked, page still worked): {outside}'

def test_bad_file_gets_a_message_in_the_page(served, browser_page, tmp_path):
    url, _ = served
    page, _ = browser_page
    fake = tmp_path/'notes.png'; fake.write_bytes(b'these are notes, not an image')
    upload(page, url, fake)
    page.wait_for_selector('#result:has-text("Cannot classify this file")')
    assert 'not an image' in page.inner_text('#result')
    assert requests.get(f'{url}/api/health', timeout=10).json()['status'] == 'ok'
