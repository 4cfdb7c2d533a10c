// wgsplit's built-in pages: first-run setup, login, clients. Plain DOM, no
// framework; every call goes to the REST API (openapi.json) on this origin.
// Text from the API is only ever set as textContent, never parsed as HTML.
'use strict';

const T = {
  en: {
    setup_title: 'Set the admin password', setup_note: 'First start: choose the password for these pages. It is stored only as a salted hash.',
    password: 'Password', password2: 'Password again', save: 'Save and continue', mismatch: 'The passwords differ.',
    login_title: 'Log in', login: 'Log in', logout: 'Log out', wrong: 'Wrong password.',
    too_many: 'Too many attempts: wait {s} s.', clients: 'Clients', add_title: 'Add a client', name: 'Name',
    upstream: 'Upstream', none: '(none: direct)', add: 'Add', online: 'online', offline: 'offline',
    disabled: 'disabled', expired: 'expired', handshake: 'Last handshake', never: 'never', traffic: 'Traffic',
    enable: 'Enable', disable: 'Disable', conf: 'Download .conf', qr: 'QR code', hide_qr: 'Hide QR',
    remove: 'Remove', confirm_remove: 'Remove for good?', no_clients: 'No clients yet.', ago: '{t} ago',
    failed: 'Failed: {e}',
    token: 'API token', use_token: 'Use the API token instead', use_password: 'Use the password', wrong_token: 'Wrong token.',
  },
  zh: {
    setup_title: '设置管理员密码', setup_note: '首次启动：为此页面设置密码。密码仅以加盐哈希保存。',
    password: '密码', password2: '再次输入密码', save: '保存并继续', mismatch: '两次输入的密码不一致。',
    login_title: '登录', login: '登录', logout: '退出', wrong: '密码错误。',
    too_many: '尝试次数过多：请等待 {s} 秒。', clients: '客户端', add_title: '添加客户端', name: '名称',
    upstream: '上游', none: '（无：直连）', add: '添加', online: '在线', offline: '离线',
    disabled: '已停用', expired: '已过期', handshake: '最近握手', never: '从未', traffic: '流量',
    enable: '启用', disable: '停用', conf: '下载 .conf', qr: '二维码', hide_qr: '隐藏二维码',
    remove: '删除', confirm_remove: '确定删除？', no_clients: '还没有客户端。', ago: '{t}前',
    failed: '失败：{e}',
    token: 'API 令牌', use_token: '改用 API 令牌', use_password: '使用密码', wrong_token: '令牌错误。',
  },
  ru: {
    setup_title: 'Пароль администратора', setup_note: 'Первый запуск: задайте пароль для этих страниц. Хранится только солёный хеш.',
    password: 'Пароль', password2: 'Пароль ещё раз', save: 'Сохранить и продолжить', mismatch: 'Пароли не совпадают.',
    login_title: 'Вход', login: 'Войти', logout: 'Выйти', wrong: 'Неверный пароль.',
    too_many: 'Слишком много попыток: подождите {s} с.', clients: 'Клиенты', add_title: 'Добавить клиента', name: 'Имя',
    upstream: 'Туннель', none: '(нет: напрямую)', add: 'Добавить', online: 'в сети', offline: 'не в сети',
    disabled: 'отключён', expired: 'истёк', handshake: 'Последнее рукопожатие', never: 'никогда', traffic: 'Трафик',
    enable: 'Включить', disable: 'Отключить', conf: 'Скачать .conf', qr: 'QR-код', hide_qr: 'Скрыть QR',
    remove: 'Удалить', confirm_remove: 'Удалить насовсем?', no_clients: 'Клиентов пока нет.', ago: '{t} назад',
    failed: 'Ошибка: {e}',
    token: 'Токен API', use_token: 'Войти по токену API', use_password: 'Войти по паролю', wrong_token: 'Неверный токен.',
  },
};

function pickLang() {
  const saved = localStorage.getItem('wgsplit.lang');
  if (saved && T[saved]) return saved;
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const base = String(l).toLowerCase().split('-')[0];
    if (T[base]) return base;
  }
  return 'en';
}
let lang = pickLang();
const t = (key, vars) => String(T[lang][key] || T.en[key] || key)
  .replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? vars[k] : ''));

// el('tag.class', {attr: value, onclick: fn}, child, …): children are nodes or text.
function el(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const e = document.createElement(tag);
  if (classes.length) e.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new ApiError(r.status, data), { retryAfter: r.headers.get('Retry-After') });
  return data;
}

const main = () => document.getElementById('main');
let view = start;
let timer = null;

function show(...nodes) {
  main().replaceChildren(...nodes);
}

