// latentforge serve: the sample page (priors: gpt, pixelcnn). Samples code maps (POST sample) by
// class, from a drawn sketch or completing a test image, and shows the partial decodes the job
// streams (`partial` events: {image, done, total}) until the final grid.
'use strict';

const panel = new lf.JobPanel({ bar: 'bar', cancel: 'cancel', status: 'status' });
const picker = new lf.ImagePicker('complete', { count: 8 });
let model = null;
let sketchDrawn = false;

function prior() {
  return model.capabilities.prior;
}

// ---- the sketch canvas --------------------------------------------------------------------------

function clearSketch() {
  const canvas = document.getElementById('sketch');
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  sketchDrawn = false;
}

function setupSketch() {
  const canvas = document.getElementById('sketch');
  const ctx = canvas.getContext('2d');
  let last = null;
  const point = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * canvas.width / rect.width, (event.clientY - rect.top) * canvas.height / rect.height];
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = '#fff';
    ctx.fillStyle = '#fff';
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = parseFloat(document.getElementById('brush').value);
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    sketchDrawn = true;
  };
  canvas.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    const p = point(event);
    stroke(last, p);
    last = p;
  });
  const end = () => { last = null; };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  document.getElementById('sketch-clear').addEventListener('click', clearSketch);
  clearSketch();
}

// The sketch as the API takes an image: {upload: base64 PNG} (toDataURL's data: prefix stripped).
function sketchImage() {
  const url = document.getElementById('sketch').toDataURL('image/png');
  return { upload: url.slice(url.indexOf(',') + 1) };
}

// ---- sampling -----------------------------------------------------------------------------------

function gridNote() {
  const note = document.getElementById('grid-note');
  if (!prior().grid) {
    note.textContent = '';
    return;
  }
  const [gh, gw] = prior().grid;
  const h = lf.intValue('grid-h', gh, 1);
  const w = lf.intValue('grid-w', gw, 1);
  if (h > gh || w > gw) {
    note.textContent = `${h}×${w} codes is larger than the ${gh}×${gw} grid the prior was trained on: ` +
      'it is sampled with a sliding window of the training size, which is slower and may be less coherent.';
  } else {
    note.textContent = `The prior was trained on ${gh}×${gw} code maps; a larger grid is sampled with a sliding window.`;
  }
}

function request() {
  const p = prior();
  const [gh, gw] = p.grid || [null, null];
  const h = lf.intValue('grid-h', gh, 1, 64);
  const w = lf.intValue('grid-w', gw, 1, 64);
  const cls = document.getElementById('class').value;
  const body = {
    n: lf.intValue('n', 8, 1, 64),
    seed: lf.intValue('seed', 0, 0),
    temperature: lf.floatValue('temperature', 1, 0.01, 10),
    top_k: lf.intValue('top-k', 0, 0),
    top_p: lf.floatValue('top-p', 1, 0.01, 1),
    class: p.num_classes && cls !== '' ? parseInt(cls, 10) : null,
    // Both or neither (the training grid).
    h: h === gh && w === gw ? null : h,
    w: h === gh && w === gw ? null : w,
    window_h: 0,
    sketch: null,
    complete: null,
    every: 0,
  };
  if (p.sketch) {
    if (!sketchDrawn) throw new Error('Draw a sketch first: this prior is conditioned on one.');
    body.sketch = sketchImage();
  }
  if (document.getElementById('complete').checked) {
    const image = picker.value();
    if (!image) throw new Error('Choose the image to complete (or untick "Complete an image").');
    body.complete = { image, keep: lf.floatValue('keep', 0.5, 0, 1) };
  }
  return body;
}

function showPartial(data) {
  if (!data.image) return;
  lf.showImage('img-live', data.image);
  document.getElementById('live-label').textContent = `${data.done} / ${data.total} tokens`;
  document.getElementById('live').classList.remove('hidden');
}

function className(label) {
  const names = prior().class_names || [];
  return names[label] !== undefined ? names[label] : String(label);
}

async function sample() {
  if (!model) return;
  let body;
  try {
    body = request();
  } catch (e) {
    return lf.status(e.message, true);
  }
  const button = document.getElementById('sample');
  button.disabled = true;
  for (const id of ['live', 'final', 'given', 'sketch-seen']) document.getElementById(id).classList.add('hidden');
  document.getElementById('live-label').textContent = '';
  try {
    const r = await panel.run(`/api/models/${encodeURIComponent(model.id)}/sample`, body, { onPartial: showPartial });
    if (!r) return;
    document.getElementById('live').classList.add('hidden');
    lf.showImage('img-grid', r.image);
    let caption = `${r.images ? r.images.length : body.n} sample(s), ${r.h}×${r.w} codes, ${lf.fixed(r.seconds, 2)} s`;
    if (r.labels && r.labels.length && prior().num_classes) {
      const names = [...new Set(r.labels)].map(className);
      caption += names.length <= 4 ? `; class ${names.join(', ')}` : `; ${names.length} classes`;
    }
    document.getElementById('grid-caption').textContent = caption;
    document.getElementById('final').classList.remove('hidden');
    if (r.given) {
      lf.showImage('img-given', r.given);
      document.getElementById('given').classList.remove('hidden');
    }
    if (r.sketch) {
      lf.showImage('img-sketch', r.sketch);
      document.getElementById('sketch-seen').classList.remove('hidden');
    }
  } catch (e) {
    lf.status(e.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- the model ----------------------------------------------------------------------------------

function selectModel(m) {
  panel.cancelAll();
  lf.status('');
  model = m;
  const p = prior();
  const select = document.getElementById('class');
  select.replaceChildren();
  const all = document.createElement('option');
  all.value = '';
  all.textContent = 'all classes';
  select.appendChild(all);
  for (let i = 0; i < (p.num_classes || 0); ++i) {
    const option = document.createElement('option');
    option.value = i;
    option.textContent = `${i}: ${(p.class_names || [])[i] || 'class ' + i}`;
    select.appendChild(option);
  }
  document.getElementById('class-label').classList.toggle('hidden', !p.num_classes);
  const [gh, gw] = p.grid || ['', ''];
  document.getElementById('grid-h').value = gh;
  document.getElementById('grid-w').value = gw;
  gridNote();
  document.getElementById('sketch-section').classList.toggle('hidden', !p.sketch);
  document.getElementById('prior-info').textContent = `${m.kind} over ${p.num_codes} codes` +
    (p.stage1 ? `, decoded by ${p.stage1}` : '') + (p.num_classes ? `, ${p.num_classes} classes` : ', unconditional') +
    (p.sketch ? ', sketch-conditioned' : '');
  for (const id of ['live', 'final', 'given', 'sketch-seen']) document.getElementById(id).classList.add('hidden');
  picker.setModel(m);
}

async function init() {
  setupSketch();
  document.getElementById('sample').addEventListener('click', sample);
  document.getElementById('grid-h').addEventListener('input', gridNote);
  document.getElementById('grid-w').addEventListener('input', gridNote);
  const keep = document.getElementById('keep');
  keep.addEventListener('input', () => {
    document.getElementById('keep-value').textContent = parseFloat(keep.value).toFixed(2);
  });
  const complete = document.getElementById('complete');
  complete.addEventListener('change', () => {
    document.getElementById('complete-box').classList.toggle('hidden', !complete.checked);
    if (complete.checked && !picker.value() && model && model.capabilities.test_images) picker.pickTest(0);
  });
  try {
    await lf.modelPicker('model', (m, caps) => Boolean(caps.prior), selectModel,
      'No prior (gpt, pixelcnn) is being served.');
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
