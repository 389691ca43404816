// latentforge serve: the codebook page (VQ models). Encodes an image (POST encode) and draws its
// code map on a canvas, one colour per code id; painting cells re-decodes the edited map (POST
// decode, debounced); a map filled with the selected code is decoded beside it; the code usage over
// the test split (POST code_usage) is drawn as uPlot bars. Hovering a cell, a bar or a palette
// entry highlights that code everywhere.
'use strict';

const panel = new lf.JobPanel({ bar: 'bar', cancel: 'cancel', status: 'status' });
const editPanel = new lf.JobPanel({ status: 'edit-status' });
const usagePanel = new lf.JobPanel({ bar: 'usage-bar', cancel: 'usage-cancel', status: 'usage-status' });
const picker = new lf.ImagePicker('image', { onPick: () => encode() });

const state = {
  model: null,
  numCodes: 0,
  h: 0, w: 0,
  original: null,   // the encoded indices
  indices: null,    // the edited indices
  code: 0,          // the selected code
  highlight: null,  // the code highlighted by hovering, or null
  usage: null,      // the code_usage result
  hist: null,       // the uPlot histogram
  painting: false,
};

// A fixed categorical palette: golden-angle hues, three lightness levels.
const colorCache = new Map();
function codeColor(k) {
  if (!colorCache.has(k)) {
    const hue = (k * 137.50776) % 360;
    const light = [0.50, 0.36, 0.66][k % 3];
    const rgb = hslToRgb(hue / 360, 0.68, light);
    const luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
    colorCache.set(k, { fill: `rgb(${rgb.join(',')})`, text: luminance > 0.55 ? '#000' : '#fff' });
  }
  return colorCache.get(k);
}

function hslToRgb(h, s, l) {
  const q = l < 0.5 ? l * (1 + s) : l + s - l * s;
  const p = 2 * l - q;
  const channel = (t) => {
    t = (t + 1) % 1;
    const v = t < 1 / 6 ? p + (q - p) * 6 * t : t < 1 / 2 ? q : t < 2 / 3 ? p + (q - p) * (2 / 3 - t) * 6 : p;
    return Math.round(v * 255);
  };
  return [channel(h + 1 / 3), channel(h), channel(h - 1 / 3)];
}

function modelPath(op) {
  return `/api/models/${encodeURIComponent(state.model.id)}/${op}`;
}

// Sizes a canvas for `cssWidth` x `cssHeight` CSS pixels, sharp on high-DPI screens.
function sizeCanvas(canvas, cssWidth, cssHeight) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// ---- the code map -------------------------------------------------------------------------------

function cellSize() {
  return Math.max(6, Math.min(48, Math.floor(336 / Math.max(state.h, state.w))));
}

