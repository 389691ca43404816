// latentforge serve: the train page. Starts a run from a config (POST /api/train), stops and resumes
// it (POST /api/runs/{id}/stop|resume), and follows a run: its log.jsonl records by the event stream
// GET /api/runs/{id}/events (polling GET /api/runs/{id}/log every 3 s when the stream fails), drawn
// with uPlot (web/vendor): loss terms, learning rate, codebook health, GAN balance, throughput; the
// previews of fixed test images over the steps (a slider) and the run's pictures below.
'use strict';

const REFRESH_MS = 3000;
const PICTURES_MS = 10000;  // the run's pictures are fetched again at most this often while it logs
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

const state = {
  run: null, records: [], lastStep: -1, charts: [],
  stream: null, timer: null, chartTimer: null,  // following: an EventSource, else a polling timer
  training: { state: 'idle' }, models: [], configs: [], nameEdited: false,
  previews: [], pictureNames: null, pictureStamp: 0, picturesAt: 0,
};

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

function runPath(what) {
  return `/api/runs/${encodeURIComponent(state.run)}/${what}`;
}

// ---- charts -------------------------------------------------------------------------------------

// A tick value as short as it can be without losing digits: 0.0002, 7800, 1.5e-7.
function tickLabel(v) {
  if (v === null || v === undefined) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return Number(v.toPrecision(3)).toExponential();
  return String(Number(v.toPrecision(6)));
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
      // Tick labels with as many digits as the ticks need (uPlot's default rounds 2e-4 to "0.000").
      axes: [{ label: 'step' }, { values: (u, ticks) => ticks.map(tickLabel), size: 60 }],
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

// Records can arrive many times a second: the charts are redrawn at most every 250 ms.
function scheduleCharts() {
  if (state.chartTimer) return;
  state.chartTimer = setTimeout(() => {
    state.chartTimer = null;
    updateCharts();
  }, 250);
}

function addRecords(records, lastStep) {
  state.records.push(...records);
  if (typeof lastStep === 'number') state.lastStep = Math.max(state.lastStep, lastStep);
  const last = state.records[state.records.length - 1];
  lf.status(last ? `step ${last.step}${state.totalSteps ? ` of ${state.totalSteps}` : ''}: loss ${lf.fixed(last.loss, 4)}, lr ${typeof last.lr === 'number' ? last.lr.toExponential(2) : '–'}` +
    progressText(last) + (state.truncated ? ' (older records left out)' : '') : 'no records yet');
  if (records.length) scheduleCharts();
}

// ---- pictures and previews ----------------------------------------------------------------------

function showPictures(names) {
  const section = document.getElementById('pictures');
  section.replaceChildren();
  for (const name of names) {
    const figure = document.createElement('figure');
    const img = document.createElement('img');
    img.alt = name;
    img.id = `picture-${name}`;
    img.src = `${runPath('images/' + name)}.png?t=${state.pictureStamp}`;
    const caption = document.createElement('figcaption');
    caption.textContent = `${name}.png`;
    figure.append(img, caption);
    section.appendChild(figure);
  }
}

// The picture names from a log answer: shown again when they changed or `force`.
function updatePictures(names, force) {
  const joined = names.join(',');
  if (!force && joined === state.pictureNames) return;
  state.pictureStamp = Date.now();
  state.picturesAt = Date.now();
  state.pictureNames = joined;
  showPictures(names);
}

// While following the stream: asks for the picture list now and then (the stream carries records only).
async function refreshPictures(force) {
  if (!state.run || (!force && Date.now() - state.picturesAt < PICTURES_MS)) return;
  state.picturesAt = Date.now();
  const run = state.run;
  try {
    const log = await lf.api(`${runPath('log')}?after=${state.lastStep}`);
    if (run === state.run) updatePictures(log.images, true);
  } catch (e) { /* the next refresh tries again */ }
}

function setPreviews(steps) {
  const panel = document.getElementById('previews-panel');
  const slider = document.getElementById('preview-step');
  const atEnd = !state.previews.length || parseInt(slider.value, 10) >= state.previews.length - 1;
  state.previews = steps.slice().sort((a, b) => a - b);
  panel.classList.toggle('hidden', !state.previews.length);
  if (!state.previews.length) return;
  slider.max = state.previews.length - 1;
  if (atEnd) slider.value = state.previews.length - 1;
  showPreview();
}

function showPreview() {
  const i = parseInt(document.getElementById('preview-step').value, 10);
  const step = state.previews[i];
  if (step === undefined) return;
  document.getElementById('img-preview').src = `${runPath('previews/' + step)}.png`;
  document.getElementById('preview-label').textContent =
    `step ${step} (${i + 1} of ${state.previews.length}; first ${state.previews[0]}, last ${state.previews[state.previews.length - 1]})`;
}

async function loadPreviews() {
  const run = state.run;
  try {
    const { steps } = await lf.api(runPath('previews'));
    if (run === state.run) setPreviews(steps);
  } catch (e) {
    if (run === state.run) setPreviews([]);
  }
}

// ---- the training process -----------------------------------------------------------------------

// Throughput and the time left, from the newest record's images/s and the run's batch size and
// steps (its config): ", 512 img/s, ETA 1 min 40 s".
function progressText(last) {
  if (typeof last.images_per_s !== 'number' || !(last.images_per_s > 0)) return '';
  let text = `, ${Math.round(last.images_per_s)} img/s`;
  if (state.totalSteps && state.batchSize && last.step < state.totalSteps && state.training.run === state.run)
    text += `, ETA ${duration((state.totalSteps - last.step) * state.batchSize / last.images_per_s)}`;
  return text;
}

function duration(seconds) {
  if (typeof seconds !== 'number') return '';
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`;
}

// GET /api/training (or a `training` event): {state: idle | running | stopping, run?, seconds?,
// output: [the trainer's last lines], configs: bool, last_exit?: {run, state, code, message}}.
function setTraining(t) {
  const before = state.training;
  state.training = t || { state: 'idle' };
  const s = state.training;
  let text = 'no training process';
  if (s.state === 'running') {
    text = `training ${s.run}` + (typeof s.step === 'number' ? `: step ${s.step}` : '') +
      (typeof s.seconds === 'number' ? ` for ${duration(s.seconds)}` : '');
  } else if (s.state === 'stopping') {
    text = `stopping ${s.run}: writing a checkpoint…`;
  }
  let failed = false;
  if (s.state === 'idle' && s.last_exit) {
    const e = s.last_exit;
    const how = e.state || e.status || 'ended';
    failed = /fail|kill|error/i.test(how);
    text += `; last run ${e.run} ${how}` + (e.message ? `: ${e.message}` : '');
  }
  lf.status(text, failed, 'training-state');
  const output = document.getElementById('training-output');
  const lines = Array.isArray(s.output) ? s.output.slice(-8) : [];
  output.textContent = lines.join('\n');
  output.classList.toggle('hidden', !lines.length || (s.state === 'idle' && !failed));
  const mine = s.run === state.run;
  document.getElementById('stop').disabled = !(mine && s.state === 'running');
  document.getElementById('resume').disabled = !(state.run && s.state === 'idle');
  document.getElementById('start').disabled = s.state !== 'idle' || !state.configs.length;
  // The run just ended: its final pictures and metrics are written now.
  if (before.state !== 'idle' && s.state === 'idle' && before.run === state.run) refreshPictures(true);
}

async function loadTraining() {
  try {
    setTraining(await lf.api('/api/training'));
  } catch (e) {
    lf.status(`training state: ${e.message}`, true, 'training-state');
  }
}

async function stopRun() {
  document.getElementById('stop').disabled = true;
  try {
    await lf.post(runPath('stop'));
    setTraining({ ...state.training, state: 'stopping' });
  } catch (e) {
    lf.status(e.message, true, 'training-state');
  }
  if (!state.stream) loadTraining();
}

async function resumeRun() {
  document.getElementById('resume').disabled = true;
  try {
    await lf.post(runPath('resume'));
    await loadTraining();
    document.getElementById('live').checked = true;
    if (!state.stream && !state.timer) follow();
  } catch (e) {
    lf.status(e.message, true, 'training-state');
    loadTraining();
  }
}

// ---- following a run ----------------------------------------------------------------------------

function stopFollowing() {
  lf.closeStream(state.stream);
  state.stream = null;
  clearInterval(state.timer);
  state.timer = null;
}

// One polling round: new records, pictures, previews and the training state.
async function poll() {
  if (!state.run) return;
  const run = state.run;
  try {
    const log = await lf.api(`${runPath('log')}?after=${state.lastStep}`);
    if (run !== state.run) return;
    state.truncated = state.truncated || log.truncated;
    addRecords(log.records, log.last_step);
    updatePictures(log.images, log.records.length > 0);
  } catch (e) {
    lf.status(e.message, true);
  }
  if (state.timer) {
    loadPreviews();
    loadTraining();
  }
}

function startPolling() {
  clearInterval(state.timer);
  state.timer = setInterval(poll, REFRESH_MS);
}

// Follows the chosen run live: its event stream, or polling when the stream fails.
function follow() {
  stopFollowing();
  if (!state.run || !document.getElementById('live').checked) return;
  if (typeof EventSource === 'undefined') return startPolling();
  const run = state.run;
  const es = lf.openStream(`${runPath('events')}?after=${state.lastStep}`);
  state.stream = es;
  const parse = (event) => {
    try { return JSON.parse(event.data); } catch (e) { return null; }
  };
  es.addEventListener('records', (event) => {
    const data = parse(event);
    if (!data || run !== state.run) return;
    addRecords(data.records || [], data.last_step);
    if (data.records && data.records.length) refreshPictures(false);
  });
  es.addEventListener('training', (event) => {
    const data = parse(event);
    if (data) setTraining(data);
  });
  es.addEventListener('previews', (event) => {
    const data = parse(event);
    if (data && run === state.run) setPreviews(data.steps || []);
  });
  // The browser would reconnect asking for the same `after` again: poll instead.
  es.onerror = () => {
    if (state.stream !== es) return;
    lf.closeStream(es);
    state.stream = null;
    lf.status('event stream unavailable: polling every 3 s', false, 'status');
    startPolling();
  };
}

async function selectRun(id) {
  stopFollowing();
  state.run = id;
  state.records = [];
  state.lastStep = -1;
  state.truncated = false;
  state.pictureNames = null;
  state.previews = [];
  destroyCharts();
  document.getElementById('pictures').replaceChildren();
  document.getElementById('previews-panel').classList.add('hidden');
  setTraining(state.training);
  state.totalSteps = null;
  state.batchSize = null;
  try {  // steps and batch size for the ETA
    const model = await lf.api(`/api/models/${encodeURIComponent(id)}`);
    const train = (model.config && model.config.train) || {};
    state.totalSteps = typeof train.steps === 'number' ? train.steps : null;
    state.batchSize = typeof train.batch_size === 'number' ? train.batch_size : null;
  } catch (e) { /* the chart still works without them */ }
  if (id !== state.run) return;
  // The history by one GET, then the live part from where it ends.
  await poll();
  if (id !== state.run) return;
  loadPreviews();
  follow();
}

// ---- starting a run -----------------------------------------------------------------------------

function fillRuns(wanted) {
  const select = document.getElementById('run');
  const runs = state.models.filter((m) => m.has_log || m.id === wanted);
  lf.fillModels(select, runs, wanted || state.run);
  return runs;
}

function uniqueName(base) {
  const taken = new Set(state.models.map((m) => m.id));
  if (!taken.has(base)) return base;
  for (let i = 2; ; ++i) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
}

// A config's needs: {stage1: run name, cond_stage: run name} (also taken as a list of names).
function configNeeds(c) {
  const needs = c.needs || {};
  if (Array.isArray(needs)) return needs.length ? { stage1: needs[0], ...(needs[1] ? { cond_stage: needs[1] } : {}) } : {};
  return needs;
}

// Fills the stage select for one need with the served VQ models, the named one chosen when served.
function fillStage(selectId, labelId, wanted) {
  const label = document.getElementById(labelId);
  label.classList.toggle('hidden', !wanted);
  if (!wanted) return;
  const vq = state.models.filter((m) => !m.error && m.capabilities && m.capabilities.codes);
  const select = document.getElementById(selectId);
  lf.fillModels(select, vq, wanted);
}

function showConfig() {
  const name = document.getElementById('config').value;
  const c = state.configs.find((x) => x.name === name);
  const info = document.getElementById('config-info');
  const needs = c ? configNeeds(c) : {};
  fillStage('stage1', 'stage1-label', needs.stage1);
  fillStage('cond-stage', 'cond-stage-label', needs.cond_stage);
  if (!c) {
    info.textContent = '';
    return;
  }
  if (c.error) {
    info.textContent = `${c.name}: ${c.error}`;
    return;
  }
  const served = new Set(state.models.map((m) => m.id));
  const missing = Object.values(needs).filter((n) => !served.has(n));
  info.textContent = `${c.type}, ${c.steps} steps. ${c.comment || ''}` +
    (Object.keys(needs).length ? ` Trains on the codes of ${Object.values(needs).join(' and ')}` +
      (missing.length ? ` (not served: ${missing.join(', ')}; train it first or choose another)` : '') + '.' : '');
  document.getElementById('train-steps').placeholder = String(c.steps);
  if (!state.nameEdited) document.getElementById('run-name').value = uniqueName(c.name);
}

async function loadConfigs() {
  const select = document.getElementById('config');
  try {
    const { configs } = await lf.api('/api/configs');
    state.configs = configs;
    select.replaceChildren();
    for (const c of configs) {
      const option = document.createElement('option');
      option.value = c.name;
      option.textContent = `${c.name} (${c.type})`;
      select.appendChild(option);
    }
    if (!configs.length) lf.status('No configs to start a run from: serve offers the .yaml files of its --configs folder.', true, 'start-status');
    showConfig();
  } catch (e) {
    state.configs = [];
    lf.status(`configs: ${e.message}`, true, 'start-status');
  }
  setTraining(state.training);
}

async function startRun() {
  const config = document.getElementById('config').value;
  const name = document.getElementById('run-name').value.trim();
  if (!config) return lf.status('Choose a config.', true, 'start-status');
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return lf.status('The run name may hold letters, digits, ".", "_" and "-" only.', true, 'start-status');
  const body = { config, name };
  const steps = lf.intValue('train-steps', null, 1);
  if (steps !== null) body.steps = steps;
  if (!document.getElementById('stage1-label').classList.contains('hidden')) body.stage1 = document.getElementById('stage1').value || null;
  if (!document.getElementById('cond-stage-label').classList.contains('hidden')) body.cond_stage = document.getElementById('cond-stage').value || null;
  document.getElementById('start').disabled = true;
  try {
    const { run } = await lf.post('/api/train', body);
    lf.status(`started ${run}; waiting for its folder…`, false, 'start-status');
    state.nameEdited = false;
    await loadTraining();
    // The listing has the run once the trainer has made its folder.
    for (let i = 0; i < 60; ++i) {
      const { models } = await lf.api('/api/models');
      state.models = models;
      if (models.some((m) => m.id === run)) break;
      await lf.sleep(1000);
    }
    fillRuns(run);
    showConfig();
    lf.status(`started ${run}`, false, 'start-status');
    if (document.getElementById('run').value === run) {
      document.getElementById('live').checked = true;
      await selectRun(run);
    }
  } catch (e) {
    lf.status(e.message, true, 'start-status');
    loadTraining();
  }
}

// ---- the page -----------------------------------------------------------------------------------

async function init() {
  const smoothInput = document.getElementById('smooth');
  smoothInput.addEventListener('input', () => {
    document.getElementById('smooth-value').textContent = parseFloat(smoothInput.value).toFixed(2);
    for (const c of state.charts) c.plot.setData(groupData(c.group, c.keys));
  });
  document.getElementById('logy').addEventListener('change', buildCharts);
  document.getElementById('live').addEventListener('change', () => {
    if (document.getElementById('live').checked) poll().then(follow);
    else stopFollowing();
  });
  document.getElementById('preview-step').addEventListener('input', showPreview);
  document.getElementById('stop').addEventListener('click', stopRun);
  document.getElementById('resume').addEventListener('click', resumeRun);
  document.getElementById('start').addEventListener('click', startRun);
  document.getElementById('config').addEventListener('change', showConfig);
  document.getElementById('run-name').addEventListener('input', () => { state.nameEdited = true; });
  const select = document.getElementById('run');
  select.addEventListener('change', () => selectRun(select.value));
  try {
    const { models } = await lf.api('/api/models');
    state.models = models;
    const runs = fillRuns(lf.param('run'));
    loadConfigs();
    await loadTraining();
    if (!runs.length) return lf.status('No training run (a folder with log.jsonl) is being served yet.', true);
    selectRun(select.value);
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
