// What the README tells a person to do with MCP Inspector, done by Debian's headless Chromium: open the
// Inspector's web UI (already pointed at the gateway), switch the server on, sign in and consent on the
// gateway's pages, then call `show_auth_token` from the Tools tab. A screenshot of each step is kept.
//
// Usage: node inspector-flow.mjs '{"inspectorUrl": "...", "gatewayOrigin": "...", "username": "...",
//                                  "password": "...", "screenshots": "<dir>"}'
// Prints { "gatewayPages": [titles], "connected": bool, "tools": [...], "result": "...", "screenshots": [...] }
// or the same with "error".
import { launchChromium } from './chromium.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const plan = JSON.parse(process.argv[2]);
const report = { gatewayPages: [], screenshots: [] };
mkdirSync(plan.screenshots, { recursive: true });
const browser = await launchChromium();
try {
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
  const shoot = async (name) => {
    const path = join(plan.screenshots, `inspector-${name}.png`);
    await page.screenshot({ path });
    report.screenshots.push(path);
  };
  const onGateway = () => page.url().startsWith(plan.gatewayOrigin);

  await page.goto(plan.inspectorUrl);
  const toggle = page.locator('[role=switch], input[type=checkbox]').first();
  await toggle.waitFor({ state: 'attached' });
  await shoot('1-servers');
  // The switch is a styled checkbox: the input itself is covered by its track.
  await toggle.click({ force: true });

  // Inspector discovers the gateway, registers, and sends the browser to /authorize: the gateway's sign-in page,
  // then its consent page, then back to Inspector's callback.
  await page.waitForURL((url) => url.href.startsWith(plan.gatewayOrigin), { timeout: 30_000 });
  await page.waitForSelector('input[name=username]');
  report.gatewayPages.push(await page.title());
  await shoot('2-sign-in');
  await page.fill('input[name=username]', plan.username);
  await page.fill('input[name=password]', plan.password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  if (onGateway()) {
    await page.waitForSelector('button[value=approve]');
    report.gatewayPages.push(await page.title());
    await shoot('3-consent');
    await Promise.all([page.waitForNavigation(), page.click('button[value=approve]')]);
  }
  await page.waitForURL((url) => !url.href.startsWith(plan.gatewayOrigin), { timeout: 30_000 });
  await page.getByText('Connected', { exact: true }).first().waitFor({ timeout: 30_000 });
  report.connected = true;
  await shoot('4-connected');

  await page.getByText('Tools', { exact: true }).first().click();
  const tool = page.getByText('show_auth_token', { exact: true }).first();
  await tool.waitFor();
  report.tools = await page.getByText(/^(make_authenticated_request|show_auth_token)$/).allInnerTexts();
  await tool.click();
  await page.getByRole('button', { name: /execute tool/i }).click();
  // The tool answers with the backend's token masked as `head…tail`.
  const result = page.getByText(/^\S+…\S+$/).first();
  await result.waitFor({ timeout: 30_000 });
  report.result = await result.innerText();
  await shoot('5-tool-result');
} catch (e) {
  report.error = String(e?.stack ?? e);
  report.url = (await browser.contexts()[0]?.pages()[0]?.url()) ?? null;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
