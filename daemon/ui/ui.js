// wgsplit's built-in pages: setup, login, clients (and each one's rules and
// traffic), upstreams, explain, settings. Plain DOM, no framework; every call
// goes to the REST API (openapi.json) on this origin. Text from the API is only
// ever set as textContent, never parsed as HTML.
'use strict';

const T = {
  en: {
    setup_title: 'Set the admin password', setup_note: 'First start: choose the password for these pages. It is stored only as a salted hash.',
    password: 'Password', password2: 'Password again', save: 'Save and continue', save2: 'Save', mismatch: 'The passwords differ.',
    login_title: 'Log in', login: 'Log in', logout: 'Log out', wrong: 'Wrong password.',
    too_many: 'Too many attempts: wait {s} s.', clients: 'Clients', add_title: 'Add a client', name: 'Name',
    upstream: 'Upstream', none: '(none: direct)', add: 'Add', online: 'online', offline: 'offline',
    disabled: 'disabled', expired: 'expired', handshake: 'Last handshake', never: 'never', traffic: 'Traffic',
    enable: 'Enable', disable: 'Disable', conf: 'Download .conf', qr: 'QR code', hide_qr: 'Hide QR',
    remove: 'Remove', confirm_remove: 'Remove for good?', no_clients: 'No clients yet.',
    failed: 'Failed: {e}',
    token: 'API token', use_token: 'Use the API token instead', use_password: 'Use the password', wrong_token: 'Wrong token.',
    default: 'Other traffic', proxy: 'via the upstream', direct: 'direct (WAN)', block: 'blocked',
    expires: 'Expires', quota: 'Monthly quota', quota_ph: 'e.g. 50G', description: 'Description',
    edit: 'Edit', back: '← Clients', saved: 'Saved.', link: 'One-time link',
    link_note: 'Works once, for an hour:', chart: 'Traffic, last 7 days', no_history: 'No traffic history yet.',
    month: 'This month: {b}', of_quota: '{b} of {q}', rx: 'received', tx: 'sent',
    rules: 'Rules', rules_note: 'In order: the first rule that matches decides.', no_rules: 'No rules: all traffic goes the default way.',
    add_rule: 'Add a rule', action: 'Action', domain: 'Domains', cidr: 'Addresses (CIDR)', port: 'Ports',
    geoip: 'Countries', list: 'Lists', comma: 'comma-separated', up: 'Move up', down: 'Move down',
    upstreams: 'Upstreams', explain: 'Explain', settings: 'Settings',
    import_title: 'Import a provider\'s .conf', conf_text: 'wg-quick file (paste, or pick a file)', file: 'File',
    import: 'Import', on_down: 'When down', failover: 'Failover upstream', od_block: 'block (kill switch)',
    od_direct: 'go direct', od_failover: 'fail over', health: 'Health', up_s: 'up', degraded: 'degraded', down_s: 'down',
    unknown: 'no data', since: 'since {t}', endpoint: 'Endpoint', no_upstreams: 'No upstreams yet.', notes: 'Notes: {n}',
    ex_title: 'Which way does it go?', client: 'Client', dest: 'Destination', dest_ph: 'name, address or addr:port/proto',
    ask: 'Explain', goes: 'Goes', rule: 'Decided by', by_default: 'the client\'s default', caveats: 'Caveats',
    rule_at: 'rule {n} ({s}): {a}, matched {m}', live: 'from the live state', config_only: 'from the config alone',
    server: 'Server', listen_port: 'Listen port', mtu: 'MTU', dns: 'DNS', dns_server: 'Resolvers (when direct)',
    ttl_min: 'Least TTL (s)', ttl_max: 'Most TTL (s)', lists: 'Lists and GeoIP', update: 'Update now', updating: 'Updating…',
    last: 'Last update: {r}', entries: '{n} entries', no_lists: 'No lists or GeoIP configured.', source: 'Source',
  },
  zh: {
    setup_title: '设置管理员密码', setup_note: '首次启动：为此页面设置密码。密码仅以加盐哈希保存。',
    password: '密码', password2: '再次输入密码', save: '保存并继续', save2: '保存', mismatch: '两次输入的密码不一致。',
    login_title: '登录', login: '登录', logout: '退出', wrong: '密码错误。',
    too_many: '尝试次数过多：请等待 {s} 秒。', clients: '客户端', add_title: '添加客户端', name: '名称',
    upstream: '上游', none: '（无：直连）', add: '添加', online: '在线', offline: '离线',
    disabled: '已停用', expired: '已过期', handshake: '最近握手', never: '从未', traffic: '流量',
    enable: '启用', disable: '停用', conf: '下载 .conf', qr: '二维码', hide_qr: '隐藏二维码',
    remove: '删除', confirm_remove: '确定删除？', no_clients: '还没有客户端。',
    failed: '失败：{e}',
    token: 'API 令牌', use_token: '改用 API 令牌', use_password: '使用密码', wrong_token: '令牌错误。',
    default: '其他流量', proxy: '经上游', direct: '直连（WAN）', block: '阻止',
    expires: '到期', quota: '每月流量配额', quota_ph: '例如 50G', description: '说明',
    edit: '编辑', back: '← 客户端', saved: '已保存。', link: '一次性链接',
    link_note: '只能使用一次，一小时内有效：', chart: '流量（最近 7 天）', no_history: '还没有流量记录。',
    month: '本月：{b}', of_quota: '{b} / {q}', rx: '接收', tx: '发送',
    rules: '规则', rules_note: '按顺序：第一条匹配的规则决定去向。', no_rules: '没有规则：所有流量走默认方式。',
    add_rule: '添加规则', action: '动作', domain: '域名', cidr: '地址（CIDR）', port: '端口',
    geoip: '国家', list: '列表', comma: '用逗号分隔', up: '上移', down: '下移',
    upstreams: '上游', explain: '解释', settings: '设置',
    import_title: '导入服务商的 .conf', conf_text: 'wg-quick 文件（粘贴或选择文件）', file: '文件',
    import: '导入', on_down: '断开时', failover: '备用上游', od_block: '阻止（断网保护）',
    od_direct: '直连', od_failover: '切换到备用', health: '状态', up_s: '正常', degraded: '降级', down_s: '断开',
    unknown: '无数据', since: '自 {t}', endpoint: '端点', no_upstreams: '还没有上游。', notes: '提示：{n}',
    ex_title: '流量走哪条路？', client: '客户端', dest: '目标', dest_ph: '域名、地址或 地址:端口/协议',
    ask: '解释', goes: '去向', rule: '决定规则', by_default: '客户端的默认设置', caveats: '注意',
    rule_at: '第 {n} 条规则（{s}）：{a}，匹配 {m}', live: '基于实时状态', config_only: '仅基于配置',
    server: '服务器', listen_port: '监听端口', mtu: 'MTU', dns: 'DNS', dns_server: '直连时的解析服务器',
    ttl_min: '最小 TTL（秒）', ttl_max: '最大 TTL（秒）', lists: '列表与 GeoIP', update: '立即更新', updating: '正在更新…',
    last: '上次更新：{r}', entries: '{n} 条', no_lists: '未配置列表或 GeoIP。', source: '来源',
  },
  ru: {
    setup_title: 'Пароль администратора', setup_note: 'Первый запуск: задайте пароль для этих страниц. Хранится только солёный хеш.',
    password: 'Пароль', password2: 'Пароль ещё раз', save: 'Сохранить и продолжить', save2: 'Сохранить', mismatch: 'Пароли не совпадают.',
    login_title: 'Вход', login: 'Войти', logout: 'Выйти', wrong: 'Неверный пароль.',
    too_many: 'Слишком много попыток: подождите {s} с.', clients: 'Клиенты', add_title: 'Добавить клиента', name: 'Имя',
    upstream: 'Туннель', none: '(нет: напрямую)', add: 'Добавить', online: 'в сети', offline: 'не в сети',
    disabled: 'отключён', expired: 'истёк', handshake: 'Последнее рукопожатие', never: 'никогда', traffic: 'Трафик',
    enable: 'Включить', disable: 'Отключить', conf: 'Скачать .conf', qr: 'QR-код', hide_qr: 'Скрыть QR',
    remove: 'Удалить', confirm_remove: 'Удалить насовсем?', no_clients: 'Клиентов пока нет.',
    failed: 'Ошибка: {e}',
    token: 'Токен API', use_token: 'Войти по токену API', use_password: 'Войти по паролю', wrong_token: 'Неверный токен.',
    default: 'Остальной трафик', proxy: 'через туннель', direct: 'напрямую (WAN)', block: 'блокировать',
    expires: 'Действует до', quota: 'Квота в месяц', quota_ph: 'напр. 50G', description: 'Описание',
    edit: 'Изменить', back: '← Клиенты', saved: 'Сохранено.', link: 'Одноразовая ссылка',
    link_note: 'Сработает один раз, в течение часа:', chart: 'Трафик за 7 дней', no_history: 'Истории трафика пока нет.',
    month: 'В этом месяце: {b}', of_quota: '{b} из {q}', rx: 'получено', tx: 'отправлено',
    rules: 'Правила', rules_note: 'По порядку: решает первое совпавшее правило.', no_rules: 'Правил нет: весь трафик идёт по умолчанию.',
    add_rule: 'Добавить правило', action: 'Действие', domain: 'Домены', cidr: 'Адреса (CIDR)', port: 'Порты',
    geoip: 'Страны', list: 'Списки', comma: 'через запятую', up: 'Выше', down: 'Ниже',
    upstreams: 'Туннели', explain: 'Проверка', settings: 'Настройки',
    import_title: 'Импорт .conf провайдера', conf_text: 'Файл wg-quick (вставьте или выберите)', file: 'Файл',
    import: 'Импортировать', on_down: 'Если недоступен', failover: 'Резервный туннель', od_block: 'блокировать (kill switch)',
    od_direct: 'напрямую', od_failover: 'на резервный', health: 'Состояние', up_s: 'работает', degraded: 'с перебоями', down_s: 'недоступен',
    unknown: 'нет данных', since: 'с {t}', endpoint: 'Адрес', no_upstreams: 'Туннелей пока нет.', notes: 'Замечания: {n}',
    ex_title: 'Куда пойдёт трафик?', client: 'Клиент', dest: 'Назначение', dest_ph: 'имя, адрес или адрес:порт/протокол',
    ask: 'Проверить', goes: 'Пойдёт', rule: 'Решило', by_default: 'умолчание клиента', caveats: 'Оговорки',
    rule_at: 'правило {n} ({s}): {a}, совпало {m}', live: 'по текущему состоянию', config_only: 'только по конфигурации',
    server: 'Сервер', listen_port: 'Порт', mtu: 'MTU', dns: 'DNS', dns_server: 'DNS-серверы (напрямую)',
    ttl_min: 'Мин. TTL (с)', ttl_max: 'Макс. TTL (с)', lists: 'Списки и GeoIP', update: 'Обновить сейчас', updating: 'Обновление…',
    last: 'Последнее обновление: {r}', entries: 'записей: {n}', no_lists: 'Списки и GeoIP не настроены.', source: 'Источник',
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

// One call; JSON in and out unless `type` names another body type. The
// answer's ETag rides along as `etag` (for PUT /api/config with If-Match).
async function api(method, path, body, type, ifMatch) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = type || 'application/json';
    opts.body = type ? body : JSON.stringify(body);
  }
  if (ifMatch) opts.headers['If-Match'] = ifMatch;
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new ApiError(r.status, data), { retryAfter: r.headers.get('Retry-After') });
  if (data && typeof data === 'object') Object.defineProperty(data, 'etag', { value: r.headers.get('ETag') });
  return data;
}

