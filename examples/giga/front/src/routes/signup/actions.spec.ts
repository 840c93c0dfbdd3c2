import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '$lib/testing/actions';
import { ada, json, startServer, type TestServer } from '$lib/testing/server';
import { actions } from './+page.server';

const THROTTLED = 'Request was throttled. Expected available in 42 seconds.';
let server: TestServer;

function throttled(res: import('node:http').ServerResponse) {
	res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '42' });
	res.end(JSON.stringify({ detail: THROTTLED }));
}

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/signup/': (req, res) =>
			JSON.parse(req.body).username === 'flood' ? throttled(res) : json(res, 201, ada),
		'POST /api/auth/login/': (req, res) =>
			JSON.parse(req.body).username === 'unverified'
				? json(res, 403, { detail: 'Verify your email address before logging in.' })
				: throttled(res)
	});
});

afterAll(() => server.close());

const signup = (username: string) =>
	runAction(actions.default, {
		url: 'http://localhost:3000/signup',
		form: { username, email: `${username}@example.com`, password: 'Lovelace-1815' },
		apiUrl: server.url
	});

describe('signup action', () => {
	it("shows a throttled answer's detail as a form error, with status 429", async () => {
		const outcome = await signup('flood');
		expect(outcome).toEqual({
			kind: 'failure',
			status: 429,
			data: {
				values: { username: 'flood', email: 'flood@example.com' },
				errors: { fields: {}, form: [THROTTLED] }
			},
			cookies: new Map()
		});
	});

	it('sends a new account whose login is throttled to the login page', async () => {
		const outcome = await signup('ada');
		expect(outcome).toMatchObject({ kind: 'redirect', location: '/login?signedup=1' });
		expect(outcome.cookies.size).toBe(0);
	});

	it('sends a new account that must verify its address first to the login page, saying so', async () => {
		const outcome = await signup('unverified');
		expect(outcome).toMatchObject({ kind: 'redirect', location: '/login?verify=1' });
		expect(outcome.cookies.size).toBe(0);
	});
});