// A form's field: label, input, and the place its error is shown.
function field(name, label, input) {
  input.id = 'f-' + name;
  input.name = name;
  return el('div.field', {}, el('label', { for: input.id, text: label }), input,
    el('div.error', { id: 'e-' + name, role: 'alert' }));
}

function showProblems(form, err) {
  form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
  const problems = (err.body && err.body.problems) || [];
  let placed = false;
  for (const p of problems) {
    const slot = form.querySelector('#e-' + CSS.escape(p.field));
    if (slot) { slot.textContent = p.message; placed = true; }
  }
  if (!placed) form.querySelector('.error.form').textContent = t('failed', { e: err.message });
}

async function start() {
  clearInterval(timer);
  document.getElementById('logout').hidden = true;
  try {
    const state = await api('GET', '/api/ui/state');
    if (state.setup_needed) return setup();
    await api('GET', '/api/status');
    return clients();
  } catch (e) {
    if (e.status === 401) return login();
    show(el('p.error', { text: t('failed', { e: e.message }) }));
  }
}

function setup() {
  view = setup;
  const pw = el('input', { type: 'password', autocomplete: 'new-password', required: true });
  const pw2 = el('input', { type: 'password', autocomplete: 'new-password', required: true });
  const form = el('form.box.narrow', { id: 'setup' },
    el('h2', { text: t('setup_title') }), el('p.note', { text: t('setup_note') }),
    field('password', t('password'), pw), field('password2', t('password2'), pw2),
    el('div.row', {}, el('button.primary', { type: 'submit', text: t('save') }),
      el('button.link', { type: 'button', id: 'use-token', text: t('use_token'), onclick: () => login('token') })),
    el('div.error.form'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (pw.value !== pw2.value) {
      form.querySelector('#e-password2').textContent = t('mismatch');
      return;
    }
    try {
      await api('POST', '/api/ui/setup', { password: pw.value });
      clients();
    } catch (e) { showProblems(form, e); }
  });
  show(form);
  pw.focus();
}

