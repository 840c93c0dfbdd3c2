import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '$lib/testing/actions';
import { json, startServer, type TestServer } from '$lib/testing/server';
import { actions } from './+page.server';

const THROTTLED = 'Request was throttled. Expected available in 42 seconds.';
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/password/reset/': (req, res) => {
			const { email } = JSON.parse(req.body);
			if (email === 'flood@example.com') json(res, 429, { detail: THROTTLED });
			else if (!email.includes('@')) json(res, 400, { email: ['Enter a valid email address.'] });
			else json(res, 202, { detail: 'If an account uses this address, a link is on its way.' });
		}
	});
});

afterAll(() => server.close());

const forgot = (email: string) =>
	runAction(actions.default, {
		url: 'http://localhost:3000/forgot',
		form: { email },
		apiUrl: server.url
	});

describe('forgot-password action', () => {
	it('asks the API for a reset mail and says so, whatever the address', async () => {
		expect(await forgot('ada@example.com')).toMatchObject({
			kind: 'redirect',
			location: '/forgot?sent=1'
		});
		expect(JSON.parse(server.requests.at(-1)!.body)).toEqual({ email: 'ada@example.com' });
	});

	it('shows a field error and keeps the address', async () => {
		expect(await forgot('nope')).toEqual({
			kind: 'failure',
			status: 400,
			data: {
				values: { email: 'nope' },
				errors: { fields: { email: ['Enter a valid email address.'] }, form: [] }
			},
			cookies: new Map()
		});
	});

	it("shows a throttled answer's detail, with status 429", async () => {
		expect(await forgot('flood@example.com')).toMatchObject({
			kind: 'failure',
			status: 429,
			data: { errors: { fields: {}, form: [THROTTLED] } }
		});
	});
});
