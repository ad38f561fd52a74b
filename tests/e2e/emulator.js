#!/usr/bin/env node
'use strict';
/*
 * Telegram Bot API emulator for Rahnuma's end-to-end tests.
 *
 * Starts telegram-test-api (the simulated users' side: its "client API" on --client-port) and, in front of it,
 * a compatibility proxy on --bot-port that speaks the Bot API the way python-telegram-bot 22 expects it:
 *
 *   bot (PTB, base_url=http://127.0.0.1:<bot-port>/bot) --> proxy --> telegram-test-api
 *   test's simulated user (httpx) ------------------------------------> telegram-test-api client API
 *
 * What the proxy fixes or adds (telegram-test-api 4.2.1 gaps found by running PTB 22.8 against it):
 *   - getMe lacks is_bot (PTB's User needs it): answered with a complete bot User.
 *   - Message dates are milliseconds and sendMessage echoes the raw request (chat_id, parse_mode, JSON strings):
 *     results are rebuilt as Telegram-shaped Message objects with dates in seconds.
 *   - editMessageText / editMessageReplyMarkup / answerCallbackQuery / deleteMessage return null: they now return
 *     the edited Message or true, as Telegram does.
 *   - getUpdates ignores offset and timeout (a busy loop for PTB, and an update is lost if a poll is cut off):
 *     it is answered here with Telegram's semantics (offset acknowledges, long polling up to `timeout`).
 *   - Updates: ms dates are turned into seconds, callback queries get chat_instance, internal fields are removed.
 *   - Methods it does not know (setMyCommands, sendChatAction, getMyCommands, ...) gave HTTP 500: they answer
 *     {"ok": true, "result": true} (or a Telegram-shaped value for a few getters).
 *   - Errors are Telegram-shaped ({"ok": false, "error_code": 400, "description": "Bad Request: ..."}), and the
 *     proxy rejects what the real Bot API rejects, so tests catch it: HTML that Telegram cannot parse, a text
 *     longer than 4096 characters, callback_data over 64 bytes, editing a message into itself ("message is not
 *     modified"), answering an unknown or already answered callback query, setMyCommands with an invalid command.
 *
 * Test introspection (on the bot port, outside /bot<token>/):
 *   GET /_e2e/health            -> {"ok": true}
 *   GET /_e2e/calls[?method=m]  -> every Bot API call the bot made: [{seq, time, token, method, params, status,
 *                                  description}]; answerCallbackQuery calls also carry callback_user_id
 *   GET /_e2e/errors            -> only the calls that were answered with ok=false
 *
 * Usage: node emulator.js [--client-port N] [--bot-port N] [--host 127.0.0.1] [--ready-file PATH]
 * Ports default to free ones. When both servers listen, one JSON line
 * {"client_url": ..., "bot_api_url": ..., "client_port": ..., "bot_port": ...} is written to stdout and, if
 * given, atomically to --ready-file. Logs go to stderr. SIGTERM/SIGINT stop it cleanly.
 */

const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const TelegramServer = require('telegram-test-api');

const BOT_USER = {
  id: 666,
  is_bot: true,
  first_name: 'Rahnuma (e2e)',
  username: 'RahnumaE2EBot',
  can_join_groups: true,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
};
const MAX_MESSAGE_LENGTH = 4096;
const MAX_CALLBACK_DATA_BYTES = 64;
const MAX_LONG_POLL_SECONDS = 25;
const STORE_TIMEOUT_SECONDS = 24 * 3600;

// Known-safe answers for methods telegram-test-api lacks (anything else unknown answers `true`).
const GETTER_RESULTS = {
  getmycommands: () => [],
  getmydescription: () => ({ description: '' }),
  getmyshortdescription: () => ({ short_description: '' }),
  getmyname: () => ({ name: BOT_USER.first_name }),
  getchatmenubutton: () => ({ type: 'default' }),
  getmydefaultadministratorrights: () => ({
    is_anonymous: false, can_manage_chat: false, can_delete_messages: false, can_manage_video_chats: false,
    can_restrict_members: false, can_promote_members: false, can_change_info: false, can_invite_users: false,
    can_post_stories: false, can_edit_stories: false, can_delete_stories: false,
  }),
  getwebhookinfo: () => ({ url: '', has_custom_certificate: false, pending_update_count: 0 }),
  logout: () => true,
  close: () => true,
};

function log(...args) {
  process.stderr.write(`[emulator ${new Date().toISOString()}] ${args.join(' ')}\n`);
}

