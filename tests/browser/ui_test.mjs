// Browser tests of `latentforge serve`'s web UI: Debian's Chromium, driven by playwright-core.
//
//   node tests/browser/ui_test.mjs --binary build/latentforge [--screenshots DIR] [--keep]
//                                  [--web-dir web] [--work DIR]
//
// It trains small models with the CLI (Fashion-MNIST from Debian's dataset-fashion-mnist), starts
// `serve --port 0` on them, and drives every page as a user would: clicks, uploads, sliders,
// mouse strokes on the sketch canvas. A test fails on any uncaught page error or console error
// (CSP violations and failed loads show there). Exits 77 (ctest: skipped) when Chromium or
// tests/browser/node_modules is missing: scripts/setup.sh and scripts/setup_browser_tests.sh
// install them. Pages the binary does not serve yet are skipped, each with its reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const CHROMIUM = '/usr/bin/chromium';
const SKIP = 77;

// ---- options ------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { binary: path.join(REPO, 'build/latentforge'), screenshots: null, keep: false,
    webDir: null, work: null };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--binary') opts.binary = path.resolve(value());
    else if (a === '--screenshots') opts.screenshots = path.resolve(value());
    else if (a === '--web-dir') opts.webDir = path.resolve(value());  // LF_WEB_DIR: pages from disk
    else if (a === '--work') opts.work = path.resolve(value());  // reuse trained models there
    else if (a === '--keep') opts.keep = true;
    else if (a.startsWith('--test')) continue;  // node:test's own flags (--test-reporter=...)
    else throw new Error(`ui_test: unknown argument ${a} (see the comment at the top of the file)`);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

function skipAll(reason) {
  console.log(`SKIP browser tests: ${reason}`);
  process.exit(SKIP);
}
if (!fs.existsSync(CHROMIUM)) skipAll(`${CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)`);
if (!fs.existsSync(path.join(HERE, 'node_modules/playwright-core'))) {
  skipAll('tests/browser/node_modules is missing (run scripts/setup_browser_tests.sh)');
}
if (!fs.existsSync(opts.binary)) {
  console.error(`ui_test: no latentforge binary at ${opts.binary} (--binary)`);
  process.exit(1);
}
const { chromium } = await import('playwright-core');

// ---- processes: everything started here is stopped on every way out -----------------------------

const children = new Set();
let work = null;         // the folder of the trained models (a temporary one unless --work)
let ownWork = false;     // made here, so removed at the end
let server = null;       // { proc, url, stdout, stderr }
let browser = null;

function track(proc) {
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return proc;
}

function killChildren(signal = 'SIGKILL') {
  for (const proc of children) {
    try { proc.kill(signal); } catch { /* already gone */ }
  }
}

// A process's start time in clock ticks after boot (/proc/PID/stat, field 22).
function startTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}
const SELF_START = startTicks(process.pid);

// Processes started after this one whose command line names the work folder (a trainer the
// server started, for one), found in /proc: this test started them, so they end by their pid.
function strays() {
  if (!work) return [];
  const found = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(work) && startTicks(pid) >= SELF_START) {
        found.push({ pid: Number(pid), cmdline: cmdline.trim() });
      }
    } catch { /* ended meanwhile */ }
  }
  return found;
}

process.on('exit', () => {
  killChildren();
  for (const s of strays()) {
    try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  if (ownWork && !opts.keep) fs.rmSync(work, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`ui_test: ${signal}, stopping`);
    process.exit(130);  // runs the exit handler above (the browser dies with its pipe)
  });
}

// ---- small helpers ------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (t0) => ((Date.now() - t0) / 1000).toFixed(1);

// Runs the CLI; resolves with its output, rejects with the tail of it on a non-zero exit.
function run(args, { env = {}, timeoutMs = 300000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = track(spawn(opts.binary, args, { env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`latentforge ${args.join(' ')}: exit ${code ?? signal}\n${out.slice(-2000)}`));
    });
  });
}

