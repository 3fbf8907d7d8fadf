// The minimal dashboard: the list of jobs, refreshed every few seconds.
const tbody = document.querySelector('#jobs tbody');

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

async function refresh() {
  const res = await fetch('/api/jobs?limit=200');
  if (!res.ok) return;
  const { jobs } = await res.json();
  const rows = jobs.map((j) => {
    const tr = document.createElement('tr');
    const a = document.createElement('a');
    a.href = `/jobs/${j.id}`;
    a.textContent = j.name;
    const name = document.createElement('td');
    name.append(a);
    tr.append(cell(String(j.id)), name, cell(j.status), cell(j.exit_code ?? ''), cell(j.started_at ?? ''));
    return tr;
  });
  tbody.replaceChildren(...rows);
  document.getElementById('empty').hidden = jobs.length > 0;
}

refresh();
setInterval(refresh, 3000);