function parseArgs(argv) {
  const out = { clientPort: 0, botPort: 0, host: '127.0.0.1', readyFile: null };
  for (let i = 2; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '--client-port') out.clientPort = Number(value());
    else if (flag === '--bot-port') out.botPort = Number(value());
    else if (flag === '--host') out.host = value();
    else if (flag === '--ready-file') out.readyFile = value();
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return out;
}

function freePort(host) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const seconds = (value) => {
  const n = Number(value);
  if (!Number.isFinite(n)) return Math.floor(Date.now() / 1000);
  return n > 1e11 ? Math.floor(n / 1000) : Math.floor(n);
};

function maybeJson(value) {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  if (!trimmed || !'[{'.includes(trimmed[0])) return value;
  try {
    return JSON.parse(trimmed);
  } catch (_e) {
    return value;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Telegram's HTML parse mode, checked the way the Bot API does (tdlib's parser): every '<' must open or close a
// supported tag, tags must nest, and the text after parsing must be 1..4096 characters.
const HTML_TAGS = new Set([
  'b', 'strong', 'i', 'em', 'u', 'ins', 's', 'strike', 'del', 'span', 'tg-spoiler', 'a', 'code', 'pre',
  'blockquote', 'tg-emoji',
]);
const NAMED_ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"' };

class BadRequest extends Error {}

function parseHtml(text) {
  let plain = '';
  const stack = [];
  let i = 0;
  const bytes = (idx) => Buffer.byteLength(text.slice(0, idx), 'utf8');
  while (i < text.length) {
    const ch = text[i];
    if (ch === '&') {
      const m = /^&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/.exec(text.slice(i, i + 12));
      if (m) {
        const body = m[1];
        let decoded = null;
        if (body[0] === '#') {
          const code = body[1] === 'x' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
          if (code > 0 && code <= 0x10ffff) decoded = String.fromCodePoint(code);
        } else if (Object.prototype.hasOwnProperty.call(NAMED_ENTITIES, body)) {
          decoded = NAMED_ENTITIES[body];
        }
        if (decoded !== null) {
          plain += decoded;
          i += m[0].length;
          continue;
        }
      }
      plain += '&'; // Telegram keeps an undecodable '&' as it is
      i += 1;
      continue;
    }
    if (ch !== '<') {
      plain += ch;
      i += 1;
      continue;
    }
    const end = text.indexOf('>', i);
    if (end === -1) {
      throw new BadRequest(`can't parse entities: Unclosed start tag at byte offset ${bytes(i)}`);
    }
    const inner = text.slice(i + 1, end);
    if (inner.startsWith('/')) {
      const name = inner.slice(1).trim().toLowerCase();
      const open = stack.pop();
      if (!open) {
        throw new BadRequest(`can't parse entities: Unexpected end tag at byte offset ${bytes(i)}`);
      }
      if (name && name !== open) {
        throw new BadRequest(
          `can't parse entities: Unmatched end tag at byte offset ${bytes(i)}, expected "</${open}>", found "</${name}>"`,
        );
      }
    } else {
      const m = /^([a-zA-Z][a-zA-Z0-9-]*)/.exec(inner);
      const name = m ? m[1].toLowerCase() : '';
      if (!HTML_TAGS.has(name)) {
        throw new BadRequest(`can't parse entities: Unsupported start tag "${name}" at byte offset ${bytes(i)}`);
      }
      const attrs = inner.slice(name.length);
      if (name === 'a' && !/\bhref\s*=/.test(attrs)) {
        // Telegram accepts <a> without href but drops the link; allowed.
      }
      if (name === 'span' && !/class\s*=\s*["']?tg-spoiler/.test(attrs)) {
        throw new BadRequest(`can't parse entities: Tag "span" must have class "tg-spoiler" at byte offset ${bytes(i)}`);
      }
      stack.push(name);
    }
    i = end + 1;
  }
  if (stack.length) {
    throw new BadRequest(`can't parse entities: Can't find end tag corresponding to start tag "${stack[stack.length - 1]}"`);
  }
  return plain;
}

function checkText(text, parseMode, what = 'message text') {
  if (text === undefined || text === null || String(text) === '') {
    throw new BadRequest(`${what} is empty`);
  }
  let plain = String(text);
  if (String(parseMode || '').toUpperCase() === 'HTML') plain = parseHtml(plain);
  if (!plain.trim()) throw new BadRequest(`${what} is empty`);
  if ([...plain].length > MAX_MESSAGE_LENGTH) throw new BadRequest('message is too long');
}

function checkReplyMarkup(markup) {
  if (!markup || typeof markup !== 'object') return;
  if (!('inline_keyboard' in markup)) return;
  if (!Array.isArray(markup.inline_keyboard)) throw new BadRequest('field "inline_keyboard" must be an Array');
  for (const row of markup.inline_keyboard) {
    if (!Array.isArray(row)) throw new BadRequest('field "inline_keyboard" must be an Array of Arrays');
    for (const button of row) {
      if (!button || typeof button.text !== 'string' || !button.text) {
        throw new BadRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard");
      }
      if ('callback_data' in button) {
        const size = Buffer.byteLength(String(button.callback_data), 'utf8');
        if (size < 1 || size > MAX_CALLBACK_DATA_BYTES) throw new BadRequest('BUTTON_DATA_INVALID');
      }
      if ('url' in button && !/^(https?|tg):\/\/\S+$/i.test(String(button.url))) {
        throw new BadRequest(`inline keyboard button URL '${button.url}' is invalid: Wrong HTTP URL`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv);
  const clientPort = opts.clientPort || (await freePort(opts.host));
  const server = new TelegramServer({ port: clientPort, host: opts.host, storeTimeout: STORE_TIMEOUT_SECONDS });
  await server.start();
  const upstream = `http://${opts.host}:${clientPort}`;

  const calls = [];
  let seq = 0;
  const chats = new Map(); // chat id -> chat object seen in user updates
  const callbackState = new Map(); // callback query id -> 'pending' | 'answered'
  const callbackUser = new Map(); // callback query id -> id of the user who pressed the button
  const waiters = new Set();
  const wakeUp = () => {
    for (const w of waiters) w();
    waiters.clear();
  };
  for (const event of ['AddedUserMessage', 'AddedUserCommand', 'AddedUserCallbackQuery']) {
    server.on(event, wakeUp);
  }

  const chatFor = (chatId) => chats.get(String(chatId)) || { id: Number(chatId), type: 'private', first_name: 'User' };

  function storedBotMessage(chatId, messageId) {
    return server.storage.botMessages.find(
      (u) => String(u.messageId) === String(messageId) && String(u.message.chat_id) === String(chatId),
    );
  }

  function messageFromStore(stored, extra = {}) {
    const m = stored.message;
    const out = {
      message_id: stored.messageId,
      from: BOT_USER,
      date: seconds(stored.time),
      chat: chatFor(m.chat_id),
      text: m.text,
    };
    if (m.reply_markup && typeof m.reply_markup === 'object' && 'inline_keyboard' in m.reply_markup) {
      out.reply_markup = { inline_keyboard: m.reply_markup.inline_keyboard };
    }
    return Object.assign(out, extra);
  }

  function fixUserUpdate(update) {
    const out = { update_id: update.update_id };
    if (update.callback_query) {
      const cq = update.callback_query;
      const message = Object.assign({}, cq.message || {});
      delete message.botToken;
      if (message.date !== undefined) message.date = seconds(message.date);
      const chatId = message.chat ? message.chat.id : cq.from && cq.from.id;
      out.callback_query = {
        id: String(cq.id),
        from: cq.from,
        chat_instance: cq.chat_instance || `e2e-${chatId}`,
        data: cq.data,
      };
      // Telegram attaches the message as it is now (after edits); fall back to what the simulated user sent.
      const stored = message.message_id !== undefined ? storedBotMessage(chatId, message.message_id) : undefined;
      if (stored) out.callback_query.message = messageFromStore(stored);
      else if (message.message_id !== undefined) out.callback_query.message = message;
      if (message.chat && !chats.has(String(message.chat.id))) chats.set(String(message.chat.id), message.chat);
      if (!callbackState.has(String(cq.id))) callbackState.set(String(cq.id), 'pending');
      if (cq.from) callbackUser.set(String(cq.id), cq.from.id);
      return out;
    }
    const message = Object.assign({}, update.message);
    delete message.botToken;
    message.date = seconds(message.date);
    if (message.chat) chats.set(String(message.chat.id), message.chat);
    out.message = message;
    return out;
  }

  function pendingUpdates(token, offset) {
    return server.storage.userMessages
      .filter((u) => u.botToken === token && u.updateId >= offset)
      .sort((a, b) => a.updateId - b.updateId);
  }

  async function getUpdates(token, params) {
    let offset = Number(params.offset || 0);
    const limit = Math.max(1, Math.min(100, Number(params.limit || 100)));
    const timeout = Math.max(0, Math.min(MAX_LONG_POLL_SECONDS, Number(params.timeout || 0)));
    if (offset > 0) {
      // Telegram forgets updates below the offset.
      server.storage.userMessages = server.storage.userMessages.filter(
        (u) => u.botToken !== token || u.updateId >= offset,
      );
    } else {
      offset = 0;
    }
    const deadline = Date.now() + timeout * 1000;
    let pending = pendingUpdates(token, offset);
    while (!pending.length && Date.now() < deadline) {
      await new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(done);
          resolve();
        }, deadline - Date.now());
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(done);
      });
      pending = pendingUpdates(token, offset);
    }
    return pending.slice(0, limit).map((u) => {
      u.isRead = true;
      return fixUserUpdate(TelegramServer.formatUpdate(u));
    });
  }

  async function forward(token, method, params) {
    const res = await fetch(`${upstream}/bot${token}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.ok === false) {
      throw new Error(`telegram-test-api ${method}: HTTP ${res.status} ${JSON.stringify(body)}`);
    }
    return body.result;
  }

  async function handleMethod(token, method, params, call) {
    const key = method.toLowerCase();
    switch (key) {
      case 'getme':
        await forward(token, 'getMe', {});
        return BOT_USER;
      case 'getupdates':
        return getUpdates(token, params);
      case 'deletewebhook':
        await forward(token, 'deleteWebhook', params);
        if (params.drop_pending_updates === true || params.drop_pending_updates === 'true') {
          server.storage.userMessages = server.storage.userMessages.filter((u) => u.botToken !== token);
        }
        return true;
      case 'setwebhook':
        throw new BadRequest('webhooks are not supported by the e2e emulator: run the bot with polling');
      case 'sendmessage': {
        if (params.chat_id === undefined || params.chat_id === '') throw new BadRequest('chat_id is empty');
        checkText(params.text, params.parse_mode);
        checkReplyMarkup(params.reply_markup);
        const result = await forward(token, 'sendMessage', params);
        const stored = storedBotMessage(params.chat_id, result.message_id);
        return messageFromStore(stored);
      }
      case 'editmessagetext':
      case 'editmessagereplymarkup': {
        if (params.inline_message_id) throw new BadRequest('inline messages are not supported by the e2e emulator');
        const stored = storedBotMessage(params.chat_id, params.message_id);
        if (!stored) throw new BadRequest('message to edit not found');
        if (key === 'editmessagetext') checkText(params.text, params.parse_mode);
        checkReplyMarkup(params.reply_markup);
        const before = JSON.stringify([stored.message.text, stored.message.reply_markup || null]);
        const after = JSON.stringify([
          key === 'editmessagetext' ? params.text : stored.message.text,
          params.reply_markup || null,
        ]);
        if (before === after) {
          throw new BadRequest(
            'message is not modified: specified new message content and reply markup are exactly the same as a '
              + 'current content and reply markup of the message',
          );
        }
        if (key === 'editmessagetext') {
          await forward(token, 'editMessageText', params);
          // Telegram replaces the whole message: a parse mode or keyboard not given again is gone.
          for (const field of ['parse_mode', 'entities', 'link_preview_options']) {
            if (!(field in params)) delete stored.message[field];
          }
        } else if (params.reply_markup) {
          await forward(token, 'editMessageReplyMarkup', params);
        }
        if (!params.reply_markup || !(params.reply_markup.inline_keyboard || []).length) {
          delete stored.message.reply_markup;
        }
        stored.editedAt = Date.now();
        return messageFromStore(stored, { edit_date: Math.floor(Date.now() / 1000) });
      }
      case 'answercallbackquery': {
        const id = String(params.callback_query_id || '');
        const state = callbackState.get(id);
        call.callback_user_id = callbackUser.has(id) ? callbackUser.get(id) : null;
        if (state !== 'pending') {
          throw new BadRequest('query is too old and response timeout expired or query id is invalid');
        }
        if (params.text && [...String(params.text)].length > 200) throw new BadRequest('MESSAGE_TOO_LONG');
        callbackState.set(id, 'answered');
        await forward(token, 'answerCallbackQuery', params);
        return true;
      }
      case 'setmycommands': {
        const commands = params.commands;
        if (!Array.isArray(commands) || commands.length > 100) throw new BadRequest('BOT_COMMANDS_TOO_MUCH');
        for (const c of commands) {
          if (!c || !/^[a-z0-9_]{1,32}$/.test(String(c.command || ''))) throw new BadRequest('BOT_COMMAND_INVALID');
          const size = [...String(c.description || '')].length;
          if (size < 1 || size > 256) throw new BadRequest('BOT_COMMAND_DESCRIPTION_INVALID');
        }
        return true;
      }
      case 'deletemessage': {
        await forward(token, 'deleteMessage', params).catch(() => {
          throw new BadRequest('message to delete not found');
        });
        return true;
      }
      default:
        if (Object.prototype.hasOwnProperty.call(GETTER_RESULTS, key)) return GETTER_RESULTS[key]();
        return true;
    }
  }

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  function parseMultipart(buf, contentType) {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    const out = {};
    if (!m) return out;
    const boundary = `--${m[1] || m[2]}`;
    for (const part of buf.toString('latin1').split(boundary)) {
      const sep = part.indexOf('\r\n\r\n');
      if (sep === -1) continue;
      const head = part.slice(0, sep);
      const name = /name="([^"]*)"/i.exec(head);
      if (!name || /filename=/i.test(head)) continue; // files are not kept
      out[name[1]] = Buffer.from(part.slice(sep + 4).replace(/\r\n$/, ''), 'latin1').toString('utf8');
    }
    return out;
  }

  async function parseParams(req, url) {
    const params = Object.fromEntries(url.searchParams.entries());
    const buf = await readBody(req);
    const type = String(req.headers['content-type'] || '');
    if (buf.length) {
      if (type.includes('application/json')) Object.assign(params, JSON.parse(buf.toString('utf8')));
      else if (type.includes('multipart/form-data')) Object.assign(params, parseMultipart(buf, type));
      else Object.assign(params, Object.fromEntries(new URLSearchParams(buf.toString('utf8')).entries()));
    }
    for (const k of Object.keys(params)) params[k] = maybeJson(params[k]);
    return params;
  }

  function send(res, status, body) {
    const data = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
    res.end(data);
  }

  const proxy = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname.startsWith('/_e2e/')) {
      const what = url.pathname.slice('/_e2e/'.length);
      if (what === 'health') return send(res, 200, { ok: true });
      if (what === 'calls') {
        const method = (url.searchParams.get('method') || '').toLowerCase();
        return send(res, 200, { ok: true, result: calls.filter((c) => !method || c.method.toLowerCase() === method) });
      }
      if (what === 'errors') return send(res, 200, { ok: true, result: calls.filter((c) => c.status >= 400) });
      return send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    }
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!m) return send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    const [, token, method] = m;
    const call = { seq: ++seq, time: Date.now() / 1000, token, method, params: null, status: 0, description: null };
    calls.push(call);
    try {
      if (!['GET', 'POST'].includes(req.method)) throw new BadRequest('method not allowed');
      call.params = await parseParams(req, url);
      const result = await handleMethod(token, method, call.params, call);
      call.status = 200;
      if (method.toLowerCase() !== 'getupdates' || result.length) {
        log(`${method} -> ok`);
      }
      return send(res, 200, { ok: true, result });
    } catch (err) {
      if (err instanceof BadRequest) {
        call.status = 400;
        call.description = `Bad Request: ${err.message}`;
        log(`${method} -> 400 ${call.description}`);
        return send(res, 400, { ok: false, error_code: 400, description: call.description });
      }
      call.status = 500;
      call.description = `Internal Server Error: ${err && err.stack ? err.stack : err}`;
      log(`${method} -> 500 ${call.description}`);
      return send(res, 500, { ok: false, error_code: 500, description: 'Internal Server Error' });
    }
  });
  proxy.keepAliveTimeout = 65000;
  await new Promise((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(opts.botPort, opts.host, resolve);
  });
  const botPort = proxy.address().port;

  const ready = {
    client_url: upstream,
    bot_api_url: `http://${opts.host}:${botPort}/bot`,
    client_port: clientPort,
    bot_port: botPort,
    pid: process.pid,
  };
  if (opts.readyFile) {
    const tmp = `${opts.readyFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(ready));
    fs.renameSync(tmp, opts.readyFile);
  }
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  log(`ready: ${JSON.stringify(ready)} (telegram-test-api from ${path.dirname(require.resolve('telegram-test-api'))})`);

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    wakeUp();
    const hardExit = setTimeout(() => process.exit(0), 3000);
    hardExit.unref();
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(() => resolve()));
    log('proxy closed');
    await server.stop().catch(() => {});
    log('telegram-test-api stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  log(`fatal: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
