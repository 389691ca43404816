// latentforge serve: the latent page (ae, vae, autoencoder_kl). Interpolates between two images
// (POST interpolate), traverses one latent dimension of image A (POST traverse) and, for a VAE,
// decodes samples from N(0, I) (POST sample); frames are browsed with a slider, client-side.
'use strict';

const panel = new lf.JobPanel({ bar: 'bar', cancel: 'cancel', status: 'status' });
const pickerA = new lf.ImagePicker('a', { count: 8 });
const pickerB = new lf.ImagePicker('b', { count: 8 });
const interpView = new lf.FrameViewer({ slider: 'frame', img: 'img-frame', strip: 'frames', label: 'frame-label' });
const travView = new lf.FrameViewer({ slider: 'tframe', img: 'img-tframe', strip: 'tframes', label: 'tframe-label' });
let model = null;

function modelPath(op) {
  return `/api/models/${encodeURIComponent(model.id)}/${op}`;
}

// The number of latent dimensions a traversal can shift: the channels of a spatial latent.
function latentDims(shape) {
  return shape && shape.length ? shape[0] : 0;
}

// Bounds the dimension input by the latent's dims (0: not known yet, until a traversal reports it).
function setDims(dims) {
  const input = document.getElementById('dim');
  if (!dims) {
    input.removeAttribute('max');
    document.getElementById('dim-range').textContent = '';
    return;
  }
  input.max = dims - 1;
  if (parseInt(input.value, 10) >= dims) input.value = 0;
  document.getElementById('dim-range').textContent = `0 … ${dims - 1}`;
}

function showShape(shape) {
  document.getElementById('latent-shape').textContent = shape && shape.length ? `latent [${shape.join(', ')}]` : '';
}

async function interpolate() {
  if (!model) return;
  const a = pickerA.value();
  const b = pickerB.value();
  if (!a || !b) return lf.status('Choose image A and image B first.', true);
  const steps = lf.intValue('steps', 9, 2, 33);
  const mode = document.getElementById('mode').value;
  try {
    const r = await panel.run(modelPath('interpolate'), { a, b, steps, mode });
    if (!r) return;
    lf.showImage('img-a', r.a);
    lf.showImage('img-b', r.b);
    interpView.set(r.frames, (i) => `frame ${i + 1} of ${r.frames.length}, t = ${lf.fixed(r.t[i], 3)} (${mode})`);
    document.getElementById('interp-result').classList.remove('hidden');
  } catch (e) {
    lf.status(e.message, true);
  }
}

async function traverse() {
  if (!model) return;
  const image = pickerA.value();
  if (!image) return lf.status('Choose image A first: the traversal starts from it.', true);
  const max = parseInt(document.getElementById('dim').max, 10);
  const dim = lf.intValue('dim', 0, 0, Number.isFinite(max) ? max : Infinity);
  const span = lf.floatValue('span', 3, 0.01, 100);
  const steps = lf.intValue('tsteps', 9, 2, 33);
  try {
    const r = await panel.run(modelPath('traverse'), { image, dim, span, steps });
    if (!r) return;
    if (r.dims) setDims(r.dims);
    if (r.latent_shape) showShape(r.latent_shape);
    travView.set(r.frames, (i) => `dimension ${dim} ${r.values[i] >= 0 ? '+' : '−'} ${lf.fixed(Math.abs(r.values[i]), 2)} (frame ${i + 1} of ${r.frames.length})`);
    document.getElementById('trav-result').classList.remove('hidden');
  } catch (e) {
    lf.status(e.message, true);
  }
}

async function sample() {
  if (!model) return;
  const n = lf.intValue('n', 16, 1, 64);
  const seed = lf.intValue('seed', 0, 0);
  try {
    const r = await panel.run(modelPath('sample'), { n, seed });
    if (!r) return;
    lf.showImage('img-samples', r.image);
    document.getElementById('samples-caption').textContent = `${n} decodes of z ~ N(0, I), seed ${seed}`;
  } catch (e) {
    lf.status(e.message, true);
  }
}

function selectModel(m) {
  panel.cancelAll();
  lf.status('');
  model = m;
  const shape = m.capabilities.latent.shape || [];
  showShape(shape);
  setDims(latentDims(shape));
  const vae = Boolean(m.capabilities.sample) && !m.capabilities.prior;
  document.getElementById('vae-samples').classList.toggle('hidden', !vae);
  for (const id of ['interp-result', 'trav-result']) document.getElementById(id).classList.add('hidden');
  for (const id of ['frames', 'tframes']) document.getElementById(id).replaceChildren();
  document.getElementById('img-samples').classList.add('hidden');
  document.getElementById('samples-caption').textContent = '';
  // Two test images chosen to begin with, so that Interpolate works at once.
  const tests = m.capabilities.test_images || 0;
  pickerA.setModel(m).then(() => { if (tests > 1 && model === m && !pickerA.value()) pickerA.pickTest(0); });
  pickerB.setModel(m).then(() => { if (tests > 1 && model === m && !pickerB.value()) pickerB.pickTest(1); });
}

async function init() {
  document.getElementById('interpolate').addEventListener('click', interpolate);
  document.getElementById('traverse').addEventListener('click', traverse);
  document.getElementById('sample').addEventListener('click', sample);
  try {
    await lf.modelPicker('model', (m, caps) => Boolean(caps.latent), selectModel,
      'No model with a continuous latent (ae, vae, autoencoder_kl) is being served.');
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
