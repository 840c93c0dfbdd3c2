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
async function run(token: string | null) {
	const jar = new Map(token ? [['session', token]] : []);
	const cookies = {
		get: (name: string) => jar.get(name),
		delete: (name: string) => void jar.delete(name)
	} as unknown as Cookies;
	const event = { cookies, locals: {} } as unknown as RequestEvent;
	const response = await handle({ event, resolve: async () => new Response('page') });
	expect(await response.text()).toBe('page');
	return { locals: event.locals, cookie: jar.get('session') ?? null };
}

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
		const { locals, cookie } = await run('good');
		expect(locals.user).toEqual(ada);
		expect(locals.api.token).toBe('good');
		expect(cookie).toBe('good');
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
