// End-to-end: the dashboard in Debian's headless Chromium against a real agent
// (the `hangar` binary, a temp data dir, loopback ports), with real git pushes.
// Run by scripts/test after the Rust tests: `npm run e2e` in ui/.
//
// E2E_HANGAR_BIN picks the binary (default: the debug build in CARGO_TARGET_DIR);
// screenshots go to ui/e2e-artifacts/ (gitignored) or E2E_ARTIFACTS.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync, openSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/hangar/target');
const bin = process.env.E2E_HANGAR_BIN ?? join(targetDir, 'debug/hangar');
const artifacts = process.env.E2E_ARTIFACTS ?? join(here, '..', 'e2e-artifacts');
const temp = mkdtempSync(join(tmpdir(), 'hangar-ui-e2e-'));
const dataDir = join(temp, 'data');

let agent; // the child process
let url; // http://127.0.0.1:PORT
let token; // the admin token from agent.json
let context; // the browser
let page;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; agent log:\n${agentLog()}`);
    await sleep(100);
  }
}

function agentLog() {
  try {
    return readFileSync(join(temp, 'agent.log'), 'utf8').slice(-4000);
  } catch {
    return '(no log)';
  }
}

async function api(method, path, body) {
  const r = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** Runs git with no user or system config, like the Rust harness does. */
function git(cwd, ...args) {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: temp,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function shot(name) {
  return page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

before(async () => {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(dataDir);
  const log = openSync(join(temp, 'agent.log'), 'a');
  agent = spawn(bin, ['serve', '--http', '127.0.0.1:0', '--ssh', '127.0.0.1:0', '--data-dir', dataDir], {
    stdio: ['ignore', log, log],
    env: { ...process.env, HANGAR_LOG: 'info' },
  });
  agent.on('error', (e) => {
    throw new Error(`cannot start ${bin} (build it with cargo build -p hangar-agent, or set E2E_HANGAR_BIN): ${e.message}`);
  });
  const file = await waitFor('agent.json', () => JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8')));
  url = file.url;
  token = file.token;
  await waitFor('/healthz', async () => (await fetch(`${url}/healthz`)).ok);

  // A new empty profile for every run; never a downloaded browser.
  context = await chromium.launchPersistentContext(join(temp, 'profile'), {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`console error: ${m.text()}`));
});

afterEach(async (t) => {
  // Leave a picture of a failure beside the other screenshots.
  if (page && t.passed === false) await shot(`failed-${t.name.slice(0, 40).replace(/\W+/g, '-')}`).catch(() => {});
});

after(async () => {
  await context?.close();
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await Promise.race([new Promise((r) => agent.once('exit', r)), sleep(10_000)]);
    if (agent.exitCode === null) agent.kill('SIGKILL');
  }
  rmSync(temp, { recursive: true, force: true });
});

test('the agent serves the dashboard without shadowing its own URLs', async () => {
  const index = await fetch(`${url}/builds/01HZZZZZZZZZZZZZZZZZZZZZZZ`);
  assert.equal(index.status, 200);
  assert.match(await index.text(), /<div id="app">/);
  const api404 = await fetch(`${url}/api/v1/nothing-here`);
  assert.equal(api404.status, 404);
  assert.match(api404.headers.get('content-type'), /json/);
  assert.equal(await (await fetch(`${url}/healthz`)).text(), 'ok\n');
  const git404 = await fetch(`${url}/nobody/nothing.git/info/refs?service=git-upload-pack`);
  assert.notEqual(git404.status, 200);
  assert.doesNotMatch(await git404.text(), /<div id="app">/);
  // Events need a signed-in caller.
  assert.equal((await fetch(`${url}/api/v1/events`)).status, 401);
});

test('sign in, push, watch the build live, cancel it, copy a clone URL', async () => {
  await page.goto(`${url}/`);
  await page.waitForURL(/\/login/);
  await shot('login');
  await page.getByLabel('Access token').fill('hgr_wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').getByText(/unknown or revoked/).waitFor();
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.getByText('● live').waitFor();
  await page.getByText(/Memory/).waitFor();
  await shot('overview');

  // The session cookie is HttpOnly: page scripts cannot read the token.
  assert.equal(await page.evaluate(() => document.cookie), '');
  const cookies = await context.cookies(url);
  assert.ok(cookies.some((c) => c.name === 'hangar_session' && c.httpOnly && c.sameSite === 'Strict'));

  // Create a repository through the UI.
  await page.getByRole('link', { name: 'Repos' }).click();
  await page.getByLabel('New repository (OWNER/NAME)').fill('team/app');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: 'team/app' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/repos/team/app');

  // Copy the HTTP clone URL.
  await page.getByRole('button', { name: 'Copy HTTP clone URL' }).click();
  await page.getByRole('button', { name: 'Copy HTTP clone URL' }).getByText('Copied').waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, `${url}/team/app.git`);
  await page.getByRole('button', { name: 'Copy SSH clone URL' }).waitFor();

  // Watch the builds list while pushing: the build must appear without a reload.
  await page.getByRole('link', { name: 'Builds' }).click();
  await page.getByText('No builds').waitFor();
  const work = join(temp, 'work');
  mkdirSync(join(work, '.github/workflows'), { recursive: true });
  writeFileSync(
    join(work, '.github/workflows/slow.yml'),
    [
      'name: slow',
      'on: push',
      'jobs:',
      '  count:',
      '    runs-on: self-hosted',
      '    steps:',
      '      - name: Count slowly',
      '        run: |',
      '          echo "::group::Setup"',
      '          echo "inside the group"',
      '          echo "::endgroup::"',
      "          for i in $(seq 1 200); do printf '\\033[32mline %s\\033[0m\\n' \"$i\"; sleep 0.2; done",
      '',
    ].join('\n'),
  );
  git(work, 'init', '-q', '-b', 'main');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'Add a slow workflow');
  const remote = url.replace('http://', `http://git:${token}@`) + '/team/app.git';
  git(work, 'push', '-q', remote, 'main');

  const row = page.getByRole('link', { name: 'slow #1' });
  await row.waitFor();
  await shot('builds');
  await row.click();
  await page.getByRole('heading', { name: /slow #1/ }).waitFor();

  // Lines arrive while the job runs: line 3 shows before line 60 exists.
  const log = page.getByRole('log', { name: 'Job log' });
  await log.getByText('line 3', { exact: true }).waitFor();
  assert.equal(await log.getByText('line 60', { exact: true }).count(), 0);
  await log.getByText('line 6', { exact: true }).waitFor();
  // ANSI green is rendered as a colour class, not as escape codes.
  assert.match(await log.getByText('line 6', { exact: true }).getAttribute('class'), /fg-c2/);
  assert.equal(await log.getByText(/\x1b|\[32m/).count(), 0);
  // The group is folded until opened.
  assert.equal(await log.getByText('inside the group').count(), 0);
  await log.getByRole('button', { name: /Setup/ }).click();
  await log.getByText('inside the group').waitFor();
  await shot('build-running');

  // Search finds the line and says how many matched.
  await page.getByLabel('Search log').fill('line 5');
  await page.getByText(/^\d+ match(es)?$/).waitFor();

  // Cancel from the page; the status changes through the event stream.
  await page.getByRole('button', { name: 'Cancel build' }).click();
  await page.getByRole('heading', { name: /cancelled/ }).waitFor();
  await page.getByRole('button', { name: 'Re-run', exact: true }).waitFor();
  const builds = await api('GET', '/builds?repo=team/app');
  assert.equal(builds.body.items[0].status, 'cancelled');
  const lines = await log.locator('.line').count();
  assert.ok(lines < 200, `the cancelled job stopped early (${lines} lines)`);
  await shot('build-cancelled');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('build-cancelled-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // The status filter: a cancelled build is found by it, a failed one is not.
  await page.goto(`${url}/builds?status=failure`);
  await page.getByText('No build matches these filters.').waitFor();
  await page.getByLabel('Status').selectOption('cancelled');
  await page.getByRole('link', { name: 'slow #1' }).waitFor();
  assert.match(page.url(), /status=cancelled/);

  // Repo page: branch, commit and the workflow found at HEAD.
  await page.goto(`${url}/repos/team/app`);
  await page.getByText('Add a slow workflow').waitFor();
  await page.getByText('.github/workflows/slow.yml').waitFor();
  await shot('repo');

  for (const [path, heading, name] of [
    ['/mirrors', 'Mirrors', 'mirrors'],
    ['/settings', 'Settings', 'settings'],
    ['/pulls', 'Pull requests', 'pulls'],
    ['/previews', 'Previews', 'previews'],
  ]) {
    await page.goto(`${url}${path}`);
    await page.getByRole('heading', { name: heading, exact: true }).waitFor();
    await shot(name);
  }
  await page.getByText('No previews').waitFor();

  // Settings: what a forge and a tunnel need, said where they are missing.
  await page.goto(`${url}/settings`);
  await page.getByRole('heading', { name: 'Webhook tunnel' }).waitFor();
  await page.getByText('No tunnel: set').waitFor();
  await page.getByText('hangar forge add github --token-stdin').waitFor();
  await page.getByText('hangar secret set NAME').waitFor();

  // Keyboard: Tab from the top reaches the skip link, then the navigation.
  await page.goto(`${url}/`);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Overview');
});

test('the build page lists artifacts with working download links', async () => {
  // A branch whose only workflow uploads an artifact whose name has a space.
  const work = join(temp, 'work');
  git(work, 'checkout', '-q', '-b', 'artifacts');
  git(work, 'rm', '-q', '.github/workflows/slow.yml');
  mkdirSync(join(work, '.github/workflows'), { recursive: true });
  writeFileSync(
    join(work, '.github/workflows/pack.yml'),
    [
      'name: pack',
      'on: push',
      'jobs:',
      '  pack:',
      '    runs-on: self-hosted',
      '    steps:',
      '      - run: mkdir out && echo hello > out/hello.txt',
      '      - uses: actions/upload-artifact@v4',
      '        with:',
      '          name: test report',
      '          path: out',
      '',
    ].join('\n'),
  );
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'Pack an artifact');
  const remote = url.replace('http://', `http://git:${token}@`) + '/team/app.git';
  git(work, 'push', '-q', remote, 'artifacts');
  const build = await waitFor('the pack build to succeed', async () => {
    const builds = await api('GET', '/builds?repo=team/app&status=success');
    return builds.body.items.find((b) => b.workflow_name === 'pack');
  }, 60_000);

  await page.goto(`${url}/builds/${build.id}`);
  await page.getByRole('heading', { name: 'Artifacts' }).waitFor();
  const link = page.getByRole('link', { name: /^Download test report \(\d+(\.\d)? (B|KiB), tar\)$/ });
  await link.waitFor();
  const table = page.getByRole('table', { name: 'Artifacts of this build' });
  await table.getByText(/^expires in \d+ d$/).waitFor();
  await shot('build-artifacts');
  // The link downloads the tar with the page's own session cookie.
  const href = await link.getAttribute('href');
  assert.equal(href, `/api/v1/builds/${build.id}/artifacts/test%20report`);
  const response = await page.request.get(`${url}${href}`);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()['content-type'], 'application/x-tar');
  assert.ok((await response.body()).includes('hello.txt'), 'the tar holds the uploaded file');
});

