import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '$lib/testing/actions';
import { ada, json, startServer, type TestServer } from '$lib/testing/server';
import { actions } from './+page.server';

const WRONG = 'Your old password was entered incorrectly.';
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/password/change/': (req, res) =>
			JSON.parse(req.body).old_password === 'right'
				? json(res, 200, { detail: 'Your password was changed.' })
				: json(res, 400, { old_password: [WRONG] }),
		'POST /api/auth/email/change/': (req, res) => {
			const { email, password } = JSON.parse(req.body);
			if (password !== 'right')
				json(res, 400, { password: ['Your password was entered incorrectly.'] });
			// pending: the address changes once the mailed link is followed
			else if (email === 'pending@example.com')
				json(res, 200, { detail: 'We sent a link.', user: ada });
			else json(res, 200, { detail: 'Changed.', user: { ...ada, email } });
		},
		'POST /api/auth/email/verify/resend/': (_, res) => json(res, 202, { detail: 'On its way.' })
	});
});

afterAll(() => server.close());

const session = { token: 'ada-token', user: ada };
const run = (action: keyof typeof actions, form: Record<string, string>, logged = true) =>
	runAction(actions[action], {
		url: `http://localhost:3000/account?/${action}`,
		form,
		apiUrl: server.url,
		session: logged ? session : undefined
	});

describe('account actions', () => {
	it('change the password with the logged-in token', async () => {
		const outcome = await run('password', {
			old_password: 'right',
			new_password: 'N3w-passphrase'
		});
		expect(outcome).toMatchObject({ kind: 'redirect', location: '/account?done=password' });
		const request = server.requests.at(-1)!;
		expect(request.headers.authorization).toBe('Token ada-token');
		expect(JSON.parse(request.body)).toEqual({
			old_password: 'right',
			new_password: 'N3w-passphrase'
		});
	});

	it('show a wrong old password next to its field, and never send passwords back', async () => {
		const outcome = await run('password', { old_password: 'guess', new_password: 'N3w-pass' });
		expect(outcome).toEqual({
			kind: 'failure',
			status: 400,
			data: { action: 'password', errors: { fields: { old_password: [WRONG] }, form: [] } },
			cookies: new Map()
		});
	});

	it('tell a pending address change from a done one', async () => {
		const pending = await run('email', { email: 'pending@example.com', password: 'right' });
		expect(pending).toMatchObject({ kind: 'redirect', location: '/account?done=email-pending' });
		const done = await run('email', { email: 'new@example.com', password: 'right' });
		expect(done).toMatchObject({ kind: 'redirect', location: '/account?done=email' });
	});

	it('keep the new address when the password is wrong', async () => {
		const outcome = await run('email', { email: 'new@example.com', password: 'wrong' });
		expect(outcome).toMatchObject({
			kind: 'failure',
			status: 400,
			data: { action: 'email', email: 'new@example.com' }
		});
	});

	it("resend the verification link to the user's own address", async () => {
		expect(await run('resend', {})).toMatchObject({
			kind: 'redirect',
			location: '/account?done=resend'
		});
		expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ email: ada.email });
	});

	it('send a visitor who is not logged in to the login page', async () => {
		const outcome = await run('password', { old_password: 'right', new_password: 'x' }, false);
		expect(outcome).toMatchObject({ kind: 'redirect' });
		expect((outcome as { location: string }).location).toMatch(/^\/login\?next=%2Faccount/);
	});
});
