// latentforge serve: helpers every page uses (JSON requests with one-line errors, formatting, model
// jobs followed by their event stream, the test-image picker).
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
  // POST a JSON body to the API.
  post(path, body) {
    return lf.api(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body === undefined ? {} : body),
    });
  },
  status(text, isError = false, id = 'status') {
    const el = document.getElementById(id);
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
  // A base64 PNG from the server as an <img> source (CSP allows data: images).
  png(base64) {
    return `data:image/png;base64,${base64}`;
  },
  // Sets an <img>'s source from a base64 PNG and shows it.
  showImage(id, base64) {
    const img = document.getElementById(id);
    if (!img) return;
    if (base64) img.src = lf.png(base64);
    img.classList.toggle('hidden', !base64);
  },
  // An integer from a number input, clamped to [min, max]; `fallback` when it is empty or invalid.
  intValue(id, fallback, min = -Infinity, max = Infinity) {
    const v = parseInt(document.getElementById(id).value, 10);
    return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
  },
  floatValue(id, fallback, min = -Infinity, max = Infinity) {
    const v = parseFloat(document.getElementById(id).value);
    return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
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
  // GET /api/models filtered by `keep(model, capabilities)` into the <select id=selectId>, the ?model= parameter
  // preselected; calls onChange(model) now and on every change. Returns the kept models.
  async modelPicker(selectId, keep, onChange, emptyMessage) {
    const select = document.getElementById(selectId);
    const { models } = await lf.api('/api/models');
    const usable = models.filter((m) => !m.error && keep(m, m.capabilities || {}));
    lf.fillModels(select, usable, lf.param('model'));
    const changed = () => {
      const m = usable.find((x) => x.id === select.value);
      if (m) onChange(m);
    };
    select.addEventListener('change', changed);
    if (!usable.length) lf.status(emptyMessage, true);
    else changed();
    return usable;
  },
  // Reads a File as base64 (no data: prefix) and as a data: URL for a preview.
  readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const url = String(reader.result);
        resolve({ url, base64: url.slice(url.indexOf(',') + 1) });
      };
      reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
      reader.readAsDataURL(file);
    });
  },
  MAX_UPLOAD: 32 * 1024 * 1024,  // the server's default --max-upload
  // Calls fn after `ms` without another call (the latest arguments win); .cancel() drops a pending call.
  debounce(fn, ms) {
    let timer = null;
    const debounced = (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
    debounced.cancel = () => clearTimeout(timer);
    return debounced;
  },
};