// A PNG written byte by byte (8-bit RGB, no filter): the upload, with no image library.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; ++k) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
// pixel(x, y) -> [r, g, b] in 0..255
function writePng(width, height, pixel) {
  const rows = [];
  for (let y = 0; y < height; ++y) {
    const row = Buffer.alloc(1 + 3 * width);  // filter byte 0, then RGB
    for (let x = 0; x < width; ++x) row.set(pixel(x, y), 1 + 3 * x);
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);  // 8 bits, RGB, deflate, no filter method, no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    pngChunk('IEND', Buffer.alloc(0))]);
}
// A light shirt-like shape on black, 56x56 (the server centre-crops and resizes it to 28x28).
function shirtPng() {
  return writePng(56, 56, (x, y) => {
    const body = x >= 16 && x < 40 && y >= 10 && y < 50;
    const sleeves = y >= 10 && y < 24 && x >= 6 && x < 50;
    const v = body || sleeves ? 200 + ((x * 7 + y * 3) % 40) : 0;
    return [v, v, v];
  });
}

// ---- models: trained by the CLI, small and quick ------------------------------------------------

// A few dozen steps on the first 2000 training images; evaluation on 200 test images. Each of
// the three first stages and then the two priors train side by side with one thread each.
const QUICK = ['--set', 'data.limit=2000', '--set', 'train.batch_size=32', '--set', 'train.log_every=5',
  '--set', 'train.warmup_steps=5', '--set', 'train.checkpoint_every=1000', '--eval-limit', '200'];

async function trainModels(models) {
  const cfg = (name) => path.join(REPO, 'configs', `${name}.yaml`);
  const out = (name) => path.join(models, name);
  const train = (name, config, steps, extra = []) => {
    if (fs.existsSync(path.join(out(name), 'model.safetensors'))) return Promise.resolve();  // --work
    return run(['--threads', '1', 'train', '--config', cfg(config), '--set', `train.steps=${steps}`,
      ...QUICK, ...extra, '--force', '--out', out(name)]);
  };
  await Promise.all([
    train('vqvae', 'vqvae_fashion', 40),
    train('vae', 'vae_fashion', 40),
    train('vqvae_edges', 'vqvae_fashion_edges', 30),
  ]);
  await Promise.all([
    train('gpt', 'gpt_fashion', 12, ['--set', `stage1=${out('vqvae')}`]),
    train('gpt_sketch', 'gpt_fashion_sketch', 8,
      ['--set', `stage1=${out('vqvae')}`, '--set', `cond_stage=${out('vqvae_edges')}`]),
  ]);
}

// ---- the server ---------------------------------------------------------------------------------

// Whether `serve` takes an option (a binary without --configs cannot start training from a page).
function serveSupports(flag) {
  const help = spawnSync(opts.binary, ['serve', '--help'], { encoding: 'utf8' });
  return `${help.stdout}${help.stderr}`.includes(flag);
}

async function startServer(models) {
  const args = ['--threads', '1', 'serve', '--models', models, '--port', '0'];
  const configs = serveSupports('--configs');
  if (configs) args.push('--configs', path.join(REPO, 'configs'));
  const env = { ...process.env };
  if (opts.webDir) env.LF_WEB_DIR = opts.webDir;
  const proc = track(spawn(opts.binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const s = { proc, url: null, stdout: '', stderr: '', configs };
  proc.stderr.on('data', (d) => { s.stderr += d; });
  s.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no address in 30 s:\n${s.stderr}`)), 30000);
    proc.stdout.on('data', (d) => {
      s.stdout += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.stdout);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited (${code}):\n${s.stderr}`)); });
  });
  return s;
}

async function stopServer() {
  if (!server || server.proc.exitCode !== null) return;
  const exited = new Promise((resolve) => server.proc.on('exit', resolve));
  server.proc.kill('SIGTERM');
  const t = setTimeout(() => server.proc.kill('SIGKILL'), 10000);
  await exited;
  clearTimeout(t);
}

async function api(pathname, init) {
  const response = await fetch(server.url + pathname, init);
  const body = await response.json().catch(() => null);
  return { status: response.status, body };
}

// Whether this binary serves a page (a binary older than a page skips that page's tests).
async function serves(page) {
  const response = await fetch(`${server.url}/${page}`);
  await response.arrayBuffer();
  return response.ok;
}

// ---- pages: errors collected, a full-page screenshot at the end (also of a failed test) ----------