function drawMap() {
  const canvas = document.getElementById('code-map');
  if (!state.indices) return;
  const cell = cellSize();
  const ctx = sizeCanvas(canvas, state.w * cell, state.h * cell);
  const showIds = document.getElementById('show-ids').checked && cell >= 20;
  ctx.font = `${Math.max(9, Math.floor(cell * 0.36))}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  const hl = state.highlight;
  for (let r = 0; r < state.h; ++r) {
    for (let c = 0; c < state.w; ++c) {
      const i = r * state.w + c;
      const k = state.indices[i];
      const color = codeColor(k);
      const x = c * cell;
      const y = r * cell;
      ctx.fillStyle = color.fill;
      ctx.fillRect(x, y, cell, cell);
      if (hl !== null && k !== hl) {
        ctx.fillStyle = 'rgba(255,255,255,0.72)';
        ctx.fillRect(x, y, cell, cell);
      }
      if (showIds) {
        ctx.fillStyle = hl !== null && k !== hl ? '#98a0a8' : color.text;
        ctx.fillText(String(k), x + cell / 2, y + cell / 2 + 1);
      }
      if (k !== state.original[i]) {  // an edited cell: a corner mark
        ctx.fillStyle = '#1d2228';
        ctx.beginPath();
        ctx.moveTo(x, y);
        ctx.lineTo(x + Math.max(4, cell / 4), y);
        ctx.lineTo(x, y + Math.max(4, cell / 4));
        ctx.fill();
      }
    }
  }
  if (hl !== null) {
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#1d2228';
    for (let i = 0; i < state.indices.length; ++i) {
      if (state.indices[i] === hl) ctx.strokeRect((i % state.w) * cell + 1, Math.floor(i / state.w) * cell + 1, cell - 2, cell - 2);
    }
  }
  const changed = state.indices.reduce((n, k, i) => n + (k !== state.original[i]), 0);
  document.getElementById('reset').disabled = changed === 0;
  document.getElementById('edited-caption').textContent =
    changed ? `edited map (${changed} cell(s) changed), decoded` : 'edited map, decoded (paint a cell)';
}

function cellAt(event) {
  const canvas = document.getElementById('code-map');
  const rect = canvas.getBoundingClientRect();
  const c = Math.floor((event.clientX - rect.left) / rect.width * state.w);
  const r = Math.floor((event.clientY - rect.top) / rect.height * state.h);
  if (r < 0 || c < 0 || r >= state.h || c >= state.w) return -1;
  return r * state.w + c;
}

function paint(i) {
  if (i < 0 || state.indices[i] === state.code) return;
  state.indices[i] = state.code;
  drawMap();
  scheduleDecode();
}

function describeCell(i) {
  const info = document.getElementById('cell-info');
  if (i < 0 || !state.indices) {
    info.textContent = '';
    return;
  }
  const k = state.indices[i];
  const uses = state.usage ? `, used ${state.usage.counts[k]} times in the test split` : '';
  info.textContent = `row ${Math.floor(i / state.w)}, column ${i % state.w}: code ${k}` +
    (k !== state.original[i] ? ` (was ${state.original[i]})` : '') + uses;
}

function setupMap() {
  const canvas = document.getElementById('code-map');
  canvas.addEventListener('pointerdown', (event) => {
    if (!state.indices || event.button !== 0) return;
    const i = cellAt(event);
    if (i < 0) return;
    if (event.altKey) {
      selectCode(state.indices[i]);
      return;
    }
    state.painting = true;
    canvas.setPointerCapture(event.pointerId);
    paint(i);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!state.indices) return;
    const i = cellAt(event);
    if (state.painting) paint(i);
    describeCell(i);
    setHighlight(i >= 0 ? state.indices[i] : null);
  });
  const stop = () => { state.painting = false; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
  canvas.addEventListener('pointerleave', () => {
    describeCell(-1);
    setHighlight(null);
  });
}

// ---- jobs ---------------------------------------------------------------------------------------

async function encode() {
  if (!state.model) return;
  const image = picker.value();
  if (!image) return lf.status('Choose a test image or an upload first.', true);
  scheduleDecode.cancel();
  editPanel.cancelAll();
  lf.status('', false, 'edit-status');
  try {
    const r = await panel.run(modelPath('encode'), { image });
    if (!r) return;
    state.h = r.h;
    state.w = r.w;
    state.original = r.indices.slice();
    state.indices = r.indices.slice();
    if (r.num_codes && r.num_codes !== state.numCodes) setNumCodes(r.num_codes);
    lf.showImage('img-input', r.input);
    lf.showImage('img-reconstruction', r.reconstruction);
    lf.showImage('img-edited', r.reconstruction);
    document.getElementById('reconstruction-caption').textContent =
      `reconstruction (PSNR ${lf.fixed(r.psnr, 2)} dB; ${r.h}×${r.w} codes)`;
    document.getElementById('editor').classList.remove('hidden');
    drawMap();
    updateFill();
    // The usage count reads the whole test split: started once the first encode is shown, so
    // that it does not hold up the encode in the server's one job queue.
    if (!state.usage && !usagePanel.busy && state.model.capabilities.test_images > 0) countUsage();
  } catch (e) {
    lf.status(e.message, true);
  }
}

async function decodeEdited() {
  if (!state.indices) return;
  const model = state.model;
  try {
    const r = await editPanel.run(modelPath('decode'), { h: state.h, w: state.w, indices: state.indices.slice() }, { slot: 'edit' });
    if (r && model === state.model) lf.showImage('img-edited', r.image);
  } catch (e) {
    lf.status(e.message, true, 'edit-status');
  }
}
const scheduleDecode = lf.debounce(decodeEdited, 250);

// The grid a filled map uses: the encoded map's, else the one code_usage reports.
function fillGrid() {
  if (state.indices) return [state.h, state.w];
  if (state.usage && state.usage.grid) return state.usage.grid;
  return null;
}

async function decodeFill() {
  const grid = fillGrid();
  if (!grid || !state.model) return;
  const code = state.code;
  const model = state.model;
  try {
    const r = await editPanel.run(modelPath('decode'), { h: grid[0], w: grid[1], indices: new Array(grid[0] * grid[1]).fill(code) }, { slot: 'fill' });
    if (!r || model !== state.model) return;
    lf.showImage('img-fill', r.image);
    document.getElementById('fill-caption').textContent = `a ${grid[0]}×${grid[1]} map filled with code ${code}, decoded`;
  } catch (e) {
    lf.status(e.message, true, 'edit-status');
  }
}
const updateFill = lf.debounce(decodeFill, 300);

async function countUsage() {
  if (!state.model) return;
  const model = state.model;
  const limit = lf.intValue('usage-limit', 10000, 1);
  document.getElementById('usage-run').disabled = true;
  try {
    const r = await usagePanel.run(modelPath('code_usage'), { limit });
    if (!r || model !== state.model) return;
    state.usage = r;
    if (r.num_codes && r.num_codes !== state.numCodes) setNumCodes(r.num_codes);
    document.getElementById('usage-used').textContent = `${r.used} of ${r.num_codes}`;
    document.getElementById('usage-dead').textContent = String(r.dead);
    document.getElementById('usage-perplexity').textContent = lf.fixed(r.perplexity, 1);
    document.getElementById('usage-images').textContent = `${r.images} images, ${r.cells} cells`;
    drawHistogram();
    drawPalette();
    if (!state.indices) updateFill();
  } catch (e) {
    lf.status(e.message, true, 'usage-status');
  } finally {
    document.getElementById('usage-run').disabled = false;
  }
}

// ---- selected code, palette, histogram ----------------------------------------------------------

function setNumCodes(k) {
  state.numCodes = k;
  document.getElementById('code').max = k - 1;
  if (state.code >= k) state.code = 0;
  drawPalette();
}

function selectCode(k) {
  if (!Number.isFinite(k) || k < 0 || k >= state.numCodes) return;
  state.code = k;
  document.getElementById('code').value = k;
  const swatch = document.getElementById('code-swatch');
  swatch.style.background = codeColor(k).fill;
  swatch.title = `code ${k}`;
  drawPalette();
  showPaletteInfo();
  updateFill();
}

function setHighlight(k) {
  if (k === undefined) k = null;
  if (k === state.highlight) return;
  state.highlight = k;
  drawMap();
  drawPalette();
  if (state.hist) state.hist.redraw(false);
  showPaletteInfo();
}

function showPaletteInfo() {
  const k = state.highlight;
  const info = document.getElementById('palette-info');
  if (k === null) info.textContent = `${state.numCodes} codes; selected: ${state.code}`;
  else info.textContent = `code ${k}` + (state.usage ? `: used ${state.usage.counts[k]} times in the test split` : '') +
    (state.indices ? `, ${state.indices.filter((x) => x === k).length} cell(s) of this map` : '');
}

function paletteLayout() {
  const cols = Math.min(32, Math.max(8, Math.ceil(Math.sqrt(state.numCodes))));
  const size = Math.max(8, Math.min(22, Math.floor(352 / cols)));
  return { cols, rows: Math.ceil(state.numCodes / cols), size };
}

function drawPalette() {
  const canvas = document.getElementById('palette');
  if (!state.numCodes) return;
  const { cols, rows, size } = paletteLayout();
  const ctx = sizeCanvas(canvas, cols * size, rows * size);
  for (let k = 0; k < state.numCodes; ++k) {
    const x = (k % cols) * size;
    const y = Math.floor(k / cols) * size;
    ctx.fillStyle = codeColor(k).fill;
    ctx.fillRect(x + 1, y + 1, size - 2, size - 2);
    if (state.usage && state.usage.counts[k] === 0) {  // a dead code: crossed out
      ctx.strokeStyle = 'rgba(255,255,255,0.9)';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(x + 2, y + size - 2);
      ctx.lineTo(x + size - 2, y + 2);
      ctx.stroke();
    }
  }
  const ring = (k, color, width) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.strokeRect((k % cols) * size + 0.5 * width, Math.floor(k / cols) * size + 0.5 * width, size - width, size - width);
  };
  if (state.highlight !== null) ring(state.highlight, '#1d2228', 2);
  ring(state.code, '#000', 3);
}

function paletteCode(event) {
  const canvas = document.getElementById('palette');
  const rect = canvas.getBoundingClientRect();
  const { cols, size } = paletteLayout();
  const c = Math.floor((event.clientX - rect.left) / size);
  const r = Math.floor((event.clientY - rect.top) / size);
  const k = r * cols + c;
  return c >= 0 && c < cols && r >= 0 && k < state.numCodes ? k : null;
}

function setupPalette() {
  const canvas = document.getElementById('palette');
  canvas.addEventListener('click', (event) => {
    const k = paletteCode(event);
    if (k !== null) selectCode(k);
  });
  canvas.addEventListener('pointermove', (event) => setHighlight(paletteCode(event)));
  canvas.addEventListener('pointerleave', () => setHighlight(null));
  document.getElementById('code').addEventListener('input', () => {
    const k = parseInt(document.getElementById('code').value, 10);
    if (Number.isFinite(k) && k >= 0 && k < state.numCodes) selectCode(k);
  });
}

// The highlighted code's bar, drawn over the bars in its own colour (a band when it is unused).
function drawHistogramHighlight(u) {
  const k = state.highlight;
  if (k === null || !state.usage) return;
  const ctx = u.ctx;
  const x0 = u.valToPos(k - 0.5, 'x', true);
  const x1 = u.valToPos(k + 0.5, 'x', true);
  const width = Math.max(3 * (window.devicePixelRatio || 1), x1 - x0);
  const left = (x0 + x1 - width) / 2;
  const count = state.usage.counts[k];
  const bottom = u.bbox.top + u.bbox.height;
  const top = count > 0 ? u.valToPos(count, 'y', true) : bottom;
  ctx.save();
  ctx.fillStyle = 'rgba(29,34,40,0.08)';
  ctx.fillRect(left, u.bbox.top, width, u.bbox.height);
  ctx.fillStyle = codeColor(k).fill;
  ctx.fillRect(left, top, width, bottom - top);
  ctx.strokeStyle = '#1d2228';
  ctx.lineWidth = 1;
  ctx.strokeRect(left, top, width, bottom - top);
  ctx.restore();
}

function drawHistogram() {
  const box = document.getElementById('histogram');
  if (state.hist) state.hist.destroy();
  state.hist = null;
  box.replaceChildren();
  box.classList.remove('hidden');
  const logY = document.getElementById('usage-log').checked;
  const counts = logY ? state.usage.counts.map((c) => (c > 0 ? c : null)) : state.usage.counts;
  const codes = counts.map((_, i) => i);
  const top = Math.max(1, ...state.usage.counts);
  const width = Math.max(360, Math.min(1100, (box.parentElement.clientWidth || 900) - 20));
  const opts = {
    width,
    height: 240,
    scales: { x: { time: false, range: [-0.5, counts.length - 0.5] }, y: logY ? { distr: 3, range: [1, top * 2] } : { range: [0, top * 1.05] } },
    axes: [{ label: 'code' }, { label: 'uses' }],
    series: [
      { label: 'code' },
      { label: 'uses', fill: 'rgba(47,111,223,0.55)', stroke: '#2f6fdf', width: 0, paths: uPlot.paths.bars({ size: [1, 40], gap: 0 }), points: { show: false } },
    ],
    legend: { show: true },
    cursor: { points: { show: false }, drag: { x: false, y: false } },
    hooks: {
      draw: [drawHistogramHighlight],
      setCursor: [(u) => setHighlight(u.cursor.idx === null || u.cursor.idx === undefined ? null : u.cursor.idx)],
    },
  };
  state.hist = new uPlot(opts, [codes, counts], box);
  state.hist.over.addEventListener('click', () => {
    const i = state.hist.cursor.idx;
    if (i !== null && i !== undefined) selectCode(i);
  });
}

// ---- the model ----------------------------------------------------------------------------------

function selectModel(m) {
  panel.cancelAll();
  editPanel.cancelAll();
  usagePanel.cancelAll();
  lf.status('');
  lf.status('', false, 'usage-status');
  lf.status('', false, 'edit-status');
  state.model = m;
  state.indices = null;
  state.original = null;
  state.usage = null;
  state.highlight = null;
  if (state.hist) state.hist.destroy();
  state.hist = null;
  document.getElementById('histogram').classList.add('hidden');
  for (const id of ['usage-used', 'usage-dead', 'usage-perplexity', 'usage-images']) document.getElementById(id).textContent = '–';
  document.getElementById('editor').classList.add('hidden');
  document.getElementById('img-fill').classList.add('hidden');
  setNumCodes(m.capabilities.codes.num_codes);
  selectCode(0);
  showPaletteInfo();
  picker.setModel(m);
}

async function init() {
  setupMap();
  setupPalette();
  document.getElementById('encode').addEventListener('click', encode);
  document.getElementById('reset').addEventListener('click', () => {
    if (!state.original) return;
    state.indices = state.original.slice();
    drawMap();
    scheduleDecode.cancel();
    editPanel.drop('edit');
    lf.status('', false, 'edit-status');
    lf.showImage('img-edited', document.getElementById('img-reconstruction').src.split(',')[1]);
  });
  document.getElementById('show-ids').addEventListener('change', drawMap);
  document.getElementById('usage-run').addEventListener('click', countUsage);
  document.getElementById('usage-log').addEventListener('change', () => { if (state.usage) drawHistogram(); });
  try {
    await lf.modelPicker('model', (m, caps) => Boolean(caps.codes), selectModel,
      'No VQ model (vqvae, vqgan) is being served.');
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
