import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startManagedBroker, waitUntil } from './helpers.js';
import type { ManagedBroker } from './helpers.js';

/**
 * The web UI in a real headless Chromium (Debian's package, installed by scripts/install-deps.sh;
 * playwright-core only drives it). Screenshots land in test-artifacts/.
 */
const CHROMIUM = process.env.WARREN_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');

let w: ManagedBroker;
let context: BrowserContext;
let page: Page;
let profile: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  try {
    statSync(CHROMIUM);
  } catch {
    throw new Error(
      `${CHROMIUM} is missing; run scripts/install-deps.sh (installs Debian's chromium)`,
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  w = await startManagedBroker({}, 200);
  profile = mkdtempSync(join(tmpdir(), 'warren-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('401')) pageErrors.push(m.text());
  });
}, 60_000);

afterAll(async () => {
  await context?.close();
  await w?.stop();
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
});

const readyOf = (name: string): number =>
  w.broker.getVhost('/')!.queues.get(name)?.messageCount ?? -1;

describe('management web UI', () => {
  it('refuses a wrong password, then logs in and shows the overview', async () => {
    await page.goto(w.http + '/');
    await page.fill('#login-user', 'guest');
    await page.fill('#login-password', 'wrong');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:has-text("Login failed")');
    expect(await page.isVisible('#app')).toBe(false);

    await page.fill('#login-password', 'guest');
    await page.click('#login-submit');
    await page.waitForSelector('#totals');
    expect(await page.textContent('#whoami')).toContain('guest');
    expect(await page.locator('canvas.chart').count()).toBe(2);
  });

  it('shows a queue appear after a publish, with live refresh', async () => {
    await page.selectOption('#refresh-interval', '2000');
    await page.click('a[data-view="queues"]');
    await page.waitForSelector('h2:has-text("Queues")');
    expect(await page.locator('tr[data-queue="ui-q"]').count()).toBe(0);
    const conn = await amqplib.connect(w.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('ui-q', { durable: false });
    ch.sendToQueue('ui-q', Buffer.from('from amqp'));
    await ch.waitForConfirms();
    await conn.close();
    // No reload: the page's refresh timer brings the new queue in.
    const row = page.locator('tr[data-queue="ui-q"]');
    await row.waitFor({ timeout: 15_000 });
    await waitUntil(async () => (await row.textContent())?.includes('1'), 'ready count in the row');
  });

  it('publishes, peeks, gets and purges from the queue page', async () => {
    await page.click('tr[data-queue="ui-q"] a');
    await page.waitForSelector('h2:has-text("Queue ui-q")');
    expect(await page.inputValue('#publish-key')).toBe('ui-q');
    await page.fill('#publish-payload', 'hello from the browser');
    await page.click('#publish-submit');
    await page.waitForSelector('#flash:has-text("Publish: done")');
    await waitUntil(
      () => Promise.resolve(readyOf('ui-q') === 2),
      'the published message in the queue',
    );
    await page.waitForSelector('#stat-ready .value:text-is("2")');

    await page.fill('#get-count', '5');
    await page.click('#peek-submit');
    await page.waitForSelector('#messages:has-text("Peeked at 2 message(s)")');
    const payloads = await page.locator('#messages pre.payload').allTextContents();
    expect(payloads).toEqual(['from amqp', 'hello from the browser']);
    expect(readyOf('ui-q')).toBe(2);

    await page.fill('#get-count', '1');
    await page.selectOption('#get-ackmode', 'ack_requeue_false');
    await page.click('#get-submit');
    await page.waitForSelector('#messages:has-text("Got 1 message(s)")');
    expect(await page.locator('#messages pre.payload').allTextContents()).toEqual(['from amqp']);
    expect(readyOf('ui-q')).toBe(1);

    page.once('dialog', (d) => void d.accept());
    await page.click('#purge-submit');
    await page.waitForSelector('#flash:has-text("Purge: done")');
    expect(readyOf('ui-q')).toBe(0);
    await page.waitForSelector('#stat-ready .value:text-is("0")');
    await page.screenshot({ path: join(ARTIFACTS, 'management-ui-queue.png'), fullPage: true });
  });

  it('lists connections and exchanges, exports definitions, and draws the overview', async () => {
    const conn = await amqplib.connect(w.url, { clientProperties: { connection_name: 'ui-conn' } });
    try {
      await page.click('a[data-view="connections"]');
      await page.locator('tr[data-connection]').first().waitFor({ timeout: 15_000 });
      expect(await page.textContent('#view')).toContain('amqplib');
      await page.click('a[data-view="exchanges"]');
      await page.waitForSelector('tr[data-exchange="amq.topic"]');
      await page.click('a[data-view="admin"]');
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('#definitions-export'),
      ]);
      const file = join(ARTIFACTS, 'management-ui-definitions.json');
      await download.saveAs(file);
      expect(statSync(file).size).toBeGreaterThan(100);
      await page.click('a[data-view="overview"]');
      await page.waitForSelector('#totals');
      await page.screenshot({
        path: join(ARTIFACTS, 'management-ui-overview.png'),
        fullPage: true,
      });
    } finally {
      await conn.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