// Event streams and jobs still open, closed (and the jobs cancelled) when the page is left.
lf.streams = new Set();
lf.openJobs = new Set();
window.addEventListener('pagehide', () => {
  for (const es of lf.streams) es.close();
  lf.streams.clear();
  for (const id of lf.openJobs) {
    fetch(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST', keepalive: true }).catch(() => {});
  }
});

// An EventSource that lf.streams tracks; close it with lf.closeStream.
lf.openStream = function (url) {
  const es = new EventSource(url);
  lf.streams.add(es);
  return es;
};
lf.closeStream = function (es) {
  if (!es) return;
  es.close();
  lf.streams.delete(es);
};

lf.sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follows job `id` until it ends: by its event stream GET /api/jobs/{id}/events, or, when the stream
// fails before the end, by polling GET /api/jobs/{id}. Resolves with the finished job ({state: done |
// failed | cancelled, result?, error?}), or null once ticket.closed is set (the caller gave up on it).
// onJob(job) sees each state change, onPartial(data) each `partial` event.
lf.followJob = function (id, { onJob = () => {}, onPartial = () => {}, ticket = {} } = {}) {
  const path = `/api/jobs/${encodeURIComponent(id)}`;
  return new Promise((resolve, reject) => {
    let es = null;
    let finished = false;
    const finish = (job) => {
      if (finished) return;
      finished = true;
      lf.closeStream(es);
      ticket.close = null;
      resolve(job);
    };
    ticket.close = () => finish(null);
    const poll = async () => {
      try {
        for (;;) {
          if (finished) return;
          const job = await lf.api(path);
          if (finished) return;
          if (job.state === 'queued' || job.state === 'running') onJob(job);
          else return finish(job);
          await lf.sleep(300);
        }
      } catch (e) {
        if (!finished) {
          finished = true;
          ticket.close = null;
          reject(e);
        }
      }
    };
    if (typeof EventSource === 'undefined') return poll();
    es = lf.openStream(`${path}/events`);
    const parse = (event) => {
      try { return JSON.parse(event.data); } catch (e) { return null; }
    };
    es.addEventListener('job', (event) => {
      const job = parse(event);
      if (job && !finished) onJob(job);
    });
    es.addEventListener('partial', (event) => {
      const data = parse(event);
      if (data && !finished) onPartial(data);
    });
    es.addEventListener('result', (event) => {
      const job = parse(event);
      if (job && job.state !== 'queued' && job.state !== 'running') return finish(job);
      lf.closeStream(es);  // not a finished job: ask for it instead
      es = null;
      poll();
    });
    // The stream ends after `result`; an error before it (an older server, a dropped connection):
    // stop the browser's reconnecting and poll instead.
    es.onerror = () => {
      if (finished) return;
      lf.closeStream(es);
      es = null;
      poll();
    };
  });
};

// Runs model jobs for part of a page: a progress bar, a Cancel button and a status line (ids, each
// optional). run() submits a job and resolves with its result; a new job in the same `slot`
// replaces (cancels) the one before, whose run() then resolves with null, as a cancelled one does.
lf.JobPanel = class {
  constructor({ bar = null, cancel = null, status = null } = {}) {
    this.bar = bar && document.getElementById(bar);
    this.cancelButton = cancel && document.getElementById(cancel);
    this.statusId = status;
    this.tickets = new Map();  // slot -> {id, closed, close}
    if (this.cancelButton) this.cancelButton.addEventListener('click', () => this.cancelAll());
    this.refresh();
  }

  status(text, isError = false) {
    if (this.statusId) lf.status(text, isError, this.statusId);
  }

  progress(fraction) {
    if (this.bar) this.bar.style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
  }

  refresh() {
    if (this.cancelButton) this.cancelButton.disabled = this.tickets.size === 0;
  }

  get busy() {
    return this.tickets.size > 0;
  }

  showJob(job) {
    this.progress(job.progress || 0);
    if (job.state === 'queued') {
      this.status(job.queue_position ? `queued (${job.queue_position} ahead)` : 'queued');
    } else if (job.state === 'running') {
      this.status(`${job.stage || 'running'}…`);
    }
  }

  // Gives up on the job in `slot` (cancelling it on the server).
  drop(slot) {
    const ticket = this.tickets.get(slot);
    if (!ticket) return;
    ticket.closed = true;
    if (ticket.id !== null) lf.cancelJob(ticket.id);
    if (ticket.close) ticket.close();
    this.tickets.delete(slot);
    this.refresh();
  }

  // Cancels every job of this panel (the Cancel button).
  cancelAll() {
    if (!this.tickets.size) return;
    for (const slot of [...this.tickets.keys()]) this.drop(slot);
    this.status('cancelled');
    this.progress(0);
  }

  // POSTs `body` to `path` (a model job) and follows it. Resolves with the job's result, or null when
  // it was cancelled or replaced; throws an Error with the job's message when it failed.
  // options: slot (default 'main'), onPartial(data), quiet (no status line for this job), raw (a
  // File or Blob sent as the body, as its own bytes, instead of `body` as JSON).
  async run(path, body, { slot = 'main', onPartial, quiet = false, raw = null } = {}) {
    this.drop(slot);
    const ticket = { id: null, closed: false, close: null };
    this.tickets.set(slot, ticket);
    this.refresh();
    const mine = () => this.tickets.get(slot) === ticket;
    if (!quiet) {
      this.progress(0);
      this.status('submitting…');
    }
    try {
      const job = raw
        ? await lf.api(path, { method: 'POST', headers: { 'Content-Type': raw.type || 'application/octet-stream' }, body: raw })
        : await lf.post(path, body);
      if (ticket.closed) {
        lf.cancelJob(job.id);
        return null;
      }
      ticket.id = job.id;
      lf.openJobs.add(job.id);
      const done = await lf.followJob(job.id, {
        onJob: (j) => { if (mine() && !quiet) this.showJob(j); },
        onPartial: (data) => { if (mine() && onPartial) onPartial(data); },
        ticket,
      });
      lf.openJobs.delete(job.id);
      if (!done || ticket.closed) return null;
      if (done.state === 'done') {
        if (!quiet) {
          this.progress(1);
          this.status(`done in ${lf.fixed(done.seconds, 2)} s`);
        }
        return done.result;
      }
      if (done.state === 'cancelled') {
        this.status('cancelled');
        return null;
      }
      throw new Error(done.error || `job ${done.state}`);
    } finally {
      if (mine()) {
        this.tickets.delete(slot);
        this.refresh();
      }
    }
  }
};

lf.cancelJob = function (id) {
  lf.openJobs.delete(id);
  return fetch(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }).catch(() => {});
};

