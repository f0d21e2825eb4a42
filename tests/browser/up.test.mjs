// Real-browser test of `alga-lambda up`: headless Debian chromium (driven by
// playwright-core, never a downloaded browser) opens the host page, which embeds
// the example extension's UI in a sandboxed iframe. Run by scripts/test after cargo
// has built the CLI: `node --test` in tests/browser/ (ALGA_LAMBDA_BIN may name the
// binary; else $CARGO_TARGET_DIR or target/, debug profile). The last test makes a
// new extension with `alga-lambda new` (the ts template) and uses its UI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');
const binary = process.env.ALGA_LAMBDA_BIN || path.join(targetDir, 'debug', 'alga-lambda');
const CHROMIUM = '/usr/bin/chromium';
// `up` publishes (precompiles) the 12 MB JavaScript component before it listens.
const READY_TIMEOUT_MS = 600_000;
const UI_TIMEOUT_MS = 60_000;
const EXT = 'com.example.hello';

let up;
let base;
let templateUp;
let context;
const scratch = mkdtempSync(path.join(tmpdir(), 'alga-browser-'));

/** Starts `up` for `dir` on a free port and resolves with its base URL once it prints `ready on`. */
function startUp(dir = path.join(repo, 'examples/hello'), data = 'data') {
  const env = { ...process.env };
  delete env.RUNNER_SERVICE_TOKEN;
  delete env.ALGA_BACKEND;
  delete env.SIGNING_TRUST_BUNDLE;
  const child = spawn(
    binary,
    ['up', dir, '--port', '0', '--data', path.join(scratch, data)],
    { cwd: repo, env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('up did not print "ready on" in time')), READY_TIMEOUT_MS);
    let buffered = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      const m = buffered.match(/^ready on (http:\/\/\S+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`up exited (${code}) before it was ready:\n${buffered}`));
    });
  });
  return { child, ready };
}

