// latentforge serve: the reconstruct page. Uploads the chosen image to
// POST /api/models/{id}/reconstruct, follows the job (GET /api/jobs/{id}) with a progress bar and a
// cancel button, and shows input, reconstruction, error heat map, PSNR and SSIM.
'use strict';

const MAX_UPLOAD = 32 * 1024 * 1024;  // the server's default --max-upload
let currentJob = null;

function setBusy(busy) {
  document.getElementById('run').disabled = busy;
  document.getElementById('cancel').disabled = !busy;
}

function setProgress(fraction) {
  document.getElementById('bar').style.width = `${Math.round(fraction * 100)}%`;
}

function showResult(r) {
  for (const key of ['input', 'reconstruction', 'error']) {
    const img = document.getElementById(`img-${key}`);
    img.src = `data:image/png;base64,${r.images[key]}`;
  }
  document.getElementById('psnr').textContent = `${lf.fixed(r.psnr, 2)} dB`;
  document.getElementById('ssim').textContent = lf.fixed(r.ssim, 4);
  document.getElementById('mse').textContent = lf.fixed(r.mse, 5);
  document.getElementById('shape').textContent =
    `${r.input.width}×${r.input.height}, ${r.input.channels} channel(s)` +
    (r.view_scale > 1 ? `, shown ×${r.view_scale}` : '') +
    ` (upload ${r.upload.width}×${r.upload.height})`;
  document.getElementById('seconds').textContent = `${lf.fixed(r.seconds, 2)} s`;
  document.getElementById('error-caption').textContent =
    `|error| heat map (white = ${lf.fixed(r.max_error, 3)} on the 0..1 scale)`;
  document.getElementById('result').classList.remove('hidden');
}

async function follow(jobId) {
  for (;;) {
    const job = await lf.api(`/api/jobs/${jobId}`);
    setProgress(job.progress);
    if (job.state === 'queued') lf.status(`queued (${job.queue_position} ahead)`);
    else if (job.state === 'running') lf.status(`${job.stage}…`);
    else return job;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function reconstruct(event) {
  event.preventDefault();
  const file = document.getElementById('file').files[0];
  const model = document.getElementById('model').value;
  if (!model) return lf.status('No model that reconstructs images is being served.', true);
  if (!file) return lf.status('Choose an image first.', true);
  if (file.size > MAX_UPLOAD) return lf.status(`The image is ${lf.bytes(file.size)}; at most ${lf.bytes(MAX_UPLOAD)} are accepted.`, true);
  setBusy(true);
  setProgress(0);
  try {
    const job = await lf.api(`/api/models/${encodeURIComponent(model)}/reconstruct`, {
      method: 'POST',
      headers: { 'Content-Type': file.type || 'application/octet-stream' },
      body: file,
    });
    currentJob = job.id;
    const done = await follow(job.id);
    if (done.state === 'done') {
      showResult(done.result);
      lf.status(`done in ${lf.fixed(done.seconds, 2)} s`);
    } else if (done.state === 'cancelled') {
      lf.status('cancelled');
    } else {
      lf.status(done.error || done.state, true);
    }
  } catch (e) {
    lf.status(e.message, true);
  } finally {
    currentJob = null;
    setBusy(false);
  }
}

async function cancel() {
  if (currentJob === null) return;
  try {
    await lf.api(`/api/jobs/${currentJob}/cancel`, { method: 'POST' });
  } catch (e) {
    lf.status(e.message, true);
  }
}

async function init() {
  document.getElementById('form').addEventListener('submit', reconstruct);
  document.getElementById('cancel').addEventListener('click', cancel);
  try {
    const { models } = await lf.api('/api/models');
    const usable = models.filter((m) => m.reconstructs);
    lf.fillModels(document.getElementById('model'), usable, lf.param('model'));
    if (!usable.length) lf.status('No model that reconstructs images is being served.', true);
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