// A strip of a model's test images (GET /api/models/{id}/test_images, a page at a time) and an
// upload field, built inside the element <div id="PREFIX-picker">. The element ids it makes:
// PREFIX-prev / PREFIX-next (paging), PREFIX-index (a test image by number), PREFIX-thumb-N (the
// thumbnail of test image N), PREFIX-file (the upload; or fileId), PREFIX-chosen (what is chosen).
// value() is the image as the API takes it: {test_index} or {upload}, or null.
lf.ImagePicker = class {
  constructor(prefix, { upload = true, onPick = () => {}, count = 12, fileId = null } = {}) {
    this.prefix = prefix;
    this.onPick = onPick;
    this.count = count;
    this.model = null;
    this.total = 0;
    this.offset = 0;
    this.chosen = null;  // {test_index} | {upload}
    this.label = '';
    const root = document.getElementById(`${prefix}-picker`);
    root.classList.add('picker');
    const make = (tag, id, props = {}) => {
      const el = document.createElement(tag);
      if (id) el.id = `${prefix}-${id}`;
      Object.assign(el, props);
      return el;
    };
    this.strip = make('div', 'strip', { className: 'strip' });
    const bar = make('div', null, { className: 'picker-bar' });
    this.prev = make('button', 'prev', { type: 'button', textContent: '‹', title: 'previous test images' });
    this.next = make('button', 'next', { type: 'button', textContent: '›', title: 'next test images' });
    this.range = make('span', 'range', { className: 'muted' });
    const indexLabel = make('label', null, { textContent: 'test image ' });
    this.index = make('input', 'index', { type: 'number', min: 0, step: 1, className: 'narrow' });
    indexLabel.appendChild(this.index);
    this.testControls = make('span', 'test-controls', { className: 'picker-tests' });
    this.testControls.append(this.prev, this.range, this.next, indexLabel);
    bar.appendChild(this.testControls);
    if (upload) {
      const fileLabel = make('label', null, { textContent: 'or upload ' });
      this.file = make('input', 'file', { type: 'file', accept: 'image/png,image/jpeg,image/bmp' });
      if (fileId) this.file.id = fileId;
      fileLabel.appendChild(this.file);
      bar.appendChild(fileLabel);
      this.file.addEventListener('change', () => this.pickUpload());
    }
    this.preview = make('img', 'preview', { className: 'thumb hidden', alt: 'chosen image' });
    this.chosenText = make('span', 'chosen', { className: 'muted' });
    const chosen = make('div', null, { className: 'picker-chosen' });
    chosen.append(this.preview, this.chosenText);
    root.replaceChildren(this.strip, bar, chosen);
    this.prev.addEventListener('click', () => this.load(Math.max(0, this.offset - this.count)));
    this.next.addEventListener('click', () => this.load(this.offset + this.count));
    this.index.addEventListener('change', () => {
      const i = parseInt(this.index.value, 10);
      if (Number.isFinite(i) && i >= 0 && i < this.total) this.pickTest(i);
    });
  }

  value() {
    return this.chosen;
  }

  // Shows the test images of `model` (an /api/models entry); the strip is hidden when it has none.
  async setModel(model) {
    this.model = model;
    this.total = (model.capabilities && model.capabilities.test_images) || 0;
    this.testControls.classList.toggle('hidden', !this.total);
    this.strip.classList.toggle('hidden', !this.total);
    this.index.max = Math.max(0, this.total - 1);
    if (this.chosen && this.chosen.test_index !== undefined && this.chosen.test_index >= this.total) this.clear();
    if (this.total) await this.load(0);
  }

  clear() {
    this.chosen = null;
    this.uploadFile = null;
    this.label = '';
    this.preview.classList.add('hidden');
    this.chosenText.textContent = '';
    this.markSelected();
  }

  async load(offset) {
    if (!this.model || !this.total) return;
    offset = Math.max(0, Math.min(offset, Math.floor((this.total - 1) / this.count) * this.count));
    const model = this.model;
    try {
      const page = await lf.api(`/api/models/${encodeURIComponent(model.id)}/test_images?offset=${offset}&count=${this.count}`);
      if (model !== this.model) return;
      this.offset = offset;
      this.total = page.total;
      this.strip.replaceChildren();
      for (const t of page.images) {
        const img = document.createElement('img');
        img.id = `${this.prefix}-thumb-${t.index}`;
        img.className = 'thumb';
        img.src = lf.png(t.image);
        img.alt = `test image ${t.index}`;
        img.title = `test image ${t.index}` + (t.class_name ? ` (${t.class_name})` : '');
        img.dataset.index = t.index;
        img.dataset.className = t.class_name || '';
        img.addEventListener('click', () => this.pickTest(t.index, t));
        this.strip.appendChild(img);
      }
      const last = Math.min(this.total, offset + page.images.length);
      this.range.textContent = `${offset}–${last - 1} of ${this.total}`;
      this.prev.disabled = offset === 0;
      this.next.disabled = last >= this.total;
      this.markSelected();
    } catch (e) {
      this.strip.replaceChildren();
      const p = document.createElement('p');
      p.className = 'status error';
      p.textContent = `test images: ${e.message}`;
      this.strip.appendChild(p);
    }
  }

  markSelected() {
    for (const img of this.strip.querySelectorAll('img')) {
      img.classList.toggle('selected', this.chosen !== null && this.chosen.test_index === Number(img.dataset.index));
    }
  }

  // Chooses test image i (moving the strip to its page when it is not shown).
  async pickTest(i, entry) {
    if (i < this.offset || i >= this.offset + this.count) await this.load(Math.floor(i / this.count) * this.count);
    const img = document.getElementById(`${this.prefix}-thumb-${i}`);
    const name = entry ? entry.class_name : img && img.dataset.className;
    this.chosen = { test_index: i };
    this.uploadFile = null;
    this.label = `test image ${i}` + (name ? ` (${name})` : '');
    this.index.value = i;
    if (img) {
      this.preview.src = img.src;
      this.preview.classList.remove('hidden');
    }
    this.chosenText.textContent = this.label;
    if (this.file) this.file.value = '';
    this.markSelected();
    this.onPick(this.chosen);
  }

  async pickUpload() {
    const file = this.file.files[0];
    if (!file) return;
    // base64 makes the body 4/3 of the file's size.
    if (file.size * 4 / 3 > lf.MAX_UPLOAD - 1024) {
      this.chosenText.textContent = `${file.name} is ${lf.bytes(file.size)}: too large to send`;
      return;
    }
    const { url, base64 } = await lf.readFile(file);
    this.chosen = { upload: base64 };
    this.uploadFile = file;
    this.label = file.name;
    this.preview.src = url;
    this.preview.classList.remove('hidden');
    this.chosenText.textContent = `upload: ${file.name}`;
    this.markSelected();
    this.onPick(this.chosen);
  }
};