before(async () => {
  assert.ok(existsSync(binary), `${binary} missing: build the CLI first (cargo build -p alga-lambda)`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: scripts/setup-e2e installs it`);
  const started = startUp();
  up = started.child;
  base = await started.ready;
  context = await chromium.launchPersistentContext(path.join(scratch, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

after(async () => {
  if (context) await context.close();
  if (up && up.exitCode === null) up.kill('SIGKILL');
  if (templateUp && templateUp.exitCode === null) templateUp.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/** The page with the host page loaded and the extension's frame. */
async function openHostPage() {
  const page = await context.newPage();
  const response = await page.goto(`${base}/`);
  assert.equal(response.status(), 200);
  const element = await page.waitForSelector('iframe#extension');
  assert.equal(await element.getAttribute('sandbox'), 'allow-scripts');
  const frame = await element.contentFrame();
  assert.ok(frame, 'the iframe has a frame');
  // main.js sets data-state once the handler answered (through the host's bridge).
  await frame.waitForSelector('#status[data-state]', { timeout: UI_TIMEOUT_MS });
  return { page, frame };
}

test('the iframe UI loads its JS and CSS and shows the handler answer via the bridge', async () => {
  const { page, frame } = await openHostPage();
  assert.match(frame.url(), new RegExp(`/ext-ui/${EXT.replace(/\./g, '\\.')}/sha256:[0-9a-f]{64}/index\\.html\\?`));
  const status = await frame.$eval('#status', (el) => ({ state: el.dataset.state, text: el.textContent }));
  assert.equal(status.state, 'ok', `status: ${status.text}`);
  assert.equal(status.text, `Hello from ${EXT}`);
  // The JSON the handler returned is shown too: tenant `dev` (up's default).
  const result = JSON.parse(await frame.$eval('#result', (el) => el.textContent));
  assert.equal(result.tenant, 'dev');
  // style.css applied: body margin 1.5rem, system-ui font, the pre's background.
  const style = await frame.evaluate(() => ({
    margin: getComputedStyle(document.body).marginTop,
    font: getComputedStyle(document.body).fontFamily,
    pre: getComputedStyle(document.querySelector('pre')).backgroundColor,
  }));
  assert.equal(style.margin, '24px');
  assert.match(style.font, /system-ui/);
  assert.equal(style.pre, 'rgb(245, 247, 250)');
  // The binary asset: icon.png (16x16) decoded inside the frame (a failed load
  // completes with naturalWidth 0).
  await frame.waitForFunction(() => document.getElementById('logo').complete, null, {
    timeout: UI_TIMEOUT_MS,
  });
  const logo = await frame.$eval('#logo', (img) => ({ width: img.naturalWidth, height: img.naturalHeight }));
  assert.deepEqual(logo, { width: 16, height: 16 });
  mkdirSync(path.join(repo, 'target'), { recursive: true });
  await page.screenshot({ path: path.join(repo, 'target', 'browser-up.png'), fullPage: true });
  await page.close();
});

test('the CSP blocks an inline script inside the iframe', async () => {
  const { page, frame } = await openHostPage();
  const outcome = await frame.evaluate(
    () =>
      new Promise((resolve) => {
        const violations = [];
        document.addEventListener('securitypolicyviolation', (e) => {
          violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI });
        });
        const script = document.createElement('script');
        script.textContent = 'window.__inlineRan = true;';
        document.body.appendChild(script);
        // The violation event is dispatched asynchronously; give it a moment.
        setTimeout(() => resolve({ ran: window.__inlineRan === true, violations }), 1000);
      }),
  );
  assert.equal(outcome.ran, false, 'the inline script must not run');
  assert.ok(
    outcome.violations.some((v) => v.directive.startsWith('script-src') && v.blocked === 'inline'),
    `a script-src violation for the inline script: ${JSON.stringify(outcome.violations)}`,
  );
  await page.close();
});

test('the sandboxed iframe cannot touch the parent page', async () => {
  const { page, frame } = await openHostPage();
  const error = await frame.evaluate(() => {
    try {
      return `read: ${window.parent.document.title}`;
    } catch (e) {
      return e.name;
    }
  });
  assert.equal(error, 'SecurityError');
  // And the parent is untouched: the host page's own header is still there.
  assert.match(await page.textContent('header'), /alga-lambda up/);
  await page.close();
});

test('sec_09 the host bridge refuses paths that would leave the extension route', async () => {
  const { page, frame } = await openHostPage();
  // Every request the page (host or frame) makes from here on.
  const requested = [];
  page.on('request', (request) => {
    const pathname = new URL(request.url()).pathname;
    if (pathname !== '/favicon.ico') requested.push(pathname);
  });
  /** Posts a bridge message from inside the sandboxed frame; resolves with the reply (or a timeout). */
  const ask = (path, method = 'GET', body = undefined) =>
    frame.evaluate(
      ({ path, method, body }) =>
        new Promise((resolve) => {
          const id = `probe-${Math.random()}`;
          const timer = setTimeout(() => resolve({ status: 'no reply' }), 10000);
          window.addEventListener('message', function onReply(event) {
            const msg = event.data;
            if (event.source !== window.parent || !msg || msg.alga !== 'fetch-result' || msg.id !== id) return;
            window.removeEventListener('message', onReply);
            clearTimeout(timer);
            resolve({ status: msg.status, body: msg.body });
          });
          window.parent.postMessage({ alga: 'fetch', id, path, method, body }, '*');
        }),
      { path, method, body },
    );
  // A hostile UI asks the host to call routes outside its own: the execute API
  // (with the host's origin), another extension, or dot segments in any spelling.
  const hostile = [
    '/../../v1/execute',
    '/api/../../../v1/execute',
    '/..',
    '/.',
    '/./api/hello',
    '/api/hello/..',
    '/%2e%2e/%2e%2e/v1/execute',
    '/%2E%2E/%2E%2E/v1/execute',
    '/.%2e/.%2E/v1/execute',
    '/%2e./%2E./v1/execute',
    '/%2e/api/hello',
    '/%252e%252e/%252e%252e/v1/execute',
    '/..\\..\\v1\\execute',
    '/\\..\\..\\v1\\execute',
    '/api\\hello',
    '/..%5c..%5cv1%5cexecute',
    '/..%2f..%2fv1%2fexecute',
    '/%2e%2e%2f%2e%2e%2fv1/execute',
    '/%zz/../../v1/execute',
    '/.\t./.\n./v1/execute',
    '/../com.example.other/api/hello',
  ];
  for (const path of hostile) {
    const reply = await ask(path, 'POST', '{"context":{}}');
    assert.equal(reply.status, 400, `${path}: ${JSON.stringify(reply)}`);
    assert.equal(JSON.parse(reply.body).error, 'invalid_path', `${path}: ${reply.body}`);
  }
  assert.deepEqual(requested, [], 'a refused path sends no request at all');
  // The extension's own routes still go through, query strings included.
  const ok = await ask('/api/hello?next=/../x');
  assert.equal(ok.status, 200, JSON.stringify(ok));
  assert.equal(JSON.parse(ok.body).tenant, 'dev');
  assert.deepEqual(requested, [`/api/ext/${EXT}/api/hello`]);
  // A POST carries JSON's content type: up refuses cross-site form types.
  const echo = await ask('/api/echo', 'POST', '{"n":1}');
  assert.equal(echo.status, 200, JSON.stringify(echo));
  assert.equal(JSON.parse(echo.body).body, '{"n":1}');
  await page.close();
});

test('the host page lists each request with its guest logs and metrics (server-sent events)', async () => {
  const { page } = await openHostPage();
  await page.waitForSelector('#request-state[data-state="live"]', { timeout: UI_TIMEOUT_MS });
  // The UI's own call, made through the bridge as the page loaded.
  const hello = `/api/ext/${EXT}/api/hello`;
  const row = await page.waitForSelector(`#request-log li[data-path="${hello}"][data-status="200"]`, {
    timeout: UI_TIMEOUT_MS,
  });
  assert.equal(await row.getAttribute('data-method'), 'GET');
  assert.equal(await row.getAttribute('data-outcome'), 'ok');
  assert.match(await row.$eval('.logs', (el) => el.textContent), /info hello handler: GET \/api\/hello/);
  assert.match(await row.$eval('.metrics', (el) => el.textContent), /run [\d.]+ ms · .* host calls · direct/);
  // A request made elsewhere shows up live, newest first, with its outcome.
  const missing = `/api/ext/${EXT}/api/nope`;
  const r = await fetch(`${base}${missing}`);
  assert.equal(r.status, 404);
  const refused = await page.waitForSelector(`#request-log li[data-path="${missing}"]`, { timeout: UI_TIMEOUT_MS });
  assert.equal(await refused.getAttribute('data-outcome'), 'endpoint_not_found');
  assert.equal(await refused.getAttribute('data-status'), '404');
  const first = await page.$eval('#request-log li', (el) => el.dataset.path);
  assert.equal(first, missing);
  await page.close();
});

