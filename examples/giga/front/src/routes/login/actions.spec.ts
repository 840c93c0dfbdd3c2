import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction } from '$lib/testing/actions';
import { ada, json, startServer, type TestServer } from '$lib/testing/server';
import { actions } from './+page.server';

const THROTTLED = 'Request was throttled. Expected available in 42 seconds.';
let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'POST /api/auth/login/': (req, res) => {
			const { username } = JSON.parse(req.body);
			if (username === 'flood') {
				res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '42' });
				res.end(JSON.stringify({ detail: THROTTLED }));
			} else {
				json(res, 200, { token: 'key', expiry: null, user: ada });
			}
		}
	});
});

afterAll(() => server.close());

const login = (username: string, next = '') =>
	runAction(actions.default, {
		url: `http://localhost:3000/login${next}`,
		form: { username, password: 'secret' },
		apiUrl: server.url
	});

describe('login action', () => {
	it("shows a throttled answer's detail as a form error, with status 429", async () => {
		const outcome = await login('flood');
		expect(outcome).toEqual({
			kind: 'failure',
			status: 429,
			data: { values: { username: 'flood' }, errors: { fields: {}, form: [THROTTLED] } },
			cookies: new Map()
		});
	});

	it('logs in and goes back to a path on this site', async () => {
		const outcome = await login('ada', '?next=%2Fusers%3Fpage%3D2');
		expect(outcome).toMatchObject({ kind: 'redirect', location: '/users?page=2' });
		expect(outcome.cookies.get('session')).toBe('key');
	});

	it('never redirects off-site, whatever `next` says', async () => {
		for (const next of [
			'//evil.example/',
			'/%09/evil.example/',
			'/%5Cevil.example',
			'%2F%2Fevil.example',
			'https://evil.example/',
			'/me%0d%0aSet-Cookie:%20x=y'
		]) {
			const outcome = await login('ada', `?next=${next}`);
			expect(outcome, next).toMatchObject({ kind: 'redirect', location: '/me' });
		}
	});
});
