#!/usr/bin/env python
"""Load test of `python -m lib.serve` on loopback: N requests to POST /api/predict from C concurrent clients.

The server runs as the reader would run it (its own process, 127.0.0.1, a free port); the clients are threads
here, each with its own HTTP connection, all posting the same real PNG. Prints the number of failures, the
median and 95th-percentile latency, and the throughput. Not a test: it prints figures (exit code 1 if any
request failed).
    .venv/bin/python bench/bench_serve.py                                   # a tiny synthetic model
    .venv/bin/python bench/bench_serve.py --model models/malaria-smoke/malaria.pkl --no-heatmap
"""
import argparse, os, re, signal, statistics, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import requests

ROOT = Path(__file__).resolve().parent.parent

def get_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', help='exported learner to serve (default: a tiny ResNet-18 on 64 px synthetic cells)')
    p.add_argument('--image', help='image to post (default: a synthetic malaria cell)')
    p.add_argument('--requests', type=int, default=200)
    p.add_argument('--concurrency', type=int, default=8)
    p.add_argument('--no-heatmap', action='store_true', help='serve without Grad-CAM')
    return p.parse_args(argv)

def tiny_model(d: Path) -> tuple[Path, Path]:
    "Export a ResNet-18 trained one epoch on synthetic malaria cells; return (export.pkl, one cell image)."
    from lib.serve import _demo_export
    return _demo_export(d, size=64, n_per_class=16), sorted(d.rglob('*.png'))[0]

def start_server(model, heatmap=True, timeout=180):
    "`python -m lib.serve model --port 0` in its own process; returns (process, base URL) once it answers."
    cmd = [sys.executable, '-m', 'lib.serve', str(model), '--port', '0', '--no-ui'] + ([] if heatmap else ['--no-heatmap'])
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED='False', HF_HUB_OFFLINE='1', MEDCASES_OFFLINE='1')
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, t0 = '', time.monotonic()
    while 'Ctrl+C' not in out:
        if p.poll() is not None or time.monotonic() - t0 > timeout: p.kill(); raise RuntimeError(f'server did not start:\n{out}')
        out += p.stdout.readline()
    url = re.search(r'web page : (http://[\d.]+:\d+)/', out)[1]
    threading.Thread(target=p.stdout.read, daemon=True).start()  # keep draining its log
    for _ in range(100):
        try: requests.get(f'{url}/api/health', timeout=2); break
        except requests.ConnectionError: time.sleep(0.1)
    return p, url

def run_load(url, data, n=200, concurrency=8):
    "Post `data` `n` times from `concurrency` threads (one session each); return (latencies in s, failures, wall time)."
    local = threading.local()
    def one(_):
        s = getattr(local, 's', None) or setattr(local, 's', requests.Session()) or local.s
        t = time.perf_counter()
        try:
            r = s.post(f'{url}/api/predict', files={'file': ('cell.png', data, 'image/png')}, timeout=120)
            ok = r.status_code == 200 and 'label' in r.json()
        except Exception: ok = False
        return time.perf_counter() - t, ok
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex: res = list(ex.map(one, range(n)))
    wall = time.perf_counter() - t0
    return [t for t, _ in res], sum(not ok for _, ok in res), wall

def pct(xs, q): xs = sorted(xs); return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]

def main(argv=None):
    a = get_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix='bench-serve-'))
    model, cell = (Path(a.model).resolve(), None) if a.model else tiny_model(tmp)
    if a.image: cell = Path(a.image)
    if cell is None: from lib.synthetic import make_malaria; make_malaria(tmp, n_per_class=1, size=128); cell = next(tmp.rglob('*.png'))
    data = cell.read_bytes()
    p, url = start_server(model, heatmap=not a.no_heatmap)
    try:
        run_load(url, data, n=2 * a.concurrency, concurrency=a.concurrency)  # warm-up, not counted
        lat, fails, wall = run_load(url, data, a.requests, a.concurrency)
    finally:
        p.send_signal(signal.SIGINT)
        try: p.wait(15)
        except subprocess.TimeoutExpired: p.kill()
    print(f'model {model.name}, image {len(data):,} bytes, heatmap {"off" if a.no_heatmap else "on"}, '
          f'{os.cpu_count()} CPU cores, torch threads: default')
    print(f'{a.requests} requests, {a.concurrency} concurrent clients: {fails} failed')
    print(f'latency median {statistics.median(lat) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms, '
          f'max {max(lat) * 1000:.0f} ms; throughput {a.requests / wall:.1f} requests/s')
    return 1 if fails else 0

if __name__ == '__main__': sys.exit(main())