const main = () => document.getElementById('main');
const enc = encodeURIComponent;
let view = start;
let timer = null;

// Every page starts with begin(): the old page's timer stops, and a page still
// waiting for its data when a newer one began is dropped when the data comes,
// so a slow answer never replaces a newer page (quick tab switches, a redraw
// after a form was sent).
let epoch = 0;
function begin() {
  clearInterval(timer);
  timer = null;
  return ++epoch;
}
const stale = (my) => my !== epoch;

function show(...nodes) {
  main().replaceChildren(...nodes);
}

// A form's field: label, input, and the place its error is shown.
function field(name, label, input, hint) {
  input.id = 'f-' + name;
  input.name = name;
  return el('div.field', {}, el('label', { for: input.id, text: label }), input,
    hint ? el('div.note', { text: hint }) : null,
    el('div.error', { id: 'e-' + name, role: 'alert' }));
}

function select(options, value) {
  const s = el('select', {}, ...options.map(([v, text]) => el('option', { value: v, text })));
  if (value !== undefined && value !== null) s.value = value;
  return s;
}

const actions = () => ['proxy', 'direct', 'block'].map((a) => [a, t(a)]);
const onDowns = () => [['block', t('od_block')], ['direct', t('od_direct')], ['failover', t('od_failover')]];
const list = (v) => v.split(/[\s,]+/).filter(Boolean);

