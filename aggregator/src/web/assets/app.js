// AI Hero Battle: the page the aggregator serves at `/`. Plain JavaScript, no framework, no
// build step, nothing loaded from elsewhere. Two views, switched by the URL's hash:
// #play (the player's game, with battles watched live) and #operate (the node network).
//
// Text from the API (names, skills, errors) is only ever set as text (textContent), never as
// markup.
'use strict';

(() => {
  const SESSION_KEY = 'hero.session';
  const OPS_EVERY_MS = 3000;
  const POLL_EVERY_MS = 500;
  const REPLAY_STEP_MS = 350;
  const REPLAY_MAX_MS = 8000;

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`text` sets its text, `data-*` and the rest are attributes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'text') node.textContent = String(value);
      else if (name === 'class') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function stars(rarity) {
    const n = Math.max(0, Math.min(5, Number(rarity) || 0));
    return '★'.repeat(n) + '☆'.repeat(5 - n);
  }

  function fmtTime(ms) {
    if (!ms) return '–';
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function fmtAgo(ms) {
    if (!ms) return 'never';
    const secs = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (secs < 60) return `${secs} s ago`;
    if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
    return `${Math.round(secs / 3600)} h ago`;
  }

  function pct(rate) {
    return rate === null || rate === undefined ? '–' : `${Math.round(rate * 1000) / 10}%`;
  }

  /** A random key for Idempotency-Key (crypto.randomUUID needs a secure context). */
  function randomKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** The portrait URL of a character id (only ever a path of this server). */
  function portraitOf(id, imageUrl) {
    if (typeof imageUrl === 'string' && imageUrl.startsWith('/api/')) return imageUrl;
    return `/api/v1/characters/${encodeURIComponent(id)}/portrait.svg`;
  }

  function portraitImg(id, imageUrl, name, size) {
    const img = el('img', {
      class: 'portrait',
      src: portraitOf(id, imageUrl),
      alt: name ? `Portrait of ${name}` : 'Portrait',
      width: size,
      height: Math.round(size * 4 / 3),
      loading: 'lazy',
      decoding: 'async',
    });
    // Fighters of admin battles are not characters: no portrait then.
    img.addEventListener('error', () => img.classList.add('missing'));
    return img;
  }

  let toastTimer = null;
  function toast(message, kind) {
    const t = $('toast');
    t.textContent = message;
    t.dataset.kind = kind || 'info';
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, kind === 'error' ? 8000 : 4000);
  }

  // ---------------------------------------------------------------- session and API calls

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function loadSession() {
    try {
      const s = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
      return s && typeof s.access_token === 'string' ? s : null;
    } catch (_) {
      return null;
    }
  }

  let session = loadSession();

  function saveSession(next) {
    session = next;
    if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
    else localStorage.removeItem(SESSION_KEY);
  }

  async function rawCall(method, path, body, token, extraHeaders) {
    const headers = Object.assign({ Accept: 'application/json' }, extraHeaders || {});
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = text; }
    }
    return { response, data };
  }

  let renewing = null;
  /** New tokens from the refresh token, else from the device's secret; false when neither works. */
  function renew() {
    if (!renewing) {
      renewing = (async () => {
        const s = session;
        if (!s) return false;
        if (s.refresh_token) {
          const { response, data } = await rawCall('POST', '/api/v1/auth/refresh', { refresh_token: s.refresh_token });
          if (response.ok && data && data.access_token) {
            saveSession(Object.assign({}, s, { access_token: data.access_token, refresh_token: data.refresh_token }));
            return true;
          }
        }
        if (s.device_id && s.device_secret) {
          const { response, data } = await rawCall('POST', '/api/v1/auth/device', { device_id: s.device_id, device_secret: s.device_secret });
          if (response.ok && data && data.access_token) {
            saveSession(Object.assign({}, s, { access_token: data.access_token, refresh_token: data.refresh_token }));
            return true;
          }
        }
        return false;
      })().catch(() => false).finally(() => { renewing = null; });
    }
    return renewing;
  }

  /** Calls the API as the signed-in player (when there is one); throws ApiError on failure. */
  async function api(method, path, body, options) {
    const opts = options || {};
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const token = opts.anonymous ? null : session && session.access_token;
      const { response, data } = await rawCall(method, path, body, token, opts.headers);
      if (response.status === 401 && token && attempt === 0) {
        if (await renew()) continue;
        signedOut();
      }
      if (!response.ok) {
        const err = data && data.error;
        throw new ApiError(response.status, err && err.code, (err && err.message) || response.statusText || 'request failed');
      }
      return data;
    }
    throw new ApiError(401, 'unauthorized', 'signed out');
  }

  function report(error) {
    toast(error instanceof ApiError ? error.message : `Network error: ${error.message || error}`, 'error');
  }

  // ---------------------------------------------------------------- views

  function route() {
    const operate = location.hash === '#operate';
    $('view-play').hidden = operate;
    $('view-operate').hidden = !operate;
    $('tab-play').setAttribute('aria-selected', String(!operate));
    $('tab-operate').setAttribute('aria-selected', String(operate));
    if (operate) ops.start();
    else ops.stop();
  }

  // ---------------------------------------------------------------- player view

  let characters = [];

  function signedIn() {
    $('signed-out').hidden = true;
    $('signed-in').hidden = false;
    $('signed-in-more').hidden = false;
    refreshPlayer();
  }

  function signedOut() {
    saveSession(null);
    characters = [];
    $('signed-out').hidden = false;
    $('signed-in').hidden = true;
    $('signed-in-more').hidden = true;
  }

  async function playAsGuest() {
    const button = $('guest-btn');
    button.disabled = true;
    try {
      const login = await api('POST', '/api/v1/auth/guest', undefined, { anonymous: true });
      saveSession({
        player_id: login.player.id,
        access_token: login.access_token,
        refresh_token: login.refresh_token,
        device_id: login.device_id,
        device_secret: login.device_secret,
      });
      renderProfile(login.player);
      signedIn();
    } catch (e) {
      report(e);
    } finally {
      button.disabled = false;
    }
  }

  function renderProfile(p) {
    $('profile').dataset.playerId = p.id;
    $('profile-name').textContent = p.nickname;
    $('profile-gold').textContent = p.gold;
    const regen = p.energy < p.max_energy && p.next_energy_at_ms ? ` (+1 at ${fmtTime(p.next_energy_at_ms)})` : '';
    $('profile-energy').textContent = `${p.energy}/${p.max_energy}${regen}`;
    $('profile-prompt').textContent = p.prompt;
    $('profile-power').textContent = p.prompt_power;
    $('profile-exp').textContent = p.exp_potion;
    $('profile-record').textContent = `${p.wins} / ${p.losses}`;
  }

  async function refreshProfile() {
    renderProfile(await api('GET', '/api/v1/players/me'));
  }

  function renderCharacters() {
    const list = $('characters');
    clear(list);
    $('characters-empty').hidden = characters.length > 0;
    for (const c of characters) {
      const fight = el('button', { type: 'button', 'data-testid': 'fight-btn', text: 'Fight' });
      fight.addEventListener('click', () => startBattle(c, fight));
      const upgrade = el('button', {
        type: 'button',
        class: 'secondary',
        'data-testid': 'upgrade-btn',
        disabled: !c.next_upgrade,
        title: c.next_upgrade ? `${c.next_upgrade.gold} gold, ${c.next_upgrade.exp_potion} exp potions` : 'maximum level',
        text: c.next_upgrade ? 'Upgrade' : 'Max level',
      });
      upgrade.addEventListener('click', () => upgradeCharacter(c, upgrade));
      list.append(el('li', { class: 'hero', 'data-testid': 'character', 'data-id': c.id },
        portraitImg(c.id, c.image_url, c.name, 96),
        el('div', { class: 'hero-body' },
          el('div', { class: 'hero-name' }, el('strong', { 'data-testid': 'character-name', text: c.name }),
            ' ', el('span', { class: `stars r${c.rarity}`, title: `${c.rarity} stars`, text: stars(c.rarity) })),
          el('div', { class: 'muted small', text: `Level ${c.level} · rating ${c.rating} · ${c.wins} W / ${c.losses} L` }),
          el('div', { class: 'stats' },
            el('span', { class: 'str', text: `STR ${c.strength}` }),
            el('span', { class: 'agi', text: `AGI ${c.agility}` }),
            el('span', { class: 'lck', text: `LCK ${c.luck}` })),
          el('p', { class: 'hero-skill small', text: c.skill_description }),
          el('div', { class: 'row' }, fight, upgrade))));
    }
  }

  async function refreshCharacters() {
    const page = await api('GET', '/api/v1/characters?limit=50');
    characters = page.items || [];
    renderCharacters();
  }

  async function summon(event) {
    event.preventDefault();
    const input = $('summon-prompt');
    const prompt = input.value.trim();
    if (!prompt) return;
    const button = $('summon-btn');
    button.disabled = true;
    try {
      const c = await api('POST', '/api/v1/characters', { prompt }, { headers: { 'Idempotency-Key': randomKey() } });
      input.value = '';
      toast(`Summoned ${c.name} ${stars(c.rarity)}`);
      await Promise.allSettled([refreshCharacters(), refreshProfile(), refreshQuests(), refreshLedger()]);
    } catch (e) {
      report(e);
    } finally {
      button.disabled = false;
    }
  }

  async function upgradeCharacter(c, button) {
    button.disabled = true;
    try {
      const up = await api('POST', `/api/v1/characters/${encodeURIComponent(c.id)}/upgrade`, undefined, { headers: { 'Idempotency-Key': randomKey() } });
      toast(`${up.name} is now level ${up.level}`);
      await Promise.allSettled([refreshCharacters(), refreshProfile(), refreshQuests(), refreshLedger()]);
    } catch (e) {
      report(e);
      button.disabled = false;
    }
  }

  async function startBattle(c, button) {
    button.disabled = true;
    try {
      const started = await api('POST', '/api/v1/battles', { character_id: c.id }, { headers: { 'Idempotency-Key': randomKey() } });
      toast(`${c.name} meets ${started.opponent.name}: ${started.energy_spent} energy spent`);
      refreshProfile().catch(() => {});
      watchBattle(started.battle_id, [
        { id: c.id, name: c.name, rarity: c.rarity, image_url: c.image_url },
        { id: started.opponent.character_id, name: started.opponent.name, rarity: started.opponent.rarity },
      ]);
    } catch (e) {
      report(e);
    } finally {
      button.disabled = false;
    }
  }

  function questReward(r) {
    return `${r.amount} ${String(r.resource).replace('_', ' ')}`;
  }

  async function refreshQuests() {
    const board = await api('GET', '/api/v1/quests');
    const list = $('quests');
    clear(list);
    for (const q of board.quests || []) {
      const state = q.claimed ? 'claimed' : q.completed ? 'complete' : 'open';
      const item = el('li', { 'data-testid': 'quest', 'data-id': q.id, 'data-state': state },
        el('div', {}, el('strong', { text: q.title }), ' ',
          el('span', { class: 'muted small', text: `${Math.min(q.progress, q.target)}/${q.target} · ${questReward(q.reward)}` })),
        el('progress', { max: q.target, value: Math.min(q.progress, q.target) }));
      if (q.completed && !q.claimed) {
        const claim = el('button', { type: 'button', 'data-testid': 'claim-btn', text: 'Claim' });
        claim.addEventListener('click', async () => {
          claim.disabled = true;
          try {
            await api('POST', `/api/v1/quests/${encodeURIComponent(q.id)}/claim`, {});
            toast(`Claimed ${questReward(q.reward)}`);
            await Promise.allSettled([refreshQuests(), refreshProfile(), refreshLedger()]);
          } catch (e) {
            report(e);
            claim.disabled = false;
          }
        });
        item.append(claim);
      } else if (q.claimed) {
        item.append(el('span', { class: 'badge ok', text: 'claimed' }));
      }
      list.append(item);
    }
  }

  async function refreshLedger() {
    const page = await api('GET', '/api/v1/players/me/ledger?limit=10');
    const body = $('ledger').tBodies[0];
    clear(body);
    for (const e of page.items || []) {
      body.append(el('tr', { 'data-testid': 'ledger-entry' },
        el('td', { text: fmtTime(e.created_at_ms) }),
        el('td', { text: String(e.resource).replace('_', ' ') }),
        el('td', { class: `num ${e.delta < 0 ? 'neg' : 'pos'}`, text: e.delta > 0 ? `+${e.delta}` : e.delta }),
        el('td', { class: 'num', text: e.balance_after }),
        el('td', { text: String(e.reason).replace(/_/g, ' ') })));
    }
    return page.items || [];
  }

  async function refreshHistory() {
    const page = await api('GET', '/api/v1/battles?mine=true&limit=10');
    const list = $('history');
    clear(list);
    const items = page.items || [];
    $('history-empty').hidden = items.length > 0;
    const names = new Map(characters.map((c) => [c.id, c.name]));
    for (const b of items) {
      const outcome = b.outcome || b.status.toLowerCase();
      const watch = el('button', { type: 'button', class: 'link', text: 'watch' });
      watch.addEventListener('click', () => watchBattle(b.battle_id));
      list.append(el('li', { 'data-testid': 'history-entry', 'data-id': b.battle_id },
        el('span', { class: `badge ${outcome}`, text: outcome }), ' ',
        `${names.get(b.character_id) || 'my hero'} as ${b.side} · ${fmtTime(b.created_at_ms)} `, watch));
    }
  }

  async function refreshLeaderboard() {
    const page = await api('GET', '/api/v1/leaderboard?kind=characters&limit=10', undefined, { anonymous: true });
    const body = $('leaderboard').tBodies[0];
    clear(body);
    const me = session && session.player_id;
    for (const r of page.items || []) {
      body.append(el('tr', { 'data-testid': 'leaderboard-row', class: r.player_id === me ? 'mine' : null },
        el('td', { class: 'num', text: r.rank }),
        el('td', {}, r.character_name || '–', ' ', el('span', { class: `stars r${r.rarity}`, text: stars(r.rarity) })),
        el('td', { text: r.nickname }),
        el('td', { class: 'num', text: r.wins }),
        el('td', { class: 'num', text: r.losses }),
        el('td', { class: 'num', text: r.rating === null ? '–' : r.rating })));
    }
  }

  async function refreshPlayer() {
    const results = await Promise.allSettled([
      refreshProfile(), refreshCharacters().then(refreshHistory), refreshQuests(), refreshLedger(), refreshLeaderboard(),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed && session) report(failed.reason);
  }

  // ---------------------------------------------------------------- a battle, live

  /**
   * Watches one battle: Server-Sent Events from /api/v1/battles/{id}/events (a snapshot, each
   * node selected, each vote, the verdict, the rewards, the end), or, where the stream is not
   * served, GET /api/v1/battles/{id} every 500 ms. Then the log is replayed round by round.
   */
  class Watch {
    constructor(id, fighters) {
      this.id = id;
      this.fighters = fighters || [];
      this.seats = new Map();
      this.status = 'PENDING';
      this.verdict = null;
      this.log = null;
      this.description = null;
      this.stopped = false;
      this.source = null;
      this.pollTimer = null;
      this.silentTimer = null;
      this.heard = false;
      this.replayStarted = false;
      this.replayTimer = null;
      this.loadingLog = false;
    }

    start() {
      const section = $('battle');
      section.hidden = false;
      section.dataset.battleId = this.id;
      delete section.dataset.events;
      clear($('battle-nodes'));
      clear($('battle-log'));
      $('battle-nodes-empty').hidden = false;
      $('battle-verdict').hidden = true;
      $('battle-rewards').hidden = true;
      $('battle-description').textContent = '';
      $('replay-skip').hidden = true;
      this.setState('connecting');
      this.renderFighters();
      this.renderStatus();
      section.scrollIntoView({ behavior: 'smooth', block: 'start' });
      if ('EventSource' in window) this.stream();
      else this.poll();
    }

    stop() {
      this.stopped = true;
      this.closeStream();
      clearTimeout(this.pollTimer);
      clearTimeout(this.replayTimer);
      (this.lateTimers || []).forEach(clearTimeout);
    }

    /** The votes as stored now (late votes included), without touching the rest of the view. */
    async refreshVotes() {
      if (this.stopped) return;
      try {
        const battle = await api('GET', `/api/v1/battles/${encodeURIComponent(this.id)}`, undefined, { anonymous: true });
        if (this.stopped) return;
        for (const v of battle.votes || []) {
          this.seat(v.node_id, v.node_name, v.role);
          this.applyVote({
            node_id: v.node_id, valid: v.is_valid, voted_winner_id: v.voted_winner_id,
            response_time_ms: v.response_time_ms, error: v.error, agrees: v.agrees,
            late: (this.seats.get(v.node_id).vote || {}).late,
          });
        }
        if (this.verdict) this.renderVerdict();
      } catch (_) {
        // The view stays as it is.
      }
    }

    setState(state) {
      $('battle').dataset.state = state;
    }

    setTransport(transport) {
      $('battle').dataset.transport = transport;
      $('battle-transport').textContent = transport === 'sse' ? 'live' : 'polling';
    }

    closeStream() {
      clearTimeout(this.silentTimer);
      if (this.source) {
        this.source.close();
        this.source = null;
      }
    }

    stream() {
      this.setTransport('sse');
      const source = new EventSource(`/api/v1/battles/${encodeURIComponent(this.id)}/events`);
      this.source = source;
      const on = (name, handler) => source.addEventListener(name, (event) => {
        if (this.stopped || this.source !== source) return;
        this.heard = true;
        // What arrived, in order (for whoever inspects the page: tests, curious players).
        const section = $('battle');
        section.dataset.events = section.dataset.events ? `${section.dataset.events} ${name}` : name;
        let data;
        try { data = JSON.parse(event.data); } catch (_) { return; }
        handler(data);
      });
      on('snapshot', (d) => this.applySnapshot(d));
      on('node_selected', (d) => { this.seat(d.node_id, d.node_name, d.role); this.live(); });
      on('vote', (d) => { this.applyVote(d); this.live(); });
      on('verdict', (d) => this.applyVerdict(d));
      on('rewards', (d) => this.applyRewards(d));
      on('end', () => { this.closeStream(); this.ended(); });
      source.addEventListener('error', () => {
        if (this.stopped || this.source !== source) return;
        // CONNECTING: the browser reconnects by itself (with Last-Event-ID). CLOSED: the
        // stream is not served here (404, 503): poll instead.
        if (source.readyState === EventSource.CLOSED) {
          this.closeStream();
          if (!this.settled()) this.poll();
        }
      });
      // A stream that says nothing at all (a proxy holding it back): poll instead.
      this.silentTimer = setTimeout(() => {
        if (!this.heard && !this.stopped && this.source === source) {
          this.closeStream();
          this.poll();
        }
      }, 4000);
    }

    poll() {
      if (this.stopped) return;
      this.setTransport('poll');
      const tick = async () => {
        if (this.stopped) return;
        try {
          const battle = await api('GET', `/api/v1/battles/${encodeURIComponent(this.id)}`, undefined, { anonymous: true });
          if (this.stopped) return;
          this.applySnapshot(battle);
          if (this.settled()) {
            this.ended();
            return;
          }
        } catch (e) {
          if (e instanceof ApiError && e.status === 404) {
            toast('No such battle', 'error');
            return;
          }
        }
        this.pollTimer = setTimeout(tick, POLL_EVERY_MS);
      };
      tick();
    }

    settled() {
      return this.status === 'COMPLETED' || this.status === 'ERROR';
    }

    live() {
      if (!this.verdict) this.setState('live');
    }

    applySnapshot(b) {
      // (Once the replay runs, the fighters and their hp stay as the replay draws them.)
      if (Array.isArray(b.fighters) && b.fighters.length && !this.replayStarted) {
        const known = new Map(this.fighters.map((f) => [f.id, f]));
        this.fighters = b.fighters.map((f) => Object.assign({}, known.get(f.id) || {}, f));
        this.renderFighters();
      }
      for (const v of b.votes || []) {
        this.seat(v.node_id, v.node_name, v.role);
        this.applyVote({
          node_id: v.node_id, valid: v.is_valid, voted_winner_id: v.voted_winner_id,
          response_time_ms: v.response_time_ms, error: v.error, agrees: v.agrees,
        });
      }
      this.status = b.status || this.status;
      this.renderStatus();
      if (this.settled()) {
        this.log = b.battle_log || [];
        this.description = b.battle_description || null;
        this.applyVerdict({
          status: b.status, settled_by: b.settled_by, winner_id: b.winner_id,
          fallback_engine: b.fallback_engine, error: b.error,
        });
      } else {
        this.live();
      }
    }

    seat(nodeId, nodeName, role) {
      let s = this.seats.get(nodeId);
      if (!s) {
        s = { id: nodeId, name: nodeName, role: role || 'selected', vote: null, agrees: null, node: null };
        this.seats.set(nodeId, s);
      }
      if (nodeName) s.name = nodeName;
      if (role) s.role = role;
      this.renderSeat(s);
      return s;
    }

    applyVote(v) {
      const s = this.seat(v.node_id, v.node_name, v.role);
      const before = s.vote || {};
      s.vote = {
        valid: !!v.valid,
        // A live vote names its fighter only once the verdict is out: keep what is known.
        winner: v.voted_winner_id || before.winner || null,
        ms: v.response_time_ms !== undefined ? v.response_time_ms : before.ms,
        error: v.error || null,
        late: !!v.late || !!before.late,
      };
      if (v.agrees !== undefined && v.agrees !== null) s.agrees = v.agrees;
      this.renderSeat(s);
    }

    applyVerdict(d) {
      const first = !this.verdict;
      this.status = d.status || this.status;
      if (!this.settled()) this.status = 'COMPLETED';
      this.verdict = Object.assign({}, this.verdict || {}, d);
      // Live votes do not say whom they named until the verdict: the verdict does.
      for (const v of d.votes || []) {
        const s = this.seat(v.node_id, v.node_name, v.role);
        if (!s.vote) s.vote = { valid: !!v.valid, winner: null, ms: null, error: null, late: false };
        if (v.valid !== undefined) s.vote.valid = !!v.valid;
        if (v.voted_winner_id) s.vote.winner = v.voted_winner_id;
        if (v.error) s.vote.error = v.error;
        else if (v.agrees === true && !s.vote.winner) s.vote.winner = d.winner_id || null;
        if (v.agrees !== undefined) s.agrees = v.agrees;
        this.renderSeat(s);
      }
      this.renderStatus();
      this.renderVerdict();
      if (!this.replayStarted) this.setState('settled');
      // The balances moved in the verdict's transaction.
      if (first) {
        // Votes that come after the verdict are recorded a moment later: look again.
        this.lateTimers = [1500, 5000].map((ms) => setTimeout(() => this.refreshVotes(), ms));
      }
      if (first && session) {
        Promise.allSettled([
          refreshProfile(), refreshCharacters().then(refreshHistory), refreshQuests(), refreshLeaderboard(),
          refreshLedger().then((items) => this.rewardsFromLedger(items)),
        ]);
      }
      this.maybeReplay();
    }

    applyRewards(d) {
      if (!session || d.player_id !== session.player_id) return;
      const p = $('battle-rewards');
      p.textContent = `Rewards: +${d.gold} gold, +${d.exp_potion} exp potions`;
      p.hidden = false;
    }

    /** The rewards, when no `rewards` event told them: this battle's credits in the ledger. */
    rewardsFromLedger(items) {
      if (!$('battle-rewards').hidden || this.stopped) return;
      const paid = { gold: 0, exp_potion: 0 };
      for (const e of items) {
        if (e.reference === this.id && e.reason === 'battle_reward' && e.resource in paid) paid[e.resource] += e.delta;
      }
      if (paid.gold || paid.exp_potion) {
        this.applyRewards({ player_id: session && session.player_id, gold: paid.gold, exp_potion: paid.exp_potion });
      }
    }

    ended() {
      if (!this.verdict || this.log === null) this.loadLog();
    }

    /** The log (and the verdict, when no event brought it) from GET /api/v1/battles/{id}. */
    async loadLog(attempt) {
      if (this.loadingLog || this.stopped) return;
      this.loadingLog = true;
      try {
        const battle = await api('GET', `/api/v1/battles/${encodeURIComponent(this.id)}`, undefined, { anonymous: true });
        this.loadingLog = false;
        if (this.stopped) return;
        if (battle.status === 'COMPLETED' || battle.status === 'ERROR') {
          this.applySnapshot(battle);
        } else if ((attempt || 0) < 20) {
          setTimeout(() => this.loadLog((attempt || 0) + 1), 300);
        }
      } catch (_) {
        this.loadingLog = false;
        if ((attempt || 0) < 20) setTimeout(() => this.loadLog((attempt || 0) + 1), 500);
      }
    }

    maybeReplay() {
      if (this.replayStarted || !this.verdict) return;
      if (this.log === null) {
        this.loadLog();
        return;
      }
      this.replayStarted = true;
      if (this.status === 'ERROR' || !this.log.length) {
        this.setState('done');
        return;
      }
      this.replay();
    }

    name(id) {
      const f = this.fighters.find((x) => x.id === id);
      return f ? f.name : id ? 'unknown fighter' : '–';
    }

    renderStatus() {
      const badge = $('battle-status');
      badge.textContent = this.status;
      badge.className = `badge ${this.status.toLowerCase()}`;
    }

    renderFighters() {
      const box = $('battle-fighters');
      clear(box);
      this.fighters.forEach((f, i) => {
        if (i === 1) box.append(el('div', { class: 'vs', text: 'vs' }));
        box.append(el('div', { class: 'fighter', 'data-testid': 'fighter', 'data-id': f.id },
          portraitImg(f.id, f.image_url, f.name, 72),
          el('div', {}, el('strong', { text: f.name }), el('div', { class: `stars r${f.rarity}`, text: stars(f.rarity) })),
          el('div', { class: 'hp', 'data-testid': 'hp' }, el('div', { class: 'hp-fill' })),
          el('div', { class: 'hp-text muted small' })));
      });
    }

    renderSeat(s) {
      const list = $('battle-nodes');
      $('battle-nodes-empty').hidden = true;
      if (!s.node) {
        s.node = el('li', { class: 'seat', 'data-testid': 'node-seat', 'data-node-id': s.id });
        list.append(s.node);
      }
      const li = s.node;
      li.dataset.role = s.role;
      li.dataset.vote = !s.vote ? 'pending' : s.vote.valid ? 'valid' : 'invalid';
      li.dataset.votedWinner = s.vote && s.vote.winner ? s.vote.winner : '';
      li.dataset.agrees = s.agrees === null || s.agrees === undefined ? '' : String(s.agrees);
      clear(li);
      li.append(el('span', { class: 'seat-name', text: s.name || s.id.slice(0, 8) }));
      if (s.role !== 'selected') li.append(el('span', { class: 'badge', text: s.role }));
      let text;
      if (!s.vote) text = 'asked…';
      else if (s.vote.valid && s.vote.winner) text = `voted ${this.name(s.vote.winner)}`;
      else if (s.vote.valid) text = 'voted (sealed until the verdict)';
      else text = `invalid${s.vote.error ? `: ${s.vote.error}` : ''}`;
      li.append(el('span', { class: 'seat-vote', 'data-testid': 'seat-vote', text }));
      if (s.vote && s.vote.ms !== null && s.vote.ms !== undefined) {
        li.append(el('span', { class: 'muted small', text: `${s.vote.ms} ms${s.vote.late ? ' · late' : ''}` }));
      }
      if (s.agrees === true) li.append(el('span', { class: 'badge ok', text: 'agrees' }));
      if (s.agrees === false) li.append(el('span', { class: 'badge bad', text: 'disagrees' }));
    }

    renderVerdict() {
      const box = $('battle-verdict');
      const d = this.verdict;
      clear(box);
      box.hidden = false;
      box.dataset.status = this.status;
      box.dataset.winnerId = d.winner_id || '';
      box.dataset.settledBy = d.settled_by || '';
      if (this.status === 'ERROR') {
        box.append(el('strong', { text: 'The battle failed' }), d.error ? `: ${d.error}` : '', ' (energy refunded)');
        return;
      }
      const votes = Array.from(this.seats.values()).filter((s) => s.vote && s.role !== 'shadow');
      const agreeing = votes.filter((s) => s.vote.valid && s.vote.winner === d.winner_id).length;
      let how;
      if (d.settled_by === 'fallback') how = `settled by fallback (${d.fallback_engine || 'local engine'}): the nodes formed no majority`;
      else how = `settled by the nodes' majority · ${agreeing} of ${votes.length} votes agree`;
      box.append(
        el('div', { class: 'winner' }, 'Winner: ', el('strong', { id: 'verdict-winner', 'data-testid': 'verdict-winner', text: this.name(d.winner_id) })),
        el('div', { class: 'muted small', 'data-testid': 'verdict-how', text: how }));
    }

    /** The log, one entry at a time, with both fighters' hp. */
    replay() {
      const log = this.log;
      this.setState('replaying');
      const hp = new Map();
      const max = new Map();
      for (const e of log) {
        if (!max.has(e.target)) max.set(e.target, Number(e.target_hp) + Number(e.damage || 0));
      }
      for (const f of this.fighters) {
        if (!max.has(f.id)) max.set(f.id, 1);
        hp.set(f.id, max.get(f.id));
        this.renderHp(f.id, hp.get(f.id), max.get(f.id));
      }
      const list = $('battle-log');
      clear(list);
      const skip = $('replay-skip');
      skip.hidden = false;
      const step = Math.max(60, Math.min(REPLAY_STEP_MS, Math.floor(REPLAY_MAX_MS / log.length)));
      let i = 0;
      let round = null;
      const show = () => {
        const e = log[i];
        if (e.round !== round) {
          round = e.round;
          list.append(el('li', { class: 'round', 'data-testid': 'log-round', text: `Round ${e.round}` }));
        }
        const text = e.text || `${this.name(e.actor)} → ${this.name(e.target)}: ${e.action} ${e.damage}`;
        list.append(el('li', { class: `entry ${e.action || ''}`, 'data-testid': 'log-entry', 'data-round': e.round }, text));
        list.scrollTop = list.scrollHeight;
        hp.set(e.target, Number(e.target_hp));
        this.renderHp(e.target, hp.get(e.target), max.get(e.target));
        i += 1;
      };
      const finish = () => {
        skip.hidden = true;
        if (this.description) $('battle-description').textContent = this.description;
        this.setState('done');
      };
      const next = () => {
        if (this.stopped) return;
        show();
        if (i < log.length) this.replayTimer = setTimeout(next, step);
        else finish();
      };
      skip.onclick = () => {
        clearTimeout(this.replayTimer);
        while (i < log.length) show();
        finish();
      };
      next();
    }

    renderHp(id, value, max) {
      const box = Array.from(document.querySelectorAll('#battle-fighters .fighter')).find((f) => f.dataset.id === id);
      if (!box) return;
      const share = max > 0 ? Math.max(0, Math.min(1, value / max)) : 0;
      const fill = box.querySelector('.hp-fill');
      fill.style.width = `${Math.round(share * 100)}%`;
      fill.classList.toggle('low', share < 0.3);
      box.querySelector('.hp-text').textContent = `${Math.max(0, value)} / ${max} hp`;
      box.classList.toggle('down', value <= 0);
    }
  }

  let watching = null;
  function watchBattle(id, fighters) {
    if (watching) watching.stop();
    if (location.hash === '#operate') location.hash = '#play';
    watching = new Watch(id, fighters);
    watching.start();
  }

  // ---------------------------------------------------------------- operator view

  const ops = {
    timer: null,
    running: false,
    start() {
      if (this.running) return;
      this.running = true;
      this.tick();
    },
    stop() {
      this.running = false;
      clearTimeout(this.timer);
    },
    async tick() {
      if (!this.running) return;
      if (document.visibilityState !== 'hidden') {
        await Promise.allSettled([opsHealth(), opsNodes(), opsAgreement(), opsBattles()]);
        $('ops-updated').textContent = `Last update ${fmtTime(Date.now())}.`;
      }
      if (this.running) this.timer = setTimeout(() => this.tick(), OPS_EVERY_MS);
    },
  };

  function facts(dl, pairs) {
    clear(dl);
    for (const [label, value, attrs] of pairs) {
      dl.append(el('div', {}, el('dt', { text: label }), el('dd', attrs || {}, value)));
    }
  }

  async function opsHealth() {
    // 503 still carries the health body.
    const { data } = await rawCall('GET', '/api/health');
    if (!data || typeof data !== 'object') return;
    facts($('ops-health'), [
      ['Status', el('span', { class: `badge ${data.status}`, 'data-testid': 'health-status', text: data.status })],
      ['Database', data.database_error ? `${data.database} (${data.database_error})` : data.database],
      ['Nodes online', `${data.nodes.online} of ${data.nodes.registered}`, { 'data-testid': 'health-online' }],
      ['Quorum', `k = ${data.nodes.quorum_size}, ${data.nodes.quorum_possible ? 'possible' : 'NOT possible'}`],
      ['Version', data.version],
    ]);
  }

  async function opsNodes() {
    const nodes = await api('GET', '/api/nodes?limit=1000', undefined, { anonymous: true });
    const body = $('ops-nodes').tBodies[0];
    clear(body);
    const online = nodes.filter((n) => n.status === 'online').length;
    $('ops-nodes-count').textContent = `${nodes.length} registered, ${online} online`;
    for (const n of nodes) {
      const flags = [];
      if (n.probation) flags.push('probation');
      if (n.maintenance) flags.push('maintenance');
      if (!n.signed) flags.push('unsigned');
      body.append(el('tr', { 'data-testid': 'ops-node', 'data-node-id': n.id, 'data-status': n.status },
        el('td', {}, el('strong', { 'data-testid': 'ops-node-name', text: n.name })),
        el('td', {}, el('span', { class: `badge ${n.status}`, text: n.status })),
        el('td', { text: n.operator || '–' }),
        el('td', { text: [n.backend, n.model].filter(Boolean).join(' / ') || '–' }),
        el('td', { class: 'num', text: Number(n.reputation).toFixed(2) }),
        el('td', { class: 'num', text: `${Math.round(n.avg_response_time_ms)} ms` }),
        el('td', { class: 'num', text: pct(n.agreement_rate) }),
        el('td', { class: 'num', text: `${n.successful_requests}/${n.total_requests}` }),
        el('td', { class: 'num', text: `${n.current_requests}/${n.max_concurrent_requests}` }),
        el('td', { text: flags.join(', ') || '–' }),
        el('td', { class: 'num', text: fmtAgo(n.last_heartbeat_ms) })));
    }
  }

  async function opsAgreement() {
    const rows = await api('GET', '/api/nodes/agreement', undefined, { anonymous: true });
    const body = $('ops-agreement').tBodies[0];
    clear(body);
    for (const r of rows) {
      body.append(el('tr', { 'data-testid': 'ops-agreement-row' },
        el('td', { text: r.backend || '–' }),
        el('td', { text: r.model || '–' }),
        el('td', { class: 'num', text: r.nodes }),
        el('td', { class: 'num', text: r.online }),
        el('td', { class: 'num', text: r.valid_votes }),
        el('td', { class: 'num', text: r.agreed_votes }),
        el('td', { class: 'num', text: pct(r.agreement_rate) })));
    }
  }

  function recentBattle(b) {
    const names = new Map(b.fighters.map((f) => [f.id, f.name]));
    const votes = el('div', { class: 'chips' });
    for (const v of b.votes) {
      const mark = !v.is_valid ? '✗ invalid' : v.agrees === false ? '≠ outvoted' : '✓';
      votes.append(el('span', {
        class: `chip ${!v.is_valid ? 'bad' : v.agrees === false ? 'warn' : 'ok'}`,
        'data-testid': 'ops-vote',
        title: `${v.role}, voted ${names.get(v.voted_winner_id) || '–'}`,
        text: `${v.node_name || v.node_id.slice(0, 8)} ${mark} ${v.response_time_ms} ms`,
      }));
    }
    const watch = el('button', { type: 'button', class: 'link', text: 'watch' });
    watch.addEventListener('click', () => watchBattle(b.id, b.fighters));
    const how = b.settled_by ? `${b.settled_by}${b.fallback_engine ? ` (${b.fallback_engine})` : ''}` : b.status.toLowerCase();
    return el('li', { 'data-testid': 'ops-battle', 'data-id': b.id, 'data-status': b.status },
      el('div', {},
        el('span', { class: `badge ${b.settled_by || b.status.toLowerCase()}`, text: how }), ' ',
        el('strong', { text: b.fighters.map((f) => f.name).join(' vs ') }), ' ',
        b.winner_id ? el('span', { text: `→ ${names.get(b.winner_id) || 'winner'}` }) : null, ' ',
        el('span', { class: 'muted small', text: `${b.origin || ''} · ${fmtTime(b.settled_at_ms || b.created_at_ms)}` }), ' ',
        watch),
      votes);
  }

  async function opsBattles() {
    const recent = await api('GET', '/api/battles/recent?limit=15', undefined, { anonymous: true });
    const s = recent.summary;
    facts($('ops-settlement'), [
      ['Fallback rate', pct(s.fallback_rate), { 'data-testid': 'fallback-rate' }],
      ['By quorum', s.by_quorum],
      ['By fallback', s.by_fallback],
      ['Errors', s.errors],
      ['In flight', recent.in_flight.length],
      ['Counted over', `${s.battles} latest settled`],
    ]);
    const list = $('ops-battles');
    clear(list);
    const all = recent.in_flight.concat(recent.settled);
    $('ops-battles-empty').hidden = all.length > 0;
    for (const b of all) list.append(recentBattle(b));
  }

  // ---------------------------------------------------------------- start

  function init() {
    $('guest-btn').addEventListener('click', playAsGuest);
    $('summon-form').addEventListener('submit', summon);
    $('signout-btn').addEventListener('click', () => {
      if (session) rawCall('POST', '/api/v1/auth/logout', undefined, session.access_token).catch(() => {});
      signedOut();
    });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && ops.running) {
        clearTimeout(ops.timer);
        ops.tick();
      }
    });
    if (session) signedIn();
    else {
      signedOut();
      refreshLeaderboard().catch(() => {});
    }
    route();
    const match = /^#battle=([0-9a-zA-Z-]{1,64})$/.exec(location.hash);
    if (match) watchBattle(match[1]);
    document.body.dataset.ready = 'true';
  }

  init();
})();
