// latentforge serve: the reconstruct page. Sends the chosen test image ({"image": {"test_index"}})
// or the uploaded file's bytes to POST /api/models/{id}/reconstruct, follows the job (lf.JobPanel:
// progress bar, Cancel) and shows input, reconstruction, error heat map, PSNR and SSIM.
'use strict';

const panel = new lf.JobPanel({ bar: 'bar', cancel: 'cancel', status: 'status' });
const picker = new lf.ImagePicker('image', { fileId: 'file', onPick: () => lf.status('') });

function setBusy(busy) {
  document.getElementById('run').disabled = busy;
}

function showResult(r) {
  for (const key of ['input', 'reconstruction', 'error']) {
    document.getElementById(`img-${key}`).src = lf.png(r.images[key]);
  }
  document.getElementById('psnr').textContent = `${lf.fixed(r.psnr, 2)} dB`;
  document.getElementById('ssim').textContent = lf.fixed(r.ssim, 4);
  document.getElementById('mse').textContent = lf.fixed(r.mse, 5);
  document.getElementById('shape').textContent =
    `${r.input.width}×${r.input.height}, ${r.input.channels} channel(s)` +
    (r.view_scale > 1 ? `, shown ×${r.view_scale}` : '') +
    (r.upload && r.upload.width ? ` (upload ${r.upload.width}×${r.upload.height})` : picker.label ? ` (${picker.label})` : '');
  document.getElementById('seconds').textContent = `${lf.fixed(r.seconds, 2)} s`;
  document.getElementById('error-caption').textContent =
    `|error| heat map (white = ${lf.fixed(r.max_error, 3)} on the 0..1 scale)`;
  document.getElementById('result').classList.remove('hidden');
}

// POSTs the upload as its own bytes (as before the JSON bodies existed), a test image as JSON.
function submit(model, image) {
  const path = `/api/models/${encodeURIComponent(model)}/reconstruct`;
  if (image.test_index !== undefined) return panel.run(path, { image });
  return panel.run(path, null, { raw: picker.uploadFile });
}

async function reconstruct(event) {
  event.preventDefault();
  const model = document.getElementById('model').value;
  if (!model) return lf.status('No model that reconstructs images is being served.', true);
  const image = picker.value();
  if (!image) return lf.status('Choose a test image or an upload first.', true);
  if (image.upload !== undefined && picker.uploadFile.size > lf.MAX_UPLOAD) {
    return lf.status(`The image is ${lf.bytes(picker.uploadFile.size)}; at most ${lf.bytes(lf.MAX_UPLOAD)} are accepted.`, true);
  }
  setBusy(true);
  try {
    const result = await submit(model, image);
    if (result) showResult(result);
  } catch (e) {
    lf.status(e.message, true);
  } finally {
    setBusy(false);
  }
}

async function init() {
  document.getElementById('form').addEventListener('submit', reconstruct);
  try {
    await lf.modelPicker('model', (m) => m.reconstructs, (m) => picker.setModel(m),
      'No model that reconstructs images is being served.');
  } catch (e) {
    lf.status(e.message, true);
  }
}

init();