// The API's problems carry the config path (`rule[3].domain[0]`) and its last
// part as `field`; each is shown under the input of that name.
function showProblems(form, err) {
  form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
  const problems = (err.body && err.body.problems) || [];
  let placed = false;
  for (const p of problems) {
    const name = String(p.field || '').replace(/\[.*$/, '');
    const slot = form.querySelector('#e-' + CSS.escape(name));
    if (slot) { slot.textContent += (slot.textContent ? ' ' : '') + p.message; placed = true; }
  }
  if (!placed) form.querySelector('.error.form').textContent = t('failed', { e: err.message });
}

// A form that sends `body()` with `send`, shows problems next to the fields,
// and calls `done` after a success.
function onSubmit(form, send, done) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await send();
      form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
      if (done) await done(r);
    } catch (e) {
      if (e.status === 401) return login();
      showProblems(form, e);
    }
  });
  return form;
}

async function start() {
  const my = begin();
  document.getElementById('logout').hidden = true;
  document.getElementById('nav').hidden = true;
  try {
    const state = await api('GET', '/api/ui/state');
    if (stale(my)) return;
    if (state.setup_needed) return setup();
    await api('GET', '/api/status');
    if (stale(my)) return;
    return route();
  } catch (e) {
    if (stale(my)) return;
    if (e.status === 401) return login();
    show(el('p.error', { text: t('failed', { e: e.message }) }));
  }
}

