// The login and consent pages in a real browser: Debian's headless Chromium, driven by playwright-core,
// from the authorization URL to the app's redirect URI, with a screenshot of each page.
//
// Usage: node browser-flow.mjs '{"authorizeUrl": "...", "redirectUri": "...", "username": "...",
//                                "password": "...", "screenshots": "<dir>"}'
// Prints { "redirect": {code, state, iss}, "screenshots": [...], "titles": [...] } or { "error": ... }.
import { launchChromium } from './chromium.mjs';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const plan = JSON.parse(process.argv[2]);
const report = { screenshots: [], titles: [] };
mkdirSync(plan.screenshots, { recursive: true });
const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The app's redirect URI, served here, so that the browser ends on it and the test reads its query.
  let landed;
  const app = createServer((request, response) => {
    const url = new URL(request.url, plan.redirectUri);
    // Only the redirect itself; the browser also asks for a favicon.
    if (url.pathname === new URL(plan.redirectUri).pathname) landed = url.href;
    response.writeHead(200, { 'content-type': 'text/html' }).end('<title>App</title><h1>Back in the app</h1>');
  });
  const redirect = new URL(plan.redirectUri);
  await new Promise((resolve) => app.listen(Number(redirect.port), redirect.hostname, resolve));
  const shoot = async (name) => {
    const path = join(plan.screenshots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    report.screenshots.push(path);
    report.titles.push(await page.title());
  };

  await page.goto(plan.authorizeUrl);
  await page.waitForSelector('input[name=username]');
  await shoot('1-login');
  await page.fill('input[name=username]', plan.username);
  await page.fill('input[name=password]', plan.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForSelector('button[value=approve]');
  await shoot('2-consent');
  report.consentText = await page.innerText('main');
  await Promise.all([page.waitForNavigation(), page.click('button[value=approve]')]);
  await shoot('3-back-in-the-app');
  report.redirect = landed ? Object.fromEntries(new URL(landed).searchParams) : null;
} catch (e) {
  report.error = String(e?.stack ?? e);
} finally {
  await browser.close();
}

// The app's server would keep Node alive: leave once the report is out.
process.stdout.write(JSON.stringify(report), () => process.exit(0));
