import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '$lib/testing/actions';
import { json, startServer, type TestServer } from '$lib/testing/server';
import { actions } from './+page.server';

const USED = 'This password reset link is invalid, already used or expired. Ask for a new one.';
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/password/reset/confirm/': (req, res) => {
			const { token, new_password } = JSON.parse(req.body);
			if (token !== 'good-token') json(res, 400, { non_field_errors: [USED] });
			else if (new_password.length < 8)
				json(res, 400, { new_password: ['This password is too short.'] });
			else json(res, 200, { detail: 'Your password was reset.' });
		}
	});
});

afterAll(() => server.close());

const reset = (token: string, password: string) =>
	runAction(actions.default, {
		url: `http://localhost:3000/reset/MQ/${token}`,
		params: { uid: 'MQ', token },
		form: { new_password: password },
		apiUrl: server.url
	});

describe('reset-password action', () => {
	it("sends the link's uid and token with the new password, then goes to log in", async () => {
		expect(await reset('good-token', 'Lovelace-1815')).toMatchObject({
			kind: 'redirect',
			location: '/login?reset=1'
		});
		expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({
			uid: 'MQ',
			token: 'good-token',
			new_password: 'Lovelace-1815'
		});
	});

	it("shows a used or expired link's message", async () => {
		expect(await reset('used-token', 'Lovelace-1815')).toEqual({
			kind: 'failure',
			status: 400,
			data: { errors: { fields: {}, form: [USED] } },
			cookies: new Map()
		});
	});

	it('shows the password rules next to the field, never the password', async () => {
		const outcome = await reset('good-token', 'short');
		expect(outcome).toMatchObject({
			kind: 'failure',
			data: { errors: { fields: { new_password: ['This password is too short.'] }, form: [] } }
		});
		expect(JSON.stringify(outcome)).not.toContain('"short"');
	});
});