function setup() {
  begin();
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
      route();
    } catch (e) { showProblems(form, e); }
  });
  show(form);
  pw.focus();
}

// The admin password, or the API token (`POST /api/session`): the token also
// works before any password is set.
function login(mode) {
  mode = mode === 'token' ? 'token' : 'password';
  begin();
  view = () => login(mode);
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
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
      route();
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

// Where the page is: #clients, #client/NAME, #upstreams, #explain, #settings.
function route() {
  begin();
  document.getElementById('logout').hidden = false;
  const nav = document.getElementById('nav');
  nav.hidden = false;
  const [page, arg] = location.hash.slice(1).split('/');
  const views = { clients, client: () => client(decodeURIComponent(arg || '')), upstreams, explain, settings };
  view = views[page] || clients;
  const tab = views[page] ? (page === 'client' ? 'clients' : page) : 'clients';
  nav.querySelectorAll('a').forEach((a) => a.classList.toggle('on', a.dataset.tab === tab));
  return view();
}

// Runs a write, reports a failure in #notice, then redraws with `after`.
async function act(fn, after) {
  try {
    await fn();
  } catch (e) {
    if (e.status === 401) return login();
    notice(t('failed', { e: e.message }));
  }
  if (after) after();
}

function notice(text) {
  const slot = document.getElementById('notice');
  if (slot) slot.textContent = text;
}

// A remove button that asks by arming itself on the first click.
function removeButton(key, armedSet, onRemove) {
  const b = el('button', { type: 'button', class: 'danger remove', text: t('remove') });
  const arm = () => { b.classList.add('armed'); b.textContent = t('confirm_remove'); };
  if (armedSet.has(key)) arm();
  b.addEventListener('click', () => {
    if (!armedSet.has(key)) { armedSet.add(key); arm(); return; }
    armedSet.delete(key);
    onRemove();
  });
  return b;
}

// What the list shows open survives its refresh every few seconds.
const openQr = new Set();
const armed = new Set();
const links = new Map();

function clientCard(c) {
  const peer = c.peer || {};
  const state = c.state !== 'enabled' ? c.state : (peer.online ? 'online' : 'offline');
  const n = enc(c.name);
  const qrBox = el('div.qr', { hidden: true });
  const qrButton = el('button', { type: 'button', class: 'qr-toggle', text: t('qr') });
  const setQr = (open) => {
    if (open) {
      // The image is fetched once per card; a refresh of the list keeps it.
      if (!qrBox.firstChild) qrBox.append(el('img', { src: `/api/clients/${n}/qr.svg`, alt: c.name + ' QR' }));
      openQr.add(c.name);
    } else {
      openQr.delete(c.name);
    }
    qrBox.hidden = !open;
    qrButton.textContent = open ? t('hide_qr') : t('qr');
  };
  qrButton.addEventListener('click', () => setQr(qrBox.hidden));
  if (openQr.has(c.name)) setQr(true);
  const linkBox = el('div.linkbox');
  const showLink = (url) => linkBox.replaceChildren(el('span.note', { text: t('link_note') }),
    el('input', { readonly: true, class: 'onetime', value: url, onfocus: (ev) => ev.target.select() }));
  if (links.has(c.name)) showLink(links.get(c.name));
  const on = c.state === 'enabled';
  const toggle = el('button', {
    type: 'button', class: 'toggle', text: on ? t('disable') : t('enable'),
    onclick: () => act(() => api('POST', `/api/clients/${n}/${on ? 'disable' : 'enable'}`), refresh),
  });
  return el('div.card', { 'data-client': c.name },
    el('div.top', {}, el('a.name', { href: '#client/' + n, text: c.name }),
      el('span.badge.' + state, { class: 'badge ' + state + ' state', text: t(state) })),
    el('div.facts', {},
      el('span', {}, el('b', { text: t('upstream') }), c.upstream || t('none')),
      el('span', {}, el('b', { text: t('handshake') }), el('span.handshake', { text: age(peer.handshake_age) })),
      el('span', {}, el('b', { text: t('traffic') }), `↓ ${bytes(peer.rx)} ↑ ${bytes(peer.tx)}`),
      c.expires ? el('span', {}, el('b', { text: t('expires') }), c.expires) : null,
      c.quota ? el('span', {}, el('b', { text: t('quota') }), c.quota) : null,
      el('span.muted', { text: (c.address || []).join(', ') })),
    el('div.actions', {}, toggle, el('a.button', { class: 'button edit', href: '#client/' + n, text: t('edit') }),
      c.has_config ? el('a.button', { class: 'button conf', href: `/api/clients/${n}/config`, download: c.name + '.conf', text: t('conf') }) : null,
      c.has_config ? qrButton : null,
      c.has_config ? el('button', {
        type: 'button', class: 'mklink', text: t('link'),
        onclick: () => act(async () => {
          const r = await api('POST', `/api/clients/${n}/link`);
          links.set(c.name, location.origin + r.path);
          showLink(links.get(c.name));
        }),
      }) : null,
      removeButton(c.name, armed, () => {
        openQr.delete(c.name);
        act(() => api('DELETE', `/api/clients/${n}`), refresh);
      })),
    linkBox, qrBox);
}

async function refresh() {
  const box = document.getElementById('client-list');
  if (!box) return;
  try {
    const cs = await api('GET', '/api/clients');
    box.replaceChildren(...(cs.length ? cs.map(clientCard) : [el('p.muted', { text: t('no_clients') })]));
  } catch (e) {
    if (e.status === 401) return login();
    notice(t('failed', { e: e.message }));
  }
}

async function upstreamNames() {
  try {
    return (await api('GET', '/api/upstreams')).map((u) => u.name);
  } catch (e) {
    return [];
  }
}

// The fields a client has beside its name: upstream, default, expiry, quota.
function clientFields(ups, c) {
  const up = select([['', t('none')], ...ups.map((u) => [u, u])], c ? c.upstream || '' : ups[0] || '');
  const def = select(actions(), c ? c.default || 'direct' : (ups.length ? 'proxy' : 'direct'));
  const exp = el('input', { type: 'date', value: c && c.expires ? c.expires.slice(0, 10) : '' });
  const quota = el('input', { autocomplete: 'off', placeholder: t('quota_ph'), value: c ? c.quota || '' : '' });
  const body = (patch) => {
    const v = (x) => x.value.trim() || (patch ? null : undefined);
    return { upstream: v(up), default: def.value, expires: v(exp), quota: v(quota) };
  };
  return {
    nodes: [field('upstream', t('upstream'), up), field('default', t('default'), def),
      field('expires', t('expires'), exp), field('quota', t('quota'), quota)],
    body,
  };
}

async function clients() {
  const my = begin();
  const ups = await upstreamNames();
  if (stale(my)) return;
  const name = el('input', { autocomplete: 'off', required: true, maxlength: 15 });
  const f = clientFields(ups);
  const form = onSubmit(el('form.box', { id: 'add' }, el('h2', { text: t('add_title') }),
    el('div.row', {}, field('name', t('name'), name), ...f.nodes,
      el('button.primary', { type: 'submit', text: t('add') })),
    el('div.error.form')),
  () => api('POST', '/api/clients', Object.assign({ name: name.value.trim() }, f.body(false))),
  () => { name.value = ''; return refresh(); });
  show(form, el('h2', { text: t('clients') }), el('p.error', { id: 'notice', role: 'status' }),
    el('div.clients', { id: 'client-list' }));
  await refresh();
  if (!stale(my)) timer = setInterval(refresh, 5000);
}

// The traffic of 5-minute buckets over 7 days as two lines (received, sent),
// summed into 84 two-hour points; a small inline SVG, no library.
function chart(h) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const n = 84;
  const sum = (xs) => {
    const out = new Array(n).fill(0);
    const per = Math.max(1, Math.ceil(xs.length / n));
    xs.forEach((x, i) => { out[Math.min(n - 1, Math.floor(i / per))] += Number(x) || 0; });
    return out;
  };
  const rx = sum(h.rx || []), tx = sum(h.tx || []);
  const max = Math.max(1, ...rx, ...tx);
  const W = 336, H = 80;
  const pts = (xs) => xs.map((x, i) => `${(i * W / (n - 1)).toFixed(1)},${(H - 2 - x / max * (H - 4)).toFixed(1)}`).join(' ');
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': t('chart'), preserveAspectRatio: 'none' });
  s.append(svg('line', { x1: 0, y1: H - 1, x2: W, y2: H - 1, stroke: '#d8dde2' }),
    svg('polyline', { points: pts(rx), fill: 'none', stroke: '#2a6bd1', 'stroke-width': 1.5, class: 'rx' }),
    svg('polyline', { points: pts(tx), fill: 'none', stroke: '#1f8a4c', 'stroke-width': 1.5, class: 'tx' }));
  const total = rx.concat(tx).reduce((a, b) => a + b, 0);
  const m = h.month || {};
  return el('div.card.history', {}, el('h3', { text: t('chart') }),
    total ? s : el('p.muted', { text: t('no_history') }),
    el('div.facts', {}, el('span.legend.rx', { text: `↓ ${t('rx')} ${bytes(rx.reduce((a, b) => a + b, 0))}` }),
      el('span.legend.tx', { text: `↑ ${t('tx')} ${bytes(tx.reduce((a, b) => a + b, 0))}` }),
      el('span', { text: t('month', { b: m.quota ? t('of_quota', { b: bytes(m.bytes), q: bytes(m.quota) }) : bytes(m.bytes) }) })));
}

