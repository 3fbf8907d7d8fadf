// The minimal job page: the job's header and its live log over the stream
// WebSocket, resuming by seq after a drop so that no line is missed or
// shown twice.
const ref = decodeURIComponent(location.pathname.split('/').pop());
const log = document.getElementById('log');
const conn = document.getElementById('conn');
let lastSeq = 0;
let retries = 0;
const open = { stdout: null, stderr: null, tty: null }; // the line element a fragment or \r left open
const replace = { stdout: false, stderr: false, tty: false };

function setJob(job) {
  document.title = `${job.name} · jobrun`;
  document.getElementById('name').textContent = job.name;
  const status = document.getElementById('status');
  status.textContent = job.status;
  status.className = `badge ${job.status}`;
  document.getElementById('exit').textContent = job.exit_code == null ? '' : `exit ${job.exit_code}`;
}

function render(ev) {
  if (ev.type === 'exit') {
    setJob({ name: document.getElementById('name').textContent, status: ev.status, exit_code: ev.exit_code });
    return;
  }
  if (ev.type !== 'line') return;
  let el = open[ev.stream];
  if (!el) {
    el = document.createElement('span');
    el.className = `line ${ev.stream}`;
    el.dataset.line = ev.line;
    log.append(el);
  } else if (replace[ev.stream]) {
    el.textContent = '';
  }
  el.append(ev.text);
  replace[ev.stream] = ev.eol === '\r';
  open[ev.stream] = ev.eol === '' || ev.eol === '\r' ? el : null;
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/jobs/${encodeURIComponent(ref)}/stream?after=${lastSeq}`);
  ws.onopen = () => { conn.textContent = 'live'; retries = 0; };
  ws.onmessage = (m) => {
    const atBottom = innerHeight + scrollY >= document.body.scrollHeight - 4;
    for (const ev of JSON.parse(m.data)) {
      if (ev.seq === undefined) continue; // out-of-band notice
      if (ev.seq <= lastSeq) continue; // never show a line twice
      render(ev);
      lastSeq = ev.seq;
    }
    if (atBottom) scrollTo(0, document.body.scrollHeight);
  };
  ws.onclose = (e) => {
    if (e.code === 1000) { conn.textContent = 'ended'; return; }
    if (e.code === 4404) { conn.textContent = 'job not found'; return; }
    if (e.code === 4409) { lastSeq = 0; log.replaceChildren(); }
    const delay = Math.min(5000, 250 * 2 ** retries++) * (0.5 + Math.random() / 2);
    conn.textContent = 'reconnecting…';
    setTimeout(connect, delay);
  };
}

fetch(`/api/jobs/${encodeURIComponent(ref)}`)
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then((job) => { setJob(job); connect(); })
  .catch((e) => { conn.textContent = `cannot load job: ${e.message}`; });
