// the guestbook's page: lists the entries and signs it through /api/entries
const list = document.getElementById('entries');
const form = document.getElementById('sign');

function show(entries) {
  list.replaceChildren(...entries.map(e => {
    const li = document.createElement('li');
    const who = document.createElement('b');
    who.textContent = e.name;
    li.append(who, e.message);
    return li;
  }));
}

async function load() {
  const r = await fetch('api/entries');
  show(await r.json());
}

form.addEventListener('submit', async ev => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(form));
  const r = await fetch('api/entries', {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(data),
  });
  if (r.ok) { form.reset(); load(); } else { alert((await r.json()).error); }
});

load();