// One client: its settings, traffic chart and ordered rules.
async function client(name) {
  const my = begin();
  let c, ups, rules, hist;
  try {
    [c, ups, rules] = await Promise.all([api('GET', `/api/clients/${enc(name)}`), upstreamNames(), api('GET', '/api/rules')]);
    hist = await api('GET', `/api/clients/${enc(name)}/history`).catch(() => null);
  } catch (e) {
    if (stale(my)) return;
    if (e.status === 401) return login();
    return show(el('a', { href: '#clients', text: t('back') }), el('p.error', { text: t('failed', { e: e.message }) }));
  }
  if (stale(my)) return;
  const f = clientFields(ups, c);
  const desc = el('input', { value: c.description || '' });
  const saved = el('span.note.saved', { role: 'status' });
  const form = onSubmit(el('form.box', { id: 'edit' }, el('h2', { text: c.name }),
    el('div.row', {}, ...f.nodes, field('description', t('description'), desc)),
    el('button.primary', { type: 'submit', text: t('save2') }), saved, el('div.error.form')),
  () => api('PATCH', `/api/clients/${enc(name)}`, Object.assign(f.body(true), { description: desc.value.trim() || null })),
  () => { saved.textContent = t('saved'); });
  show(el('a.back', { href: '#clients', text: t('back') }), form, el('p.error', { id: 'notice', role: 'status' }),
    hist ? chart(hist) : el('p.muted', { text: t('no_history') }), rulesBox(c, ups, rules));
}

