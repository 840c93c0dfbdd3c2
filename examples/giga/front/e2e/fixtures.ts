import { test as base, expect, type APIRequestContext, type Page } from '@playwright/test';

/** What playwright.config.ts gives the journeys besides the browser's options. */
export type Options = {
	/** Mailpit's API, where the backend's mail can be read (the dev stack's mail catcher). */
	mailpitURL: string;
	/** The project's `email_verification` answer. */
	emailVerification: 'mandatory' | 'optional' | 'none';
};

type Summary = { ID: string; To: { Address: string }[] };

/** The mail the backend sent, read through Mailpit's API (GET /api/v1/messages, newest first). */
export class Mailbox {
	constructor(private readonly api: APIRequestContext) {}

	/** The link containing `path` in the newest mail to `recipient`; waits for the mail. */
	async link(recipient: string, path: string): Promise<string> {
		let found: string | undefined;
		await expect
			.poll(async () => (found = await this.find(recipient, path)), {
				message: `a mail to ${recipient} with a link to ${path}, in Mailpit`,
				timeout: 30_000
			})
			.toBeTruthy();
		return found as string;
	}

	private async find(recipient: string, path: string): Promise<string | undefined> {
		const list = await this.api.get('/api/v1/messages');
		expect(list.ok(), `GET /api/v1/messages: ${list.status()}`).toBe(true);
		const { messages } = (await list.json()) as { messages: Summary[] };
		const mine = messages.find((m) => m.To.some((to) => to.Address === recipient));
		if (!mine) return undefined;
		const message = await this.api.get(`/api/v1/message/${mine.ID}`);
		expect(message.ok(), `GET /api/v1/message/${mine.ID}: ${message.status()}`).toBe(true);
		const { Text } = (await message.json()) as { Text: string };
		return Text.match(/https?:\/\/\S+/g)?.find((url) => url.includes(path));
	}
}

export const test = base.extend<Options & { mail: Mailbox }>({
	mailpitURL: ['http://127.0.0.1:8025', { option: true }],
	emailVerification: ['optional', { option: true }],
	mail: async ({ playwright, mailpitURL }, use) => {
		const api = await playwright.request.newContext({ baseURL: mailpitURL });
		await use(new Mailbox(api));
		await api.dispose();
	}
});

export { expect };

export type User = { username: string; email: string; password: string };

/** A new account's details: the database keeps the accounts of earlier runs. */
export function newUser(name: string): User {
	const username = `${name}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
	return { username, email: `${username}@example.com`, password: 'Lovelace-1815-xyz' };
}

// networkidle: the page hydrated, and under `vite dev` no dependency
// optimisation is about to reload it (which would drop a click).
export async function signUp(page: Page, user: User): Promise<void> {
	await page.goto('/signup', { waitUntil: 'networkidle' });
	await page.getByLabel('Username').fill(user.username);
	await page.getByLabel('Email').fill(user.email);
	await page.getByLabel('Password').fill(user.password);
	await page.getByRole('button', { name: 'Create account' }).click();
}

export async function logIn(page: Page, user: User): Promise<void> {
	await page.goto('/login', { waitUntil: 'networkidle' });
	await page.getByLabel('Username').fill(user.username);
	await page.getByLabel('Password').fill(user.password);
	await page.getByRole('button', { name: 'Log in' }).click();
}

export async function logOut(page: Page): Promise<void> {
	await page.getByRole('button', { name: 'Log out' }).click();
	await expect(page.getByRole('navigation').getByRole('link', { name: 'Log in' })).toBeVisible();
}

/**
 * Open a mailed /verify/<key> link on this site and confirm: opening it
 * verifies nothing (mail scanners open links too), the page's button does.
 */
export async function verifyByLink(page: Page, link: string): Promise<void> {
	const { pathname } = new URL(link);
	expect(pathname).toMatch(/^\/verify\/[^/]+$/);
	await page.goto(pathname, { waitUntil: 'networkidle' });
	await expect(page.getByTestId('verify-result')).toHaveCount(0);
	await page.getByRole('button', { name: 'Verify my address' }).click();
}
