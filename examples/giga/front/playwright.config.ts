import { defineConfig } from '@playwright/test';
import type { Options } from './e2e/fixtures';

// The journeys of e2e/ (`npm run test:e2e`, `make e2e`) in Chromium, against
// a running stack: by default the dev stack of `make db-up up migrate`, its
// frontend and Mailpit's API on their published ports. E2E_BASE_URL and
// E2E_MAILPIT_URL point them at another.
//
// The browser: PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH when set (e.g. Debian's
// /usr/bin/chromium), else Playwright's own (`npx playwright install chromium`).
const chromium = process.env.PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH;

export default defineConfig<Options>({
	testDir: 'e2e',
	// One browser at a time: the journeys share the backend's limits per client address.
	workers: 1,
	forbidOnly: !!process.env.CI,
	reporter: 'list',
	outputDir: 'test-results',
	timeout: 60_000,
	expect: { timeout: 15_000 },
	use: {
		baseURL: process.env.E2E_BASE_URL || 'http://127.0.0.1:5173',
		mailpitURL: process.env.E2E_MAILPIT_URL || 'http://127.0.0.1:8025',
		emailVerification: 'optional',
		browserName: 'chromium',
		launchOptions: chromium ? { executablePath: chromium } : {},
		screenshot: 'only-on-failure',
		trace: 'retain-on-failure'
	}
});
