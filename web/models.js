// latentforge serve: the models page (GET /api/models as a table with links to the other pages).
'use strict';

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function link(parent, href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  parent.appendChild(a);
  parent.appendChild(document.createTextNode(' '));
}

async function showModels() {
  const tbody = document.querySelector('#models tbody');
  try {
    const { models } = await lf.api('/api/models');
    tbody.replaceChildren();
    for (const m of models) {
      const row = document.createElement('tr');
      if (m.error) row.className = 'broken';
      const metrics = m.metrics || {};
      cell(row, m.name);
      cell(row, m.kind);
      cell(row, lf.count(m.parameters), 'num');
      cell(row, lf.bytes(m.weight_bytes), 'num');
      cell(row, metrics.psnr !== undefined ? lf.fixed(metrics.psnr, 2) + ' dB' : '–', 'num');
      cell(row, lf.fixed(metrics.ssim, 3), 'num');
      const usage = metrics.codebook ? metrics.codebook.usage : undefined;
      cell(row, usage !== undefined ? lf.fixed(usage * 100, 1) + ' %' : '–', 'num');
      const actions = cell(row, '');
      const id = encodeURIComponent(m.id);
      const caps = m.capabilities || {};
      if (m.reconstructs) link(actions, `/reconstruct.html?model=${id}`, 'reconstruct');
      if (caps.codes) link(actions, `/codebook.html?model=${id}`, 'codebook');
      if (caps.latent) link(actions, `/latent.html?model=${id}`, 'latent');
      if (caps.prior) link(actions, `/sample.html?model=${id}`, 'sample');
      if (m.has_log) link(actions, `/train.html?run=${id}`, 'training');
      if (m.error) actions.textContent = m.error;
      tbody.appendChild(row);
    }
    lf.status(models.length ? `${models.length} model(s)` : 'No models found under the --models folders.');
  } catch (e) {
    lf.status(e.message, true);
  }
}

showModels();
