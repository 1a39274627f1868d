// Actions on a consumer group: reset, delete, prune. Each opens a
// confirmation that says what will happen.
import {h, fill, num, dur, confirm, act, post, counts, toast, plural} from './util.js';

// cmpID compares two entry IDs ("ms-seq").
function cmpID(a, b) {
  const [am, as] = a.split('-').map(BigInt), [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : (as < bs ? -1 : 1);
}
const validID = (s) => /^\d+-\d+$/.test(s);

function resetText(t, g, kind, value) {
  const keep = `Its ${num(g.pending)} pending entr${g.pending === 1 ? 'y stays' : 'ies stay'} pending.`;
  switch (kind) {
    case 'oldest':
      return `Group ${g.name} will read the whole stream again from its oldest entry: up to ${num(t.length)} entries are delivered again. ${keep}`;
    case 'newest':
      return `Group ${g.name} will skip everything it has not read yet: ${num(g.lag)} unread entr${g.lag === 1 ? 'y is' : 'ies are'} never delivered to it. ${keep}`;
    case 'time': {
      const d = new Date(value);
      if (!value || isNaN(d)) return null;
      const id = `${d.getTime()}-0`, dir = cmpID(id, g.lastDeliveredId);
      return `Group ${g.name} will next read the entries added at or after ${d.toISOString()}` +
        (dir <= 0 ? ': it moves back and entries it had read are delivered again. ' : ': it moves forward and unread entries before that time are skipped. ') + keep;
    }
    case 'id': {
      if (!validID(value)) return null;
      const dir = cmpID(value, g.lastDeliveredId);
      if (dir === 0) return `Group ${g.name} is already at ${value}: nothing changes.`;
      return `Group ${g.name} will next read the entries after ${value}` +
        (dir < 0 ? ': it moves back and entries it had read are delivered again. ' : ': it moves forward and unread entries up to that ID are skipped. ') + keep;
    }
  }
  return null;
}

// fresh reads the topic and group from Redis as a dialog opens: what the
// dialog says is what Redis holds now, not what the last round showed.
async function fresh(t, g) {
  const ft = await counts(t.name);
  const fg = ft.groups.find((x) => x.name === g.name);
  if (!fg) throw new Error(`group ${g.name} no longer exists`);
  return [ft, fg];
}

async function reset(t0, g0) {
  let t, g;
  try { [t, g] = await fresh(t0, g0); } catch (e) { toast(`Failed: ${e.message}`, true); return; }
  const text = h('p', {class: 'what', id: 'reset-what'});
  const idInput = h('input', {type: 'text', id: 'reset-id', placeholder: g.lastDeliveredId, size: 24});
  const timeInput = h('input', {type: 'datetime-local', id: 'reset-time', step: 1});
  const choice = (value, label, extra) => h('label', {class: 'choice'},
    h('input', {type: 'radio', name: 'reset-to', value, checked: value === 'oldest'}), ` ${label} `, extra || '');
  const form = h('div', {class: 'reset-form'},
    h('p', {}, `Group ${g.name} last read entry ${g.lastDeliveredId}. Move it to:`),
    choice('oldest', 'the oldest entry (read everything again)'),
    choice('newest', 'the newest entry (skip the backlog)'),
    choice('id', 'after entry ID', idInput),
    choice('time', 'the entries added from', timeInput),
    text);
  // A position after the stream's last entry and ahead of the clock makes
  // the group skip every message published until then: the server refuses
  // it unless forced, and so does the dialog.
  const force = h('input', {type: 'checkbox', id: 'reset-force'});
  const beyondBox = h('div', {class: 'beyond', id: 'reset-beyond', hidden: true},
    h('p', {class: 'bad-text', id: 'reset-beyond-text'}),
    h('label', {class: 'choice'}, force, ' Move it there anyway (force)'));
  form.append(beyondBox);
  const beyond = (kind, value) => {
    let ms;
    if (kind === 'id' && validID(value)) ms = Number(value.split('-')[0]);
    else if (kind === 'time' && value && !isNaN(new Date(value))) ms = new Date(value).getTime();
    else return null;
    const last = t.lastGeneratedId || '0-0';
    const pos = kind === 'id' ? value : `${ms}-0`;
    return cmpID(pos, last) > 0 && ms >= Date.now() ? ms : null;
  };
  const state = () => {
    const kind = form.querySelector('input[name=reset-to]:checked').value;
    const value = kind === 'id' ? idInput.value.trim() : timeInput.value;
    return {kind, value, text: resetText(t, g, kind, value), beyond: beyond(kind, value)};
  };
  let setEnabled;
  const update = () => {
    const s = state();
    text.textContent = s.text || 'Give a valid entry ID or time.';
    beyondBox.hidden = s.beyond === null;
    if (s.beyond !== null) {
      document.getElementById('reset-beyond-text').textContent = `This is beyond the end of the stream (its last entry is ${t.lastGeneratedId || 'none'}): ` +
        `group ${g.name} would skip every message published until ${new Date(s.beyond).toISOString()}.`;
    }
    setEnabled(!!s.text && (s.beyond === null || force.checked));
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  const ok = await confirm(`Reset group ${g.name} of ${t.name}`, form, 'Reset group', (f) => { setEnabled = f; update(); });
  if (!ok) return;
  const s = state();
  const body = {topic: t.name, group: g.name};
  if (s.kind === 'oldest') body.to = '0';
  else if (s.kind === 'newest') body.to = '$';
  else if (s.kind === 'id') body.to = s.value;
  else body.time = new Date(s.value).toISOString();
  if (s.beyond !== null && force.checked) body.force = true;
  await act('/api/group/reset', body, (r) => `Group ${g.name} reset to ${r.to}.`);
}

// deleteGroup opens the confirmation of a group's deletion (the
// overview's problems offer it for an abandoned group).
export const deleteGroup = (topic, group) => remove({name: topic}, {name: group});

async function remove(t0, g0) {
  let t, g;
  try { [t, g] = await fresh(t0, g0); } catch (e) { toast(`Failed: ${e.message}`, true); return; }
  const ok = await confirm(`Delete group ${g.name} of ${t.name}`, [
    h('p', {class: 'what'}, `Group ${g.name} is deleted with its position and its pending entries list: ` +
      `its ${num(g.pending)} pending entr${g.pending === 1 ? 'y is' : 'ies are'} no longer tracked for it and its ` +
      `${g.consumers.length} consumer${g.consumers.length === 1 ? '' : 's'} go with it. ` +
      'Running subscribers of the group create it again at their NewGroupStartID.'),
  ], 'Delete group');
  if (ok) await act('/api/group/delete', {topic: t.name, group: g.name}, () => `Group ${g.name} deleted.`);
}

async function prune(t, g) {
  const idle = h('input', {type: 'text', id: 'prune-idle', value: '1h', size: 8});
  const preview = h('div', {class: 'what', id: 'prune-what'}, 'Checking…');
  let setEnabled, asked = 0;
  const check = async () => {
    const n = ++asked;
    setEnabled(false);
    try {
      const r = await post('/api/group/prune', {topic: t.name, group: g.name, idle: idle.value.trim(), dryRun: true});
      if (n !== asked) return;
      fill(preview, 
        h('p', {}, r.removed.length ? `Removes ${r.removed.length} consumer${r.removed.length === 1 ? '' : 's'}: ${r.removed.join(', ')}.`
          : 'No consumer is idle that long without pending entries: nothing to remove.'),
        r.kept.length ? h('p', {}, 'Kept, since they still hold pending entries: ' +
          r.kept.map((c) => `${c.name} (${num(c.pending)} pending, idle ${dur(c.idleMs)})`).join(', ') + '.') : '');
      setEnabled(r.removed.length > 0);
    } catch (e) {
      if (n === asked) preview.textContent = e.message;
    }
  };
  const body = [h('p', {}, 'Remove the consumers idle for at least ', idle,
    ' that hold no pending entry. A consumer that holds pending entries is never removed.'), preview];
  idle.addEventListener('input', check);
  const ok = await confirm(`Prune consumers of ${g.name} on ${t.name}`, body, 'Remove consumers', (f) => { setEnabled = f; check(); });
  if (ok) {
    await act('/api/group/prune', {topic: t.name, group: g.name, idle: idle.value.trim()},
      (r) => `Removed ${r.removed.length} consumer${r.removed.length === 1 ? '' : 's'} of ${g.name}.`);
  }
}

// pause and resume a group: its subscribers stop taking new entries within
// a second and finish what they hold; the state is a key they watch, so it
// survives their restarts.
async function pause(t0, g0) {
  let t, g;
  try { [t, g] = await fresh(t0, g0); } catch (e) { toast(`Failed: ${e.message}`, true); return; }
  const ok = await confirm(`Pause group ${g.name} of ${t.name}`,
    h('p', {class: 'what', id: 'pause-what'}, `The subscribers of group ${g.name} stop taking new entries within a second and finish the ${plural(g.pending, 'entry', 'entries')} they hold. ` +
      'New messages wait in the stream (the lag grows) until the group is resumed. The pause holds across restarts of the subscribers.'),
    'Pause group');
  if (ok) await act('/api/group/pause', {topic: t.name, group: g.name}, (r) => (r.changed ? `Group ${g.name} paused.` : `Group ${g.name} was already paused.`));
}

async function resume(t0, g0) {
  let t, g;
  try { [t, g] = await fresh(t0, g0); } catch (e) { toast(`Failed: ${e.message}`, true); return; }
  const ok = await confirm(`Resume group ${g.name} of ${t.name}`,
    h('p', {class: 'what', id: 'resume-what'}, `The subscribers of group ${g.name} take new entries again within a second: ${plural(g.lag, 'entry', 'entries')} wait${g.lag === 1 ? 's' : ''} for it.`),
    'Resume group');
  if (ok) await act('/api/group/resume', {topic: t.name, group: g.name}, (r) => (r.changed ? `Group ${g.name} resumed.` : `Group ${g.name} was not paused.`));
}

// groupActions are the buttons of a group on the topic page.
export function groupActions(t, g) {
  return h('span', {class: 'actions'},
    g.paused
      ? h('button', {class: 'small', 'data-action': 'resume', onclick: () => resume(t, g)}, 'Resume…')
      : h('button', {class: 'small', 'data-action': 'pause', onclick: () => pause(t, g)}, 'Pause…'),
    h('button', {class: 'small', 'data-action': 'reset', onclick: () => reset(t, g)}, 'Reset…'),
    h('button', {class: 'small', 'data-action': 'prune', onclick: () => prune(t, g)}, 'Prune consumers…'),
    h('button', {class: 'small danger', 'data-action': 'delete', onclick: () => remove(t, g)}, 'Delete…'));
}