async function withPage(name, body) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = msg.location().url || '';
    errors.push(`console error: ${msg.text()}${url ? ` (${url.replace(server.url, '')})` : ''}`);
  });
  page.setDefaultTimeout(30000);
  try {
    await body(page);
    await sleep(200);  // a late error from the last action still counts
  } finally {
    if (opts.screenshots) {
      await page.screenshot({ path: path.join(opts.screenshots, `${name}.png`), fullPage: true })
        .catch((e) => console.error(`screenshot ${name}: ${e.message}`));
    }
    await context.close();
  }
  assert.deepEqual(errors, [], `errors on the ${name} page`);
}

// An <img>'s src once it has one (and the image has loaded).
async function imageSrc(page, selector) {
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return img && img.src && img.complete && img.naturalWidth > 0;
  }, selector);
  return page.$eval(selector, (img) => img.src);
}

// Waits until an <img>'s src differs from `old` and the new image has loaded.
async function imageChanges(page, selector, old) {
  await page.waitForFunction(([sel, before]) => {
    const img = document.querySelector(sel);
    return img && img.src && img.src !== before && img.complete && img.naturalWidth > 0;
  }, [selector, old]);
  return page.$eval(selector, (img) => img.src);
}

// Sets a range / number input as a user would, so its input and change events fire.
async function setValue(page, selector, value) {
  await page.$eval(selector, (el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

// ---- setup and teardown -------------------------------------------------------------------------

before(async () => {
  const t0 = Date.now();
  if (opts.work) {
    work = opts.work;
    fs.mkdirSync(work, { recursive: true });
  } else {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lf-browser-'));
    ownWork = true;
  }
  if (opts.screenshots) fs.mkdirSync(opts.screenshots, { recursive: true });
  const models = path.join(work, 'models');
  fs.mkdirSync(models, { recursive: true });
  await trainModels(models);
  console.log(`# models trained in ${seconds(t0)} s (${work})`);
  server = await startServer(models);
  console.log(`# serving ${server.url}${server.configs ? '' : ' (this binary has no serve --configs yet)'}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  console.log(`# Chromium ${browser.version()}, ready after ${seconds(t0)} s`);
}, { timeout: 600000 });

after(async () => {
  // A training run started from the page is stopped before the server is.
  if (server && server.configs) {
    const { body } = await api('/api/training').catch(() => ({ body: null }));
    if (body && body.state === 'running' && body.run) {
      await api(`/api/runs/${encodeURIComponent(body.run)}/stop`, { method: 'POST',
        headers: { Origin: server.url } }).catch(() => {});
      for (let i = 0; i < 100; ++i) {
        const s = await api('/api/training').catch(() => ({ body: null }));
        if (!s.body || s.body.state === 'idle') break;
        await sleep(200);
      }
    }
  }
  if (browser) await browser.close().catch(() => {});
  await stopServer();
  const left = strays();
  for (const s of left) {
    try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  assert.deepEqual(left.map((s) => s.cmdline), [], 'processes left running after the server stopped');
});

// ---- the pages that exist -----------------------------------------------------------------------

const MODELS = { vqvae: 'vqvae', vae: 'vae', vqvae_edges: 'vqvae', gpt: 'gpt', gpt_sketch: 'gpt' };

test('models page lists every model with its kind', { timeout: 60000 }, async () => {
  await withPage('models', async (page) => {
    await page.goto(`${server.url}/`);
    await page.waitForFunction((n) => document.querySelectorAll('#models tbody tr').length >= n,
      Object.keys(MODELS).length);
    const rows = await page.$$eval('#models tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
    const kinds = Object.fromEntries(rows.map((cells) => [cells[0], cells[1]]));
    // (With --work, runs started by an earlier test run are listed too.)
    for (const [name, kind] of Object.entries(MODELS)) assert.equal(kinds[name], kind, `the kind of ${name}`);
    assert.match(await page.textContent('#status'), new RegExp(`^${rows.length} model`));
    // The VQ-VAE's row: a PSNR from its metrics.json and links to the other pages.
    const vq = rows.find((cells) => cells[0] === 'vqvae');
    assert.match(vq.join(' '), /\d+\.\d+ dB/);
    const links = await page.$$eval('#models tbody tr a', (as) => as.map((a) => a.getAttribute('href')));
    assert.ok(links.includes('/reconstruct.html?model=vqvae'), links.join(' '));
    assert.ok(links.includes('/train.html?run=vqvae'), links.join(' '));
  });
});

test('reconstruct page: upload a PNG, see input, reconstruction, error map and PSNR', { timeout: 90000 }, async () => {
  await withPage('reconstruct', async (page) => {
    await page.goto(`${server.url}/reconstruct.html?model=vqvae`);
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
    assert.deepEqual(options.sort(), ['vae', 'vqvae', 'vqvae_edges']);  // the priors reconstruct nothing
    assert.equal(await page.inputValue('#model'), 'vqvae');
    await page.setInputFiles('#file', { name: 'shirt.png', mimeType: 'image/png', buffer: shirtPng() });
    await page.click('#run');
    await page.waitForSelector('#result:not(.hidden)', { timeout: 60000 });
    for (const id of ['img-input', 'img-reconstruction', 'img-error']) {
      const src = await imageSrc(page, `#${id}`);
      assert.match(src, /^data:image\/png;base64,/);
      const size = await page.$eval(`#${id}`, (img) => [img.naturalWidth, img.naturalHeight]);
      assert.ok(size[0] >= 28 && size[0] === size[1], `${id}: ${size}`);
    }
    assert.match(await page.textContent('#psnr'), /^\d+\.\d\d dB$/);
    assert.match(await page.textContent('#ssim'), /^-?\d\.\d{4}$/);
    assert.match(await page.textContent('#shape'), /28×28, 1 channel/);
  });
});

test('train page follows the VQ-VAE run: uPlot charts and the run pictures', { timeout: 60000 }, async () => {
  await withPage('train', async (page) => {
    await page.goto(`${server.url}/train.html?run=vqvae`);
    await page.waitForFunction(() => document.querySelectorAll('#charts .chart canvas').length >= 4);
    const titles = await page.$$eval('#charts .chart h2', (hs) => hs.map((h) => h.textContent));
    for (const t of ['loss terms', 'learning rate', 'codebook']) assert.ok(titles.includes(t), titles.join(', '));
    assert.match(await page.textContent('#status'), /step 40( of 40)?: loss \d/);
    // uPlot drew into its canvases (something other than a blank canvas).
    const drawn = await page.$$eval('#charts canvas', (cs) => cs.map((c) => c.width > 0 && c.height > 0));
    assert.ok(drawn.every(Boolean));
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('#pictures img')];
      return imgs.length >= 3 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    });
    // Log scale and smoothing redraw without errors.
    await page.check('#logy');
    await setValue(page, '#smooth', 0.9);
    assert.equal(await page.textContent('#smooth-value'), '0.90');
    await page.waitForFunction(() => document.querySelectorAll('#charts .chart canvas').length >= 4);
  });
});

// ---- the codebook, latent and sample pages ------------------------------------------------------

// Skips test `t` unless the binary serves `page` (the pages written alongside the server).
async function needsPage(t, page) {
  if (await serves(page)) return true;
  t.skip(`${page} is not served by this binary`);
  return false;
}

// The centre of cell (row, col) of a canvas split into rows x cols cells, in page coordinates.
async function cellCentre(page, selector, row, col, rows, cols) {
  const box = await page.locator(selector).boundingBox();
  return [box.x + (col + 0.5) * box.width / cols, box.y + (row + 0.5) * box.height / rows];
}

test('codebook page: encode a test image, paint code cells, see the decode change', { timeout: 120000 }, async (t) => {
  if (!await needsPage(t, 'codebook.html')) return;
  await withPage('codebook', async (page) => {
    await page.goto(`${server.url}/codebook.html?model=vqvae`);
    await page.waitForSelector('#model option[value="vqvae"]', { state: 'attached' });
    assert.equal(await page.inputValue('#model'), 'vqvae');
    // Only VQ models are offered.
    const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
    assert.deepEqual(options.sort(), ['vqvae', 'vqvae_edges']);
    // Picking a test image encodes it.
    await page.click('#image-thumb-3');
    await page.waitForSelector('#editor:not(.hidden)', { timeout: 60000 });
    for (const id of ['img-input', 'img-reconstruction']) await imageSrc(page, `#${id}`);
    const before = await imageSrc(page, '#img-edited');
    assert.match(await page.textContent('#reconstruction-caption'), /PSNR \d+\.\d\d dB; 7×7 codes/);
    // Hovering a cell names its code; paint the middle row with a code none of its cells has.
    // (Cell positions are taken afresh before each use: filling #code may scroll the page.)
    await page.locator('#code-map').scrollIntoViewIfNeeded();
    const row = [];
    for (let c = 0; c < 7; ++c) {
      await page.mouse.move(...await cellCentre(page, '#code-map', 3, c, 7, 7));
      await page.waitForFunction((col) => new RegExp(`column ${col}: code \\d+`).test(document.getElementById('cell-info').textContent), c);
      row.push(Number(/code (\d+)/.exec(await page.textContent('#cell-info'))[1]));
    }
    let code = 0;
    while (row.includes(code)) ++code;
    await page.fill('#code', String(code));
    await page.locator('#code-map').scrollIntoViewIfNeeded();
    const paintRow = async () => {
      await page.mouse.move(...await cellCentre(page, '#code-map', 3, 0, 7, 7));
      await page.mouse.down();
      for (let c = 1; c < 7; ++c) {
        await page.mouse.move(...await cellCentre(page, '#code-map', 3, c, 7, 7), { steps: 3 });
      }
      await page.mouse.up();
    };
    await paintRow();
    assert.match(await page.textContent('#edited-caption'), /7 cell\(s\) changed/);
    const after = await imageChanges(page, '#img-edited', before);
    assert.notEqual(after, before);
    // The map filled with the selected code, and the code usage over the test split.
    await imageSrc(page, '#img-fill:not(.hidden)');
    assert.match(await page.textContent('#fill-caption'), new RegExp(`filled with code ${code}`));
    await page.waitForFunction(() => /of 256/.test(document.getElementById('usage-used').textContent), null, { timeout: 60000 });
    await page.waitForSelector('#histogram:not(.hidden) canvas');
    // Reset puts the reconstruction back; painting again gives the same decode as before.
    await page.click('#reset');
    assert.equal(await imageSrc(page, '#img-edited'), await imageSrc(page, '#img-reconstruction'));
    await page.locator('#code-map').scrollIntoViewIfNeeded();
    await paintRow();
    assert.equal(await imageChanges(page, '#img-edited', before), after);
    await page.mouse.move(0, 0);
  });
});

test('latent page: interpolate two test images, move the slider, traverse, sample the VAE', { timeout: 120000 }, async (t) => {
  if (!await needsPage(t, 'latent.html')) return;
  await withPage('latent', async (page) => {
    await page.goto(`${server.url}/latent.html?model=vae`);
    await page.waitForSelector('#model option[value="vae"]', { state: 'attached' });
    assert.equal(await page.inputValue('#model'), 'vae');
    // A and B start as test images 0 and 1; choose another B.
    await page.waitForSelector('#a-thumb-0.selected');
    await page.click('#b-thumb-5');
    await page.waitForSelector('#b-thumb-5.selected');
    await page.fill('#steps', '7');
    await page.click('#interpolate');
    await page.waitForSelector('#interp-result:not(.hidden)', { timeout: 60000 });
    for (const id of ['img-a', 'img-b']) await imageSrc(page, `#${id}`);
    assert.equal(await page.locator('#frames img').count(), 7);
    const first = await imageSrc(page, '#img-frame');
    assert.match(await page.textContent('#frame-label'), /frame 1 of 7, t = 0\.000/);
    // The slider, by keyboard as a user moves it: End (the last frame), then one step back.
    await page.focus('#frame');
    await page.keyboard.press('End');
    const last = await imageChanges(page, '#img-frame', first);
    assert.match(await page.textContent('#frame-label'), /frame 7 of 7, t = 1\.000/);
    await page.keyboard.press('ArrowLeft');
    await imageChanges(page, '#img-frame', last);
    assert.match(await page.textContent('#frame-label'), /frame 6 of 7/);
    // Clicking a frame in the strip shows it.
    await page.click('#frames-0');
    assert.equal(await imageSrc(page, '#img-frame'), first);
    // Spherical mode runs too.
    await page.selectOption('#mode', 'spherical');
    await page.click('#interpolate');
    await page.waitForFunction(() => /spherical/.test(document.getElementById('frame-label').textContent), null, { timeout: 60000 });
    // Traversal of latent dimension 1.
    await page.fill('#dim', '1');
    await page.click('#traverse');
    await page.waitForSelector('#trav-result:not(.hidden)', { timeout: 60000 });
    const t0 = await imageSrc(page, '#img-tframe');
    await setValue(page, '#tframe', 8);
    await imageChanges(page, '#img-tframe', t0);
    assert.match(await page.textContent('#tframe-label'), /dimension \d+ \+ 3\.00/);
    // The VAE's own samples.
    await page.waitForSelector('#vae-samples:not(.hidden)');
    await page.fill('#n', '8');
    await page.click('#sample');
    await imageSrc(page, '#img-samples:not(.hidden)');
    assert.match(await page.textContent('#samples-caption'), /8 decodes/);
    // The latent's shape is shown (from capabilities.latent.shape, or at the latest from the
    // traversal's answer), and the traversal shifted the dimension asked for.
    assert.match(await page.textContent('#latent-shape'), /^latent \[16\]$/);
    assert.match(await page.textContent('#tframe-label'), /^dimension 1 /);
  });
});

test('sample page: sample one class, then complete a test image', { timeout: 120000 }, async (t) => {
  if (!await needsPage(t, 'sample.html')) return;
  await withPage('sample', async (page) => {
    await page.goto(`${server.url}/sample.html?model=gpt`);
    await page.waitForSelector('#model option[value="gpt"]', { state: 'attached' });
    assert.equal(await page.inputValue('#model'), 'gpt');
    const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
    assert.deepEqual(options.sort(), ['gpt', 'gpt_sketch']);
    await page.waitForFunction(() => document.querySelectorAll('#class option').length === 11);
    assert.ok(await page.isHidden('#sketch-section'));
    await page.selectOption('#class', '3');
    await page.fill('#n', '4');
    await page.click('#sample');
    await page.waitForSelector('#final:not(.hidden)', { timeout: 60000 });
    const grid = await imageSrc(page, '#img-grid');
    assert.match(await page.textContent('#grid-caption'), /4 sample\(s\), 7×7 codes, .*; class Dress/);
    // Complete test image 0 from its top half.
    await page.check('#complete');
    await page.waitForSelector('#complete-thumb-0.selected');
    await page.click('#sample');
    await page.waitForSelector('#given:not(.hidden)', { timeout: 60000 });
    await imageChanges(page, '#img-grid', grid);
    await imageSrc(page, '#img-given');
  });
});

test('sample page: draw a sketch with the mouse and sample from it', { timeout: 120000 }, async (t) => {
  if (!await needsPage(t, 'sample.html')) return;
  await withPage('sample_sketch', async (page) => {
    await page.goto(`${server.url}/sample.html?model=gpt_sketch`);
    await page.waitForSelector('#sketch-section:not(.hidden)');
    assert.ok(await page.isHidden('#class-label'));  // not class-conditional
    // Without a sketch: a message, no request.
    await page.click('#sample');
    assert.match(await page.textContent('#status'), /Draw a sketch first/);
    // A T-shirt outline in a few strokes.
    const box = await page.locator('#sketch').boundingBox();
    const at = (u, v) => [box.x + u * box.width, box.y + v * box.height];
    const strokes = [
      [[0.3, 0.15], [0.1, 0.3], [0.2, 0.42], [0.3, 0.35], [0.3, 0.88], [0.7, 0.88], [0.7, 0.35], [0.8, 0.42], [0.9, 0.3], [0.7, 0.15]],
      [[0.3, 0.15], [0.5, 0.25], [0.7, 0.15]],
    ];
    for (const s of strokes) {
      await page.mouse.move(...at(...s[0]));
      await page.mouse.down();
      for (const p of s.slice(1)) await page.mouse.move(...at(...p), { steps: 6 });
      await page.mouse.up();
    }
    const white = await page.$eval('#sketch', (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) n += d[i] > 128;
      return n / (c.width * c.height);
    });
    assert.ok(white > 0.05 && white < 0.6, `white fraction of the sketch: ${white}`);
    await page.fill('#n', '4');
    await page.click('#sample');
    await page.waitForSelector('#final:not(.hidden)', { timeout: 60000 });
    await imageSrc(page, '#img-grid');
    await page.waitForSelector('#sketch-seen:not(.hidden)');
    await imageSrc(page, '#img-sketch');
    assert.match(await page.textContent('#grid-caption'), /4 sample\(s\), 7×7 codes/);
  });
});

// ---- starting and stopping training from the train page -----------------------------------------

// The step the train page's status line shows ("step N: loss ..."), or -1.
async function shownStep(page) {
  const m = /step (\d+)(?: of \d+)?:/.exec(await page.textContent('#status'));
  return m ? Number(m[1]) : -1;
}

// The pixels of the first chart (the loss terms), to see it redrawn.
function lossChart(page) {
  return page.$eval('#charts .chart canvas', (c) => c.toDataURL());
}

test('train page: start a VQ-VAE run, watch its curves grow, stop and resume it', { timeout: 300000 }, async (t) => {
  if (!server.configs) return t.skip('this binary has no serve --configs (no training from the page)');
  await withPage('train_start', async (page) => {
    await page.goto(`${server.url}/train.html?run=vqvae`);
    await page.waitForSelector('#config option[value="vqvae_fashion"]', { state: 'attached' });
    await page.selectOption('#config', 'vqvae_fashion');
    assert.ok(!await page.$eval('#start-status', (el) => el.classList.contains('error')),
      `the start panel reports: ${await page.textContent('#start-status')}`);
    assert.match(await page.textContent('#config-info'), /vqvae, 1200 steps/);
    const name = await page.inputValue('#run-name');
    assert.match(name, /^vqvae_fashion(_\d+)?$/);
    await page.fill('#train-steps', '400');
    await page.click('#start');
    // The page switches to the new run once its folder is listed, and follows it live.
    await page.waitForFunction((n) => document.getElementById('run').value === n, name, { timeout: 60000 });
    await page.waitForFunction((n) => new RegExp(`training ${n}`).test(document.getElementById('training-state').textContent),
      name, { timeout: 60000 });
    await page.waitForFunction(() => document.querySelectorAll('#charts .chart canvas').length >= 3, null, { timeout: 120000 });
    const firstStep = await shownStep(page);
    const firstChart = await lossChart(page);
    assert.ok(firstStep > 0, `status: ${await page.textContent('#status')}`);
    // A later record arrives by itself and the loss chart is drawn again.
    await page.waitForFunction((s) => {
      const m = /step (\d+)(?: of \d+)?:/.exec(document.getElementById('status').textContent);
      return m && Number(m[1]) > s;
    }, firstStep, { timeout: 120000 });
    await page.waitForFunction((before) => document.querySelector('#charts .chart canvas').toDataURL() !== before,
      firstChart, { timeout: 10000 });
    // Stop: the trainer writes a checkpoint and exits; Resume continues it.
    assert.ok(await page.isEnabled('#stop'));
    await page.click('#stop');
    await page.waitForFunction(() => /no training process/.test(document.getElementById('training-state').textContent),
      null, { timeout: 120000 });
    const ended = await page.textContent('#training-state');  // checked at the end
    const stoppedAt = await shownStep(page);
    assert.ok(stoppedAt < 400, `stopped at step ${stoppedAt}`);
    await page.waitForSelector('#resume:not([disabled])');
    await page.click('#resume');
    await page.waitForFunction((n) => new RegExp(`training ${n}`).test(document.getElementById('training-state').textContent),
      name, { timeout: 60000 });
    await page.waitForFunction((s) => {
      const m = /step (\d+)(?: of \d+)?:/.exec(document.getElementById('status').textContent);
      return m && Number(m[1]) > s;
    }, stoppedAt, { timeout: 120000 });
    // The fixed test images' reconstructions over the steps, when the trainer wrote previews.
    const { body } = await api(`/api/runs/${encodeURIComponent(name)}/previews`);
    if (body && body.steps && body.steps.length) {
      await page.waitForSelector('#previews-panel:not(.hidden)');
      await imageSrc(page, '#img-preview');
    }
    await page.click('#stop');
    await page.waitForFunction(() => /no training process/.test(document.getElementById('training-state').textContent),
      null, { timeout: 120000 });
    // The state line says how the run ended (GET /api/training's last_exit: run, status, message).
    assert.match(ended, new RegExp(`last\\b.*\\b${name}\\b.*\\bstopped`), `training state after Stop: ${ended}`);
    assert.doesNotMatch(ended, /undefined/, `training state after Stop: ${ended}`);
  });
  const { body } = await api('/api/training');
  assert.equal(body.state, 'idle');
});