test('first paint of the dashboard from the local agent (reported, not asserted)', async () => {
  const fresh = await context.newPage();
  const samples = [];
  for (let i = 0; i < 5; i++) {
    await fresh.goto(`${url}/`, { waitUntil: 'load' });
    await fresh.getByRole('heading', { name: 'Overview' }).waitFor();
    samples.push(
      await fresh.evaluate(() => {
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        const nav = performance.getEntriesByType('navigation')[0];
        return { fcp: paint?.startTime ?? NaN, load: nav?.loadEventEnd ?? NaN };
      }),
    );
  }
  await fresh.close();
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const fcp = median(samples.map((s) => s.fcp));
  const load = median(samples.map((s) => s.load));
  console.log(`first contentful paint: median ${fcp.toFixed(0)} ms, load event ${load.toFixed(0)} ms (5 loads)`);
  assert.ok(Number.isFinite(fcp), 'Chromium reported a first contentful paint');
});

test('the session cookie alone cannot change anything (CSRF guard)', async () => {
  const cookie = (await context.cookies(url)).find((c) => c.name === 'hangar_session');
  const headers = { cookie: `hangar_session=${cookie.value}`, 'content-type': 'application/json' };
  const forged = await fetch(`${url}/api/v1/repos`, { method: 'POST', headers, body: '{"name":"evil/repo"}' });
  assert.equal(forged.status, 403);
  assert.match((await forged.json()).error.message, /x-hangar-ui/);
  const read = await fetch(`${url}/api/v1/status`, { headers });
  assert.equal(read.status, 200);
  // Signing out clears the cookie.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
  assert.equal((await context.cookies(url)).some((c) => c.name === 'hangar_session' && c.value), false);
});
