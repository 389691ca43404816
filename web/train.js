// latentforge serve: follow a training run. Polls GET /api/runs/{id}/log every few seconds for
// the records after the last step it has, and draws the loss terms, the learning rate, codebook
// health and the GAN balance with uPlot (web/vendor); shows the run's pictures below.
'use strict';

const REFRESH_MS = 3000;
// Chart groups: which record keys each one draws.
const GROUPS = [
  { title: 'loss terms', match: (k) => k === 'loss' || k.startsWith('loss_'), logScale: true },
  { title: 'learning rate', match: (k) => k === 'lr', logScale: true },
  { title: 'codebook', match: (k) => k === 'vq_perplexity' || k === 'vq_usage' || k === 'vq_dead_codes' },
  { title: 'GAN balance', match: (k) => k === 'd_weight' || k === 'disc_factor' || k.startsWith('logits_') },
  { title: 'throughput (images/s)', match: (k) => k === 'images_per_s' },
];
const COLORS = ['#2f6fdf', '#d9480f', '#2b8a3e', '#9c36b5', '#e67700', '#0b7285', '#c2255c', '#495057',
  '#5c940d', '#1864ab', '#862e9c', '#a61e4d'];

const state = { run: null, records: [], lastStep: -1, charts: [], timer: null, pictureStamp: 0 };

// Exponential moving average (TensorBoard's smoothing), skipping missing values.
function smooth(values, weight) {
  if (weight <= 0) return values;
  let last = null;
  return values.map((v) => {
    if (v === null || v === undefined || !isFinite(v)) return null;
    last = last === null ? v : last * weight + (1 - weight) * v;
    return last;
  });
}

function destroyCharts() {
  for (const c of state.charts) c.plot.destroy();
  state.charts = [];
  document.getElementById('charts').replaceChildren();
}

function groupData(group, keys) {
  const weight = parseFloat(document.getElementById('smooth').value);
  const logY = document.getElementById('logy').checked && group.logScale;
  const steps = state.records.map((r) => r.step);
  const series = keys.map((k) => {
    const raw = state.records.map((r) => (typeof r[k] === 'number' ? r[k] : null));
    const values = smooth(raw, k === 'lr' ? 0 : weight);
    return logY ? values.map((v) => (v !== null && v > 0 ? v : null)) : values;
  });
  return [steps, ...series];
}

function buildCharts() {
  destroyCharts();
  if (!state.records.length) return;
  const keys = new Set();
  for (const r of state.records) for (const k of Object.keys(r)) if (typeof r[k] === 'number') keys.add(k);
  const all = [...keys].sort();
  const container = document.getElementById('charts');
  const width = Math.min(560, Math.max(320, (container.clientWidth || 1100) / 2 - 30));
  for (const group of GROUPS) {
    const groupKeys = all.filter(group.match);
    if (!groupKeys.length) continue;
    const box = document.createElement('div');
    box.className = 'chart';
    const title = document.createElement('h2');
    title.textContent = group.title;
    box.appendChild(title);
    container.appendChild(box);
    const logY = document.getElementById('logy').checked && group.logScale;
    const opts = {
      width,
      height: 260,
      scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
      axes: [{ label: 'step' }, {}],
      series: [{ label: 'step' }, ...groupKeys.map((k, i) => ({ label: k, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
    };
    const plot = new uPlot(opts, groupData(group, groupKeys), box);
    state.charts.push({ group, keys: groupKeys, plot });
  }
}

function updateCharts() {
  // New keys (e.g. the discriminator's once it starts) need new charts; otherwise only new data.
  const known = new Set(state.charts.flatMap((c) => c.keys));
  const fresh = state.records.some((r) => Object.keys(r).some((k) => typeof r[k] === 'number' && !known.has(k) && GROUPS.some((g) => g.match(k))));
  if (fresh || !state.charts.length) return buildCharts();
  for (const c of state.charts) c.plot.setData(groupData(c.group, c.keys));
}

function showPictures(names) {
  const section = document.getElementById('pictures');
  section.replaceChildren();
  for (const name of names) {
    const figure = document.createElement('figure');
    const img = document.createElement('img');
    img.alt = name;
    img.src = `/api/runs/${encodeURIComponent(state.run)}/images/${name}.png?t=${state.pictureStamp}`;
    const caption = document.createElement('figcaption');
    caption.textContent = `${name}.png`;
    figure.append(img, caption);
    section.appendChild(figure);
  }
}

async function poll() {
  if (!state.run) return;
  const run = state.run;
  try {
    const log = await lf.api(`/api/runs/${encodeURIComponent(run)}/log?after=${state.lastStep}`);
    if (run !== state.run) return;
    const grew = log.records.length > 0;
    state.records.push(...log.records);
    state.lastStep = log.last_step;
    const last = state.records[state.records.length - 1];
    lf.status(last ? `step ${last.step}: loss ${lf.fixed(last.loss, 4)}, lr ${last.lr !== undefined ? last.lr.toExponential(2) : '–'}` +
      (log.truncated ? ' (older records left out)' : '') : 'no records yet');
    if (grew) updateCharts();
    const names = log.images.join(',');
    if (grew || names !== state.pictureNames) {
      state.pictureStamp = Date.now();
      state.pictureNames = names;
      showPictures(log.images);
    }
  } catch (e) {
    lf.status(e.message, true);
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = document.getElementById('live').checked ? setInterval(poll, REFRESH_MS) : null;
}

function selectRun(id) {
  state.run = id;
  state.records = [];
  state.lastStep = -1;
  state.pictureNames = null;
  destroyCharts();
  document.getElementById('pictures').replaceChildren();
  poll();
}

async function init() {
  const smoothInput = document.getElementById('smooth');
  smoothInput.addEventListener('input', () => {
    document.getElementById('smooth-value').textContent = parseFloat(smoothInput.value).toFixed(2);
    for (const c of state.charts) c.plot.setData(groupData(c.group, c.keys));
  });
  document.getElementById('logy').addEventListener('change', buildCharts);
  document.getElementById('live').addEventListener('change', schedule);
  const select = document.getElementById('run');
  select.addEventListener('change', () => selectRun(select.value));
  try {
    const { models } = await lf.api('/api/models');
    const runs = models.filter((m) => m.has_log);
    lf.fillModels(select, runs, lf.param('run'));
    if (!runs.length) return lf.status('No training run (a folder with log.jsonl) is being served.', true);
    selectRun(select.value);
    schedule();
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
