// latentforge serve: helpers every page uses (JSON requests with one-line errors, formatting).
'use strict';

const lf = {
  // GET or POST a JSON API; throws an Error carrying the server's one-line message.
  async api(path, options = {}) {
    const response = await fetch(path, options);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
      throw new Error(message);
    }
    return body;
  },
  status(text, isError = false) {
    const el = document.getElementById('status');
    if (!el) return;
    el.textContent = text;
    el.classList.toggle('error', isError);
  },
  param(name) {
    return new URLSearchParams(window.location.search).get(name);
  },
  count(n) {
    if (n === null || n === undefined) return '–';
    if (n >= 1e9) return (n / 1e9).toFixed(2) + ' G';
    if (n >= 1e6) return (n / 1e6).toFixed(2) + ' M';
    if (n >= 1e3) return (n / 1e3).toFixed(1) + ' k';
    return String(n);
  },
  bytes(n) {
    if (!n) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
    return n.toFixed(i ? 1 : 0) + ' ' + units[i];
  },
  fixed(x, digits) {
    return typeof x === 'number' && isFinite(x) ? x.toFixed(digits) : '–';
  },
  // Fills a <select> with models; keeps `wanted` selected when it is among them.
  fillModels(select, models, wanted) {
    select.replaceChildren();
    for (const m of models) {
      const option = document.createElement('option');
      option.value = m.id;
      option.textContent = `${m.name} (${m.kind})`;
      select.appendChild(option);
    }
    if (wanted && models.some((m) => m.id === wanted)) select.value = wanted;
  },
};