// The client's rules in their order (a sub-sequence of the config's rules).
function rulesBox(c, ups, all) {
  const mine = all.filter((r) => r.client === c.name);
  const redraw = () => client(c.name);
  const id = (r) => enc(r.name || String(r.index));
  const move = (i, by) => act(async () => {
    // Swap two rules in the whole config, sent back with If-Match: one atomic
    // write that fails (412) if anything changed meanwhile.
    const cfg = await api('GET', '/api/config');
    const a = mine[i].index, b = mine[i + by].index;
    [cfg.rules[a], cfg.rules[b]] = [cfg.rules[b], cfg.rules[a]];
    await api('PUT', '/api/config', cfg, undefined, cfg.etag);
  }, redraw);
  const what = (r) => ['domain', 'cidr', 'port', 'geoip', 'list']
    .filter((k) => r[k] && r[k].length).map((k) => `${t(k)}: ${r[k].join(', ')}`).join('; ');
  const rows = mine.map((r, i) => el('li.rule', { 'data-index': r.index },
    el('span.pos', { text: String(i + 1) }),
    el('span.what', {}, el('b', { text: r.action === 'proxy' ? `${t('proxy')} (${r.upstream || c.upstream || '?'})` : t(r.action) }),
      ' ', what(r), r.enabled === false ? ` (${t('disabled')})` : ''),
    el('span.actions', {},
      el('button', { type: 'button', class: 'up', title: t('up'), 'aria-label': t('up'), text: '↑', disabled: i === 0, onclick: () => move(i, -1) }),
      el('button', { type: 'button', class: 'down', title: t('down'), 'aria-label': t('down'), text: '↓', disabled: i === mine.length - 1, onclick: () => move(i, 1) }),
      removeButton('rule ' + r.index, armed, () => act(() => api('DELETE', `/api/rules/${id(r)}`), redraw)))));
  const action = select(actions(), 'proxy');
  const up = select([['', t('none')], ...ups.map((u) => [u, u])], c.upstream || '');
  const inputs = {};
  const fields = ['domain', 'cidr', 'port', 'geoip', 'list'].map((k) => {
    inputs[k] = el('input', { autocomplete: 'off', placeholder: { domain: 'example.com, *.example.org', cidr: '8.8.8.0/24', port: 'tcp:443, 8000-8100', geoip: 'US', list: '' }[k] });
    return field(k, t(k), inputs[k]);
  });
  const form = onSubmit(el('form.box', { id: 'add-rule' }, el('h3', { text: t('add_rule') }),
    el('div.row', {}, field('action', t('action'), action), field('upstream', t('upstream'), up)),
    el('div.row', {}, ...fields), el('p.note', { text: t('comma') }),
    el('button.primary', { type: 'submit', text: t('add') }), el('div.error.form')),
  () => {
    const body = { client: c.name, action: action.value };
    if (action.value === 'proxy' && up.value) body.upstream = up.value;
    for (const k in inputs) { const v = list(inputs[k].value); if (v.length) body[k] = v; }
    return api('POST', '/api/rules', body);
  }, redraw);
  return el('div.card.rules', {}, el('h3', { text: t('rules') }), el('p.note', { text: t('rules_note') }),
    mine.length ? el('ol.rules', {}, ...rows) : el('p.muted', { text: t('no_rules') }), form);
}

