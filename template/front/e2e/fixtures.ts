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

/**
 * Sign `user` up, ready to log in: with mandatory verification (sign-up opens
 * no session) once the link mailed to the address is followed, else logged
 * out of the session sign-up opened.
 */
export async function signUpAndVerify(
	page: Page,
	user: User,
	mail: Mailbox,
	emailVerification: Options['emailVerification']
): Promise<void> {
	await signUp(page, user);
	if (emailVerification === 'mandatory') {
		await expect(page).toHaveURL(/\/login\?verify=1$/);
		await verifyByLink(page, await mail.link(user.email, '/verify/'));
		await expect(page.getByTestId('verify-result')).toContainText('is verified');
	} else {
		await expect(page.getByTestId('me-username')).toHaveText(user.username);
		await logOut(page);
	}
}

/** Sign `user` up (signUpAndVerify), then log in: /me shows the account. */
export async function signUpAndLogIn(
	page: Page,
	user: User,
	mail: Mailbox,
	emailVerification: Options['emailVerification']
): Promise<void> {
	await signUpAndVerify(page, user, mail, emailVerification);
	await logIn(page, user);
	await expect(page).toHaveURL(/\/me$/);
	await expect(page.getByTestId('me-username')).toHaveText(user.username);
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

/** Ask /forgot for a link to reset the password of the account at `email`. */
export async function requestReset(page: Page, email: string): Promise<void> {
	await page.goto('/login', { waitUntil: 'networkidle' });
	await page.getByRole('link', { name: 'Forgot your password?' }).click();
	await page.getByLabel('Email').fill(email);
	await page.getByRole('button', { name: 'Send the link' }).click();
	// The same answer whether or not an account uses the address.
	await expect(page.getByRole('status')).toContainText('If an account uses this address');
}

/** Open a mailed /reset/<uid>/<token> link on this site and set `password`. */
export async function resetByLink(page: Page, link: string, password: string): Promise<void> {
	const { pathname } = new URL(link);
	expect(pathname).toMatch(/^\/reset\/[\w-]+\/[0-9a-z]+-[0-9a-f]+$/);
	await page.goto(pathname, { waitUntil: 'networkidle' });
	await page.getByLabel('New password').fill(password);
	await page.getByRole('button', { name: 'Set the password' }).click();
}
