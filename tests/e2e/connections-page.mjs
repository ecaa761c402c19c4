// The connections page (`/connections`) in a real browser: Debian's headless Chromium, driven by
// playwright-core. The user signs in to the page, sees their connection and their app's grant,
// and a form posted from another site does nothing; then they disconnect and revoke. A screenshot
// of each page.
//
// Usage: node connections-page.mjs '{"url": "<the gateway's origin>/connections", "username": "...",
//                                    "password": "...", "screenshots": "<dir>"}'
// Prints { "titles", "screenshots", "listed", "forged", "emptyToken", "afterDisconnect",
//          "afterRevoke" } (page texts and statuses) or { "error": ... }.
import { launchChromium } from './chromium.mjs';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const plan = JSON.parse(process.argv[2]);
const report = { screenshots: [], titles: [] };
mkdirSync(plan.screenshots, { recursive: true });
const browser = await launchChromium();
try {
  const page = await (await browser.newContext()).newPage();
  const shoot = async (name) => {
    const path = join(plan.screenshots, `connections-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    report.screenshots.push(path);
    report.titles.push(await page.title());
  };
  const text = () => page.innerText('main');

  // Not signed in: the page sends the browser to sign in, and back.
  await page.goto(plan.url);
  await page.waitForSelector('input[name=username]');
  await shoot('1-sign-in');
  await page.fill('input[name=username]', plan.username);
  await page.fill('input[name=password]', plan.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForSelector('h1');
  await shoot('2-listed');
  report.listed = await text();

  // Another site (localhost is another site than 127.0.0.1) posts the page's form at the user's
  // browser, token and all guessed: refused, and nothing is done.
  const target = new URL(plan.url);
  const forged = `<form method="post" action="${plan.url}"><input name="action" value="disconnect">` +
    '<input name="route" value="/tracker"><input name="csrf" value="guessed"></form>' +
    '<script>document.forms[0].submit()</script>';
  const attacker = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(forged));
  await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  const forgedAnswer = page.waitForResponse((r) => r.url() === plan.url && r.request().method() === 'POST');
  await page.goto(`http://localhost:${attacker.address().port}/`);
  report.forged = { status: (await forgedAnswer).status() };
  attacker.close();
  await page.goto(plan.url);
  report.forged.after = await text();

  // The page's form with the browser's session but without its token: refused too. (Sent by the
  // browser context's own client, with its cookies: the page's policy lets no script fetch.)
  const noToken = await page.context().request.post(target.href, {
    form: { action: 'disconnect', route: '/tracker', csrf: '' },
    maxRedirects: 0,
  });
  report.emptyToken = noToken.status();

  // Disconnect, then revoke: each form posts, and the page shows what is left.
  await Promise.all([page.waitForNavigation(), page.click('form:has(input[value=disconnect]) button')]);
  await shoot('3-disconnected');
  report.afterDisconnect = await text();
  await Promise.all([page.waitForNavigation(), page.click('form:has(input[value=revoke]) button')]);
  await shoot('4-revoked');
  report.afterRevoke = await text();
} catch (e) {
  report.error = String(e?.stack ?? e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report), () => process.exit(0));