async function upstreams() {
  const my = begin();
  let ups;
  try {
    ups = await api('GET', '/api/upstreams');
  } catch (e) {
    if (stale(my)) return;
    if (e.status === 401) return login();
    ups = [];
  }
  if (stale(my)) return;
  const names = ups.map((u) => u.name);
  const failSel = (u) => select([['', '—'], ...names.filter((x) => !u || x !== u.name).map((x) => [x, x])], u ? u.failover || '' : '');
  const card = (u) => {
    const h = u.health;
    const state = h ? h.state : 'unknown';
    const od = select(onDowns(), u.on_down || 'block');
    const fo = failSel(u);
    const form = onSubmit(el('form.row.policy', {}, field('on_down', t('on_down'), od), field('failover', t('failover'), fo),
      el('button', { type: 'submit', text: t('save2') }), el('div.error.form')),
    () => api('PATCH', `/api/upstreams/${enc(u.name)}`, { on_down: od.value, failover: fo.value || null }), upstreams);
    form.id = 'up-' + u.name;
    const on = u.enabled !== false;
    return el('div.card', { 'data-upstream': u.name },
      el('div.top', {}, el('span.name', { text: u.name }),
        el('span', { class: 'badge health ' + (on ? state : 'disabled'), text: on ? t({ up: 'up_s', down: 'down_s' }[state] || state) : t('disabled') })),
      el('div.facts', {},
        h ? el('span.since', { text: t('since', { t: age(Math.max(0, Math.round(Date.now() / 1000 - h.since))) }) }) : null,
        el('span', {}, el('b', { text: t('endpoint') }), u.endpoint || '—'),
        el('span', {}, el('b', { text: t('handshake') }), age(h ? h.handshake_age : null)),
        h && h.reasons && h.reasons.length ? el('span.muted', { text: h.reasons.join('; ') }) : null),
      form,
      el('div.actions', {},
        el('button', { type: 'button', class: 'toggle', text: on ? t('disable') : t('enable'), onclick: () => act(() => api('POST', `/api/upstreams/${enc(u.name)}/${on ? 'disable' : 'enable'}`), upstreams) }),
        removeButton('up ' + u.name, armed, () => act(() => api('DELETE', `/api/upstreams/${enc(u.name)}`), upstreams))));
  };
  const name = el('input', { autocomplete: 'off', required: true, maxlength: 15 });
  const text = el('textarea', { rows: 7, spellcheck: 'false', required: true });
  const file = el('input', { type: 'file', accept: '.conf,text/plain' });
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    text.value = await f.text();
    if (!name.value) name.value = f.name.replace(/\.conf$/, '').replace(/[^A-Za-z0-9_]/g, '_').slice(0, 15);
  });
  const od = select(onDowns(), 'block');
  const fo = failSel(null);
  const notes = el('p.note.notes', { role: 'status' });
  const form = onSubmit(el('form.box', { id: 'import' }, el('h2', { text: t('import_title') }),
    el('div.row', {}, field('name', t('name'), name), field('on_down', t('on_down'), od), field('failover', t('failover'), fo)),
    field('body', t('conf_text'), text), field('file', t('file'), file),
    el('button.primary', { type: 'submit', text: t('import') }), el('div.error.form'), notes),
  () => {
    const q = new URLSearchParams({ name: name.value.trim(), on_down: od.value });
    if (fo.value) q.set('failover', fo.value);
    return api('POST', '/api/upstreams/import?' + q, text.value, 'text/plain');
  }, async (r) => {
    await upstreams();
    if (r.notes && r.notes.length) notice(t('notes', { n: r.notes.join('; ') }));
  });
  show(el('h2', { text: t('upstreams') }), el('p.error', { id: 'notice', role: 'status' }),
    el('div.clients', { id: 'upstream-list' }, ...(ups.length ? ups.map(card) : [el('p.muted', { text: t('no_upstreams') })])), form);
}

let asked = null;

async function explain() {
  const my = begin();
  let cs = [];
  try {
    cs = await api('GET', '/api/clients');
  } catch (e) {
    if (stale(my)) return;
    if (e.status === 401) return login();
  }
  if (stale(my)) return;
  const who = select(cs.map((c) => [c.name, c.name]));
  const dest = el('input', { autocomplete: 'off', required: true, placeholder: t('dest_ph') });
  const out = el('div.answer', { role: 'status' });
  const form = onSubmit(el('form.box', { id: 'explain' }, el('h2', { text: t('ex_title') }),
    el('div.row', {}, field('client', t('client'), who), field('dest', t('dest'), dest),
      el('button.primary', { type: 'submit', text: t('ask') })), el('div.error.form')),
  () => {
    asked = { client: who.value, dest: dest.value.trim() };
    return api('GET', `/api/explain?client=${enc(asked.client)}&dest=${enc(asked.dest)}`);
  },
  (r) => {
    const rule = r.rule ? t('rule_at', { n: r.rule.position, s: r.rule.section, a: r.rule.action, m: r.rule.matched }) : t('by_default');
    out.replaceChildren(el('div.card', {},
      el('p', {}, el('b', { text: t('goes') + ': ' }), el('span.goes', { text: r.goes })),
      el('p', {}, el('b', { text: t('rule') + ': ' }), el('span.decided', { text: rule })),
      r.caveats && r.caveats.length ? el('p.note', { text: t('caveats') + ': ' + r.caveats.join('; ') }) : null,
      el('p.note', { text: r.live ? t('live') : t('config_only') })));
  });
  show(form, out);
  // Drawn again (another language): the last question is asked again.
  if (asked && cs.some((c) => c.name === asked.client)) {
    who.value = asked.client;
    dest.value = asked.dest;
    form.requestSubmit();
  }
}

