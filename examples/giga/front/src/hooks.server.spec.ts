import type { Cookies, RequestEvent } from '@sveltejs/kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ada, closedPort, json, startServer, type TestServer } from '$lib/testing/server';

// The hook reads INTERNAL_API_URL from here; point it at the test server.
const config = vi.hoisted(() => ({ INTERNAL_API_URL: '' }));
vi.mock('$env/dynamic/private', () => ({ env: config }));

const { handle } = await import('./hooks.server');

let server: TestServer;

beforeAll(async () => {
	server = await startServer({
		'GET /api/auth/me/': (req, res) =>
			req.headers.authorization === 'Token good'
				? json(res, 200, ada)
				: json(res, 401, { detail: 'Invalid token.' })
	});
	config.INTERNAL_API_URL = server.url;
});

afterAll(() => server.close());

/** Runs the hook for a request with this session cookie; returns what it left in locals. */
async function run(token: string | null, page = () => new Response('page')) {
	const jar = new Map(token ? [['session', token]] : []);
	const cookies = {
		get: (name: string) => jar.get(name),
		delete: (name: string) => void jar.delete(name)
	} as unknown as Cookies;
	// The browser claims an address of its own; only the socket's counts.
	const request = new Request('http://localhost/', {
		headers: { 'x-forwarded-for': '198.51.100.66' }
	});
	const event = {
		cookies,
		locals: {},
		request,
		getClientAddress: () => '203.0.113.7'
	} as unknown as RequestEvent;
	const response = await handle({ event, resolve: async () => page() });
	return { locals: event.locals, cookie: jar.get('session') ?? null, response };
}

const SECURITY_HEADERS = {
	'x-content-type-options': 'nosniff',
	'referrer-policy': 'strict-origin-when-cross-origin',
	'x-frame-options': 'DENY'
};

describe('handle', () => {
	it('leaves anonymous visitors anonymous without calling the API', async () => {
		const before = server.requests.length;
		const { locals } = await run(null);
		expect(locals.user).toBeNull();
		expect(locals.apiUnavailable).toBe(false);
		expect(locals.api.token).toBeNull();
		expect(server.requests.length).toBe(before);
	});

	it('resolves the user from the session cookie', async () => {
		const { locals, cookie, response } = await run('good');
		expect(locals.user).toEqual(ada);
		expect(locals.api.token).toBe('good');
		expect(cookie).toBe('good');
		expect(await response.text()).toBe('page');
	});

	it("forwards the client's address, never the browser's X-Forwarded-For", async () => {
		const { locals } = await run('good');
		expect(server.requests.at(-1)!.headers['x-forwarded-for']).toBe('203.0.113.7');
		expect(locals.api.clientAddress).toBe('203.0.113.7');
		const { locals: after } = await run('stale');
		expect(after.api.clientAddress).toBe('203.0.113.7');
	});

	it('adds the security headers to every response: pages, endpoints, redirects, errors', async () => {
		const responses = [
			() => new Response('<p>page</p>', { headers: { 'content-type': 'text/html' } }),
			() => Response.json({ ok: true }),
			() => new Response(null, { status: 303, headers: { location: '/login' } }),
			() => new Response('Not found', { status: 404 }),
			() => new Response('Internal Error', { status: 500 })
		];
		for (const page of responses) {
			for (const token of [null, 'good', 'stale']) {
				const { response } = await run(token, page);
				for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
					expect(response.headers.get(name), `${name} on ${response.status}`).toBe(value);
				}
			}
		}
	});

	it('forgets a token the API no longer accepts', async () => {
		const { locals, cookie } = await run('stale');
		expect(locals.user).toBeNull();
		expect(locals.api.token).toBeNull();
		expect(cookie).toBeNull();
	});

	it('keeps the cookie and flags the API as unavailable when it is down', async () => {
		const url = config.INTERNAL_API_URL;
		config.INTERNAL_API_URL = `http://127.0.0.1:${await closedPort()}`;
		const error = vi.spyOn(console, 'error').mockImplementation(() => {});
		try {
			const { locals, cookie } = await run('good');
			expect(locals.user).toBeNull();
			expect(locals.apiUnavailable).toBe(true);
			expect(cookie).toBe('good');
			expect(error).toHaveBeenCalledWith(expect.stringMatching(/ECONNREFUSED/));
		} finally {
			config.INTERNAL_API_URL = url;
			error.mockRestore();
		}
	});
});