// The "frames and a slider" view used for interpolations and traversals: <input type=range
// id=SLIDER>, <img id=IMG>, a strip <div id=STRIP> of all frames (click one to go to it) and a
// caption <span id=LABEL> from label(i).
lf.FrameViewer = class {
  constructor({ slider, img, strip, label }) {
    this.slider = document.getElementById(slider);
    this.img = document.getElementById(img);
    this.strip = document.getElementById(strip);
    this.labelEl = document.getElementById(label);
    this.urls = [];
    this.label = () => '';
    this.slider.addEventListener('input', () => this.show(parseInt(this.slider.value, 10)));
  }

  set(frames, label) {
    this.urls = frames.map(lf.png);
    this.label = label;
    this.slider.min = 0;
    this.slider.max = Math.max(0, frames.length - 1);
    this.slider.disabled = frames.length < 2;
    this.strip.replaceChildren();
    this.urls.forEach((url, i) => {
      const img = document.createElement('img');
      img.src = url;
      img.className = 'thumb';
      img.id = `${this.strip.id}-${i}`;
      img.alt = `frame ${i}`;
      img.addEventListener('click', () => this.show(i));
      this.strip.appendChild(img);
    });
    this.show(0);
  }

  show(i) {
    if (!this.urls.length) return;
    i = Math.max(0, Math.min(this.urls.length - 1, i));
    this.slider.value = i;
    this.img.src = this.urls[i];
    this.img.classList.remove('hidden');
    this.labelEl.textContent = this.label(i);
    this.strip.querySelectorAll('img').forEach((img, j) => img.classList.toggle('selected', i === j));
  }
};