async function settings() {
  const my = begin();
  let cfg, lists;
  try {
    [cfg, lists] = await Promise.all([api('GET', '/api/config'), api('GET', '/api/lists').catch(() => null)]);
  } catch (e) {
    if (stale(my)) return;
    if (e.status === 401) return login();
    return show(el('p.error', { text: t('failed', { e: e.message }) }));
  }
  if (stale(my)) return;
  const s = cfg.server || {};
  const inputs = {
    endpoint: el('input', { value: s.endpoint || '', placeholder: 'vpn.example.org' }),
    listen_port: el('input', { type: 'number', value: s.listen_port || '', placeholder: '51820' }),
    mtu: el('input', { type: 'number', value: s.mtu || '', placeholder: '1420' }),
    dns_server: el('input', { value: (s.dns_server || []).join(', ') }),
    ttl_min: el('input', { type: 'number', value: s.ttl_min === undefined ? '' : s.ttl_min }),
    ttl_max: el('input', { type: 'number', value: s.ttl_max === undefined ? '' : s.ttl_max }),
  };
  const saved = el('span.note.saved', { role: 'status' });
  const form = onSubmit(el('form.box', { id: 'server' }, el('h2', { text: t('server') }),
    el('div.row', {}, field('endpoint', t('endpoint'), inputs.endpoint), field('listen_port', t('listen_port'), inputs.listen_port),
      field('mtu', t('mtu'), inputs.mtu)),
    el('h3', { text: t('dns') }),
    el('div.row', {}, field('dns_server', t('dns_server'), inputs.dns_server, t('comma')),
      field('ttl_min', t('ttl_min'), inputs.ttl_min), field('ttl_max', t('ttl_max'), inputs.ttl_max)),
    el('button.primary', { type: 'submit', text: t('save2') }), saved, el('div.error.form')),
  async () => {
    // The whole config back with the edited server, under If-Match.
    const fresh = await api('GET', '/api/config');
    const v = (k) => inputs[k].value.trim();
    const num = (k) => (v(k) === '' ? undefined : Number(v(k)));
    Object.assign(fresh.server, {
      endpoint: v('endpoint') || undefined, listen_port: num('listen_port'), mtu: num('mtu'),
      dns_server: list(v('dns_server')), ttl_min: num('ttl_min'), ttl_max: num('ttl_max'),
    });
    return api('PUT', '/api/config', fresh, undefined, fresh.etag);
  }, () => { saved.textContent = t('saved'); });
  show(form, el('p.error', { id: 'notice', role: 'status' }), listsBox(lists));
}

// Rule lists and GeoIP: each source and its last update, and "update now".
function listsBox(st) {
  const items = (st && st.sources) || [];
  const res = (x) => (x.last ? `${x.last.ok ? '✓' : '✗'} ${new Date(x.last.at * 1000).toLocaleString(lang)}`
    + (x.last.entries ? ', ' + t('entries', { n: x.last.entries }) : '') + (x.last.message ? ' — ' + x.last.message : '') : t('never'));
  const btn = el('button.primary', { type: 'button', id: 'update-lists', text: t('update') });
  btn.addEventListener('click', () => {
    btn.disabled = true;
    btn.textContent = t('updating');
    act(() => api('POST', '/api/lists/update'), settings);
  });
  return el('div.card.lists', { id: 'lists' }, el('h2', { text: t('lists') }),
    items.length ? el('ul.sources', {}, ...items.map((x) => el('li', { 'data-source': x.name },
      el('b', { text: x.name }), ' ', el('span.muted', { text: x.url || x.path || '' }), el('br'),
      el('span.result', { text: t('last', { r: res(x) }) })))) : el('p.muted', { text: t('no_lists') }),
    items.length ? btn : null);
}

async function logout() {
  begin();
  try { await api('DELETE', '/api/session'); } catch (e) { /* gone already */ }
  // Back to the setup page if no password is set yet (logged in by token).
  start();
}

function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-Hans' : lang;
  document.getElementById('lang').value = lang;
  document.getElementById('logout').textContent = t('logout');
  document.querySelectorAll('#nav a').forEach((a) => { a.textContent = t(a.dataset.tab); });
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
  window.addEventListener('hashchange', () => { if (!document.getElementById('nav').hidden) route(); });
  start();
});