test('a new extension from `alga-lambda new` (ts template) runs in the host page', async () => {
  const dir = path.join(scratch, 'demo-ext');
  execFileSync(binary, ['new', dir, '--template', 'ts'], { stdio: 'ignore' });
  // The template pins exactly the example's packages (typescript is jco's own
  // 7.0.2), so the example's installed tree serves it; `up` builds it.
  symlinkSync(path.join(repo, 'examples/hello/node_modules'), path.join(dir, 'node_modules'));
  const started = startUp(dir, 'demo-data');
  templateUp = started.child;
  const demoBase = await started.ready;
  const page = await context.newPage();
  assert.equal((await page.goto(`${demoBase}/`)).status(), 200);
  const frame = await (await page.waitForSelector('iframe#extension')).contentFrame();
  // The greeting starts as `loading`: wait for the handler's answer, not the placeholder.
  await frame.waitForSelector('#greeting[data-state]:not([data-state="loading"])', { timeout: UI_TIMEOUT_MS });
  const greeting = await frame.$eval('#greeting', (el) => ({ state: el.dataset.state, text: el.textContent }));
  assert.deepEqual(greeting, { state: 'ok', text: 'Hello from demo-ext' });
  // The counter goes through the bridge as a POST with a JSON body.
  await frame.click('#count');
  await frame.waitForSelector('#counter[data-count="1"]', { timeout: UI_TIMEOUT_MS });
  await frame.click('#count');
  await frame.waitForSelector('#counter[data-count="2"]', { timeout: UI_TIMEOUT_MS });
  assert.equal(await frame.$eval('#counter', (el) => el.textContent), 'Counted 2 times');
  // And the request log has the handler's lines for it.
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll('#request-log li[data-method="POST"][data-status="200"] .logs')].some((el) =>
        el.textContent.includes('info counter 1 -> 2'),
      ),
    null,
    { timeout: UI_TIMEOUT_MS },
  );
  await page.screenshot({ path: path.join(repo, 'target', 'browser-new-ts.png'), fullPage: true });
  await page.close();
});