// The admin password, or the API token (`POST /api/session`): the token also
// works before any password is set.
function login(mode) {
  mode = mode === 'token' ? 'token' : 'password';
  view = () => login(mode);
  const pw = el('input', { type: 'password', autocomplete: mode === 'token' ? 'off' : 'current-password', required: true });
  const other = mode === 'token' ? 'password' : 'token';
  const form = el('form.box.narrow', { id: 'login', 'data-mode': mode },
    el('h2', { text: t('login_title') }), field('password', t(mode), pw),
    el('div.row', {}, el('button.primary', { type: 'submit', text: t('login') }),
      el('button.link', { type: 'button', id: 'use-other', text: t('use_' + other), onclick: () => login(other) })),
    el('div.error.form'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const slot = form.querySelector('#e-password');
    try {
      if (mode === 'token') await api('POST', '/api/session', { token: pw.value.trim() });
      else await api('POST', '/api/ui/login', { password: pw.value });
      clients();
    } catch (e) {
      if (e.status === 401) slot.textContent = t(mode === 'token' ? 'wrong_token' : 'wrong');
      else if (e.status === 429) slot.textContent = t('too_many', { s: e.retryAfter || 60 });
      else showProblems(form, e);
      pw.select();
    }
  });
  show(form);
  pw.focus();
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  n = Number(n) || 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

function age(secs) {
  if (secs === null || secs === undefined) return t('never');
  const fmt = new Intl.RelativeTimeFormat(lang === 'zh' ? 'zh-CN' : lang, { numeric: 'always', style: 'short' });
  const [v, u] = secs < 90 ? [secs, 'second'] : secs < 5400 ? [Math.round(secs / 60), 'minute']
    : secs < 172800 ? [Math.round(secs / 3600), 'hour'] : [Math.round(secs / 86400), 'day'];
  return fmt.format(-v, u);
}

// What the list shows open survives its refresh every few seconds.
const openQr = new Set();
const armed = new Set();

function clientCard(c) {
  const peer = c.peer || {};
  const state = c.state !== 'enabled' ? c.state : (peer.online ? 'online' : 'offline');
  const enc = encodeURIComponent(c.name);
  const qrBox = el('div.qr', { hidden: true });
  const qrButton = el('button', { type: 'button', class: 'qr-toggle', text: t('qr') });
  const setQr = (open) => {
    if (open) {
      // The image is fetched once per card; a refresh of the list keeps it.
      if (!qrBox.firstChild) qrBox.append(el('img', { src: `/api/clients/${enc}/qr.svg`, alt: c.name + ' QR' }));
      openQr.add(c.name);
    } else {
      openQr.delete(c.name);
    }
    qrBox.hidden = !open;
    qrButton.textContent = open ? t('hide_qr') : t('qr');
  };
  qrButton.addEventListener('click', () => setQr(qrBox.hidden));
  if (openQr.has(c.name)) setQr(true);
  const remove = el('button', { type: 'button', class: 'danger remove', text: t('remove') });
  const arm = () => {
    remove.classList.add('armed');
    remove.textContent = t('confirm_remove');
  };
  if (armed.has(c.name)) arm();
  remove.addEventListener('click', async () => {
    // Two clicks: the first arms the button, so no native dialog is needed.
    if (!armed.has(c.name)) {
      armed.add(c.name);
      arm();
      return;
    }
    armed.delete(c.name);
    openQr.delete(c.name);
    await act(() => api('DELETE', `/api/clients/${enc}`));
  });
  const on = c.state === 'enabled';
  const toggle = el('button', {
    type: 'button', class: 'toggle', text: on ? t('disable') : t('enable'),
    onclick: () => act(() => api('POST', `/api/clients/${enc}/${on ? 'disable' : 'enable'}`)),
  });
  return el('div.card', { 'data-client': c.name },
    el('div.top', {}, el('span.name', { text: c.name }),
      el('span.badge.' + state, { class: 'badge ' + state + ' state', text: t(state) })),
    el('div.facts', {},
      el('span', {}, el('b', { text: t('upstream') }), c.upstream || t('none')),
      el('span', {}, el('b', { text: t('handshake') }), el('span.handshake', { text: age(peer.handshake_age) })),
      el('span', {}, el('b', { text: t('traffic') }), `↓ ${bytes(peer.rx)} ↑ ${bytes(peer.tx)}`),
      el('span.muted', { text: (c.address || []).join(', ') })),
    el('div.actions', {}, toggle,
      c.has_config ? el('a.button', { class: 'button conf', href: `/api/clients/${enc}/config`, download: c.name + '.conf', text: t('conf') }) : null,
      c.has_config ? qrButton : null, remove),
    qrBox);
}

async function act(fn) {
  try {
    await fn();
  } catch (e) {
    if (e.status === 401) return login();
    alertLine(t('failed', { e: e.message }));
  }
  refresh();
}

function alertLine(text) {
  const slot = document.getElementById('notice');
  if (slot) slot.textContent = text;
}

async function refresh() {
  const list = document.getElementById('client-list');
  if (!list) return;
  try {
    const cs = await api('GET', '/api/clients');
    list.replaceChildren(...(cs.length ? cs.map(clientCard) : [el('p.muted', { text: t('no_clients') })]));
  } catch (e) {
    if (e.status === 401) return login();
    alertLine(t('failed', { e: e.message }));
  }
}

async function clients() {
  view = clients;
  clearInterval(timer);
  document.getElementById('logout').hidden = false;
  let ups = [];
  try {
    ups = await api('GET', '/api/upstreams');
  } catch (e) {
    if (e.status === 401) return login();
  }
  const name = el('input', { autocomplete: 'off', required: true, maxlength: 15 });
  const up = el('select', {}, el('option', { value: '', text: t('none') }),
    ...ups.map((u) => el('option', { value: u.name, text: u.name })));
  if (ups.length) up.value = ups[0].name;
  const form = el('form.box', { id: 'add' }, el('h2', { text: t('add_title') }),
    el('div.row', {}, field('name', t('name'), name), field('upstream', t('upstream'), up),
      el('button.primary', { type: 'submit', text: t('add') })),
    el('div.error.form'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim() };
    if (up.value) body.upstream = up.value;
    try {
      await api('POST', '/api/clients', body);
      form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
      name.value = '';
      refresh();
    } catch (e) {
      if (e.status === 401) return login();
      showProblems(form, e);
    }
  });
  show(form, el('h2', { text: t('clients') }), el('p.error', { id: 'notice', role: 'status' }),
    el('div.clients', { id: 'client-list' }));
  await refresh();
  timer = setInterval(refresh, 5000);
}

async function logout() {
  clearInterval(timer);
  try { await api('DELETE', '/api/session'); } catch (e) { /* gone already */ }
  // Back to the setup page if no password is set yet (logged in by token).
  start();
}

function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-Hans' : lang;
  document.getElementById('lang').value = lang;
  document.getElementById('logout').textContent = t('logout');
}

document.addEventListener('DOMContentLoaded', () => {
  applyLang();
  document.getElementById('lang').addEventListener('change', (ev) => {
    lang = ev.target.value;
    localStorage.setItem('wgsplit.lang', lang);
    applyLang();
    view();
  });
  document.getElementById('logout').addEventListener('click', logout);
  start();
});
